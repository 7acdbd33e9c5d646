//! UPLOAD_FILE, UPLOAD_APPENDER_FILE and UPLOAD_SLAVE_FILE (docs/protocol/client-protocol.md
//! 3.1-3.3): the body streamed into an unnamed file in its final directory (or a trunk slot), the
//! CRC computed on the way, the file linked under its file ID only when complete.

use crate::binlog::op;
use crate::copies::Undo;
use crate::storage::{io_errno, Outcome, Storage};
use crate::store::{NameParts, NewFile};
use fdfs_common::codec::Message;
use fdfs_common::file_id::{slave_name, FilePayload, LogicalName, Source};
use fdfs_common::proto::cluster::stat;
use fdfs_common::proto::storage::{FileIdReply, UploadReq, UploadSlaveHead};
use fdfs_common::proto::{cmd, errno, valid_name_chars, Header, FILENAME_MAX};
use fdfs_common::refusal::Refusal;
use fdfs_common::server::Conn;
use std::io::{self};
use std::path::Path;

impl Storage {
    pub(crate) fn source(&self) -> Source {
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

    pub(crate) fn reserved_ok(&self, path_index: usize, size: i64) -> bool {
        let Some(r) = self.params.read().reserved else {
            return true;
        };
        self.store.has_room(path_index, r, size)
    }

    // ---- uploads ---------------------------------------------------------------------------

    /// UPLOAD_FILE, and UPLOAD_APPENDER_FILE (whose file can be appended to and modified).
    pub(super) fn upload_file(&self, conn: &mut Conn, h: Header) -> Outcome {
        let appender = h.cmd == cmd::UPLOAD_APPENDER_FILE;
        let total_idx = stat::TOTAL_UPLOAD_COUNT;
        if h.pkg_len < UploadReq::LEN as i64 {
            return Err(Refusal::invalid("body", format!("{} bytes", h.pkg_len)));
        }
        let mut fixed = [0u8; UploadReq::LEN];
        conn.read_exact(&mut fixed).map_err(|_| Refusal::early(0))?;
        let req = UploadReq::from_bytes(&fixed)?;
        if req.file_size < 0 || req.file_size != h.pkg_len - UploadReq::LEN as i64 {
            log::error!(
                "client ip: {}, file size {} != body length",
                conn.peer_ip(),
                req.file_size
            );
            return Err(Refusal::early(errno::EINVAL));
        }
        if !valid_name_chars(&req.ext) {
            log::error!(
                "client ip: {}, invalid file ext name: {}",
                conn.peer_ip(),
                req.ext
            );
            return Err(Refusal::early(errno::EINVAL));
        }
        if req.store_path_index != 0xFF && req.store_path_index as usize >= self.store.paths.len() {
            log::error!(
                "client ip: {}, store path index {} is invalid",
                conn.peer_ip(),
                req.store_path_index
            );
            return Err(Refusal::early(errno::EINVAL));
        }
        let reserved = self.params.read().reserved;
        let path_index = self
            .store
            .choose_path(req.store_path_index, reserved)
            .ok_or(Refusal::early(errno::ENOSPC))?;
        if let Err(code) = self.enough_members().and_then(|()| self.recordable()) {
            self.count(
                total_idx,
                false,
                Some((stat::TOTAL_UPLOAD_BYTES, req.file_size)),
            );
            return Err(Refusal::early(code));
        }
        if !self.reserved_ok(path_index, req.file_size) {
            self.count(
                total_idx,
                false,
                Some((stat::TOTAL_UPLOAD_BYTES, req.file_size)),
            );
            return Err(Refusal::early(errno::ENOSPC));
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
    ) -> Result<String, Refusal> {
        let subdir = self.subdir_for_upload(source, req.file_size);
        let (new, crc) = self.receive_new_file(
            conn,
            path_index,
            &self.store.subdir_path(path_index, subdir),
            req.file_size as u64,
        )?;
        let mtime = new.mtime();
        let parts = NameParts {
            path_index,
            subdir,
            source,
            timestamp: mtime as u32,
            size: req.file_size,
            appender,
            crc32: crc,
            x7,
        };
        self.commit_new_file(&new, &parts)
    }

    /// The sub directory a new file of `size` bytes goes to, as `file_distribute_path_mode`
    /// says.
    pub(crate) fn subdir_for_upload(&self, source: &Source, size: i64) -> (u32, u32) {
        if self.store.distribute_mode == 1 {
            // hash mode needs the name: use a provisional one as upstream does
            let provisional = FilePayload {
                source: source.clone(),
                timestamp: fdfs_common::now() as u32,
                size_field: size,
                crc32: self.store.random(),
            };
            self.store.choose_subdir(&provisional.encode_b27())
        } else {
            self.store.choose_subdir("")
        }
    }

    /// Link a complete new file under a fresh, unused name.
    pub(crate) fn commit_new_file(
        &self,
        new: &NewFile,
        parts: &NameParts,
    ) -> Result<String, Refusal> {
        let timestamp = i64::from(parts.timestamp);
        for _ in 0..10 {
            let name = self.store.make_name(parts);
            let path = self.store.data_dir(parts.path_index).join(&name[4..]);
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
                        return Err(Refusal::done(io_errno(&e)));
                    }
                    return Ok(name);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    log::error!("link to {} fail: {e}", path.display());
                    return Err(Refusal::done(io_errno(&e)));
                }
            }
        }
        Err(Refusal::done(errno::EEXIST))
    }

    pub(super) fn upload_slave_file(&self, conn: &mut Conn, h: Header) -> Outcome {
        if h.pkg_len <= UploadSlaveHead::LEN as i64 {
            return Err(Refusal::invalid("body", format!("{} bytes", h.pkg_len)));
        }
        let mut fixed = [0u8; UploadSlaveHead::LEN];
        conn.read_exact(&mut fixed).map_err(|_| Refusal::early(0))?;
        let head = UploadSlaveHead::from_bytes(&fixed)?;
        let l = head.master_len;
        if l <= 10
            || l >= FILENAME_MAX as i64
            || head.file_size < 0
            || checked_sum(&[UploadSlaveHead::LEN as i64, l, head.file_size]) != Some(h.pkg_len)
        {
            return Err(Refusal::invalid(
                "master_filename_len",
                format!("{l}, file size {}, body {}", head.file_size, h.pkg_len),
            ));
        }
        let mut mb = vec![0u8; l as usize];
        conn.read_exact(&mut mb).map_err(|_| Refusal::early(0))?;
        let master = String::from_utf8_lossy(&mb).into_owned();
        let size = head.file_size;
        let fail = |code| {
            self.count(
                stat::TOTAL_UPLOAD_COUNT,
                false,
                Some((stat::TOTAL_UPLOAD_BYTES, size)),
            );
            Refusal::early(code)
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
        let mtime = new.mtime();
        let linked = if use_link {
            let x7 = self.store.format_ext(&head.ext);
            let source = self.source();
            let parts = NameParts {
                path_index: ln.store_path_index,
                subdir,
                source: &source,
                timestamp: mtime as u32,
                size,
                appender: false,
                crc32: crc,
                x7: &x7,
            };
            self.commit_new_file(&new, &parts)
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
            return Err(Refusal::done(if e.kind() == io::ErrorKind::AlreadyExists {
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
}

/// The sum of lengths read from the wire, or `None` where it overflows (a hostile request can
/// announce any i64).
pub(super) fn checked_sum(parts: &[i64]) -> Option<i64> {
    parts.iter().try_fold(0i64, |sum, &p| sum.checked_add(p))
}

/// APPEND_FILE's and MODIFY_FILE's body: the fixed head, the file name (`name_len`) and the
/// content (`file_size`) must add up to the packet's length.
pub(super) fn body_adds_up(
    head_len: usize,
    name_len: i64,
    file_size: i64,
    pkg_len: i64,
) -> Result<(), Refusal> {
    if file_size < 0 || checked_sum(&[head_len as i64, name_len, file_size]) != Some(pkg_len) {
        return Err(Refusal::invalid(
            "file_size",
            format!("{file_size}, name {name_len}, body {pkg_len}"),
        ));
    }
    Ok(())
}
