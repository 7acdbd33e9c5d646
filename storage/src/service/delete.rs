//! DELETE_FILE (docs/protocol/client-protocol.md 3.9) and what every delete does, a peer's
//! included: the file (or its slot) removed, its metadata and slave links with it, the binlog
//! line written.

use crate::binlog::op;
use crate::copies::{Kept, Undo};
use crate::storage::{io_errno, meta_path, Outcome, Storage};
use fdfs_common::codec::Message;
use fdfs_common::file_id::{is_slave_name, LogicalName, RemoteName};
use fdfs_common::proto::client::GroupFileReq;
use fdfs_common::proto::cluster::stat;
use fdfs_common::proto::errno;
use fdfs_common::refusal::Refusal;
use fdfs_common::trunk::TrunkSlot;
use std::path::Path;

impl Storage {
    pub(super) fn delete_file(&self, body: &[u8]) -> Outcome {
        let req = GroupFileReq::from_bytes(body)?;
        self.check_group(&req.group)?;
        self.delete_named(&req.filename)?;
        Ok(Vec::new())
    }

    /// A client's delete of `name` (DELETE_FILE, the S3 endpoint's DELETE): recorded, and
    /// answered once `write_ack_copies` members have it.
    pub(crate) fn delete_named(&self, name: &str) -> Result<(), Refusal> {
        let fail = |c| {
            self.count(stat::TOTAL_DELETE_COUNT, false, None);
            Refusal::done(c)
        };
        self.parse_name(name).map_err(|f| fail(f.status))?;
        self.enough_members()
            .and_then(|()| self.recordable())
            .map_err(fail)?;
        let kept = self
            .delete_stored(name, fdfs_common::now(), self.acks_copies())
            .map_err(fail)?;
        self.await_copies(Undo::Deleted(kept)).inspect_err(|_| {
            self.count(stat::TOTAL_DELETE_COUNT, false, None);
        })?;
        self.count(stat::TOTAL_DELETE_COUNT, true, None);
        Ok(())
    }

    /// Delete `name` here and record it (its metadata file, and a slave link's target, go
    /// along). With `keep`, what was deleted is kept aside, to be given back should the delete
    /// be taken back (`write_ack_copies`).
    pub(crate) fn delete_stored(&self, name: &str, now: i64, keep: bool) -> Result<Vec<Kept>, u8> {
        let ln = LogicalName::parse(name, self.store.paths.len()).map_err(|_| errno::EINVAL)?;
        let mut kept = Vec::new();
        let trunk = RemoteName::decode(name)
            .ok()
            .and_then(|rn| TrunkSlot::of_name(&rn).map(|slot| (slot, slot.block(&rn))));
        if let Some((slot, block)) = trunk {
            let _g = self.lock_for(name);
            let stored = self
                .store
                .open_stored(&ln, name)
                .map_err(|e| io_errno(&e))?;
            let trunk_path = self.store.trunk_file_path(&ln, &slot);
            let saved = if keep {
                let at = u64::from(slot.offset);
                Some(
                    crate::store::read_at(&stored.file, at, slot.alloc_size as usize)
                        .map_err(|e| io_errno(&e))?,
                )
            } else {
                None
            };
            let _intent = self
                .intent(now, op::DELETE, name, "")
                .map_err(|f| f.status)?;
            self.zero_slot(&ln, &stored).map_err(|e| io_errno(&e))?;
            match saved {
                // the slot stays taken until the delete is confirmed
                Some(bytes) => kept.push(Kept::Slot {
                    name: name.to_string(),
                    trunk_path,
                    offset: u64::from(slot.offset),
                    bytes,
                    block,
                }),
                // the source storage gives the slot back; replicas only zero theirs
                None => self.free_slot(&block),
            }
            return Ok(kept);
        }
        let path = self.store.local_path(&ln);
        // a repair of the file (the scrub's) ends before it is deleted
        let _g = self.lock_for(name);
        let md = std::fs::symlink_metadata(&path).map_err(|e| io_errno(&e))?;
        let mut remove = |name: &str, path: &Path| -> Result<(), u8> {
            // lines first: the sync sender skips a delete whose file still exists locally, so
            // a crash in between leaves every member with the file rather than only some
            let _intent = self
                .intent(now, op::DELETE, name, "")
                .map_err(|f| f.status)?;
            if keep {
                let aside = self.keep_aside(ln.store_path_index, path)?;
                kept.push(Kept::File {
                    name: name.to_string(),
                    path: path.to_path_buf(),
                    aside,
                });
                Ok(())
            } else {
                std::fs::remove_file(path).map_err(|e| io_errno(&e))
            }
        };
        // a slave stored as a link takes its target along; any other link (a dedup link from
        // a C cluster with check_file_duplicate, whose target other names share) goes alone
        if md.file_type().is_symlink() && is_slave_name(name) {
            if let Ok(target) = std::fs::read_link(&path) {
                if let Some(target_name) = self.logical_name_of(&target) {
                    if target.exists() {
                        let _ = remove(&target_name, &target);
                    }
                }
            }
        }
        remove(name, &path)?;
        let mpath = meta_path(&path);
        if mpath.exists() {
            let _ = remove(&format!("{name}-m"), &mpath);
        }
        Ok(kept)
    }

    /// Logical name of an absolute path inside one of our store paths.
    pub(crate) fn logical_name_of(&self, p: &Path) -> Option<String> {
        for (i, sp) in self.store.paths.iter().enumerate() {
            if let Ok(rel) = p.strip_prefix(sp.join("data")) {
                return Some(format!("M{i:02X}/{}", rel.to_string_lossy()));
            }
        }
        None
    }
}
