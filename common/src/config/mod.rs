//! Typed views of tracker.conf, storage.conf and client.conf, with upstream's code defaults
//! (not the sample values) for absent keys and its validation rules
//! (docs/protocol/config-cli-http.md 2).

mod client;
pub mod http;
pub mod ini;
pub mod keys;
pub mod storage;
pub mod storage_ids;
mod tracker;

pub use client::ClientConfig;
pub use http::{HttpConfig, MimeTypes};
pub use ini::{ConfigError, IniFile};
use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;
pub use storage::StorageConfig;
pub use tracker::TrackerConfig;

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
pub(crate) fn tracker_servers(
    ini: &IniFile,
    refuse_loopback: bool,
) -> Result<Vec<HostPort>, ConfigError> {
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
        Self::load_section(ini, "error-log")
    }

    /// The `log_file_*` keys of a log's section (`[error-log]`, `[access-log]`), each falling
    /// back to its global value.
    pub fn load_section(ini: &IniFile, sec: &str) -> Result<LogConfig, ConfigError> {
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
    /// which addresses an empty `bind_addr` listens on
    pub address_family: AddressFamily,
    /// keep outgoing connections to other servers open between requests
    pub use_connection_pool: bool,
    pub connection_pool_max_idle_time: u64,
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
        let use_connection_pool = ini.bool_or("use_connection_pool", false);
        // upstream refuses a non-positive idle time only when the pool is on
        let connection_pool_max_idle_time = if use_connection_pool {
            ini.positive_required_or("connection_pool_max_idle_time", 3600)? as u64
        } else {
            3600
        };
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
            address_family: AddressFamily::from_ini(ini)?,
            use_connection_pool,
            connection_pool_max_idle_time,
        })
    }
}

impl ServerConfig {
    /// The addresses of `bind_addr`: none (every address), one, or upstream's `IPv4,IPv6`.
    pub fn bind_addrs(&self) -> Vec<&str> {
        split_bind_addr(&self.bind_addr)
    }

    /// The source address of outgoing connections: `bind_addr`, the first of `IPv4,IPv6`
    /// (connections to the other family go unbound).
    pub fn source_ip(&self) -> Option<std::net::IpAddr> {
        self.bind_addrs().iter().find_map(|a| a.parse().ok())
    }
}

/// A `bind_addr` value's addresses, brackets taken off IPv6 ones.
pub fn split_bind_addr(bind_addr: &str) -> Vec<&str> {
    bind_addr
        .split(',')
        .map(|a| a.trim().trim_start_matches('[').trim_end_matches(']'))
        .filter(|a| !a.is_empty())
        .collect()
}

/// `address_family` (both daemons): what an empty `bind_addr` listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressFamily {
    /// from bind_addr, else IPv4
    #[default]
    Auto,
    V4,
    V6,
    Both,
}

impl AddressFamily {
    fn from_ini(ini: &IniFile) -> Result<AddressFamily, ConfigError> {
        let Some(item) = ini.get("address_family") else {
            return Ok(AddressFamily::Auto);
        };
        match item.value.to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(AddressFamily::Auto),
            "ipv4" => Ok(AddressFamily::V4),
            "ipv6" => Ok(AddressFamily::V6),
            "both" => Ok(AddressFamily::Both),
            other => Err(ini.error(
                Some(item),
                "address_family",
                format!("invalid value: {other}, must be auto, IPv4, IPv6 or both"),
            )),
        }
    }
}

/// A port key of rfdfs's own: absent is 0 (off), anything but 0..=65535 is an error.
pub(crate) fn optional_port(ini: &IniFile, key: &str) -> Result<u16, ConfigError> {
    match ini.int(key) {
        None => Ok(0),
        Some(p) => {
            u16::try_from(p).map_err(|_| ini.error(ini.get(key), key, format!("{p} is not a port")))
        }
    }
}

pub(crate) fn disabled_check(ini: &IniFile) -> Result<(), ConfigError> {
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
