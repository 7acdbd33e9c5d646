//! client.conf (the `fdfs_*` tools and rfdfs_bench).

use super::address::{tracker_servers, HostPort};
use super::ini::{ConfigError, IniFile};
use super::server::parse_log_level;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub conf_file: PathBuf,
    /// what to tell the operator about keys ignored or unknown (tools that log at its level)
    pub key_warnings: Vec<String>,
    pub tracker_servers: Vec<HostPort>,
    pub connect_timeout: u64,
    pub network_timeout: u64,
    pub log_level: log::LevelFilter,
    pub use_connection_pool: bool,
    pub connection_pool_max_idle_time: u64,
    pub load_fdfs_parameters_from_tracker: bool,
    pub use_storage_id: bool,
    /// `storage_ids_filename` (beside client.conf when relative), loaded with `use_storage_id`
    /// unless the parameters come from the tracker
    pub storage_ids: super::storage_ids::StorageIds,
    /// `connect_first_by = last-connected`: a dual-IP storage is tried first on the address
    /// that answered last time, not on the one the tracker gave
    pub connect_first_by_last: bool,
    pub anti_steal_check_token: bool,
    pub anti_steal_secret_key: String,
    /// `http.tracker_server_port`: where trackers answer HTTP (for URLs the tools build)
    pub http_tracker_server_port: u16,
    /// `dns_refresh_interval` (rfdfs's own): how long a host name's address is kept
    pub dns_refresh_interval: std::time::Duration,
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
        let load_fdfs_parameters_from_tracker =
            ini.bool_or("load_fdfs_parameters_from_tracker", false);
        let use_storage_id = ini.bool_or("use_storage_id", false);
        let storage_ids = if use_storage_id && !load_fdfs_parameters_from_tracker {
            super::storage_ids::StorageIds::load_named_in(ini)?
        } else {
            Default::default()
        };
        let mut cfg = ClientConfig {
            conf_file: PathBuf::from(&ini.path),
            key_warnings: Vec::new(),
            tracker_servers,
            connect_timeout: ini.positive_or("connect_timeout", 10) as u64,
            network_timeout: ini.positive_or("network_timeout", 30) as u64,
            log_level: parse_log_level(&ini.string_or("log_level", "info")),
            use_connection_pool: ini.bool_or("use_connection_pool", false),
            connection_pool_max_idle_time: ini.positive_or("connection_pool_max_idle_time", 3600)
                as u64,
            load_fdfs_parameters_from_tracker,
            use_storage_id,
            storage_ids,
            connect_first_by_last: ini
                .string_or("connect_first_by", "tracker")
                .to_ascii_lowercase()
                .starts_with("last"),
            anti_steal_check_token: check_token,
            anti_steal_secret_key: secret,
            http_tracker_server_port: ini
                .int("http.tracker_server_port")
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(80),
            dns_refresh_interval: super::address::dns_refresh_interval(ini)?,
        };
        cfg.key_warnings = super::keys::key_warnings(ini, super::keys::ConfKind::Client);
        Ok(cfg)
    }
}
