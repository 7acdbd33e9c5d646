//! `storage_stat.dat` (docs/protocol/sync-and-storage-layout.md 1.12): the storage's counters
//! and the round-robin subdirectory cursor, saved every `sync_stat_file_interval` and read back
//! at start.

use crate::state_file::read_kv;
use crate::store::DistCursor;
use fdfs_common::config::ini::atoi;
use fdfs_common::proto::cluster::StatBlock;
use std::path::Path;

pub const STAT_FILE: &str = "storage_stat.dat";

/// `storage_stat.dat` keys, in file order, mapped to the stat block (None: cursor keys).
const STAT_FILE_KEYS: [(&str, Option<usize>); 40] = [
    ("total_upload_count", Some(0)),
    ("success_upload_count", Some(1)),
    ("total_append_count", Some(2)),
    ("success_append_count", Some(3)),
    ("total_modify_count", Some(4)),
    ("success_modify_count", Some(5)),
    ("total_truncate_count", Some(6)),
    ("success_truncate_count", Some(7)),
    ("total_download_count", Some(12)),
    ("success_download_count", Some(13)),
    ("last_source_update", Some(38)),
    ("last_sync_update", Some(39)),
    ("total_set_meta_count", Some(8)),
    ("success_set_meta_count", Some(9)),
    ("total_delete_count", Some(10)),
    ("success_delete_count", Some(11)),
    ("total_get_meta_count", Some(14)),
    ("success_get_meta_count", Some(15)),
    ("total_create_link_count", Some(16)),
    ("success_create_link_count", Some(17)),
    ("total_delete_link_count", Some(18)),
    ("success_delete_link_count", Some(19)),
    ("total_upload_bytes", Some(20)),
    ("success_upload_bytes", Some(21)),
    ("total_append_bytes", Some(22)),
    ("success_append_bytes", Some(23)),
    ("total_modify_bytes", Some(24)),
    ("success_modify_bytes", Some(25)),
    ("total_download_bytes", Some(26)),
    ("success_download_bytes", Some(27)),
    ("total_sync_in_bytes", Some(28)),
    ("success_sync_in_bytes", Some(29)),
    ("total_sync_out_bytes", Some(30)),
    ("success_sync_out_bytes", Some(31)),
    ("total_file_open_count", Some(32)),
    ("success_file_open_count", Some(33)),
    ("total_file_read_count", Some(34)),
    ("success_file_read_count", Some(35)),
    ("total_file_write_count", Some(36)),
    ("success_file_write_count", Some(37)),
];

pub fn stat_file_text(s: &StatBlock, c: DistCursor) -> String {
    let mut out = String::new();
    for (k, idx) in STAT_FILE_KEYS {
        out += &format!("{k}={}\n", idx.map(|i| s.counters[i]).unwrap_or(0));
    }
    out += &format!(
        "dist_path_index_high={}\ndist_path_index_low={}\ndist_write_file_count={}\n",
        c.high, c.low, c.count
    );
    out
}

pub fn load_stat_file(path: &Path) -> (StatBlock, DistCursor) {
    let mut s = StatBlock::default();
    let mut c = DistCursor::default();
    if let Ok(kv) = read_kv(path) {
        for (k, idx) in STAT_FILE_KEYS {
            if let (Some(i), Some(v)) = (idx, kv.get(k)) {
                s.counters[i] = atoi(v);
            }
        }
        let n = |k: &str| kv.get(k).map(|v| atoi(v).max(0) as u32).unwrap_or(0);
        c = DistCursor {
            high: n("dist_path_index_high"),
            low: n("dist_path_index_low"),
            count: n("dist_write_file_count"),
        };
    }
    (s, c)
}
