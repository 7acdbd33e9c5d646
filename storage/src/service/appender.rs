//! The commands that change an appender file in place (docs/protocol/client-protocol.md 3.4-3.7):
//! APPEND_FILE, MODIFY_FILE, TRUNCATE_FILE and REGENERATE_APPENDER_FILENAME, each answered only by
//! the member that created the file.

use super::upload::body_adds_up;
use crate::binlog::op;
use crate::copies::{Saved, Undo};
use crate::storage::{io_errno, meta_path, Outcome, Storage};
use fdfs_common::codec::Message;
use fdfs_common::file_id::{FileKind, FilePayload, LogicalName, RemoteName, Source};
use fdfs_common::proto::cluster::stat;
use fdfs_common::proto::storage::{AppendHead, FileIdReply, ModifyHead, TruncateReq};
use fdfs_common::proto::{errno, Header, FILENAME_MAX};
use fdfs_common::refusal::Refusal;
use fdfs_common::server::Conn;
use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;

impl Storage {
    // ---- appender files --------------------------------------------------------------------

    /// Resolve an appender file name: EINVAL if the name is not an appender's, ENOENT if absent.
    fn appender_path(&self, name: &str) -> Result<PathBuf, u8> {
        let ln = LogicalName::parse(name, self.store.paths.len()).map_err(|_| errno::EINVAL)?;
        let rn = RemoteName::decode(name).map_err(|_| errno::EINVAL)?;
        let path = self.store.local_path(&ln);
        let md = std::fs::symlink_metadata(&path).map_err(|e| io_errno(&e))?;
        if rn.kind != FileKind::Appender || !md.is_file() {
            log::error!("file {name} is not an appender file");
            return Err(errno::EINVAL);
        }
        if let Some(owner) = self.other_member_owning(&rn.payload.source) {
            // changed here while its source is away, the copies would fork (two different
            // appends at one offset) and one acknowledged change would be lost when they meet
            log::warn!("appender file {name} belongs to storage {owner}: change it there");
            return Err(errno::EAGAIN);
        }
        Ok(path)
    }

    /// The id of the other group member a file name says is its source, if it is one.
    fn other_member_owning(&self, source: &Source) -> Option<String> {
        let me = self.my_id.read().clone();
        let members = self.members.read();
        members
            .iter()
            .filter(|b| {
                b.id != me
                    && !matches!(
                        b.status,
                        fdfs_common::proto::status::DELETED
                            | fdfs_common::proto::status::IP_CHANGED
                    )
            })
            .find(|b| match source {
                Source::Id(n) => b.id == n.to_string(),
                Source::Ipv4(_) => source.ip_text().is_some_and(|ip| b.ip == ip || b.id == ip),
            })
            .map(|b| b.id.clone())
    }

    fn read_name_after(&self, conn: &mut Conn, len: i64) -> Result<String, Refusal> {
        if !(44..FILENAME_MAX as i64).contains(&len) {
            return Err(Refusal::invalid("filename_len", len.to_string()));
        }
        let mut b = vec![0u8; len as usize];
        conn.read_exact(&mut b).map_err(|_| Refusal::early(0))?;
        let name = String::from_utf8_lossy(&b).into_owned();
        conn.log_name.clone_from(&name);
        Ok(name)
    }

    pub(super) fn append_file(&self, conn: &mut Conn, h: Header) -> Outcome {
        if h.pkg_len <= AppendHead::LEN as i64 {
            return Err(Refusal::invalid("body", format!("{} bytes", h.pkg_len)));
        }
        let mut fixed = [0u8; AppendHead::LEN];
        conn.read_exact(&mut fixed).map_err(|_| Refusal::early(0))?;
        let head = AppendHead::from_bytes(&fixed)?;
        body_adds_up(AppendHead::LEN, head.name_len, head.file_size, h.pkg_len)?;
        let name = self.read_name_after(conn, head.name_len)?;
        let size = head.file_size;
        let fail = |c| {
            self.count(
                stat::TOTAL_APPEND_COUNT,
                false,
                Some((stat::TOTAL_APPEND_BYTES, size)),
            );
            Refusal::early(c)
        };
        let path = self.appender_path(&name).map_err(fail)?;
        self.enough_members()
            .and_then(|()| self.recordable())
            .map_err(fail)?;
        let g = self.lock_for(&name);
        let opened = OpenOptions::new().append(true).open(&path);
        self.count_io(stat::TOTAL_FILE_OPEN_COUNT, opened.is_ok());
        let mut f = opened.map_err(|e| Refusal::early(io_errno(&e)))?;
        let old = f.metadata().map(|m| m.len()).unwrap_or(0);
        if size > 0 {
            // the line first (see commit_new_file); a line whose bytes never arrived is skipped
            // by the sync sender, which finds the file shorter than offset + length
            let _intent = self
                .intent(
                    fdfs_common::now(),
                    op::APPEND,
                    &name,
                    &format!("{old} {size}"),
                )
                .map_err(|f| fail(f.status))?;
            if let Err(why) = self.receive_into_file(conn, &mut f, size as u64) {
                // leave the file as it was before this request
                let _ = f.set_len(old);
                self.count(
                    stat::TOTAL_APPEND_COUNT,
                    false,
                    Some((stat::TOTAL_APPEND_BYTES, size)),
                );
                return Err(why);
            }
        }
        drop(g);
        let undo = Undo::Content {
            name,
            path,
            len: old,
            saved: None,
        };
        self.await_copies(undo).inspect_err(|_| {
            self.count(
                stat::TOTAL_APPEND_COUNT,
                false,
                Some((stat::TOTAL_APPEND_BYTES, size)),
            );
        })?;
        self.count(
            stat::TOTAL_APPEND_COUNT,
            true,
            Some((stat::TOTAL_APPEND_BYTES, size)),
        );
        Ok(Vec::new())
    }

    pub(super) fn modify_file(&self, conn: &mut Conn, h: Header) -> Outcome {
        if h.pkg_len <= ModifyHead::LEN as i64 {
            return Err(Refusal::invalid("body", format!("{} bytes", h.pkg_len)));
        }
        let mut fixed = [0u8; ModifyHead::LEN];
        conn.read_exact(&mut fixed).map_err(|_| Refusal::early(0))?;
        let head = ModifyHead::from_bytes(&fixed)?;
        if head.offset < 0 {
            return Err(Refusal::invalid("offset", head.offset.to_string()));
        }
        body_adds_up(ModifyHead::LEN, head.name_len, head.file_size, h.pkg_len)?;
        let name = self.read_name_after(conn, head.name_len)?;
        let size = head.file_size;
        let failed = |f: Refusal| {
            self.count(
                stat::TOTAL_MODIFY_COUNT,
                false,
                Some((stat::TOTAL_MODIFY_BYTES, size)),
            );
            f
        };
        let fail = |c| failed(Refusal::early(c));
        let path = self.appender_path(&name).map_err(fail)?;
        self.enough_members()
            .and_then(|()| self.recordable())
            .map_err(fail)?;
        let g = self.lock_for(&name);
        let opened = OpenOptions::new().read(true).write(true).open(&path);
        self.count_io(stat::TOTAL_FILE_OPEN_COUNT, opened.is_ok());
        let mut f = opened.map_err(|e| fail(io_errno(&e)))?;
        let cur = f.metadata().map(|m| m.len()).unwrap_or(0);
        if head.offset as u64 > cur {
            return Err(fail(errno::EINVAL));
        }
        // what the change overwrites, should it have to be taken back
        let saved = if self.acks_copies() {
            let at = head.offset as u64;
            let index = self.parse_name(&name)?.store_path_index;
            let old = Saved::of(
                self.store.temp_path(index),
                &f,
                at,
                (cur - at).min(size as u64),
            )
            .map_err(|e| fail(io_errno(&e)))?;
            Some((at, old))
        } else {
            None
        };
        if size > 0 {
            let range = format!("{} {size}", head.offset);
            let _intent = self
                .intent(fdfs_common::now(), op::MODIFY, &name, &range)
                .map_err(|f| fail(f.status))?;
            f.seek(SeekFrom::Start(head.offset as u64))
                .map_err(|e| fail(io_errno(&e)))?;
            if let Err(why) = self.receive_into_file(conn, &mut f, size as u64) {
                // the bytes past the old end are given back; those overwritten in place stay
                if f.metadata().is_ok_and(|m| m.len() > cur) {
                    let _ = f.set_len(cur);
                }
                return Err(failed(why));
            }
        }
        drop(g);
        let undo = Undo::Content {
            name,
            path,
            len: cur,
            saved,
        };
        self.await_copies(undo).map_err(failed)?;
        self.count(
            stat::TOTAL_MODIFY_COUNT,
            true,
            Some((stat::TOTAL_MODIFY_BYTES, size)),
        );
        Ok(Vec::new())
    }

    pub(super) fn truncate_file(&self, body: &[u8]) -> Outcome {
        let req = TruncateReq::from_bytes(body)?;
        if req.new_size < 0 || !(44..FILENAME_MAX).contains(&req.filename.len()) {
            return Err(Refusal::done(errno::EINVAL));
        }
        let fail = |c| {
            self.count(stat::TOTAL_TRUNCATE_COUNT, false, None);
            Refusal::done(c)
        };
        let path = self.appender_path(&req.filename).map_err(fail)?;
        self.enough_members()
            .and_then(|()| self.recordable())
            .map_err(fail)?;
        let g = self.lock_for(&req.filename);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| fail(io_errno(&e)))?;
        let old = f.metadata().map(|m| m.len() as i64).unwrap_or(0);
        // the bytes a shrink cuts off, should it have to be taken back
        let saved = if self.acks_copies() && req.new_size < old {
            let at = req.new_size as u64;
            let index = self.parse_name(&req.filename)?.store_path_index;
            let tail = Saved::of(
                self.store.temp_path(index),
                &f,
                at,
                (old - req.new_size) as u64,
            )
            .map_err(|e| fail(io_errno(&e)))?;
            Some((at, tail))
        } else {
            None
        };
        if old != req.new_size {
            let sizes = format!("{old} {}", req.new_size);
            let _intent = self
                .intent(fdfs_common::now(), op::TRUNCATE, &req.filename, &sizes)
                .map_err(|f| fail(f.status))?;
            f.set_len(req.new_size as u64)
                .and_then(|()| self.sync_file(&f))
                .map_err(|e| fail(io_errno(&e)))?;
        }
        drop(g);
        let undo = Undo::Content {
            name: req.filename.clone(),
            path,
            len: old as u64,
            saved,
        };
        self.await_copies(undo).inspect_err(|_| {
            self.count(stat::TOTAL_TRUNCATE_COUNT, false, None);
        })?;
        self.count(stat::TOTAL_TRUNCATE_COUNT, true, None);
        Ok(Vec::new())
    }

    pub(super) fn regenerate_appender_filename(&self, body: &[u8]) -> Outcome {
        let name = String::from_utf8_lossy(body).into_owned();
        if !(44..FILENAME_MAX).contains(&name.len()) {
            return Err(Refusal::done(errno::EINVAL));
        }
        let path = self.appender_path(&name).map_err(Refusal::done)?;
        self.recordable().map_err(Refusal::done)?;
        let _g = self.lock_for(&name);
        let old = RemoteName::decode(&name)?;
        let (size, crc) =
            crate::store::file_crc(&path, |_| {}).map_err(|e| Refusal::done(io_errno(&e)))?;
        let ln = self.parse_name(&name)?;
        let now = fdfs_common::now();
        let tail = &name[name.len() - 7..];
        for _ in 0..10 {
            let payload = FilePayload {
                source: old.payload.source.clone(),
                timestamp: now as u32,
                size_field: FilePayload::make_size_field(size as i64, false, self.store.random()),
                crc32: crc,
            };
            let new_name = format!("{}{}{tail}", &name[..10], payload.encode_b27());
            let new_path = self
                .store
                .data_dir(ln.store_path_index)
                .join(&new_name[4..]);
            if std::fs::symlink_metadata(&new_path).is_ok() {
                continue;
            }
            // the line first, then one atomic rename: a crash leaves either name, never both
            let _intent = self.intent(now, op::RENAME, &new_name, &name)?;
            std::fs::rename(&path, &new_path).map_err(|e| Refusal::done(io_errno(&e)))?;
            let _ = std::fs::rename(meta_path(&path), meta_path(&new_path));
            if let Err(e) = self.sync_parent(&new_path) {
                // the new name may not survive a power loss: answered as failed, though the
                // rename stands (the old name is gone either way)
                log::error!("fsync the directory of {} fail: {e}", new_path.display());
                return Err(Refusal::done(io_errno(&e)));
            }
            return Ok(FileIdReply {
                group: self.group.clone(),
                filename: new_name,
            }
            .to_bytes());
        }
        Err(Refusal::done(errno::EBUSY))
    }
}
