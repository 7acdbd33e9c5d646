//! The STORAGE_PARAMETER_REQ answer (docs/protocol/cluster-protocol.md 2.11): the tracker.conf
//! settings a storage follows, sent as `key=value` lines in upstream's order. The tracker builds
//! a [`StorageParameters`] from its config and writes it with [`StorageParameters::to_text`];
//! the storage reads it back with [`StorageParameters::parse`], keeping the default of any key
//! absent or unreadable (an older tracker sends fewer keys).

use super::client::IpWidth;
use crate::config::ini::parse_time_of_day;
use crate::config::reserved_space::ReservedSpace;

/// What the tracker tells a storage at startup.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageParameters {
    pub use_storage_id: bool,
    /// file names carry the server id rather than the IP (`id_type_in_filename = id`)
    pub id_in_filename: bool,
    pub trust_storage_server_id: bool,
    /// `response_ip_addr_size`: 16 (IPv4 answers) or 46
    pub width: IpWidth,
    pub storage_ip_changed_auto_adjust: bool,
    pub storage_sync_file_max_delay: i64,
    /// `store_path`: 0 round robin, 2 most free space
    pub store_path_mode: u8,
    /// `reserved_storage_space`; `None` when the text does not parse
    pub reserved: Option<ReservedSpace>,
    /// small uploads go into trunk files
    pub use_trunk_file: bool,
    pub slot_min_size: u32,
    pub slot_max_size: u32,
    pub trunk_alloc_alignment_size: u32,
    /// size of a trunk file (upstream's default 64 MiB)
    pub trunk_file_size: u64,
    pub trunk: TrunkTuning,
    /// a slave's content goes under a generated name, the slave name is a symlink to it
    pub store_slave_file_use_link: bool,
}

/// The trunk server's housekeeping, as tracker.conf sets it (docs/protocol/config-cli-http.md 2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrunkTuning {
    /// create trunk files ahead of need, at `create_file_time_base` and every
    /// `create_file_interval` seconds, until `create_file_space_threshold` bytes are free
    pub create_file_advance: bool,
    pub create_file_time_base: (u8, u8),
    pub create_file_interval: u64,
    pub create_file_space_threshold: u64,
    /// on loading the index, drop free blocks whose slot holds a file
    pub init_check_occupying: bool,
    /// on loading the index, ignore `storage_trunk.dat` and replay the whole binlog
    pub init_reload_from_binlog: bool,
    /// join touching free blocks when the snapshot is written
    pub free_space_merge: bool,
    /// passed on as upstream does; rfdfs's trunk server does not act on it
    pub delete_unused_trunk_files: bool,
    /// compact the binlog at a snapshot when the last compaction is older than this (0 never)
    pub compress_binlog_min_interval: i64,
    /// compact the binlog at `compress_binlog_time_base` and every this many seconds (0 never)
    pub compress_binlog_interval: u64,
    pub compress_binlog_time_base: (u8, u8),
    pub binlog_max_backups: u32,
}

impl Default for StorageParameters {
    fn default() -> Self {
        StorageParameters {
            use_storage_id: false,
            id_in_filename: false,
            trust_storage_server_id: true,
            width: IpWidth::V6,
            storage_ip_changed_auto_adjust: true,
            storage_sync_file_max_delay: 86400,
            store_path_mode: 0,
            reserved: None,
            use_trunk_file: false,
            slot_min_size: 256,
            slot_max_size: 8 << 20,
            trunk_alloc_alignment_size: 0,
            trunk_file_size: 64 << 20,
            trunk: TrunkTuning {
                create_file_time_base: (2, 0),
                create_file_interval: 86400,
                compress_binlog_time_base: (3, 0),
                ..TrunkTuning::default()
            },
            store_slave_file_use_link: false,
        }
    }
}

fn flag(b: bool) -> u8 {
    u8::from(b)
}

fn hm(t: (u8, u8)) -> String {
    format!("{:02}:{:02}", t.0, t.1)
}

impl StorageParameters {
    /// The answer's bytes, key for key as upstream's tracker writes them.
    pub fn to_text(&self) -> String {
        let t = &self.trunk;
        let reserved = self
            .reserved
            .map(ReservedSpace::to_text)
            .unwrap_or_default();
        let lines: [(&str, String); 26] = [
            ("use_storage_id", flag(self.use_storage_id).to_string()),
            (
                "id_type_in_filename",
                if self.id_in_filename { "id" } else { "ip" }.to_string(),
            ),
            (
                "trust_storage_server_id",
                flag(self.trust_storage_server_id).to_string(),
            ),
            ("response_ip_addr_size", self.width.size().to_string()),
            (
                "storage_ip_changed_auto_adjust",
                flag(self.storage_ip_changed_auto_adjust).to_string(),
            ),
            (
                "storage_sync_file_max_delay",
                self.storage_sync_file_max_delay.to_string(),
            ),
            ("store_path", self.store_path_mode.to_string()),
            ("reserved_storage_space", reserved),
            ("use_trunk_file", flag(self.use_trunk_file).to_string()),
            ("slot_min_size", self.slot_min_size.to_string()),
            ("slot_max_size", self.slot_max_size.to_string()),
            (
                "trunk_alloc_alignment_size",
                self.trunk_alloc_alignment_size.to_string(),
            ),
            ("trunk_file_size", self.trunk_file_size.to_string()),
            (
                "trunk_create_file_advance",
                flag(t.create_file_advance).to_string(),
            ),
            ("trunk_create_file_time_base", hm(t.create_file_time_base)),
            (
                "trunk_create_file_interval",
                t.create_file_interval.to_string(),
            ),
            (
                "trunk_create_file_space_threshold",
                t.create_file_space_threshold.to_string(),
            ),
            (
                "trunk_init_check_occupying",
                flag(t.init_check_occupying).to_string(),
            ),
            (
                "trunk_init_reload_from_binlog",
                flag(t.init_reload_from_binlog).to_string(),
            ),
            (
                "trunk_free_space_merge",
                flag(t.free_space_merge).to_string(),
            ),
            (
                "delete_unused_trunk_files",
                flag(t.delete_unused_trunk_files).to_string(),
            ),
            (
                "trunk_compress_binlog_min_interval",
                t.compress_binlog_min_interval.to_string(),
            ),
            (
                "trunk_compress_binlog_interval",
                t.compress_binlog_interval.to_string(),
            ),
            (
                "trunk_compress_binlog_time_base",
                hm(t.compress_binlog_time_base),
            ),
            ("trunk_binlog_max_backups", t.binlog_max_backups.to_string()),
            (
                "store_slave_file_use_link",
                flag(self.store_slave_file_use_link).to_string(),
            ),
        ];
        lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }

    /// The answer as a storage reads it: unknown keys ignored, a key that does not parse keeps
    /// its default.
    pub fn parse(text: &str) -> StorageParameters {
        let mut p = StorageParameters::default();
        let d = StorageParameters::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim();
            let on = v == "1";
            let t = &mut p.trunk;
            match k.trim() {
                "use_storage_id" => p.use_storage_id = on,
                "id_type_in_filename" => p.id_in_filename = v == "id",
                "trust_storage_server_id" => p.trust_storage_server_id = on,
                "response_ip_addr_size" => {
                    p.width = if v == "16" { IpWidth::V4 } else { IpWidth::V6 }
                }
                "storage_ip_changed_auto_adjust" => p.storage_ip_changed_auto_adjust = on,
                "storage_sync_file_max_delay" => {
                    p.storage_sync_file_max_delay =
                        v.parse().unwrap_or(d.storage_sync_file_max_delay)
                }
                "store_path" => p.store_path_mode = v.parse().unwrap_or(0),
                "reserved_storage_space" => p.reserved = ReservedSpace::parse(v),
                "use_trunk_file" => p.use_trunk_file = on,
                "slot_min_size" => p.slot_min_size = v.parse().unwrap_or(d.slot_min_size),
                "slot_max_size" => p.slot_max_size = v.parse().unwrap_or(d.slot_max_size),
                "trunk_alloc_alignment_size" => {
                    p.trunk_alloc_alignment_size = v.parse().unwrap_or(0)
                }
                "trunk_file_size" => {
                    if let Ok(n @ 1..) = v.parse::<u64>() {
                        p.trunk_file_size = n;
                    }
                }
                "trunk_create_file_advance" => t.create_file_advance = on,
                "trunk_create_file_time_base" => {
                    if let Some(hm) = parse_time_of_day(v) {
                        t.create_file_time_base = hm;
                    }
                }
                "trunk_create_file_interval" => {
                    t.create_file_interval = v.parse().unwrap_or(d.trunk.create_file_interval)
                }
                "trunk_create_file_space_threshold" => {
                    t.create_file_space_threshold = v.parse().unwrap_or(0)
                }
                "trunk_init_check_occupying" => t.init_check_occupying = on,
                "trunk_init_reload_from_binlog" => t.init_reload_from_binlog = on,
                "trunk_free_space_merge" => t.free_space_merge = on,
                "delete_unused_trunk_files" => t.delete_unused_trunk_files = on,
                "trunk_compress_binlog_min_interval" => {
                    t.compress_binlog_min_interval = v.parse().unwrap_or(0)
                }
                "trunk_compress_binlog_interval" => {
                    t.compress_binlog_interval = v.parse().unwrap_or(0)
                }
                "trunk_compress_binlog_time_base" => {
                    if let Some(hm) = parse_time_of_day(v) {
                        t.compress_binlog_time_base = hm;
                    }
                }
                "trunk_binlog_max_backups" => t.binlog_max_backups = v.parse().unwrap_or(0),
                "store_slave_file_use_link" => p.store_slave_file_use_link = on,
                _ => {}
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream 6.16.1's answer to a tracker with trunk files configured, captured (740 bytes).
    const UPSTREAM: &str = "use_storage_id=0\nid_type_in_filename=ip\ntrust_storage_server_id=1\n\
        response_ip_addr_size=16\nstorage_ip_changed_auto_adjust=1\nstorage_sync_file_max_delay=86400\n\
        store_path=0\nreserved_storage_space=10.00%\nuse_trunk_file=0\nslot_min_size=256\n\
        slot_max_size=1048576\ntrunk_alloc_alignment_size=256\ntrunk_file_size=67108864\n\
        trunk_create_file_advance=0\ntrunk_create_file_time_base=02:00\n\
        trunk_create_file_interval=86400\ntrunk_create_file_space_threshold=21474836480\n\
        trunk_init_check_occupying=0\ntrunk_init_reload_from_binlog=0\ntrunk_free_space_merge=1\n\
        delete_unused_trunk_files=0\ntrunk_compress_binlog_min_interval=86400\n\
        trunk_compress_binlog_interval=86400\ntrunk_compress_binlog_time_base=03:00\n\
        trunk_binlog_max_backups=7\nstore_slave_file_use_link=0\n";

    #[test]
    fn upstreams_answer_round_trips() {
        let p = StorageParameters::parse(UPSTREAM);
        assert_eq!(p.width, IpWidth::V4);
        assert_eq!(p.reserved, Some(ReservedSpace::Ratio(0.1)));
        assert_eq!(
            (p.slot_max_size, p.trunk_alloc_alignment_size),
            (1 << 20, 256)
        );
        assert_eq!(p.trunk.create_file_space_threshold, 20 << 30);
        assert!(p.trunk.free_space_merge && !p.use_trunk_file);
        assert_eq!(p.trunk.binlog_max_backups, 7);
        assert_eq!(UPSTREAM.len(), 740);
        assert_eq!(p.to_text(), UPSTREAM);
    }

    #[test]
    fn absent_or_unreadable_keys_keep_their_defaults() {
        let p = StorageParameters::parse("slot_min_size=abc\nnonsense\nuse_trunk_file=1\n");
        assert_eq!(p.slot_min_size, 256);
        assert!(p.use_trunk_file);
        assert_eq!(p.trunk.create_file_time_base, (2, 0));
        assert_eq!(StorageParameters::parse(""), StorageParameters::default());
    }
}
