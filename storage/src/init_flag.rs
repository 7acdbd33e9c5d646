//! `.data_init_flag` (docs/protocol/sync-and-storage-layout.md 1.10): the storage's join time,
//! initial-sync state, last address, trunk file id and each store path's mark, and the mark
//! itself (1.11), as upstream writes them.

use crate::state_file::read_kv;
use fdfs_common::config::ini::atoi;
use fdfs_common::file_id::base64_encode;
use std::path::Path;

pub const DATA_INIT_FLAG: &str = ".data_init_flag";

/// `.data_init_flag`: identity and initial-sync state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitFlag {
    pub storage_join_time: i64,
    pub sync_old_done: bool,
    pub sync_src_server: String,
    pub sync_until_timestamp: i64,
    pub last_ip_addr: String,
    pub last_server_port: i64,
    pub current_trunk_file_id: i64,
    pub trunk_last_compress_time: i64,
    pub trunk_binlog_compress_stage: i64,
    pub store_path_marks: Vec<Option<String>>,
}

impl InitFlag {
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "storage_join_time={}\nsync_old_done={}\nsync_src_server={}\nsync_until_timestamp={}\n\
             last_ip_addr={}\nlast_server_port={}\ncurrent_trunk_file_id={}\ntrunk_last_compress_time={}\n\
             trunk_binlog_compress_stage={}\n",
            self.storage_join_time,
            self.sync_old_done as u8,
            self.sync_src_server,
            self.sync_until_timestamp,
            self.last_ip_addr,
            self.last_server_port,
            self.current_trunk_file_id,
            self.trunk_last_compress_time,
            self.trunk_binlog_compress_stage,
        );
        for (i, m) in self.store_path_marks.iter().enumerate() {
            if let Some(m) = m {
                s += &format!("store_path_mark{i}={m}\n");
            }
        }
        s
    }

    pub fn load(path: &Path, path_count: usize) -> Result<Option<InitFlag>, String> {
        if !path.exists() {
            return Ok(None);
        }
        let kv = read_kv(path).map_err(|e| format!("read {} fail: {e}", path.display()))?;
        for k in ["storage_join_time", "sync_old_done", "sync_src_server"] {
            if !kv.contains_key(k) {
                return Err(format!("{} has no item \"{k}\"", path.display()));
            }
        }
        let n = |k: &str| kv.get(k).map(|v| atoi(v)).unwrap_or(0);
        let b = |k: &str| {
            kv.get(k)
                .map(|v| fdfs_common::config::ini::parse_bool(v))
                .unwrap_or(false)
        };
        Ok(Some(InitFlag {
            storage_join_time: n("storage_join_time"),
            sync_old_done: b("sync_old_done"),
            sync_src_server: kv.get("sync_src_server").cloned().unwrap_or_default(),
            sync_until_timestamp: n("sync_until_timestamp"),
            last_ip_addr: kv.get("last_ip_addr").cloned().unwrap_or_default(),
            last_server_port: n("last_server_port"),
            current_trunk_file_id: n("current_trunk_file_id"),
            trunk_last_compress_time: n("trunk_last_compress_time"),
            trunk_binlog_compress_stage: n("trunk_binlog_compress_stage"),
            store_path_marks: (0..path_count)
                .map(|i| kv.get(&format!("store_path_mark{i}")).cloned())
                .collect(),
        }))
    }
}

/// The 75-character mark of a store path: base64 of ip[46], port, index, padding, create time.
// An on-disk image of upstream's C struct (little-endian, with its padding), not a protocol
// body: it is laid out here, where the mark file is written, rather than in the codec.
pub fn make_mark(ip: &str, port: u16, index: u8, create_time: i32) -> String {
    let mut b = [0u8; 56];
    let ipb = ip.as_bytes();
    b[..ipb.len().min(45)].copy_from_slice(&ipb[..ipb.len().min(45)]);
    b[46..48].copy_from_slice(&port.to_le_bytes());
    b[48] = index;
    b[52..56].copy_from_slice(&create_time.to_le_bytes());
    base64_encode(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_matches_upstream() {
        // store_path_mark0 of the fixture: 127.0.0.151, port 23000, path 0, created 1795479174
        let m = make_mark("127.0.0.151", 23000, 0, 1795479174);
        assert_eq!(
            m,
            "MTI3LjAuMC4xNTEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAANhZAAAAAIbWBGs"
        );
    }

    #[test]
    fn init_flag_roundtrip() {
        let text = "storage_join_time=1795479174\nsync_old_done=1\nsync_src_server=\nsync_until_timestamp=0\nlast_ip_addr=127.0.0.151\nlast_server_port=23000\ncurrent_trunk_file_id=0\ntrunk_last_compress_time=0\ntrunk_binlog_compress_stage=0\nstore_path_mark0=abc\n";
        let dir = std::env::temp_dir().join(format!("rfdfs-flag-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(DATA_INIT_FLAG);
        std::fs::write(&p, text).unwrap();
        let f = InitFlag::load(&p, 1).unwrap().unwrap();
        assert_eq!(f.to_text(), text);
        std::fs::remove_dir_all(&dir).ok();
    }
}
