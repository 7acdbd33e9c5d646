//! The trunk binlog between the trunk server and the members: the trunk server pushes new lines
//! to each member every 100 ms from a mark per member and checks now and then that the member's
//! copy is as long as what it pushed (TRUNK_SYNC_BINLOG, TRUNK_TRUNCATE_BINLOG_FILE); a member
//! appends what it is sent and keeps a bounded number of backups.

use super::server::TAKEOVER_MARKER;
use crate::storage::{io_errno, Outcome, Storage};
use fdfs_common::codec::Message;
use fdfs_common::codec::Reader;
use fdfs_common::net::{self, NetError};
use fdfs_common::proto::cluster::Brief;
use fdfs_common::proto::trunk::{TrunkBinlogLines, TrunkBinlogSize};
use fdfs_common::proto::{cmd, errno};
use fdfs_common::refusal::Refusal;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// How often the trunk server checks that a member's copy of the trunk binlog is as long as
/// what it pushed there.
const TRUNK_COPY_CHECK: std::time::Duration = std::time::Duration::from_secs(10);

impl Storage {
    /// The trunk server's progress in pushing its trunk binlog to member `id` (upstream's
    /// names: `data/trunk/<ip>_<port>.mark`, `<id>.mark` with storage ids).
    fn trunk_mark_path(&self, id: &str) -> PathBuf {
        if self.params.read().use_storage_id {
            self.trunk_dir().join(format!("{id}.mark"))
        } else {
            self.trunk_dir()
                .join(format!("{id}_{}.mark", self.cfg.server.port))
        }
    }

    /// One round of the trunk server's binlog push (TRUNK_SYNC_BINLOG): every other member gets
    /// the lines past its mark, whole lines only, a truncate (TRUNK_TRUNCATE_BINLOG_FILE) first
    /// when it starts from the beginning. A member that fails is retried next round.
    pub fn push_trunk_binlog(&self) {
        if !self.is_trunk_server() {
            return;
        }
        // a member is sent at most about 256 KiB of whole lines a round, read from its mark on:
        // nothing is read for a member that has everything
        const CHUNK: u64 = 256 * 1024;
        let _push = self.trunk_push_lock.lock();
        let Ok(binlog) = File::open(self.trunk_dir().join("binlog")) else {
            return;
        };
        let Ok(len) = binlog.metadata().map(|m| m.len()) else {
            return;
        };
        let me = self.my_id.read().clone();
        let members: Vec<Brief> = self
            .members
            .read()
            .iter()
            .filter(|b| b.id != me && b.status == fdfs_common::proto::status::ACTIVE)
            .cloned()
            .collect();
        // a member that was away may come back with its copy cut short: checked again
        self.trunk_copies_checked
            .lock()
            .retain(|id, _| members.iter().any(|m| m.id == *id));
        for m in members {
            let mark = self.trunk_mark_path(&m.id);
            // what this run pushed comes first: a mark that could not be written must not
            // make the same lines go again (the member would hold them twice)
            let pushed = self.trunk_pushed.lock().get(&m.id).copied();
            let offset = pushed
                .or_else(|| {
                    std::fs::read_to_string(&mark).ok().and_then(|t| {
                        t.lines()
                            .find_map(|l| l.strip_prefix("binlog_offset="))
                            .and_then(|v| v.trim().parse::<u64>().ok())
                    })
                })
                .unwrap_or(0)
                .min(len);
            if offset == len {
                continue;
            }
            let offset = self.trunk_copy_agrees(&m, offset);
            let read = |n: u64| {
                let mut buf = vec![0u8; n as usize];
                binlog.read_exact_at(&mut buf, offset).map(|_| buf)
            };
            let mut lines = match read(CHUNK.min(len - offset)) {
                Ok(b) => b,
                Err(e) => {
                    log::error!("read trunk binlog fail: {e}");
                    return;
                }
            };
            if !lines.contains(&b'\n') && (lines.len() as u64) < len - offset {
                // a line longer than the window: up to the end
                lines = match read(len - offset) {
                    Ok(b) => b,
                    Err(_) => continue,
                };
            }
            let Some(whole) = lines.iter().rposition(|&c| c == b'\n').map(|p| p + 1) else {
                continue; // only a line still being written
            };
            let chunk_end = offset + whole as u64;
            match self.send_trunk_lines(&m, offset == 0, &lines[..whole]) {
                Ok(()) => {
                    self.trunk_pushed.lock().insert(m.id.clone(), chunk_end);
                    let text = format!("binlog_offset={chunk_end}\n");
                    let _ = crate::state_file::save(&mark, text.as_bytes());
                }
                Err(e) => log::warn!("push trunk binlog to {}:{} fail: {e}", m.ip, m.port),
            }
        }
    }

    /// The offset to push member `m`'s copy of the trunk binlog from: its mark, unless the copy
    /// is not that long (cut short, or replaced): then it gets the whole binlog again. Asked
    /// (TRUNK_GET_BINLOG_SIZE, which C storages answer too) at the first push and every
    /// `TRUNK_COPY_CHECK` after; lines appended to a copy shorter than the mark would sit at
    /// the wrong place in it, and a member elected trunk server from such a copy would hand
    /// out slots in use.
    fn trunk_copy_agrees(&self, m: &Brief, offset: u64) -> u64 {
        if offset == 0 {
            return 0;
        }
        let due = self
            .trunk_copies_checked
            .lock()
            .get(&m.id)
            .is_none_or(|at| at.elapsed() >= TRUNK_COPY_CHECK);
        if !due {
            return offset;
        }
        let Ok(port) = u16::try_from(m.port) else {
            return offset;
        };
        let asked = self.pooled_request(&m.ip, port, |s| {
            net::request(s, cmd::TRUNK_GET_BINLOG_SIZE, &[])
        });
        let Ok(size) = asked.and_then(|b| TrunkBinlogSize::from_bytes(&b).map_err(NetError::from))
        else {
            return offset; // asked again at the next push
        };
        self.trunk_copies_checked
            .lock()
            .insert(m.id.clone(), std::time::Instant::now());
        if u64::try_from(size.size) == Ok(offset) {
            return offset;
        }
        self.binlog.note_damage(&format!(
            "storage {}'s copy of the trunk binlog is {} bytes, {offset} were pushed to it: it \
             gets the trunk binlog again from the start",
            m.id, size.size
        ));
        0
    }

    fn send_trunk_lines(&self, m: &Brief, from_start: bool, lines: &[u8]) -> Result<(), NetError> {
        let port = u16::try_from(m.port).map_err(|_| NetError::Status(errno::EINVAL))?;
        self.pooled_request(&m.ip, port, |s| {
            if from_start {
                net::request(s, cmd::TRUNK_TRUNCATE_BINLOG_FILE, &[])?;
            }
            net::request(s, cmd::TRUNK_SYNC_BINLOG, lines)
        })
        .map(|_| ())
    }

    /// TRUNK_SYNC_BINLOG (30), on a member: the trunk server's next whole lines.
    pub(crate) fn trunk_sync_binlog(&self, body: &[u8]) -> Outcome {
        let lines = TrunkBinlogLines::from_bytes(body)?;
        self.refuse_on_trunk_server()?;
        std::fs::create_dir_all(self.trunk_dir()).map_err(|e| Refusal::done(io_errno(&e)))?;
        let _ = std::fs::remove_file(self.trunk_dir().join(TAKEOVER_MARKER));
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.trunk_dir().join("binlog"))
            .map_err(|e| Refusal::done(io_errno(&e)))?;
        let before = f.metadata().map_err(|e| Refusal::done(io_errno(&e)))?.len();
        let written = f
            .write_all(lines.text.as_bytes())
            .and_then(|()| self.sync_file(&f));
        if let Err(e) = written {
            // the trunk server sends these lines again: none may stay half written before them
            let _ = f.set_len(before);
            return Err(Refusal::done(io_errno(&e)));
        }
        Ok(Vec::new())
    }

    /// TRUNK_TRUNCATE_BINLOG_FILE (33), on a member: the trunk server starts its push from the
    /// beginning. The old binlog is kept as `binlog.<YYYYmmddHHMMSS>` beside it.
    pub(crate) fn trunk_truncate_binlog_file(&self, body: &[u8]) -> Outcome {
        Reader::new(body).finish()?;
        self.refuse_on_trunk_server()?;
        let path = self.trunk_dir().join("binlog");
        let _ = std::fs::remove_file(self.trunk_dir().join(TAKEOVER_MARKER));
        // a snapshot describes the binlog it was written beside, never the one coming
        let _ = std::fs::remove_file(self.trunk_snapshot_path());
        let keep = self.params.read().trunk.binlog_max_backups as usize;
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
            if keep == 0 {
                let f = OpenOptions::new().write(true).open(&path);
                f.and_then(|f| f.set_len(0))
                    .map_err(|e| Refusal::done(io_errno(&e)))?;
            } else {
                let stamp =
                    fdfs_common::log::format_time(fdfs_common::now()).replace(['-', ' ', ':'], "");
                let backup = self.trunk_dir().join(format!("binlog.{stamp}"));
                std::fs::rename(&path, &backup).map_err(|e| Refusal::done(io_errno(&e)))?;
                self.prune_trunk_binlog_backups(keep);
            }
        }
        Ok(Vec::new())
    }

    /// Keep the newest `keep` dated trunk binlog backups.
    fn prune_trunk_binlog_backups(&self, keep: usize) {
        let Ok(dir) = std::fs::read_dir(self.trunk_dir()) else {
            return;
        };
        let mut backups: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix("binlog."))
                    .is_some_and(|d| d.len() == 14 && d.bytes().all(|c| c.is_ascii_digit()))
            })
            .collect();
        backups.sort();
        let excess = backups.len().saturating_sub(keep);
        for old in &backups[..excess] {
            let _ = std::fs::remove_file(old);
        }
    }
}
