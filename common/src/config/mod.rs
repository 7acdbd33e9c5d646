//! Typed views of tracker.conf, storage.conf and client.conf, with upstream's code defaults
//! (not the sample values) for absent keys and its validation rules (config-cli-http.md 2).

pub mod ini;

pub use ini::{ConfigError, IniFile};
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// `host[:port]` of a tracker or storage.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parse `host[:port]`, `ip1,ip2:port` (first address used) or `[v6]:port`; names are resolved.
pub fn parse_host_port(s: &str, default_port: u16) -> Result<HostPort, String> {
    let s = s.trim();
    let (hosts, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("host \"{s}\" is invalid"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p
                .parse()
                .map_err(|_| format!("port of \"{s}\" is invalid"))?,
            None => default_port,
        };
        (h.to_string(), port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse()
                    .map_err(|_| format!("port of \"{s}\" is invalid"))?,
            ),
            None => (s.to_string(), default_port),
        }
    };
    let host = hosts.split(',').next().unwrap_or("").trim().to_string();
    if host.is_empty() {
        return Err(format!("host \"{s}\" is invalid"));
    }
    let ip = resolve_host(&host)?;
    Ok(HostPort {
        host: ip.to_string(),
        port,
    })
}

pub fn resolve_host(host: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    // not a host name at all: refuse without asking DNS
    if host.is_empty()
        || host.len() > 253
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    {
        return Err(format!("host \"{host}\" is invalid"));
    }
    (host, 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| {
            a.find(|a| a.is_ipv4())
                .or_else(|| (host, 0).to_socket_addrs().ok()?.next())
        })
        .map(|a| a.ip())
        .ok_or_else(|| format!("host \"{host}\" is invalid, error info: Unknown host"))
}

/// The `tracker_server` lines (at most 16), de-duplicated and sorted as upstream does. A storage
/// refuses loopback trackers; clients accept them.
fn tracker_servers(ini: &IniFile, refuse_loopback: bool) -> Result<Vec<HostPort>, ConfigError> {
    let mut v: Vec<HostPort> = Vec::new();
    for item in ini.get_all("tracker_server").into_iter().take(16) {
        let hp = parse_host_port(&item.value, 22122)
            .map_err(|m| ini.error(Some(item), "tracker_server", m))?;
        if refuse_loopback && matches!(hp.host.as_str(), "127.0.0.1" | "::1" | "fe80::1") {
            let msg = format!(
                "tracker: \"{hp}\" is invalid, tracker server ip can't be loopback address"
            );
            return Err(ini.error(Some(item), "tracker_server", msg));
        }
        if !v.contains(&hp) {
            v.push(hp);
        }
    }
    if v.is_empty() {
        let mut e = ini.error(None, "tracker_server", String::new());
        e.msg = format!(
            "conf file \"{}\", item \"tracker_server\" not exist",
            ini.path
        );
        return Err(e);
    }
    v.sort();
    Ok(v)
}

/// Log settings shared by both daemons (`[error-log]` may override them).
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub level: log::LevelFilter,
    pub rotate_everyday: bool,
    pub rotate_time: (u8, u8),
    pub rotate_on_size: i64,
    pub keep_days: i64,
    pub delete_old_time: (u8, u8),
    pub compress_old: bool,
    pub compress_days_before: i64,
}

impl LogConfig {
    fn load(ini: &IniFile) -> Result<LogConfig, ConfigError> {
        let sec = "error-log";
        let s = |k: &str| ini.get_in_section(sec, k).map(|i| i.value.clone());
        let time = |k: &str, d: (u8, u8)| -> Result<(u8, u8), ConfigError> {
            match ini.get_in_section(sec, k) {
                Some(i) if !i.value.is_empty() => {
                    ini::parse_time_of_day(&i.value).ok_or_else(|| {
                        ini.error(
                            Some(i),
                            k,
                            format!("'s value \"{}\" is not an valid time", i.value),
                        )
                    })
                }
                _ => Ok(d),
            }
        };
        Ok(LogConfig {
            level: parse_log_level(&ini.string("log_level").unwrap_or_default()),
            rotate_everyday: ini.bool_in_section_or(sec, "log_file_rotate_everyday", true),
            rotate_time: time("log_file_rotate_time", (0, 0))?,
            rotate_on_size: s("log_file_rotate_on_size")
                .and_then(|v| ini::parse_bytes(&v))
                .unwrap_or(0),
            keep_days: s("log_file_keep_days").map(|v| ini::atoi(&v)).unwrap_or(15),
            delete_old_time: time("log_file_delete_old_time", (1, 30))?,
            compress_old: ini.bool_in_section_or(sec, "log_file_compress_old", false),
            compress_days_before: s("log_file_compress_days_before")
                .map(|v| ini::atoi(&v))
                .unwrap_or(1),
        })
    }
}

pub fn parse_log_level(s: &str) -> log::LevelFilter {
    let u = s.trim().to_ascii_uppercase();
    let u = u.strip_prefix("LOG_").unwrap_or(&u);
    if u.is_empty() {
        return log::LevelFilter::Info;
    }
    if u.starts_with("DEBUG") {
        log::LevelFilter::Debug
    } else if u.starts_with("INFO") || u.starts_with("NOTICE") {
        log::LevelFilter::Info
    } else if u.starts_with("WARN") {
        log::LevelFilter::Warn
    } else if u.starts_with("ERR")
        || u.starts_with("CRIT")
        || u.starts_with("ALERT")
        || u.starts_with("EMERG")
    {
        log::LevelFilter::Error
    } else {
        log::LevelFilter::Info
    }
}

/// Settings every daemon has.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub conf_file: PathBuf,
    pub bind_addr: String,
    pub port: u16,
    pub base_path: PathBuf,
    pub connect_timeout: u64,
    pub network_timeout: u64,
    pub max_connections: usize,
    pub accept_threads: usize,
    pub work_threads: usize,
    pub buff_size: usize,
    pub run_by_group: String,
    pub run_by_user: String,
    pub allow_hosts: Vec<String>,
    pub log: LogConfig,
    /// `metrics.server_port` (rfdfs's own; 0 = off): Prometheus `/metrics` and `/health`
    pub metrics_port: u16,
}

impl ServerConfig {
    fn load(
        ini: &IniFile,
        default_port: u16,
        default_network_timeout: i64,
    ) -> Result<Self, ConfigError> {
        let base = ini.string("base_path").unwrap_or_default();
        if base.is_empty() {
            return Err(ConfigError {
                file: ini.path.clone(),
                line: 0,
                key: "base_path".into(),
                msg: format!("conf file \"{}\" must have item \"base_path\"!", ini.path),
                code: 2,
            });
        }
        Ok(ServerConfig {
            conf_file: PathBuf::from(&ini.path),
            bind_addr: ini.string_or("bind_addr", ""),
            port: ini.positive_or("port", default_port as i64).min(65535) as u16,
            base_path: PathBuf::from(base),
            connect_timeout: ini.positive_or("connect_timeout", 10) as u64,
            network_timeout: ini.positive_or("network_timeout", default_network_timeout) as u64,
            max_connections: ini.positive_or("max_connections", 256) as usize,
            accept_threads: ini.positive_required_or("accept_threads", 1)? as usize,
            work_threads: ini.positive_required_or("work_threads", 4)? as usize,
            buff_size: ini
                .bytes_lenient_or("buff_size", 256 * 1024)
                .clamp(8 * 1024, 1 << 31) as usize,
            run_by_group: ini.string_or("run_by_group", ""),
            run_by_user: ini.string_or("run_by_user", ""),
            allow_hosts: ini
                .get_all("allow_hosts")
                .iter()
                .map(|i| i.value.clone())
                .collect(),
            log: LogConfig::load(ini)?,
            metrics_port: optional_port(ini, "metrics.server_port")?,
        })
    }
}

/// A port key of rfdfs's own: absent is 0 (off), anything but 0..=65535 is an error.
fn optional_port(ini: &IniFile, key: &str) -> Result<u16, ConfigError> {
    match ini.int(key) {
        None => Ok(0),
        Some(p) => {
            u16::try_from(p).map_err(|_| ini.error(ini.get(key), key, format!("{p} is not a port")))
        }
    }
}

fn disabled_check(ini: &IniFile) -> Result<(), ConfigError> {
    if ini.bool_or("disabled", false) {
        return Err(ConfigError {
            file: ini.path.clone(),
            line: ini.get("disabled").map(|i| i.line).unwrap_or(0),
            key: "disabled".into(),
            msg: format!("conf file \"{}\" disabled=true, exit", ini.path),
            code: 125,
        });
    }
    Ok(())
}

/// `reserved_storage_space`: a ratio of each store path, or an absolute budget in MB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReservedSpace {
    Ratio(f64),
    Mb(i64),
}

impl ReservedSpace {
    pub fn parse(s: &str) -> Option<ReservedSpace> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p.trim().parse().ok()?;
            (v > 0.0 && v < 100.0).then_some(ReservedSpace::Ratio(v / 100.0))
        } else {
            ini::parse_bytes(s).map(|b| ReservedSpace::Mb(b / (1 << 20)))
        }
    }

    /// As the tracker reports it in the parameter reply and logs.
    pub fn to_text(self) -> String {
        match self {
            ReservedSpace::Ratio(r) => format!("{:.2}%", r * 100.0),
            ReservedSpace::Mb(mb) => format!("{mb}MB"),
        }
    }

    /// Reserved MB of a group or storage with `total_mb`.
    pub fn reserved_mb(self, total_mb: i64) -> i64 {
        match self {
            ReservedSpace::Ratio(r) => (total_mb as f64 * r) as i64,
            ReservedSpace::Mb(mb) => mb,
        }
    }

    /// Whether a store path (or, with `path_count` 1, a group) has room above the reserve.
    pub fn has_room(self, total_mb: i64, free_mb: i64, path_count: i64) -> bool {
        match self {
            ReservedSpace::Ratio(r) => total_mb > 0 && (free_mb as f64 / total_mb as f64) > r,
            ReservedSpace::Mb(mb) => free_mb > mb / path_count.max(1),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TrackerConfig {
    pub server: ServerConfig,
    pub store_lookup: u8,
    pub store_group: String,
    pub store_server: u8,
    pub store_path: u8,
    pub download_server: u8,
    pub reserved_storage_space: ReservedSpace,
    pub check_active_interval: u64,
    pub storage_ip_changed_auto_adjust: bool,
    pub storage_sync_file_max_delay: i64,
    pub storage_sync_file_max_time: i64,
    pub use_trunk_file: bool,
    pub slot_min_size: i64,
    pub slot_max_size: i64,
    pub trunk_file_size: i64,
    pub use_storage_id: bool,
    pub id_type_in_filename_id: bool,
    /// `storage_ids_filename`, loaded only with `use_storage_id`
    pub storage_ids: crate::storage_ids::StorageIds,
    pub http: crate::http::HttpConfig,
    /// `http.redirect_port` (rfdfs's own, 0 = off): where the tracker answers HTTP GETs with a
    /// 302 to a storage. Not `http.server_port`, which upstream's samples carry in tracker.conf
    /// with no effect since 4.05: a tracker and a storage on one host both set it (the seed's
    /// setup sets both to 80)
    pub http_redirect_port: u16,
    /// `http.storage_server_port`: the storages' HTTP port the redirects name (default 8888,
    /// the storage sample's `http.server_port`)
    pub http_storage_server_port: u16,
    pub trust_storage_server_id: bool,
    pub store_slave_file_use_link: bool,
    pub response_ip_v6: bool,
    /// parameter-reply texts of the trunk keys we accept but do not act on
    pub trunk_params: Vec<(String, String)>,
}

impl TrackerConfig {
    pub fn load(path: &Path) -> Result<TrackerConfig, ConfigError> {
        let ini = IniFile::load(path)?;
        Self::from_ini(&ini)
    }

    pub fn from_ini(ini: &IniFile) -> Result<TrackerConfig, ConfigError> {
        disabled_check(ini)?;
        let server = ServerConfig::load(ini, 22122, 60)?;
        let store_lookup = match ini.get("store_lookup") {
            None => 0,
            Some(i) => match ini::atoi(&i.value) {
                v @ 0..=2 => v as u8,
                v => {
                    return Err(ini.error(
                        Some(i),
                        "store_lookup",
                        format!("is invalid, value: {v}"),
                    ))
                }
            },
        };
        let store_group = ini.string_or("store_group", "");
        if store_lookup == 1 {
            let item = ini.get("store_group");
            if store_group.is_empty() {
                let mut e = ini.error(
                    item,
                    "store_group",
                    "must not be empty when store_lookup=1".into(),
                );
                e.code = 2;
                return Err(e);
            }
            if !crate::proto::valid_group_name(&store_group) {
                return Err(ini.error(
                    item,
                    "store_group",
                    format!("invalid group name: {store_group}"),
                ));
            }
        }
        let small = |k: &str, max: i64| -> u8 {
            match ini.int(k) {
                Some(v) if (0..=max).contains(&v) => v as u8,
                Some(v) => {
                    log::warn!(
                        "conf file \"{}\", item \"{k}\": invalid value {v}, set to 0",
                        ini.path
                    );
                    0
                }
                None => 0,
            }
        };
        let mut store_server = small("store_server", 2);
        let mut store_path = small("store_path", 2);
        if store_path == 1 {
            store_path = 0;
        }
        let download_server = small("download_server", 1);
        let reserved_storage_space = match ini.get("reserved_storage_space") {
            None => ReservedSpace::Mb(1024),
            Some(i) => ReservedSpace::parse(&i.value).ok_or_else(|| {
                ini.error(
                    Some(i),
                    "reserved_storage_space",
                    format!("invalid value: \"{}\"", i.value),
                )
            })?,
        };
        let use_trunk_file = ini.bool_or("use_trunk_file", false);
        if use_trunk_file && store_server == 0 {
            store_server = 1;
        }
        let trunk_file_size = ini
            .bytes_strict_or("trunk_file_size", 64 << 20)?
            .max(4 << 20);
        let slot_min_size = ini.bytes_strict_or("slot_min_size", 256)?;
        if slot_min_size <= 0 {
            return Err(ini.error(
                ini.get("slot_min_size"),
                "slot_min_size",
                "must be > 0".into(),
            ));
        }
        let slot_max_size = ini.bytes_strict_or("slot_max_size", trunk_file_size / 8)?;
        if slot_max_size <= slot_min_size {
            return Err(ini.error(
                ini.get("slot_max_size"),
                "slot_max_size",
                format!("{slot_max_size} <= slot_min_size {slot_min_size}"),
            ));
        }
        let use_storage_id = ini.bool_or("use_storage_id", false);
        let storage_ids = if use_storage_id {
            let name = ini.string_or("storage_ids_filename", "storage_ids.conf");
            let path = Path::new(&ini.path)
                .parent()
                .unwrap_or(Path::new("."))
                .join(&name);
            crate::storage_ids::StorageIds::load(&path)?
        } else {
            Default::default()
        };
        let mut trunk_params = Vec::new();
        let mut tp = |k: &str, v: String| trunk_params.push((k.to_string(), v));
        tp(
            "trunk_alloc_alignment_size",
            ini.int("trunk_alloc_alignment_size")
                .unwrap_or(0)
                .to_string(),
        );
        let b = |k: &str| if ini.bool_or(k, false) { "1" } else { "0" }.to_string();
        let hm = |t: (u8, u8)| format!("{:02}:{:02}", t.0, t.1);
        tp("trunk_file_size", trunk_file_size.to_string());
        tp("trunk_create_file_advance", b("trunk_create_file_advance"));
        tp(
            "trunk_create_file_time_base",
            hm(ini.time_of_day_or("trunk_create_file_time_base", (2, 0))?),
        );
        tp(
            "trunk_create_file_interval",
            ini.positive_or("trunk_create_file_interval", 86400)
                .to_string(),
        );
        tp(
            "trunk_create_file_space_threshold",
            ini.bytes_strict_or("trunk_create_file_space_threshold", 0)?
                .to_string(),
        );
        tp(
            "trunk_init_check_occupying",
            b("trunk_init_check_occupying"),
        );
        tp(
            "trunk_init_reload_from_binlog",
            b("trunk_init_reload_from_binlog"),
        );
        tp("trunk_free_space_merge", b("trunk_free_space_merge"));
        tp("delete_unused_trunk_files", b("delete_unused_trunk_files"));
        tp(
            "trunk_compress_binlog_min_interval",
            ini.int("trunk_compress_binlog_min_interval")
                .unwrap_or(0)
                .max(0)
                .to_string(),
        );
        tp(
            "trunk_compress_binlog_interval",
            ini.int("trunk_compress_binlog_interval")
                .unwrap_or(0)
                .max(0)
                .to_string(),
        );
        tp(
            "trunk_compress_binlog_time_base",
            hm(ini.time_of_day_or("trunk_compress_binlog_time_base", (3, 0))?),
        );
        tp(
            "trunk_binlog_max_backups",
            ini.int("trunk_binlog_max_backups")
                .unwrap_or(0)
                .max(0)
                .to_string(),
        );
        let cfg = TrackerConfig {
            server,
            store_lookup,
            store_group,
            store_server,
            store_path,
            download_server,
            reserved_storage_space,
            check_active_interval: ini.positive_or("check_active_interval", 100) as u64,
            storage_ip_changed_auto_adjust: ini.bool_or("storage_ip_changed_auto_adjust", true),
            storage_sync_file_max_delay: ini.positive_or("storage_sync_file_max_delay", 86400),
            storage_sync_file_max_time: ini.positive_or("storage_sync_file_max_time", 300),
            use_trunk_file,
            slot_min_size,
            slot_max_size,
            trunk_file_size,
            use_storage_id,
            storage_ids,
            http: crate::http::HttpConfig::from_ini(ini)?,
            http_redirect_port: optional_port(ini, "http.redirect_port")?,
            http_storage_server_port: ini
                .int("http.storage_server_port")
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
                .unwrap_or(8888),
            id_type_in_filename_id: ini
                .string_or("id_type_in_filename", "ip")
                .eq_ignore_ascii_case("id"),
            trust_storage_server_id: ini.bool_or("trust_storage_server_id", true),
            store_slave_file_use_link: ini.bool_or("store_slave_file_use_link", false),
            response_ip_v6: !ini
                .string_or("response_ip_addr_size", "auto")
                .eq_ignore_ascii_case("auto")
                && !ini.string_or("response_ip_addr_size", "auto").is_empty(),
            trunk_params,
        };
        for k in [
            "thread_stack_size",
            "use_connection_pool",
            "connection_pool_max_idle_time",
            "min_buff_size",
            "max_buff_size",
            "storage_ids_filename",
            "address_family",
            "use_io_uring",
            "use_send_zc",
            "tcp_quick_ack",
            "sync_log_buff_interval",
        ] {
            ini.get(k);
        }
        ini.log_unused_keys();
        Ok(cfg)
    }
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub server: ServerConfig,
    pub group_name: String,
    pub client_bind: bool,
    pub heart_beat_interval: u64,
    pub stat_report_interval: u64,
    pub store_paths: Vec<PathBuf>,
    pub store_path_readonly: Vec<bool>,
    pub subdir_count_per_path: u32,
    pub tracker_servers: Vec<HostPort>,
    pub file_distribute_path_mode: u8,
    pub file_distribute_rotate_count: u32,
    pub fsync_after_written_bytes: i64,
    pub sync_binlog_buff_interval: u64,
    pub sync_stat_file_interval: u64,
    pub upload_priority: i64,
    pub check_store_path_mark: bool,
    pub sync_wait_msec: u64,
    pub sync_interval: u64,
    pub write_mark_file_freq: u64,
    pub file_sync_skip_invalid_record: bool,
    /// `server_id`: `None` when the key is absent (the id then comes from storage ids by address)
    pub server_id: Option<String>,
    pub http: crate::http::HttpConfig,
}

impl StorageConfig {
    /// Whether the operator asked for fsyncs (`fsync_after_written_bytes` > 0): then a change
    /// is on disk before it is acknowledged.
    pub fn durable(&self) -> bool {
        self.fsync_after_written_bytes > 0
    }

    pub fn load(path: &Path) -> Result<StorageConfig, ConfigError> {
        let ini = IniFile::load(path)?;
        Self::from_ini(&ini)
    }

    pub fn from_ini(ini: &IniFile) -> Result<StorageConfig, ConfigError> {
        disabled_check(ini)?;
        let server = ServerConfig::load(ini, 23000, 30)?;
        if (server.buff_size as i64) < 65546 {
            return Err(ini.error(
                ini.get("buff_size"),
                "buff_size",
                format!("is too small, value: {} < 65546!", server.buff_size),
            ));
        }
        // upstream's generic 256KB default is below its own storage minimum, so a storage.conf
        // without the key never starts there; absent, we take the sample's 512KB
        let stack = ini.bytes_lenient_or("thread_stack_size", 512 * 1024);
        if stack < 320 * 1024 {
            return Err(ini.error(
                ini.get("thread_stack_size"),
                "thread_stack_size",
                format!("{stack} is invalid, which < 327680"),
            ));
        }
        let group_item = ini.get("group_name");
        let group_name = group_item.map(|i| i.value.clone()).unwrap_or_default();
        if !crate::proto::valid_group_name(&group_name) {
            return Err(ini.error(
                group_item,
                "group_name",
                format!("invalid group name: \"{group_name}\""),
            ));
        }
        let count = ini.positive_required_or("store_path_count", 1)? as usize;
        let mut store_paths = Vec::with_capacity(count);
        let mut store_path_readonly = Vec::with_capacity(count);
        for i in 0..count {
            let key = format!("store_path{i}");
            let p = match ini.string(&key) {
                Some(p) if !p.is_empty() => PathBuf::from(p),
                _ if i == 0 => server.base_path.clone(),
                _ => return Err(ini.error(None, &key, format!("item \"{key}\" not exist"))),
            };
            store_paths.push(p);
            store_path_readonly.push(ini.bool_or(&format!("store_path{i}_readonly"), false));
        }
        let subdir = match ini.get("subdir_count_per_path") {
            None => 256,
            Some(i) => match ini::atoi(&i.value) {
                v @ 1..=256 => v as u32,
                v => {
                    return Err(ini.error(
                        Some(i),
                        "subdir_count_per_path",
                        format!("is invalid, value: {v}"),
                    ))
                }
            },
        };
        let tracker_servers = tracker_servers(ini, true)?;
        let cfg = StorageConfig {
            server,
            group_name,
            client_bind: ini.bool_or("client_bind", true),
            heart_beat_interval: ini.positive_or("heart_beat_interval", 30) as u64,
            stat_report_interval: ini.positive_or("stat_report_interval", 300) as u64,
            store_paths,
            store_path_readonly,
            subdir_count_per_path: subdir,
            tracker_servers,
            file_distribute_path_mode: (ini.int("file_distribute_path_mode").unwrap_or(0) == 1)
                as u8,
            file_distribute_rotate_count: ini.positive_or("file_distribute_rotate_count", 100)
                as u32,
            fsync_after_written_bytes: ini.bytes_strict_or("fsync_after_written_bytes", 0)?,
            sync_binlog_buff_interval: ini.positive_or("sync_binlog_buff_interval", 60) as u64,
            sync_stat_file_interval: ini.positive_or("sync_stat_file_interval", 60) as u64,
            upload_priority: ini.int("upload_priority").unwrap_or(10),
            check_store_path_mark: ini.bool_or("check_store_path_mark", true),
            sync_wait_msec: ini.positive_or("sync_wait_msec", 100) as u64,
            sync_interval: ini.int("sync_interval").unwrap_or(0).max(0) as u64,
            write_mark_file_freq: ini.positive_or("write_mark_file_freq", 500) as u64,
            file_sync_skip_invalid_record: ini.bool_or("file_sync_skip_invalid_record", false),
            http: crate::http::HttpConfig::from_ini(ini)?,
            server_id: match ini.get("server_id") {
                Some(i) if !i.value.is_empty() && !crate::storage_ids::is_valid_id(&i.value) => {
                    return Err(ini.error(
                        Some(i),
                        "server_id",
                        format!("{} is invalid: a number from 1 to 16777215", i.value),
                    ))
                }
                i => i.map(|i| i.value.clone()),
            },
        };
        ini.log_unused_keys();
        Ok(cfg)
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub conf_file: PathBuf,
    pub tracker_servers: Vec<HostPort>,
    pub connect_timeout: u64,
    pub network_timeout: u64,
    pub log_level: log::LevelFilter,
    pub use_connection_pool: bool,
    pub connection_pool_max_idle_time: u64,
    pub load_fdfs_parameters_from_tracker: bool,
    pub use_storage_id: bool,
    pub anti_steal_check_token: bool,
    pub anti_steal_secret_key: String,
    /// `http.tracker_server_port`: where trackers answer HTTP (for URLs the tools build)
    pub http_tracker_server_port: u16,
}

impl ClientConfig {
    pub fn load(path: &Path) -> Result<ClientConfig, ConfigError> {
        let ini = IniFile::load(path)?;
        Self::from_ini(&ini)
    }

    pub fn from_ini(ini: &IniFile) -> Result<ClientConfig, ConfigError> {
        let tracker_servers = tracker_servers(ini, false)?;
        if let Some(item) = ini.get("base_path") {
            if !item.value.is_empty() && !Path::new(&item.value).is_dir() {
                let mut e = ini.error(Some(item), "base_path", String::new());
                e.msg = format!(
                    "\"{}\" can't be accessed, error info: No such file or directory",
                    item.value
                );
                e.code = 2;
                return Err(e);
            }
        }
        let check_token = ini.bool_or("http.anti_steal.check_token", false);
        let secret = ini.string_or("http.anti_steal.secret_key", "");
        if check_token && secret.is_empty() {
            return Err(ini.error(
                ini.get("http.anti_steal.secret_key"),
                "http.anti_steal.secret_key",
                "must not be empty when http.anti_steal.check_token is true".into(),
            ));
        }
        Ok(ClientConfig {
            conf_file: PathBuf::from(&ini.path),
            tracker_servers,
            connect_timeout: ini.positive_or("connect_timeout", 10) as u64,
            network_timeout: ini.positive_or("network_timeout", 30) as u64,
            log_level: parse_log_level(&ini.string_or("log_level", "info")),
            use_connection_pool: ini.bool_or("use_connection_pool", false),
            connection_pool_max_idle_time: ini.positive_or("connection_pool_max_idle_time", 3600)
                as u64,
            load_fdfs_parameters_from_tracker: ini
                .bool_or("load_fdfs_parameters_from_tracker", false),
            use_storage_id: ini.bool_or("use_storage_id", false),
            anti_steal_check_token: check_token,
            anti_steal_secret_key: secret,
            http_tracker_server_port: ini
                .int("http.tracker_server_port")
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(80),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            parse_host_port("127.0.0.2:22122", 1).unwrap().to_string(),
            "127.0.0.2:22122"
        );
        assert_eq!(parse_host_port("127.0.0.2", 22122).unwrap().port, 22122);
        assert_eq!(
            parse_host_port("10.0.0.1,192.168.0.1:23000", 1)
                .unwrap()
                .host,
            "10.0.0.1"
        );
        assert_eq!(
            parse_host_port("[::1]:80", 1).unwrap().to_string(),
            "[::1]:80"
        );
        assert!(parse_host_port("nosuchhost.invalid", 1).is_err());
    }

    #[test]
    fn reserved_space() {
        assert_eq!(ReservedSpace::parse("20%"), Some(ReservedSpace::Ratio(0.2)));
        assert_eq!(ReservedSpace::parse("10.5%").unwrap().to_text(), "10.50%");
        assert_eq!(ReservedSpace::parse("1G"), Some(ReservedSpace::Mb(1024)));
        assert_eq!(ReservedSpace::parse("100%"), None);
    }

    #[test]
    fn storage_conf_errors_name_line() {
        let ini = IniFile::parse_str(
            "s.conf",
            "group_name=group1\nbase_path=/tmp\ntracker_server=127.0.0.1:22122\nthread_stack_size=512KB\n",
        )
        .unwrap();
        let e = StorageConfig::from_ini(&ini).unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (3, "tracker_server"));
        let ini = IniFile::parse_str(
            "s.conf",
            "group_name=group1\nbase_path=/tmp\ntracker_server=127.0.0.2:22122\n",
        )
        .unwrap();
        assert!(StorageConfig::from_ini(&ini).is_ok());
        let ini = IniFile::parse_str(
            "s.conf",
            "group_name=group1\nbase_path=/tmp\ntracker_server=127.0.0.2:22122\nthread_stack_size=256KB\n",
        )
        .unwrap();
        assert_eq!(
            StorageConfig::from_ini(&ini).unwrap_err().key,
            "thread_stack_size"
        );
    }

    #[test]
    fn tracker_conf_errors() {
        let ini = IniFile::parse_str("t.conf", "base_path=/tmp\nwork_threads=abc\n").unwrap();
        let e = TrackerConfig::from_ini(&ini).unwrap_err();
        assert_eq!((e.line, e.key.as_str(), e.code), (2, "work_threads", 22));
        let ini =
            IniFile::parse_str("t.conf", "base_path=/tmp\nreserved_storage_space=120%\n").unwrap();
        assert_eq!(
            TrackerConfig::from_ini(&ini).unwrap_err().key,
            "reserved_storage_space"
        );
        let ini =
            IniFile::parse_str("t.conf", "base_path=/tmp\n[error-log]\nstore_lookup=1\n").unwrap();
        assert_eq!(TrackerConfig::from_ini(&ini).unwrap().store_lookup, 0);
    }
}
