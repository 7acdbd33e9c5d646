//! A storage's part in trunk files (sync-and-storage-layout.md 6.5, 6.6): the trunk binlog in
//! `data/trunk/binlog` that the tracker elects the trunk server by, and the marks a new trunk
//! server starts without. The free-space index itself is in `trunk_alloc`.

use crate::storage::{Fail, Storage};
use fdfs_common::codec::{DecodeError, Message};
use fdfs_common::proto::errno;
use fdfs_common::proto::trunk::TrunkBinlogSize;
use std::path::PathBuf;

type Outcome = Result<Vec<u8>, Fail>;

impl Storage {
    /// `data/trunk`: the trunk binlog and the trunk server's per-member marks.
    pub fn trunk_dir(&self) -> PathBuf {
        self.cfg.server.base_path.join("data").join("trunk")
    }

    /// Whether the leader named this storage the group's trunk server.
    pub fn is_trunk_server(&self) -> bool {
        let me = self.my_id.read();
        self.trunk_server
            .read()
            .as_ref()
            .is_some_and(|b| !me.is_empty() && b.id == *me)
    }

    /// TRUNK_GET_BINLOG_SIZE (31): how much trunk history this storage holds; the tracker
    /// makes the member with the most the trunk server.
    pub(crate) fn trunk_get_binlog_size(&self, body: &[u8]) -> Outcome {
        if !body.is_empty() {
            return Err(DecodeError::Trailing { len: body.len() }.into());
        }
        let size = std::fs::metadata(self.trunk_dir().join("binlog"))
            .map(|m| m.len() as i64)
            .unwrap_or(0);
        Ok(TrunkBinlogSize { size }.to_bytes())
    }

    /// TRUNK_DELETE_BINLOG_MARKS (32): sent to a storage about to become trunk server in
    /// another's place. Its snapshot and marks describe an index it did not keep: they go, and
    /// it starts from its copy of the trunk binlog. The trunk server itself refuses.
    pub(crate) fn trunk_delete_binlog_marks(&self, body: &[u8]) -> Outcome {
        if !body.is_empty() {
            return Err(DecodeError::Trailing { len: body.len() }.into());
        }
        if self.is_trunk_server() {
            return Err(Fail::done(errno::EINVAL));
        }
        let data = self.cfg.server.base_path.join("data");
        let _ = std::fs::remove_file(data.join("storage_trunk.dat"));
        if let Ok(dir) = std::fs::read_dir(self.trunk_dir()) {
            for e in dir.flatten() {
                if e.path().extension().is_some_and(|x| x == "mark") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        log::info!("trunk binlog marks deleted: this storage becomes the trunk server");
        Ok(Vec::new())
    }
}
