//! SET_METADATA and GET_METADATA (docs/protocol/client-protocol.md 3.10, 3.11): the `-m` file
//! beside a stored file, overwritten or merged.

use crate::binlog::op;
use crate::copies::Undo;
use crate::storage::{io_errno, meta_path, Outcome, Storage};
use fdfs_common::codec::Message;
use fdfs_common::metadata;
use fdfs_common::proto::client::GroupFileReq;
use fdfs_common::proto::cluster::stat;
use fdfs_common::proto::errno;
use fdfs_common::proto::storage::SetMetadataReq;
use fdfs_common::refusal::Refusal;
use std::io::{self};

impl Storage {
    pub(super) fn set_metadata(&self, body: &[u8]) -> Outcome {
        let req = SetMetadataReq::from_bytes(body)?;
        let fail = |c| {
            self.count(stat::TOTAL_SET_META_COUNT, false, None);
            Refusal::done(c)
        };
        if req.op != b'O' && req.op != b'M' {
            return Err(fail(errno::EINVAL));
        }
        self.check_group(&req.group)?;
        let ln = self.parse_name(&req.filename).map_err(|f| fail(f.status))?;
        let path = self.store.local_path(&ln);
        std::fs::symlink_metadata(&path).map_err(|e| fail(io_errno(&e)))?;
        self.enough_members()
            .and_then(|()| self.recordable())
            .map_err(fail)?;
        let undo = self
            .write_metadata(&req.filename, &path, &req.metadata, req.op == b'M')
            .map_err(fail)?;
        self.await_copies(undo).inspect_err(|_| {
            self.count(stat::TOTAL_SET_META_COUNT, false, None);
        })?;
        self.count(stat::TOTAL_SET_META_COUNT, true, None);
        Ok(Vec::new())
    }

    /// Write the metadata of `filename` (stored at `path`): `packed` replaces what it had, or
    /// is merged into it (`merge`); empty, it removes it (when replacing). The binlog line is
    /// written first; what to give back should the change be taken back is returned.
    pub(crate) fn write_metadata(
        &self,
        filename: &str,
        path: &std::path::Path,
        packed: &[u8],
        merge: bool,
    ) -> Result<Undo, u8> {
        let mpath = meta_path(path);
        let mname = format!("{filename}-m");
        let now = fdfs_common::now();
        let g = self.lock_for(&mname);
        let old = match std::fs::read(&mpath) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_errno(&e)),
        };
        if packed.is_empty() {
            if !merge && old.is_some() {
                let _intent = self
                    .intent(now, op::DELETE, &mname, "")
                    .map_err(|f| f.status)?;
                std::fs::remove_file(&mpath).map_err(|e| io_errno(&e))?;
            }
        } else {
            let new_items = metadata::unpack(packed);
            let items = match &old {
                Some(old) if merge => metadata::merge(metadata::unpack(old), new_items),
                _ => metadata::sorted(new_items),
            };
            let letter = if old.is_some() {
                op::UPDATE
            } else {
                op::CREATE
            };
            let _intent = self.intent(now, letter, &mname, "").map_err(|f| f.status)?;
            self.replace_file(&mpath, &metadata::pack(&items))
                .map_err(|e| io_errno(&e))?;
        }
        drop(g);
        Ok(Undo::Metadata {
            name: mname,
            path: mpath,
            old,
        })
    }

    pub(super) fn get_metadata(&self, body: &[u8]) -> Outcome {
        let req = GroupFileReq::from_bytes(body)?;
        self.check_group(&req.group)?;
        let fail = |c| {
            self.count(stat::TOTAL_GET_META_COUNT, false, None);
            Refusal::done(c)
        };
        let ln = self.parse_name(&req.filename).map_err(|f| fail(f.status))?;
        let path = self.store.local_path(&ln);
        std::fs::symlink_metadata(&path).map_err(|e| fail(io_errno(&e)))?;
        let m = std::fs::read(meta_path(&path)).map_err(|e| fail(io_errno(&e)))?;
        self.count(stat::TOTAL_GET_META_COUNT, true, None);
        Ok(m)
    }
}
