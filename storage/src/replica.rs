//! The receiving side of replication: one function per command a peer of the group sends
//! (docs/protocol/sync-and-storage-layout.md 4.4). Every answer follows upstream's idempotency
//! table (4.4.1) so that re-sent records after a crash or a retry are harmless, and every applied
//! change is recorded with its lower-case binlog letter and the source's timestamp.

use crate::binlog::op;
use crate::storage::{io_errno, meta_path, Outcome, Storage};
use fdfs_common::codec::{DecodeError, Message};
use fdfs_common::file_id::{FileKind, LogicalName, RemoteName};
use fdfs_common::proto::sync::leading_name_len;
use fdfs_common::proto::sync::{
    ReportServerId, SyncDeleteReq, SyncFileHead, SyncRangeReq, SyncTwoNamesReq,
};
use fdfs_common::proto::{cmd, errno, status, Header};
use fdfs_common::refusal::Refusal;
use fdfs_common::server::Conn;
use fdfs_common::trunk::{SlotHeader, TrunkSlot, SLOT_HEADER_LEN, SLOT_REGULAR};
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// What a sync connection told us about its sender.
#[derive(Debug, Default)]
pub struct SyncSession {
    pub server_id: Option<String>,
}

/// Seconds a tombstone outlives the point every member has synced past.
const TOMBSTONE_MARGIN: i64 = 120;

fn set_mtime(f: &File, ts: i32) {
    let _ = f.set_modified(UNIX_EPOCH + Duration::from_secs(ts.max(0) as u64));
}

impl Storage {
    /// Raise the newest timestamp received from the connection's source (never lowered).
    fn note_synced(&self, session: &SyncSession, ts: i32) {
        if let Some(id) = &session.server_id {
            let mut m = self.synced_from.lock();
            let e = m.entry(id.clone()).or_insert(0);
            if (ts as i64) > *e {
                *e = ts as i64;
            }
            drop(m);
            self.sync_changed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut s = self.stats.lock();
            s.counters[fdfs_common::proto::cluster::stat::LAST_SYNC_UPDATE] = fdfs_common::now();
        }
    }

    /// The mark file of the sync to member `id`: `<id>.mark` with storage ids,
    /// `<ip>_<port>.mark` without, where a member's id is its IP (upstream's names).
    pub fn mark_path(&self, id: &str) -> PathBuf {
        let sync_dir = self.cfg.server.base_path.join("data/sync");
        if self.params.read().use_storage_id {
            sync_dir.join(format!("{id}.mark"))
        } else {
            sync_dir.join(format!("{id}_{}.mark", self.cfg.server.port))
        }
    }

    /// An idle ACTIVE_TEST on a sync connection: its sender is at the end of its binlog, so
    /// everything it wrote before now has reached us.
    pub(crate) fn note_caught_up(&self, session: &SyncSession) {
        if let Some(id) = &session.server_id {
            self.caught_up.lock().insert(id.clone(), fdfs_common::now());
        }
    }

    /// Forget the deletes no peer can still undo. A tombstone stops a peer's create that is
    /// older than the delete (sent late because the peer crashed first); once every member of
    /// the group has sent us something newer than the delete, or shown that it had nothing
    /// left to send, no such create can come. Members that are down hold their tombstones
    /// until they have caught up. Without this the tombstones grow with every delete.
    pub fn prune_tombstones(&self) {
        let members = self.members.read().clone();
        if members.is_empty() {
            return; // the group is not known yet
        }
        let me = self.my_id.read().clone();
        let synced = self.synced_from.lock().clone();
        let caught = self.caught_up.lock().clone();
        let now = fdfs_common::now();
        let mut horizon = now;
        let mut peers = 0;
        for m in members
            .iter()
            .filter(|m| m.id != me && !status::gone(m.status))
        {
            peers += 1;
            let seen = synced.get(&m.id).copied().unwrap_or(0);
            horizon = horizon.min(seen.max(caught.get(&m.id).copied().unwrap_or(0)));
        }
        // alone in the group, no peer can send a late create: nothing to remember
        self.binlog.keep_tombstones(peers > 0);
        if peers == 0 {
            self.binlog.forget_deletes_before(now + 1);
            return;
        }
        // reconcile passes a delete on to a member that still holds the file: a delete is
        // kept until a pass that compared with every member began after it (reconcile.rs)
        if self.cfg.reconcile_interval > 0 {
            let pass = self
                .reconcile
                .complete_pass_start
                .load(std::sync::atomic::Ordering::Relaxed);
            horizon = horizon.min(pass);
        }
        // room for clocks that differ between members
        self.binlog
            .forget_deletes_before(horizon - TOMBSTONE_MARGIN);
    }

    fn sync_path(&self, group: &str, name: &str) -> Result<PathBuf, Refusal> {
        if group != self.group {
            return Err(Refusal::invalid(
                "group_name",
                format!("{group} is not {}", self.group),
            ));
        }
        let ln = LogicalName::parse(name, self.store.paths.len())?;
        // a file ID, or its metadata file's name: a member never replicates anything else, and
        // a SYNC_DELETE_FILE of a trunk file's own name (M00/00/00/000001) removed the trunk
        // file, and every file in it, here (found by tests/stateful_fuzz.rs)
        if RemoteName::decode(name.strip_suffix("-m").unwrap_or(name)).is_err() {
            log::error!("replica of \"{name}\": not a file ID: refused");
            return Err(Refusal::early(errno::EINVAL));
        }
        Ok(self.store.local_path(&ln))
    }

    /// A streamed sync request's fixed part and the name after it, read from the connection
    /// (the file content stays there); the name's length is checked before it is read.
    fn read_head_and_name(
        &self,
        conn: &mut Conn,
        h: &Header,
        fixed: usize,
    ) -> Result<Vec<u8>, Refusal> {
        if h.pkg_len < fixed as i64 {
            return Err(DecodeError::Short {
                field: "fixed part",
            }
            .into());
        }
        let mut buf = vec![0u8; fixed];
        conn.read_exact(&mut buf).map_err(|_| Refusal::early(0))?;
        let name_len = leading_name_len(&buf)?;
        if h.pkg_len < (fixed + name_len) as i64 {
            return Err(DecodeError::Short { field: "filename" }.into());
        }
        buf.resize(fixed + name_len, 0);
        conn.read_exact(&mut buf[fixed..])
            .map_err(|_| Refusal::early(0))?;
        Ok(buf)
    }

    pub(crate) fn report_server_id(&self, session: &mut SyncSession, body: &[u8]) -> Outcome {
        let r = ReportServerId::from_bytes(body)?;
        session.server_id = Some(r.id);
        Ok(Vec::new())
    }

    /// Write `len` bytes from the connection into a new temp file, stamp it and put it at
    /// `path` (replacing what was there).
    fn receive_replica(
        &self,
        conn: &mut Conn,
        path: &Path,
        len: u64,
        ts: i32,
    ) -> Result<(), Refusal> {
        let index = self.store_index_of(path);
        let dir = path.parent().unwrap_or(Path::new("."));
        let _ = std::fs::create_dir_all(dir);
        let (new, _crc) = self.receive_new_file(conn, index, dir, len)?;
        set_mtime(&new.file, ts);
        new.rename_as(path)
            .and_then(|()| self.sync_parent(path))
            .map_err(|e| Refusal::done(io_errno(&e)))
    }

    fn store_index_of(&self, path: &Path) -> usize {
        self.store
            .paths
            .iter()
            .position(|p| path.starts_with(p.join("data")))
            .unwrap_or(0)
    }

    /// SYNC_CREATE_FILE, and SYNC_UPDATE_FILE (which replaces what is there).
    pub(crate) fn sync_create_file(
        &self,
        conn: &mut Conn,
        session: &SyncSession,
        h: Header,
    ) -> Outcome {
        let update = h.cmd == cmd::SYNC_UPDATE_FILE;
        let raw = self.read_head_and_name(conn, &h, SyncFileHead::FIXED_LEN)?;
        let head = SyncFileHead::from_bytes(&raw)?;
        let content = (h.pkg_len - raw.len() as i64).max(0) as u64;
        let header_only = h.status != 0;
        if head.file_size < 0 || (!header_only && content != head.file_size as u64) {
            return Err(Refusal::invalid(
                "file_size",
                format!("{} with {content} bytes of content", head.file_size),
            ));
        }
        let path = self.sync_path(&head.group, &head.filename)?;
        let _g = self.lock_for(&head.filename);
        if self
            .binlog
            .deleted_at(&head.filename)
            .is_some_and(|d| d >= head.timestamp as i64)
        {
            // deleted here after the peer created it (the peer crashed before sending the
            // create): accept and drop it, and the delete's own record will reach the peer
            conn.discard(content).map_err(|_| Refusal::early(0))?;
            log::info!("replica of {} skipped: deleted here since", head.filename);
            self.note_synced(session, head.timestamp);
            return Ok(Vec::new());
        }
        if let Some(slot) = RemoteName::decode(&head.filename)
            .ok()
            .and_then(|rn| TrunkSlot::of_name(&rn).map(|s| (rn, s)))
        {
            return self.sync_create_in_trunk(conn, session, &head, slot, content, header_only);
        }
        let local = std::fs::symlink_metadata(&path)
            .ok()
            .filter(|m| m.is_file());
        let same = local
            .as_ref()
            .is_some_and(|m| m.len() == head.file_size as u64);
        // a copy changed here after that create (an append taken while the source was down)
        // is newer than the create being replayed: keep it; the change's own record goes back
        let newer_here = local.as_ref().is_some_and(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.mtime(), m.mtime_nsec()) > (head.timestamp as i64, 0)
        });
        if !update && (header_only || same || newer_here) {
            conn.discard(content).map_err(|_| Refusal::early(0))?;
            // upstream records the create even when it kept its identical copy
            self.record_replica(session, head.timestamp, op::CREATE, &head.filename, "")?;
            return Err(Refusal::done(errno::EEXIST));
        }
        if header_only {
            return Err(Refusal::invalid(
                "status",
                "a header-only create of a file this member does not hold",
            ));
        }
        self.receive_replica(conn, &path, content, head.timestamp)?;
        let letter = if update { op::UPDATE } else { op::CREATE };
        self.record_replica(session, head.timestamp, letter, &head.filename, "")?;
        self.count_sync_in(content as i64);
        Ok(Vec::new())
    }

    /// A change applied from a peer: its binlog line (the replica's lower-case op) and the
    /// peer's progress. A change whose line cannot be written is answered as failed (ENOSPC,
    /// EIO), so that the peer sends it again, to be applied idempotently, until it can be:
    /// this member's binlog must name every file it holds (it is a full-sync and recovery
    /// source).
    fn record_replica(
        &self,
        session: &SyncSession,
        ts: i32,
        op: char,
        name: &str,
        args: &str,
    ) -> Result<(), Refusal> {
        self.binlog
            .write(ts as i64, op.to_ascii_lowercase(), name, args)
            .map_err(|e| Refusal::done(crate::binlog::refusal_status(&e)))?;
        self.note_synced(session, ts);
        Ok(())
    }

    /// A replicated trunk file goes into the same slot of this member's copy of the trunk file
    /// (created, sparse, when this member has none yet). The data is written first and the
    /// header last, so a crash in between leaves a slot that holds nothing. A slot already
    /// holding this file is EEXIST, as for a plain file; one holding a newer file is refused
    /// with EEXIST too and left alone (this create is of a file deleted since); one holding an
    /// older file is taken over (see below).
    fn sync_create_in_trunk(
        &self,
        conn: &mut Conn,
        session: &SyncSession,
        head: &SyncFileHead,
        (name, slot): (RemoteName, TrunkSlot),
        content: u64,
        header_only: bool,
    ) -> Outcome {
        let ln = LogicalName::parse(&head.filename, self.store.paths.len())?;
        let expected = SlotHeader::for_name(&name, SLOT_REGULAR).ok_or(DecodeError::invalid(
            "filename",
            "a trunk name without its size",
        ))?;
        if !header_only && content != u64::from(expected.file_size) {
            return Err(Refusal::invalid(
                "file_size",
                format!(
                    "{content} bytes of content, the name says {}",
                    expected.file_size
                ),
            ));
        }
        let path = self.store.trunk_file_path(&ln, &slot);
        let (f, on_disk) = self.open_slot_for_write(&path, &slot, u64::from(expected.file_size))?;
        let held = SlotHeader::from_bytes(&on_disk);
        let empty = on_disk == [0u8; SLOT_HEADER_LEN as usize];
        // The trunk server hands a slot out only once it is free: a slot that holds an older
        // file here, or bytes that are no header at all (the middle of an older file, the
        // slot cut from a bigger one), holds what was deleted elsewhere (never within the
        // second it was freed) whose delete, from another member than this create, has not
        // arrived yet. The new file takes the slot, and the delete finds its file gone.
        // Refused (EEXIST, "already there"), it would be missing here for good once the
        // delete emptied the slot. A newer file's header in the slot means this create is the
        // stale one (this file was deleted and the slot given again): refused.
        let newer_there = held.is_a_header_for(slot.alloc_size) && held.mtime >= expected.mtime;
        let reused = !empty && !held.names(&name) && !newer_there;
        if (!empty && !reused) || header_only {
            conn.discard(content).map_err(|_| Refusal::early(0))?;
            if SlotHeader::from_bytes(&on_disk).names(&name) {
                self.record_replica(session, head.timestamp, op::CREATE, &head.filename, "")?;
            } else if !header_only {
                log::warn!(
                    "replica of {} refused: its slot holds another file here",
                    head.filename
                );
            }
            return Err(Refusal::done(if header_only {
                errno::EINVAL
            } else {
                errno::EEXIST
            }));
        }
        if reused {
            let what = if held.is_a_header_for(slot.alloc_size) {
                format!(
                    "an older file (size {}, crc32 {:08x}, created {})",
                    held.file_size, held.crc32, held.mtime
                )
            } else {
                "the bytes of an older file".to_string()
            };
            log::warn!(
                "replica of {}: its slot held {what}, deleted elsewhere and its delete not \
                 here yet; the new file takes the slot",
                head.filename
            );
            // the old file stops opening before its bytes are written over
            f.write_all_at(&[0u8; SLOT_HEADER_LEN as usize], u64::from(slot.offset))
                .map_err(|e| Refusal::early(io_errno(&e)))?;
        }
        let mut w = crate::storage::AtOffset {
            file: &f,
            pos: slot.data_offset(),
        };
        self.receive_into_file(conn, &mut w, content)?;
        f.write_all_at(&expected.to_bytes(), u64::from(slot.offset))
            .and_then(|()| self.sync_file(f.as_ref()))
            .map_err(|e| Refusal::done(io_errno(&e)))?;
        self.record_replica(session, head.timestamp, op::CREATE, &head.filename, "")?;
        self.count_sync_in(content as i64);
        Ok(Vec::new())
    }

    pub(crate) fn sync_delete_file(&self, session: &SyncSession, body: &[u8]) -> Outcome {
        let req = SyncDeleteReq::from_bytes(body)?;
        let path = self
            .sync_path(&req.group, &req.filename)
            .map_err(|f| Refusal::done(f.status))?;
        let _g = self.lock_for(&req.filename);
        // a delete this storage took back since (write_ack_copies: no peer confirmed it), passed
        // on by a peer that got the delete and not yet the take-back: stale
        if self
            .binlog
            .recreated_at(&req.filename)
            .is_some_and(|c| c >= i64::from(req.timestamp))
        {
            log::warn!(
                "SYNC_DELETE_FILE of {} (deleted at {}) ignored: that delete was taken back here",
                req.filename,
                req.timestamp
            );
            return Ok(Vec::new());
        }
        let removed =
            if RemoteName::decode(&req.filename).is_ok_and(|rn| rn.kind == FileKind::Trunk) {
                // a replica only zeroes its slot: freeing it for reuse is the trunk server's
                let ln = LogicalName::parse(&req.filename, self.store.paths.len())?;
                self.note_slot_deleted(ln.store_path_index as u8, &req.filename);
                self.store
                    .open_stored(&ln, &req.filename)
                    .and_then(|stored| self.zero_slot(&ln, &stored))
            } else {
                std::fs::symlink_metadata(&path).and_then(|_| std::fs::remove_file(&path))
            };
        match removed {
            Ok(()) => {}
            // not here (never arrived, or its slot taken over): the delete is recorded all the
            // same, so that a late create of the file is known stale after a restart too, and
            // answered ENOENT as upstream does; unless this very delete is recorded already (a
            // source that restarted before its mark file moved sends it again)
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let recorded = self
                    .binlog
                    .deleted_at(&req.filename)
                    .is_some_and(|d| d >= i64::from(req.timestamp));
                if !recorded {
                    self.record_replica(session, req.timestamp, op::DELETE, &req.filename, "")?;
                }
                return Err(Refusal::done(errno::ENOENT));
            }
            Err(e) => return Err(Refusal::done(io_errno(&e))),
        }
        self.record_replica(session, req.timestamp, op::DELETE, &req.filename, "")?;
        Ok(Vec::new())
    }

    /// SYNC_APPEND_FILE, and SYNC_MODIFY_FILE (which may write anywhere up to the end).
    pub(crate) fn sync_append_file(
        &self,
        conn: &mut Conn,
        session: &SyncSession,
        h: Header,
    ) -> Outcome {
        let modify = h.cmd == cmd::SYNC_MODIFY_FILE;
        let raw = self.read_head_and_name(conn, &h, SyncRangeReq::FIXED_LEN)?;
        let req = SyncRangeReq::from_bytes(&raw)?;
        let data = (h.pkg_len - raw.len() as i64).max(0) as u64;
        if req.offset < 0 || req.length < 0 || data != req.length as u64 {
            return Err(Refusal::invalid(
                "length",
                format!(
                    "offset {} length {} with {data} bytes",
                    req.offset, req.length
                ),
            ));
        }
        let path = self.sync_path(&req.group, &req.filename)?;
        let _g = self.lock_for(&req.filename);
        // decide before touching the file; a refused range is drained so the connection stays usable
        let refuse = match std::fs::symlink_metadata(&path) {
            Err(_) => Some(errno::ENOENT),
            Ok(md) if !md.is_file() => Some(errno::EEXIST),
            Ok(md) => {
                let size = md.len() as i64;
                if modify {
                    (size < req.offset).then_some(errno::ENOENT)
                } else if size == req.offset {
                    None
                } else if size >= req.offset + req.length {
                    Some(errno::EEXIST) // already applied
                } else {
                    Some(errno::ENOENT) // a gap: the sender re-sends the whole file
                }
            }
        };
        if let Some(code) = refuse {
            conn.discard(data).map_err(|_| Refusal::early(0))?;
            return Err(Refusal::done(code));
        }
        let mut f = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| Refusal::early(io_errno(&e)))?;
        f.seek(SeekFrom::Start(req.offset as u64))
            .map_err(|e| Refusal::early(io_errno(&e)))?;
        self.receive_into_file(conn, &mut f, data)?;
        set_mtime(&f, req.timestamp);
        let letter = if modify { op::MODIFY } else { op::APPEND };
        let range = format!("{} {}", req.offset, req.length);
        self.record_replica(session, req.timestamp, letter, &req.filename, &range)?;
        self.count_sync_in(req.length);
        Ok(Vec::new())
    }

    pub(crate) fn sync_truncate_file(&self, session: &SyncSession, body: &[u8]) -> Outcome {
        let req = SyncRangeReq::from_bytes(body)?;
        let (old, new) = (req.offset, req.length);
        let path = self
            .sync_path(&req.group, &req.filename)
            .map_err(|f| Refusal::done(f.status))?;
        let _g = self.lock_for(&req.filename);
        let md = std::fs::symlink_metadata(&path).map_err(|e| Refusal::done(io_errno(&e)))?;
        if !md.is_file() || md.len() as i64 != old || new < 0 {
            return Err(Refusal::done(errno::EEXIST));
        }
        let f = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| Refusal::done(io_errno(&e)))?;
        f.set_len(new as u64)
            .and_then(|()| self.sync_file(&f))
            .map_err(|e| Refusal::done(io_errno(&e)))?;
        set_mtime(&f, req.timestamp);
        let sizes = format!("{old} {new}");
        self.record_replica(session, req.timestamp, op::TRUNCATE, &req.filename, &sizes)?;
        Ok(Vec::new())
    }

    pub(crate) fn sync_rename_file(&self, body: &[u8]) -> Outcome {
        let req = SyncTwoNamesReq::from_bytes(body)?;
        let new = self
            .sync_path(&req.group, &req.first)
            .map_err(|f| Refusal::done(f.status))?;
        let old = self
            .sync_path(&req.group, &req.second)
            .map_err(|f| Refusal::done(f.status))?;
        let _g = self.lock_for(&req.second);
        if std::fs::symlink_metadata(&new).is_ok() {
            return Err(Refusal::done(errno::EEXIST));
        }
        std::fs::rename(&old, &new).map_err(|e| Refusal::done(io_errno(&e)))?;
        let _ = std::fs::rename(meta_path(&old), meta_path(&new));
        // the rename does not count as the peer's progress (upstream's rule)
        self.binlog
            .write(
                req.timestamp as i64,
                op::RENAME.to_ascii_lowercase(),
                &req.first,
                &req.second,
            )
            .map_err(|e| Refusal::done(crate::binlog::refusal_status(&e)))?;
        // an empty body, not upstream's echo of the request (C senders accept both)
        Ok(Vec::new())
    }

    pub(crate) fn sync_create_link(&self, session: &SyncSession, body: &[u8]) -> Outcome {
        let req = SyncTwoNamesReq::from_bytes(body)?;
        let link = self
            .sync_path(&req.group, &req.first)
            .map_err(|f| Refusal::done(f.status))?;
        let target = self
            .sync_path(&req.group, &req.second)
            .map_err(|f| Refusal::done(f.status))?;
        if std::fs::symlink_metadata(&link).is_err() && target.exists() {
            if let Err(e) = std::os::unix::fs::symlink(&target, &link) {
                if e.kind() != io::ErrorKind::AlreadyExists {
                    return Err(Refusal::done(io_errno(&e)));
                }
            }
            return self
                .record_replica(session, req.timestamp, op::LINK, &req.first, &req.second)
                .map(|()| Vec::new());
        }
        self.note_synced(session, req.timestamp);
        Ok(Vec::new())
    }
}
