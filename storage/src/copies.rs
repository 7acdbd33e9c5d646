//! `write_ack_copies = N` (rfdfs's own key; 1, the default, is upstream's behaviour): a change
//! is answered only once N members of the group, this one included, hold it.
//!
//! Nothing new travels between members: the change is a binlog line like any other, and each
//! peer's sync thread (woken as soon as the line is visible) pushes it over the existing sync
//! protocol, so a C peer counts as much as an rfdfs one. Each sync thread publishes how far
//! through our binlog its peer has answered; the worker that made the change waits until N-1
//! ACTIVE peers are past the change's last line, for up to `write_ack_timeout` seconds.
//!
//! When that does not happen the change is undone here and a line is written that brings every
//! peer back to this member's restored state (a delete for a new file, the whole old content for
//! an appender file, a create for a file whose delete is taken back), so a change that fails is
//! never visible anywhere once the sync threads have run, and the client gets
//! [`NOT_ENOUGH_COPIES`].

use crate::binlog::{op, Position};
use crate::storage::{io_errno, Storage};
use fdfs_common::proto::errno;
use fdfs_common::refusal::Refusal;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The status a client gets when fewer than `write_ack_copies` members could take a change:
/// EIO, which every client (the C library, fastdfs-client-java, py3fdfs) treats as a failed
/// request and none retries on its own.
pub const NOT_ENOUGH_COPIES: u8 = errno::EIO;

/// Something a delete removed, kept while the delete may be taken back.
pub(crate) enum Kept {
    /// a file (or link) moved into the store path's temp directory
    File {
        name: String,
        path: PathBuf,
        aside: PathBuf,
    },
    /// a trunk slot, zeroed but not yet given back: its old bytes
    Slot {
        name: String,
        trunk_path: PathBuf,
        offset: u64,
        bytes: Vec<u8>,
        block: fdfs_common::proto::trunk::TrunkInfo,
    },
}

/// How to take back a change that did not reach enough members.
pub(crate) enum Undo {
    /// files this request created: deleted again
    Created(Vec<String>),
    /// an appender file changed in place: its old length and the bytes it overwrote or cut off
    /// (at their offset) go back, and its whole content is sent to the peers again
    Content {
        name: String,
        path: PathBuf,
        len: u64,
        saved: Option<(u64, Saved)>,
    },
    /// what a delete removed, kept until the delete is confirmed (empty without
    /// `write_ack_copies`)
    Deleted(Vec<Kept>),
    /// a metadata file as it was before (`None`: there was none)
    Metadata {
        name: String,
        path: PathBuf,
        old: Option<Vec<u8>>,
    },
}

/// Bytes a change overwrites or cuts off, kept to be put back should it be undone: in memory up
/// to `SAVED_IN_MEMORY`, beyond in a file of the store path's temp directory (a truncate of
/// several GiB must not be held in memory; copy_file_range lets the file system share extents
/// where it can, so saving costs no copy on btrfs or XFS). The file goes when this is dropped.
pub(crate) enum Saved {
    Bytes(Vec<u8>),
    /// the bytes from `skip` on in `file`
    File {
        path: PathBuf,
        file: File,
        skip: u64,
        len: u64,
    },
}

const SAVED_IN_MEMORY: u64 = 1 << 20;

impl Saved {
    /// `len` bytes of `f` from `at`; beyond `SAVED_IN_MEMORY` into a new file at `temp`.
    pub(crate) fn of(temp: PathBuf, f: &File, at: u64, len: u64) -> io::Result<Saved> {
        if len <= SAVED_IN_MEMORY {
            return crate::store::read_at(f, at, len as usize).map(Saved::Bytes);
        }
        let path = temp;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        // from the block the range starts in: extents are shared only block by block
        let skip = at % 4096;
        let saved = Saved::File {
            path,
            file,
            skip,
            len,
        };
        if let Saved::File { file, .. } = &saved {
            copy_range(f, at - skip, file, 0, skip + len)?;
        }
        Ok(saved)
    }

    /// Write the saved bytes back into `f` at `at`.
    fn put_back(&self, f: &File, at: u64) -> io::Result<()> {
        match self {
            Saved::Bytes(b) => f.write_all_at(b, at),
            Saved::File {
                file, skip, len, ..
            } => copy_range(file, *skip, f, at, *len),
        }
    }
}

impl Drop for Saved {
    fn drop(&mut self) {
        if let Saved::File { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `len` bytes from `from` at `at` into `to` at `to_at`, in the kernel.
fn copy_range(from: &File, at: u64, to: &File, to_at: u64, len: u64) -> io::Result<()> {
    let (mut off_in, mut off_out) = (at as i64, to_at as i64);
    let mut left = len;
    while left > 0 {
        let want = left.min(1 << 30) as usize;
        let n = nix::fcntl::copy_file_range(from, Some(&mut off_in), to, Some(&mut off_out), want)
            .map_err(io::Error::from)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while its bytes were saved",
            ));
        }
        left -= n as u64;
    }
    Ok(())
}

impl Storage {
    fn copies_wanted(&self) -> usize {
        self.cfg.write_ack_copies.max(1) as usize
    }

    /// Whether changes wait for copies at all.
    pub(crate) fn acks_copies(&self) -> bool {
        self.copies_wanted() > 1
    }

    /// Before a change: refuse it at once when fewer than N members are ACTIVE, so that
    /// nothing is written that would only have to be undone.
    pub(crate) fn enough_members(&self) -> Result<(), u8> {
        let want = self.copies_wanted();
        if want <= 1 {
            return Ok(());
        }
        let have = self.active_peers().len() + 1;
        if have < want {
            self.copies.failed.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "write_ack_copies = {want} but only {have} member(s) of group {} are ACTIVE: \
                 change refused",
                self.group
            );
            return Err(NOT_ENOUGH_COPIES);
        }
        Ok(())
    }

    /// Wait until N-1 ACTIVE peers are past `end`; false after `write_ack_timeout`.
    fn wait_for_copies(&self, end: Position) -> bool {
        let need = self.copies_wanted() - 1;
        let deadline = Instant::now() + Duration::from_secs(self.cfg.write_ack_timeout);
        let mut reached = self.copies.reached.lock();
        loop {
            let peers = self.active_peers();
            let have = peers
                .iter()
                .filter(|p| reached.get(&p.id).is_some_and(|at| *at >= end))
                .count();
            if have >= need {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            // a peer turning ACTIVE or leaving is only seen through `members`: look again
            // now and then even when no sync thread moves
            let slice = (deadline - now).min(Duration::from_millis(200));
            self.copies.moved.wait_for(&mut reached, slice);
        }
    }

    /// After a change made by this request: answer once enough members hold it, or undo it
    /// and fail. Without `write_ack_copies` this only finishes a kept-aside delete.
    pub(crate) fn await_copies(&self, undo: Undo) -> Result<(), Refusal> {
        if !self.acks_copies() {
            self.forget_undo(undo);
            return Ok(());
        }
        let Some(end) = crate::binlog::last_end() else {
            self.forget_undo(undo);
            return Ok(()); // nothing was written: nothing to copy
        };
        if self.wait_for_copies(end) {
            self.copies.confirmed.fetch_add(1, Ordering::Relaxed);
            self.forget_undo(undo);
            return Ok(());
        }
        self.copies.failed.fetch_add(1, Ordering::Relaxed);
        log::error!(
            "fewer than write_ack_copies = {} members took the change in {} s; undoing it",
            self.copies_wanted(),
            self.cfg.write_ack_timeout
        );
        self.undo(undo);
        Err(Refusal::done(NOT_ENOUGH_COPIES))
    }

    /// The change stands: drop what was kept to undo it.
    fn forget_undo(&self, undo: Undo) {
        let Undo::Deleted(kept) = undo else { return };
        for k in kept {
            match k {
                Kept::File { aside, .. } => {
                    let _ = std::fs::remove_file(aside);
                }
                Kept::Slot { block, .. } => self.free_slot(&block),
            }
        }
    }

    fn undo(&self, undo: Undo) {
        let now = fdfs_common::now();
        match undo {
            Undo::Created(names) => {
                for name in names.iter().rev() {
                    if let Err(code) = self.remove_stored(name, now) {
                        log::error!("undo: delete {name} fail, errno: {code}");
                    }
                }
            }
            Undo::Content {
                name,
                path,
                len,
                saved,
            } => {
                let _g = self.lock_for(&name);
                let restored = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| {
                        f.set_len(len)?;
                        if let Some((at, bytes)) = &saved {
                            bytes.put_back(&f, *at)?;
                        }
                        self.sync_file(&f)
                    });
                // the peers take the whole restored file, whatever of the change they got
                let told = restored.and_then(|()| self.binlog.write(now, op::UPDATE, &name, ""));
                if let Err(e) = told {
                    log::error!("undo: restore {name} fail: {e}");
                }
            }
            Undo::Deleted(kept) => {
                for k in kept {
                    self.bring_back(k, now);
                }
            }
            Undo::Metadata { name, path, old } => {
                let _g = self.lock_for(&name);
                let told = match old {
                    Some(bytes) => self
                        .replace_file(&path, &bytes)
                        .and_then(|()| self.binlog.write(now, op::UPDATE, &name, "")),
                    None => match std::fs::remove_file(&path) {
                        Ok(()) => self.binlog.write(now, op::DELETE, &name, ""),
                        Err(_) => Ok(()),
                    },
                };
                if let Err(e) = told {
                    log::error!("undo: restore {name} fail: {e}");
                }
            }
        }
    }

    /// Take back the delete of one file: it is put back, and a line brings it back on the
    /// peers that deleted it (the others answer that they have it).
    fn bring_back(&self, k: Kept, now: i64) {
        match k {
            Kept::File { name, path, aside } => {
                let _g = self.lock_for(&name);
                let linked = std::fs::read_link(&aside).ok();
                if let Err(e) = std::fs::rename(&aside, &path) {
                    log::error!("undo: bring back {name} fail: {e}");
                    return;
                }
                let target = linked.as_deref().and_then(|t| self.logical_name_of(t));
                let told = self.sync_parent(&path).and_then(|()| match target {
                    Some(t) => self.binlog.write(now, op::LINK, &name, &t),
                    None => self.binlog.write(now, op::CREATE, &name, ""),
                });
                if let Err(e) = told {
                    log::error!("undo: bring back {name} fail: {e}");
                }
            }
            Kept::Slot {
                name,
                trunk_path,
                offset,
                bytes,
                ..
            } => {
                let _g = self.lock_for(&name);
                let put = self
                    .write_at(&trunk_path, &[(offset, &bytes)])
                    .and_then(|()| self.binlog.write(now, op::CREATE, &name, ""));
                if let Err(e) = put {
                    log::error!("undo: bring back {name} fail: {e}");
                }
            }
        }
    }

    /// Move a file about to be deleted aside (into the store path's temp directory, emptied
    /// at startup) instead of unlinking it, while its delete may still have to be taken back.
    pub(crate) fn keep_aside(&self, index: usize, path: &Path) -> Result<PathBuf, u8> {
        let aside = self.store.temp_path(index);
        std::fs::rename(path, &aside).map_err(|e| io_errno(&e))?;
        Ok(aside)
    }

    /// Delete a file this member holds, recorded for the peers.
    pub(crate) fn remove_stored(&self, name: &str, now: i64) -> Result<(), u8> {
        self.delete_stored(name, now, false).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_bytes_go_back_where_they_were_from_memory_or_a_file() {
        let dir = std::env::temp_dir().join(format!("rfdfs-saved-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let content: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 + i / 4096) as u8).collect();
        let path = dir.join("f");
        std::fs::write(&path, &content).unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        for (at, len) in [(10u64, 100u64), ((1 << 20) + 5, (2 << 20) - 5)] {
            let temp = dir.join("saved");
            let saved = Saved::of(temp.clone(), &f, at, len).unwrap();
            assert_eq!(matches!(saved, Saved::File { .. }), len > SAVED_IN_MEMORY);
            // the change: written over
            f.write_all_at(&vec![0xee; len as usize], at).unwrap();
            saved.put_back(&f, at).unwrap();
            assert!(
                std::fs::read(&path).unwrap() == content,
                "at {at}, {len} bytes"
            );
            drop(saved);
            assert!(!temp.exists(), "the saved file is left behind");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
