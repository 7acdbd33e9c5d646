//! tracker.conf.

use super::ini::{self, ConfigError, IniFile};
use super::reserved_space::ReservedSpace;
use super::server::{disabled_check, optional_port, ServerConfig};
use crate::proto::parameters::TrunkTuning;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct TrackerConfig {
    pub server: ServerConfig,
    /// what to tell the operator about keys ignored or unknown, once the log is open
    pub key_warnings: Vec<String>,
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
    pub storage_ids: super::storage_ids::StorageIds,
    pub http: super::http::HttpConfig,
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
    /// passed on to storages, which round slot sizes up to it
    pub trunk_alloc_alignment_size: u32,
    /// the trunk server's housekeeping keys, passed on to storages in the parameter answer
    pub trunk: TrunkTuning,
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
            super::storage_ids::StorageIds::load_named_in(ini)?
        } else {
            Default::default()
        };
        // upstream: "auto" (or absent) gives 46-byte address fields only when the storage ids
        // list an IPv6 address; any other value, even an empty one, gives them always
        let response_ip_v6 = match ini.get("response_ip_addr_size") {
            Some(i) if !i.value.eq_ignore_ascii_case("auto") => true,
            _ => {
                use_storage_id
                    && storage_ids
                        .entries
                        .iter()
                        .any(|e| e.ips.iter().any(|ip| ip.contains(':')))
            }
        };
        let time = |k: &str, d: (u8, u8)| ini.time_of_day_or(k, d);
        let non_negative = |k: &str| ini.int(k).unwrap_or(0).max(0);
        let trunk_alloc_alignment_size = ini
            .int("trunk_alloc_alignment_size")
            .unwrap_or(0)
            .clamp(0, u32::MAX as i64) as u32;
        let trunk = TrunkTuning {
            create_file_advance: ini.bool_or("trunk_create_file_advance", false),
            create_file_time_base: time("trunk_create_file_time_base", (2, 0))?,
            create_file_interval: ini.positive_or("trunk_create_file_interval", 86400) as u64,
            create_file_space_threshold: ini
                .bytes_strict_or("trunk_create_file_space_threshold", 0)?
                .max(0) as u64,
            init_check_occupying: ini.bool_or("trunk_init_check_occupying", false),
            init_reload_from_binlog: ini.bool_or("trunk_init_reload_from_binlog", false),
            free_space_merge: ini.bool_or("trunk_free_space_merge", false),
            delete_unused_trunk_files: ini.bool_or("delete_unused_trunk_files", false),
            compress_binlog_min_interval: non_negative("trunk_compress_binlog_min_interval"),
            compress_binlog_interval: non_negative("trunk_compress_binlog_interval") as u64,
            compress_binlog_time_base: time("trunk_compress_binlog_time_base", (3, 0))?,
            binlog_max_backups: non_negative("trunk_binlog_max_backups").min(u32::MAX as i64)
                as u32,
        };
        let mut cfg = TrackerConfig {
            key_warnings: Vec::new(),
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
            http: super::http::HttpConfig::from_ini(ini)?,
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
            response_ip_v6,
            trunk_alloc_alignment_size,
            trunk,
        };
        cfg.key_warnings = super::keys::key_warnings(ini, super::keys::ConfKind::Tracker);
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IniFile;

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
