//! storage.conf.

use super::address::{tracker_servers, HostPort};
use super::ini::{self, ConfigError, IniFile};
use super::server::{disabled_check, LogConfig, ServerConfig};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub server: ServerConfig,
    /// what to tell the operator about keys ignored or unknown, once the log is open
    pub key_warnings: Vec<String>,
    /// empty when storage.conf has no `group_name`: the trackers are asked for it at startup
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
    /// `[access-log] enabled` and `time_precision = us` (section only, as upstream)
    pub access_log: bool,
    pub access_log_micros: bool,
    /// the `log_file_*` keys for the access log (`[access-log]`, else global)
    pub access_log_rotation: LogConfig,
    /// the daily window replication runs in (local HH:MM, both ends included; an end before
    /// the start runs over midnight): 00:00..23:59 is all day
    pub sync_start_time: (u8, u8),
    pub sync_end_time: (u8, u8),
    pub write_mark_file_freq: u64,
    pub file_sync_skip_invalid_record: bool,
    /// gzip binlog files every reader has passed, daily at `compress_binlog_time`
    pub compress_binlog: bool,
    pub compress_binlog_time: (u8, u8),
    /// `scrub_bytes_per_second` (rfdfs's own; 0 = off): stored files re-read at this rate and
    /// checked against the CRC32 their names carry
    pub scrub_bytes_per_second: u64,
    /// `scrub_quarantine_size`: bytes of repaired files' corrupt copies kept per store path
    pub scrub_quarantine_size: u64,
    /// `write_ack_copies` (rfdfs's own; 1 = upstream): members that must hold a change before
    /// it is answered
    pub write_ack_copies: u64,
    /// `write_ack_timeout`: seconds to wait for those copies
    pub write_ack_timeout: u64,
    /// `reconcile_interval` (rfdfs's own; 0 = off): seconds between comparisons of what the
    /// members hold, without the binlog
    pub reconcile_interval: u64,
    /// `server_id`: `None` when the key is absent (the id then comes from storage ids by address)
    pub server_id: Option<String>,
    pub http: super::http::HttpConfig,
    /// `s3.*` (rfdfs's own): the S3 endpoint over the group's files
    pub s3: super::s3::S3Config,
    /// `advertise_address` lines (rfdfs's own): what the trackers hand clients for this
    /// storage instead of the address it joins from (`crate::proto::advertise`)
    pub advertise: Vec<crate::proto::advertise::AdvertiseRule>,
    /// `expire_rule` lines (rfdfs's own): files that expire by name (`expire_rule.rs`)
    pub expire_rules: Vec<super::expire_rule::ExpireRule>,
    /// `expire_sweep_interval` (rfdfs's own; seconds, default 300, 0 = no sweeping): how often
    /// the expired files this member sweeps are deleted
    pub expire_sweep_interval: u64,
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
        let advertise = ini
            .get_all("advertise_address")
            .into_iter()
            .filter(|i| !i.value.trim().is_empty())
            .map(|i| {
                crate::proto::advertise::AdvertiseRule::parse(&i.value, server.port)
                    .map_err(|why| ini.error(Some(i), "advertise_address", why))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let expire_rules = ini
            .get_all("expire_rule")
            .into_iter()
            .filter(|i| !i.value.trim().is_empty())
            .map(|i| {
                super::expire_rule::ExpireRule::parse(&i.value)
                    .map_err(|why| ini.error(Some(i), "expire_rule", why))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if advertise.len() > 16 {
            return Err(ini.error(
                None,
                "advertise_address",
                format!("{} lines, at most 16", advertise.len()),
            ));
        }
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
        // absent: the storage asks the trackers (GET_GROUP_NAME) before it starts; present, it
        // must be a valid name, empty included
        let group_item = ini.get("group_name");
        let group_name = group_item.map(|i| i.value.clone()).unwrap_or_default();
        if group_item.is_some() && !crate::proto::valid_group_name(&group_name) {
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
        let (access_log_micros, precision_warning) = access_log_micros(ini);
        let mut cfg = StorageConfig {
            server,
            advertise,
            expire_rules,
            expire_sweep_interval: ini.int("expire_sweep_interval").unwrap_or(300).max(0) as u64,
            key_warnings: Vec::new(),
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
            access_log: access_log_key(ini, "enabled")
                .is_some_and(|i| super::ini::parse_bool(&i.value)),
            access_log_micros,
            access_log_rotation: LogConfig::load_section(ini, "access-log")?,
            sync_start_time: ini.time_of_day_or("sync_start_time", (0, 0))?,
            sync_end_time: ini.time_of_day_or("sync_end_time", (23, 59))?,
            write_mark_file_freq: ini.positive_or("write_mark_file_freq", 500) as u64,
            file_sync_skip_invalid_record: ini.bool_or("file_sync_skip_invalid_record", false),
            compress_binlog: ini.bool_or("compress_binlog", false),
            compress_binlog_time: ini.time_of_day_or("compress_binlog_time", (1, 30))?,
            scrub_bytes_per_second: ini.bytes_lenient_or("scrub_bytes_per_second", 0).max(0) as u64,
            scrub_quarantine_size: ini
                .bytes_lenient_or("scrub_quarantine_size", 1 << 30)
                .max(0) as u64,
            write_ack_copies: ini.positive_required_or("write_ack_copies", 1)? as u64,
            write_ack_timeout: ini.positive_required_or("write_ack_timeout", 5)? as u64,
            reconcile_interval: ini.int("reconcile_interval").unwrap_or(0).max(0) as u64,
            http: {
                let mut http = super::http::HttpConfig::from_ini(ini)?;
                http.apply_module_conf(Path::new(&ini.path).parent().unwrap_or(Path::new(".")))?;
                http
            },
            s3: super::s3::S3Config::from_ini(ini)?,
            server_id: match ini.get("server_id") {
                Some(i) if !i.value.is_empty() && !super::storage_ids::is_valid_id(&i.value) => {
                    return Err(ini.error(
                        Some(i),
                        "server_id",
                        format!("{} is invalid: a number from 1 to 16777215", i.value),
                    ))
                }
                i => i.map(|i| i.value.clone()),
            },
        };
        cfg.key_warnings = super::keys::key_warnings(ini, super::keys::ConfKind::Storage);
        cfg.key_warnings.extend(cfg.http.warnings.iter().cloned());
        cfg.key_warnings.extend(precision_warning);
        Ok(cfg)
    }
}

impl StorageConfig {
    /// The address outgoing connections bind to: `bind_addr` when `client_bind` is on.
    pub fn client_bind_ip(&self) -> Option<std::net::IpAddr> {
        if self.client_bind && !self.server.bind_addr.is_empty() {
            self.server.source_ip()
        } else {
            None
        }
    }
}

/// A key of the `[access-log]` section (never a global one, as upstream reads them).
fn access_log_key<'a>(ini: &'a IniFile, key: &str) -> Option<&'a super::ini::Item> {
    ini.section("access-log")?
        .iter()
        .rev()
        .find(|i| i.key == key)
}

/// `time_precision`: `us` / `microsecond` give microseconds, `ms` / `millisecond` (or none)
/// milliseconds; another value gives milliseconds and the warning to log, as upstream.
fn access_log_micros(ini: &IniFile) -> (bool, Option<String>) {
    match access_log_key(ini, "time_precision") {
        Some(i) if matches!(i.value.as_str(), "us" | "microsecond") => (true, None),
        None => (false, None),
        Some(i) if matches!(i.value.as_str(), "ms" | "millisecond") => (false, None),
        Some(i) => (
            false,
            Some(format!(
                "conf file \"{}\", line {}: [access-log] time_precision \"{}\" is invalid, \
                 ms is used",
                i.file, i.line, i.value
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IniFile;

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
}
