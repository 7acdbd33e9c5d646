//! The settings every daemon has: listener, threads, base path, logs (`[error-log]` and the
//! `log_file_*` keys), and the checks both daemons share.

use super::address::{split_bind_addr, AddressFamily};
use super::ini::{self, ConfigError, IniFile};
use std::path::PathBuf;

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
    /// `log_to_stderr` (rfdfs's own; default false): log lines go to standard error instead
    /// of `base_path/logs/`, for a container runtime that collects them (with `-N`)
    pub log_to_stderr: bool,
    /// `dns_refresh_interval` (rfdfs's own): how long a host name's address is kept
    pub dns_refresh_interval: std::time::Duration,
    /// `metrics.server_port` (rfdfs's own; 0 = off): Prometheus `/metrics` and `/health`
    pub metrics_port: u16,
    /// which addresses an empty `bind_addr` listens on
    pub address_family: AddressFamily,
    /// keep outgoing connections to other servers open between requests
    pub use_connection_pool: bool,
    pub connection_pool_max_idle_time: u64,
}

impl ServerConfig {
    pub(super) fn load(
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
            log_to_stderr: ini.bool_or("log_to_stderr", false),
            dns_refresh_interval: super::address::dns_refresh_interval(ini)?,
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
