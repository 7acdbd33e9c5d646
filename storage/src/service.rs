//! One function per client command of the storage, named after it (docs/protocol/client-protocol.md
//! section 3), and the one dispatch of every storage command (the replica commands are in
//! `replica`).
//!
//! Uploads stream from the socket into a hidden temp file next to the final place, computing the
//! CRC on the way; the file is renamed only when complete (and fsynced first in durable mode), so
//! a file ID never names a partial file. A request whose body was not fully read when it failed is answered and then
//! the connection is closed, since the unread bytes would otherwise be taken for a header.

use crate::binlog::op;
use crate::copies::{Kept, Saved, Undo};
use crate::replica::SyncSession;
use crate::storage::{io_errno, meta_path, Fail, Outcome, Storage};
use crate::store::NewFile;
use crate::zero_copy;
use fdfs_common::codec::DecodeError;
use fdfs_common::codec::Message;
use fdfs_common::file_id::{
    classify, is_slave_name, slave_name, FileKind, FilePayload, LogicalName, RemoteName, Source,
};
use fdfs_common::metadata;
use fdfs_common::proto::client::GroupFileReq;
use fdfs_common::proto::cluster::stat;
use fdfs_common::proto::storage::{
    AppendHead, DownloadReq, FileIdReply, FileInfoReply, ModifyHead, SetMetadataReq, TruncateReq,
    UploadReq, UploadSlaveHead,
};
use fdfs_common::proto::{cmd, errno, valid_name_chars, Header, FILENAME_MAX, HEADER_LEN};
use fdfs_common::server::{log_malformed, Body, Conn, Flow, Service};
use fdfs_common::trunk::TrunkSlot;
use std::fs::OpenOptions;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

impl Storage {
    fn source(&self) -> Source {
        let p = self.params.read();
        if p.use_storage_id && p.id_in_filename {
            if let Ok(n) = self.my_id.read().parse::<u32>() {
                return Source::Id(n);
            }
        }
        let ip = self.my_ip.read().clone();
        match ip.parse::<std::net::Ipv4Addr>() {
            Ok(v4) => Source::Ipv4(v4.octets()),
            Err(_) => Source::Ipv4([0, 0, 0, 0]),
        }
    }

    fn check_group(&self, group: &str) -> Result<(), Fail> {
        if group != self.group {
            log::error!("group_name: {group} not correct, should be: {}", self.group);
            return Err(Fail::done(errno::EINVAL));
        }
        Ok(())
    }

    /// A name's store path and place, as every command that carries one parses it.
    fn parse_logical<'a>(&self, name: &'a str) -> Result<LogicalName<'a>, Fail> {
        LogicalName::parse(name, self.store.paths.len()).map_err(|e| {
            log::error!("invalid file name \"{name}\": {e}");
            Fail::done(errno::EINVAL)
        })
    }

    /// The name a client command gives, which must be a file ID's: a trunk file's own name
    /// (`M00/HH/HH/000001`), a metadata file's or a temp file's would otherwise let one request
    /// delete or rewrite what many files live in (upstream's storage takes them; its tools
    /// refuse them client-side).
    fn parse_name<'a>(&self, name: &'a str) -> Result<LogicalName<'a>, Fail> {
        let ln = self.parse_logical(name)?;
        Self::require_file_id(name)?;
        Ok(ln)
    }

    fn require_file_id(name: &str) -> Result<(), Fail> {
        RemoteName::decode(name).map(drop).map_err(|e| {
            log::error!("file name \"{name}\" is not a file ID ({e}): refused");
            Fail::done(errno::EINVAL)
        })
    }

    /// The name a DOWNLOAD_FILE gives: a file ID, or a trunk file's own name, which a C
    /// storage recovering a store path from this one asks for whole.
    fn parse_download_name<'a>(&self, name: &'a str) -> Result<LogicalName<'a>, Fail> {
        let ln = self.parse_logical(name)?;
        if !ln.file_name().bytes().all(|b| b.is_ascii_digit()) {
            Self::require_file_id(name)?;
        }
        Ok(ln)
    }

    fn reserved_ok(&self, path_index: usize, size: i64) -> bool {
        let Some(r) = self.params.read().reserved else {
            return true;
        };
        self.store.has_room(path_index, r, size)
    }

    // ---- uploads ---------------------------------------------------------------------------

    /// UPLOAD_FILE, and UPLOAD_APPENDER_FILE (whose file can be appended to and modified).
    fn upload_file(&self, conn: &mut Conn, h: Header) -> Outcome {
        let appender = h.cmd == cmd::UPLOAD_APPENDER_FILE;
        let total_idx = stat::TOTAL_UPLOAD_COUNT;
        if h.pkg_len < UploadReq::LEN as i64 {
            return Err(Fail::early(errno::EINVAL));
        }
        let mut fixed = [0u8; UploadReq::LEN];
        conn.read_exact(&mut fixed).map_err(|_| Fail::early(0))?;
        let req = UploadReq::from_bytes(&fixed)?;
        if req.file_size < 0 || req.file_size != h.pkg_len - UploadReq::LEN as i64 {
            log::error!(
                "client ip: {}, file size {} != body length",
                conn.peer_ip(),
                req.file_size
            );
            return Err(Fail::early(errno::EINVAL));
        }
        if !valid_name_chars(&req.ext) {
            log::error!(
                "client ip: {}, invalid file ext name: {}",
                conn.peer_ip(),
                req.ext
            );
            return Err(Fail::early(errno::EINVAL));
        }
        if req.store_path_index != 0xFF && req.store_path_index as usize >= self.store.paths.len() {
            log::error!(
                "client ip: {}, store path index {} is invalid",
                conn.peer_ip(),
                req.store_path_index
            );
            return Err(Fail::early(errno::EINVAL));
        }
        let reserved = self.params.read().reserved;
        let path_index = self
            .store
            .choose_path(req.store_path_index, reserved)
            .ok_or(Fail::early(errno::ENOSPC))?;
        if let Err(code) = self.enough_members().and_then(|()| self.recordable()) {
            self.count(
                total_idx,
                false,
                Some((stat::TOTAL_UPLOAD_BYTES, req.file_size)),
            );
            return Err(Fail::early(code));
        }
        if !self.reserved_ok(path_index, req.file_size) {
            self.count(
                total_idx,
                false,
                Some((stat::TOTAL_UPLOAD_BYTES, req.file_size)),
            );
            return Err(Fail::early(errno::ENOSPC));
        }
        let x7 = self.store.format_ext(&req.ext);
        let source = self.source();
        // a slot when the trunk server gives one; without it (not reachable, or not sure it
        // still is the trunk server) a plain file, which every member and client reads alike
        let slot = self
            .trunk_slot_size(req.file_size)
            .filter(|_| !appender)
            .and_then(|requested| self.slot_for_upload(path_index, requested));
        let stored = match slot {
            Some(info) => self.upload_into_trunk(conn, info, req.file_size, &source, &x7),
            None => self.upload_into_plain_file(conn, path_index, &req, &source, &x7, appender),
        };
        let stored = stored.and_then(|name| {
            self.await_copies(Undo::Created(vec![name.clone()]))
                .map(|()| name)
        });
        self.count(
            total_idx,
            stored.is_ok(),
            Some((stat::TOTAL_UPLOAD_BYTES, req.file_size)),
        );
        Ok(FileIdReply {
            group: self.group.clone(),
            filename: stored?,
        }
        .to_bytes())
    }

    /// An upload as a file of its own: received into a temp file, then linked under its name.
    fn upload_into_plain_file(
        &self,
        conn: &mut Conn,
        path_index: usize,
        req: &UploadReq,
        source: &Source,
        x7: &str,
        appender: bool,
    ) -> Result<String, Fail> {
        let subdir = if self.store.distribute_mode == 1 {
            // hash mode needs the name: use a provisional one as upstream does
            let provisional = FilePayload {
                source: source.clone(),
                timestamp: fdfs_common::now() as u32,
                size_field: req.file_size,
                crc32: self.store.random(),
            };
            self.store.choose_subdir(&provisional.encode_b27())
        } else {
            self.store.choose_subdir("")
        };
        let (new, crc) = self.receive_new_file(
            conn,
            path_index,
            &self.store.subdir_path(path_index, subdir),
            req.file_size as u64,
        )?;
        let mtime = new
            .file
            .metadata()
            .map(|m| m.mtime())
            .unwrap_or_else(|_| fdfs_common::now());
        self.commit_new_file(
            &new,
            path_index,
            subdir,
            source,
            mtime,
            req.file_size,
            appender,
            crc,
            x7,
        )
    }

    /// Link a complete new file under a fresh, unused name.
    #[allow(clippy::too_many_arguments)]
    fn commit_new_file(
        &self,
        new: &NewFile,
        path_index: usize,
        subdir: (u32, u32),
        source: &Source,
        timestamp: i64,
        size: i64,
        appender: bool,
        crc: u32,
        x7: &str,
    ) -> Result<String, Fail> {
        for _ in 0..10 {
            let name = self.store.make_name(
                path_index,
                subdir,
                source,
                timestamp as u32,
                size,
                appender,
                crc,
                x7,
            );
            let path = self.store.data_dir(path_index).join(&name[4..]);
            // the line first: after a crash here the line names a missing file, which the sync
            // sender skips, instead of a file that exists on this member only
            let _intent = self.intent(timestamp, op::CREATE, &name, "")?;
            // link() refuses to replace an existing name, unlike rename()
            match new.link_as(&path) {
                Ok(()) => {
                    if let Err(e) = self.sync_parent(&path) {
                        // not durable: the upload fails, and leaves nothing
                        log::error!("fsync the directory of {} fail: {e}", path.display());
                        let _ = std::fs::remove_file(&path);
                        return Err(Fail::done(io_errno(&e)));
                    }
                    return Ok(name);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    log::error!("link to {} fail: {e}", path.display());
                    return Err(Fail::done(io_errno(&e)));
                }
            }
        }
        Err(Fail::done(errno::EEXIST))
    }

    fn upload_slave_file(&self, conn: &mut Conn, h: Header) -> Outcome {
        if h.pkg_len <= UploadSlaveHead::LEN as i64 {
            return Err(Fail::early(errno::EINVAL));
        }
        let mut fixed = [0u8; UploadSlaveHead::LEN];
        conn.read_exact(&mut fixed).map_err(|_| Fail::early(0))?;
        let head = UploadSlaveHead::from_bytes(&fixed)?;
        let l = head.master_len;
        if l <= 10
            || l >= FILENAME_MAX as i64
            || head.file_size < 0
            || checked_sum(&[UploadSlaveHead::LEN as i64, l, head.file_size]) != Some(h.pkg_len)
        {
            return Err(Fail::early(errno::EINVAL));
        }
        let mut mb = vec![0u8; l as usize];
        conn.read_exact(&mut mb).map_err(|_| Fail::early(0))?;
        let master = String::from_utf8_lossy(&mb).into_owned();
        let size = head.file_size;
        let fail = |code| {
            self.count(
                stat::TOTAL_UPLOAD_COUNT,
                false,
                Some((stat::TOTAL_UPLOAD_BYTES, size)),
            );
            Fail::early(code)
        };
        if head.prefix.is_empty()
            || !valid_name_chars(&head.prefix)
            || !valid_name_chars(&head.ext)
            || (head.prefix == "-m" && head.ext.is_empty())
        {
            return Err(fail(errno::EINVAL));
        }
        let ln =
            LogicalName::parse(&master, self.store.paths.len()).map_err(|_| fail(errno::EINVAL))?;
        let master_path = self.store.local_path(&ln);
        if std::fs::symlink_metadata(&master_path).is_err() {
            return Err(fail(errno::ENOENT));
        }
        let slave = slave_name(&master, &head.prefix, &head.ext);
        let sn =
            LogicalName::parse(&slave, self.store.paths.len()).map_err(|_| fail(errno::EINVAL))?;
        let slave_path = self.store.local_path(&sn);
        if std::fs::symlink_metadata(&slave_path).is_ok() {
            return Err(fail(errno::EEXIST));
        }
        if !self.reserved_ok(ln.store_path_index, size) {
            return Err(fail(errno::ENOSPC));
        }
        self.enough_members()
            .and_then(|()| self.recordable())
            .map_err(fail)?;
        let use_link = self.params.read().store_slave_file_use_link;
        // with links, the content goes where a normal upload to this store path would
        let subdir = self.store.choose_subdir("");
        let dir = if use_link {
            self.store.subdir_path(ln.store_path_index, subdir)
        } else {
            slave_path.parent().unwrap_or(Path::new(".")).to_path_buf()
        };
        let count_failure = || {
            self.count(
                stat::TOTAL_UPLOAD_COUNT,
                false,
                Some((stat::TOTAL_UPLOAD_BYTES, size)),
            )
        };
        let (new, crc) = self
            .receive_new_file(conn, ln.store_path_index, &dir, size as u64)
            .inspect_err(|_| count_failure())?;
        let mtime = new
            .file
            .metadata()
            .map(|m| m.mtime())
            .unwrap_or_else(|_| fdfs_common::now());
        let linked = if use_link {
            let x7 = self.store.format_ext(&head.ext);
            let source = self.source();
            self.commit_new_file(
                &new,
                ln.store_path_index,
                subdir,
                &source,
                mtime,
                size,
                false,
                crc,
                &x7,
            )
            .inspect_err(|_| count_failure())
            .map(Some)?
        } else {
            None
        };
        let made = match &linked {
            // upstream's links carry the target's absolute path; the line names both (never
            // 6.16.1's "L  <target>" with the link name missing)
            Some(target) => self.intent(mtime, op::LINK, &slave, target).map(|_intent| {
                let target_path = self.store.data_dir(ln.store_path_index).join(&target[4..]);
                std::os::unix::fs::symlink(&target_path, &slave_path)
            }),
            None => self
                .intent(mtime, op::CREATE, &slave, "")
                .map(|_intent| new.link_as(&slave_path)),
        };
        let made = made
            .inspect_err(|_| {
                if let Some(target) = &linked {
                    // the content's name goes with the refused link
                    let _ = self.remove_stored(target, mtime);
                }
            })
            .inspect_err(|_| count_failure())?
            .and_then(|()| self.sync_parent(&slave_path));
        if let Err(e) = made {
            count_failure();
            return Err(Fail::done(if e.kind() == io::ErrorKind::AlreadyExists {
                errno::EEXIST
            } else {
                io_errno(&e)
            }));
        }
        drop(new);
        let created = linked.into_iter().chain([slave.clone()]).collect();
        self.await_copies(Undo::Created(created))
            .inspect_err(|_| count_failure())?;
        self.count(
            stat::TOTAL_UPLOAD_COUNT,
            true,
            Some((stat::TOTAL_UPLOAD_BYTES, size)),
        );
        Ok(FileIdReply {
            group: self.group.clone(),
            filename: slave,
        }
        .to_bytes())
    }

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

    fn read_name_after(&self, conn: &mut Conn, len: i64) -> Result<String, Fail> {
        if !(44..FILENAME_MAX as i64).contains(&len) {
            return Err(Fail::early(errno::EINVAL));
        }
        let mut b = vec![0u8; len as usize];
        conn.read_exact(&mut b).map_err(|_| Fail::early(0))?;
        let name = String::from_utf8_lossy(&b).into_owned();
        conn.log_name.clone_from(&name);
        Ok(name)
    }

    fn append_file(&self, conn: &mut Conn, h: Header) -> Outcome {
        if h.pkg_len <= AppendHead::LEN as i64 {
            return Err(Fail::early(errno::EINVAL));
        }
        let mut fixed = [0u8; AppendHead::LEN];
        conn.read_exact(&mut fixed).map_err(|_| Fail::early(0))?;
        let head = AppendHead::from_bytes(&fixed)?;
        if head.file_size < 0
            || checked_sum(&[AppendHead::LEN as i64, head.name_len, head.file_size])
                != Some(h.pkg_len)
        {
            return Err(Fail::early(errno::EINVAL));
        }
        let name = self.read_name_after(conn, head.name_len)?;
        let size = head.file_size;
        let fail = |c| {
            self.count(
                stat::TOTAL_APPEND_COUNT,
                false,
                Some((stat::TOTAL_APPEND_BYTES, size)),
            );
            Fail::early(c)
        };
        let path = self.appender_path(&name).map_err(fail)?;
        self.enough_members()
            .and_then(|()| self.recordable())
            .map_err(fail)?;
        let g = self.lock_for(&name);
        let opened = OpenOptions::new().append(true).open(&path);
        self.count_io(stat::TOTAL_FILE_OPEN_COUNT, opened.is_ok());
        let mut f = opened.map_err(|e| Fail::early(io_errno(&e)))?;
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
                .map_err(|f| fail(f.code))?;
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

    fn modify_file(&self, conn: &mut Conn, h: Header) -> Outcome {
        if h.pkg_len <= ModifyHead::LEN as i64 {
            return Err(Fail::early(errno::EINVAL));
        }
        let mut fixed = [0u8; ModifyHead::LEN];
        conn.read_exact(&mut fixed).map_err(|_| Fail::early(0))?;
        let head = ModifyHead::from_bytes(&fixed)?;
        if head.file_size < 0
            || head.offset < 0
            || checked_sum(&[ModifyHead::LEN as i64, head.name_len, head.file_size])
                != Some(h.pkg_len)
        {
            return Err(Fail::early(errno::EINVAL));
        }
        let name = self.read_name_after(conn, head.name_len)?;
        let size = head.file_size;
        let failed = |f: Fail| {
            self.count(
                stat::TOTAL_MODIFY_COUNT,
                false,
                Some((stat::TOTAL_MODIFY_BYTES, size)),
            );
            f
        };
        let fail = |c| failed(Fail::early(c));
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
                .map_err(|f| fail(f.code))?;
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

    fn truncate_file(&self, body: &[u8]) -> Outcome {
        let req = TruncateReq::from_bytes(body)?;
        if req.new_size < 0 || !(44..FILENAME_MAX).contains(&req.filename.len()) {
            return Err(Fail::done(errno::EINVAL));
        }
        let fail = |c| {
            self.count(stat::TOTAL_TRUNCATE_COUNT, false, None);
            Fail::done(c)
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
                .map_err(|f| fail(f.code))?;
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

    fn regenerate_appender_filename(&self, body: &[u8]) -> Outcome {
        let name = String::from_utf8_lossy(body).into_owned();
        if !(44..FILENAME_MAX).contains(&name.len()) {
            return Err(Fail::done(errno::EINVAL));
        }
        let path = self.appender_path(&name).map_err(Fail::done)?;
        self.recordable().map_err(Fail::done)?;
        let _g = self.lock_for(&name);
        let old = RemoteName::decode(&name)?;
        let (size, crc) =
            crate::store::file_crc(&path, |_| {}).map_err(|e| Fail::done(io_errno(&e)))?;
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
            std::fs::rename(&path, &new_path).map_err(|e| Fail::done(io_errno(&e)))?;
            let _ = std::fs::rename(meta_path(&path), meta_path(&new_path));
            if let Err(e) = self.sync_parent(&new_path) {
                // the new name may not survive a power loss: answered as failed, though the
                // rename stands (the old name is gone either way)
                log::error!("fsync the directory of {} fail: {e}", new_path.display());
                return Err(Fail::done(io_errno(&e)));
            }
            return Ok(FileIdReply {
                group: self.group.clone(),
                filename: new_name,
            }
            .to_bytes());
        }
        Err(Fail::done(errno::EBUSY))
    }

    // ---- reads and deletes -------------------------------------------------------------------

    fn download_file(&self, conn: &mut Conn, body: &[u8]) -> Result<(), Fail> {
        let req = DownloadReq::from_bytes(body)?;
        self.check_group(&req.group)?;
        let fail = |c| {
            self.count(stat::TOTAL_DOWNLOAD_COUNT, false, None);
            Fail::done(c)
        };
        let ln = self
            .parse_download_name(&req.filename)
            .map_err(|f| fail(f.code))?;
        let opened = self.store.open_stored(&ln, &req.filename);
        self.count_io(stat::TOTAL_FILE_OPEN_COUNT, opened.is_ok());
        let stored = opened.map_err(|e| fail(io_errno(&e)))?;
        let size = stored.size as i64;
        if req.offset < 0
            || req.count < 0
            || (req.offset >= size && !(req.offset == 0 && size == 0))
        {
            return Err(fail(errno::EINVAL));
        }
        let remain = size - req.offset;
        let len = if req.count == 0 || req.count > remain {
            remain
        } else {
            req.count
        };
        let header = Header::response(0, len as usize).to_bytes();
        let r = zero_copy::send_with_header(
            conn.stream_mut(),
            &header,
            &stored.file,
            stored.start + req.offset as u64,
            len as u64,
        );
        if r.is_ok() {
            conn.note_sent(0, header.len() as u64 + len as u64);
        }
        self.count(
            stat::TOTAL_DOWNLOAD_COUNT,
            r.is_ok(),
            Some((stat::TOTAL_DOWNLOAD_BYTES, len)),
        );
        self.count_io(stat::TOTAL_FILE_READ_COUNT, r.is_ok());
        r.map_err(|e| {
            log::warn!(
                "client ip: {}, send file {} fail: {e}",
                conn.peer_ip(),
                req.filename
            );
            Fail::early(0)
        })
    }

    fn delete_file(&self, body: &[u8]) -> Outcome {
        let req = GroupFileReq::from_bytes(body)?;
        self.check_group(&req.group)?;
        let fail = |c| {
            self.count(stat::TOTAL_DELETE_COUNT, false, None);
            Fail::done(c)
        };
        self.parse_name(&req.filename).map_err(|f| fail(f.code))?;
        self.enough_members()
            .and_then(|()| self.recordable())
            .map_err(fail)?;
        let kept = self
            .delete_stored(&req.filename, fdfs_common::now(), self.acks_copies())
            .map_err(fail)?;
        self.await_copies(Undo::Deleted(kept)).inspect_err(|_| {
            self.count(stat::TOTAL_DELETE_COUNT, false, None);
        })?;
        self.count(stat::TOTAL_DELETE_COUNT, true, None);
        Ok(Vec::new())
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
            let _intent = self.intent(now, op::DELETE, name, "").map_err(|f| f.code)?;
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
            let _intent = self.intent(now, op::DELETE, name, "").map_err(|f| f.code)?;
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

    fn set_metadata(&self, body: &[u8]) -> Outcome {
        let req = SetMetadataReq::from_bytes(body)?;
        let fail = |c| {
            self.count(stat::TOTAL_SET_META_COUNT, false, None);
            Fail::done(c)
        };
        if req.op != b'O' && req.op != b'M' {
            return Err(fail(errno::EINVAL));
        }
        self.check_group(&req.group)?;
        let ln = self.parse_name(&req.filename).map_err(|f| fail(f.code))?;
        let path = self.store.local_path(&ln);
        std::fs::symlink_metadata(&path).map_err(|e| fail(io_errno(&e)))?;
        self.enough_members()
            .and_then(|()| self.recordable())
            .map_err(fail)?;
        let mpath = meta_path(&path);
        let mname = format!("{}-m", req.filename);
        let now = fdfs_common::now();
        let g = self.lock_for(&mname);
        let old = match std::fs::read(&mpath) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(fail(io_errno(&e))),
        };
        if req.metadata.is_empty() {
            if req.op == b'O' && old.is_some() {
                let _intent = self
                    .intent(now, op::DELETE, &mname, "")
                    .map_err(|f| fail(f.code))?;
                std::fs::remove_file(&mpath).map_err(|e| fail(io_errno(&e)))?;
            }
        } else {
            let new_items = metadata::unpack(&req.metadata);
            let items = match &old {
                Some(old) if req.op == b'M' => metadata::merge(metadata::unpack(old), new_items),
                _ => metadata::sorted(new_items),
            };
            let letter = if old.is_some() {
                op::UPDATE
            } else {
                op::CREATE
            };
            let _intent = self
                .intent(now, letter, &mname, "")
                .map_err(|f| fail(f.code))?;
            crate::store::write_atomic(&mpath, &metadata::pack(&items))
                .map_err(|e| fail(io_errno(&e)))?;
        }
        drop(g);
        let undo = Undo::Metadata {
            name: mname,
            path: mpath,
            old,
        };
        self.await_copies(undo).inspect_err(|_| {
            self.count(stat::TOTAL_SET_META_COUNT, false, None);
        })?;
        self.count(stat::TOTAL_SET_META_COUNT, true, None);
        Ok(Vec::new())
    }

    fn get_metadata(&self, body: &[u8]) -> Outcome {
        let req = GroupFileReq::from_bytes(body)?;
        self.check_group(&req.group)?;
        let fail = |c| {
            self.count(stat::TOTAL_GET_META_COUNT, false, None);
            Fail::done(c)
        };
        let ln = self.parse_name(&req.filename).map_err(|f| fail(f.code))?;
        let path = self.store.local_path(&ln);
        std::fs::symlink_metadata(&path).map_err(|e| fail(io_errno(&e)))?;
        let m = std::fs::read(meta_path(&path)).map_err(|e| fail(io_errno(&e)))?;
        self.count(stat::TOTAL_GET_META_COUNT, true, None);
        Ok(m)
    }

    fn query_file_info(&self, flags: u8, body: &[u8]) -> Outcome {
        let req = GroupFileReq::from_bytes(body)?;
        self.check_group(&req.group)?;
        let ln = self.parse_name(&req.filename)?;
        let rn = RemoteName::decode(&req.filename)?;
        let path = self.store.local_path(&ln);
        let not_there = |e: &io::Error| {
            if flags & 2 == 0 {
                log::error!("file: {} not exist", path.display());
            }
            Fail::done(io_errno(e))
        };
        let (file_size, create_timestamp) = if rn.kind == FileKind::Trunk {
            // the slot's header, checked against the name, has the size and the time
            let stored = self
                .store
                .open_stored(&ln, &req.filename)
                .map_err(|e| not_there(&e))?;
            let (_, header) = stored.trunk.expect("a trunk name opens a slot");
            (stored.size as i64, i64::from(header.mtime))
        } else {
            let lmd = std::fs::symlink_metadata(&path).map_err(|e| not_there(&e))?;
            let md = std::fs::metadata(&path).map_err(|e| Fail::done(io_errno(&e)))?;
            (md.len() as i64, lmd.mtime())
        };
        let kind = classify(req.filename.len(), &rn.payload);
        let crc = match kind {
            FileKind::Appender | FileKind::Slave if flags & 1 != 0 => 0,
            FileKind::Appender | FileKind::Slave => {
                crate::store::file_crc(&path, |_| {})
                    .map_err(|e| Fail::done(io_errno(&e)))?
                    .1
            }
            _ => rn.payload.crc32,
        };
        Ok(FileInfoReply {
            file_size,
            create_timestamp,
            crc32: crc,
            source_ip: match rn.payload.source {
                Source::Id(n) => self
                    .storage_ids
                    .read()
                    .by_id(&n.to_string())
                    .map(|e| e.ips[0].clone())
                    .unwrap_or_default(),
                _ => rn.payload.source.ip_text().unwrap_or_default(),
            },
            width: self.params.read().width,
        }
        .to_bytes())
    }

    fn active_test(&self, session: &SyncSession, body: &[u8]) -> Outcome {
        if !body.is_empty() {
            return Err(DecodeError::Trailing { len: body.len() }.into());
        }
        self.note_caught_up(session);
        Ok(Vec::new())
    }
}

/// The sum of lengths read from the wire, or `None` where it overflows (a hostile request can
/// announce any i64).
fn checked_sum(parts: &[i64]) -> Option<i64> {
    parts.iter().try_fold(0i64, |sum, &p| sum.checked_add(p))
}

/// How a handled request was answered.
enum Answer {
    /// this body, with status 0
    Reply(Vec<u8>),
    /// already written by the handler (a download)
    Sent,
    /// already written, and the connection ends here (a stream of unannounced length)
    SentThenClose,
}

impl Storage {
    /// Every storage command, client's and replica's, by its code.
    fn dispatch(
        &self,
        conn: &mut Conn,
        session: &mut SyncSession,
        h: Header,
        body: &[u8],
    ) -> Result<Answer, Fail> {
        use Answer::Reply;
        crate::binlog::clear_last_end();
        if !self.may_send(h.cmd, conn) {
            // a body left unread (a replica's content) must not be taken for the next request
            return Err(Fail::done(errno::EACCES).then_close());
        }
        match h.cmd {
            cmd::UPLOAD_FILE | cmd::UPLOAD_APPENDER_FILE => self.upload_file(conn, h).map(Reply),
            cmd::UPLOAD_SLAVE_FILE => self.upload_slave_file(conn, h).map(Reply),
            cmd::APPEND_FILE => self.append_file(conn, h).map(Reply),
            cmd::MODIFY_FILE => self.modify_file(conn, h).map(Reply),
            cmd::TRUNCATE_FILE => self.truncate_file(body).map(Reply),
            cmd::REGENERATE_APPENDER_FILENAME => self.regenerate_appender_filename(body).map(Reply),
            cmd::DOWNLOAD_FILE => self.download_file(conn, body).map(|()| Answer::Sent),
            cmd::DELETE_FILE => self.delete_file(body).map(Reply),
            cmd::SET_METADATA => self.set_metadata(body).map(Reply),
            cmd::GET_METADATA => self.get_metadata(body).map(Reply),
            cmd::QUERY_FILE_INFO => self.query_file_info(h.status, body).map(Reply),
            cmd::ACTIVE_TEST => self.active_test(session, body).map(Reply),
            cmd::REPORT_SERVER_ID => self.report_server_id(session, body).map(Reply),
            cmd::SYNC_CREATE_FILE | cmd::SYNC_UPDATE_FILE => {
                self.sync_create_file(conn, session, h).map(Reply)
            }
            cmd::SYNC_APPEND_FILE | cmd::SYNC_MODIFY_FILE => {
                self.sync_append_file(conn, session, h).map(Reply)
            }
            cmd::SYNC_DELETE_FILE => self.sync_delete_file(session, body).map(Reply),
            cmd::SYNC_TRUNCATE_FILE => self.sync_truncate_file(session, body).map(Reply),
            cmd::SYNC_RENAME_FILE => self.sync_rename_file(body).map(Reply),
            cmd::SYNC_CREATE_LINK => self.sync_create_link(session, body).map(Reply),
            cmd::TRUNK_ALLOC_SPACE => self.trunk_alloc_space(body).map(Reply),
            cmd::TRUNK_ALLOC_CONFIRM => self.trunk_alloc_confirm(h, body).map(Reply),
            cmd::TRUNK_FREE_SPACE => self.trunk_free_space(body).map(Reply),
            cmd::TRUNK_SYNC_BINLOG => self.trunk_sync_binlog(body).map(Reply),
            cmd::TRUNK_TRUNCATE_BINLOG_FILE => self.trunk_truncate_binlog_file(body).map(Reply),
            cmd::TRUNK_GET_BINLOG_SIZE => self.trunk_get_binlog_size(body).map(Reply),
            cmd::TRUNK_DELETE_BINLOG_MARKS => self.trunk_delete_binlog_marks(body).map(Reply),
            // a stream of unannounced length: it ends when we close, and so does a refusal
            cmd::RECONCILE_DIGESTS => self.reconcile_digests(body).map(Reply),
            cmd::RECONCILE_LISTING => self.reconcile_listing(body).map(Reply),
            cmd::RFDFS_STATUS => self.rfdfs_status().map(Reply),
            cmd::FETCH_ONE_PATH_BINLOG => match self.fetch_one_path_binlog(conn, body) {
                Ok(()) => Ok(Answer::SentThenClose),
                Err(f) => Err(f.then_close()),
            },
            other => {
                log::error!("client ip: {}, unknown cmd: {other}", conn.peer_ip());
                Err(Fail::done(errno::EINVAL))
            }
        }
    }
}

impl Service for Storage {
    type Session = SyncSession;

    const ANSWER_UNREADABLE_BODY: bool = true;

    fn max_body(&self) -> usize {
        self.cfg.server.buff_size.saturating_sub(HEADER_LEN)
    }

    /// File content is streamed from the socket to the disk, never held whole.
    fn streams(&self, command: u8) -> bool {
        matches!(
            command,
            cmd::UPLOAD_FILE
                | cmd::UPLOAD_APPENDER_FILE
                | cmd::UPLOAD_SLAVE_FILE
                | cmd::APPEND_FILE
                | cmd::MODIFY_FILE
                | cmd::SYNC_CREATE_FILE
                | cmd::SYNC_UPDATE_FILE
                | cmd::SYNC_APPEND_FILE
                | cmd::SYNC_MODIFY_FILE
        )
    }

    fn metrics(&self) -> Option<&fdfs_common::metrics::Metrics> {
        Some(&self.metrics)
    }

    fn handle(
        &self,
        conn: &mut Conn,
        session: &mut SyncSession,
        h: Header,
        body: Body<'_>,
    ) -> Flow {
        let Some((log, action)) = self
            .access_log
            .as_ref()
            .and_then(|l| Some((l, crate::access_log::action(h.cmd)?)))
        else {
            let answer = self.dispatch(conn, session, h, body.bytes());
            return self.answer(conn, h, answer);
        };
        let began = std::time::SystemTime::now();
        let timer = std::time::Instant::now();
        let sent_before = conn.bytes_out;
        conn.log_name.clear();
        let answer = self.dispatch(conn, session, h, body.bytes());
        // an upload's file is named in its answer, after the group
        let answered = match &answer {
            Ok(Answer::Reply(b)) if action == "upload" || action == "rename" => {
                FileIdReply::from_bytes(b).ok().map(|r| r.filename)
            }
            _ => None,
        };
        let flow = self.answer(conn, h, answer);
        let name = answered
            .or_else(|| crate::access_log::name_in_request(h.cmd, body.bytes()))
            .unwrap_or_else(|| std::mem::take(&mut conn.log_name));
        log.write(
            began,
            &conn.peer_ip(),
            action,
            &name,
            conn.status,
            timer.elapsed(),
            HEADER_LEN as i64 + h.pkg_len,
            conn.bytes_out - sent_before,
        );
        flow
    }
}

impl Storage {
    /// Send what `dispatch` came to, and say whether the connection goes on.
    fn answer(&self, conn: &mut Conn, h: Header, answer: Result<Answer, Fail>) -> Flow {
        match answer {
            Ok(Answer::Sent) => Flow::Continue,
            Ok(Answer::SentThenClose) => Flow::Close,
            Ok(Answer::Reply(body)) => fdfs_common::server::flow_after(conn.respond(0, &body)),
            Err(f) => {
                if let Some(e) = &f.malformed {
                    log_malformed(conn, h.cmd, e);
                }
                if f.code == 0 {
                    return Flow::Close;
                }
                // a well-formed request refused for want of room, a missing file or the like
                // is read to its end before the answer: a client that sends its whole file
                // before reading gets the status rather than a reset, and keeps the connection
                // (a malformed one, EINVAL, has no trustworthy length and is closed)
                let unread = (h.pkg_len as u64).saturating_sub(conn.body_read());
                let drained =
                    f.body_consumed() || (f.code != errno::EINVAL && conn.discard(unread).is_ok());
                if conn.respond_status(f.code).is_err()
                    || f.code == errno::EINVAL
                    || !drained
                    || f.closes()
                {
                    Flow::Close
                } else {
                    Flow::Continue
                }
            }
        }
    }
}
