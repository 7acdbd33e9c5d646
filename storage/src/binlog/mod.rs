//! The binlog in `base_path/data/sync/` (docs/protocol/sync-and-storage-layout.md section 2): one
//! `<timestamp> <op> <name>[ <args>]\n` line per change, upper-case ops for changes that
//! started here. Each line is written whole at the end of the lines written so far (a
//! positional write under the writers' lock); a write that fails part way (a full or failing
//! disk) is cut off again, so no torn line ever stands in the middle of the file, and the
//! change it was for is refused. While lines cannot be written, every change is refused (ENOSPC
//! for a full file system, EIO otherwise) and reads go on; the first write that succeeds again
//! ends that, without a restart.
//!
//! This file is the writer; `record` is a line as a value, `files` the files on disk and the
//! index, `tombstones` what is remembered of deletes.

mod files;
mod reader;
mod record;
mod tombstones;

pub use files::{binlog_files, binlog_name, gz_name, tail_records, INDEX_FILE};
use files::{open_for_lines, read_index, repair_torn_tail};
pub use reader::{BinlogReader, Next};
pub use record::{for_each_line, for_each_record, op, parse_line, Position, Record};

use fdfs_common::sync::{Condvar, Mutex};
use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const ROTATE_SIZE: u64 = 1 << 30;
/// rfdfs's own: where the binlog ended when it was last flushed (and at a clean exit). A binlog
/// found shorter at startup lost lines that may not have reached every peer (ignored by
/// upstream).
pub const END_FILE: &str = "rfdfs_binlog_end.dat";
/// rfdfs's own: the time before which deletes were forgotten, so that a restart does not load
/// the tombstones of every delete the binlog holds (ignored by upstream)
pub const TOMBSTONE_HORIZON_FILE: &str = "rfdfs_tombstone_horizon.dat";

thread_local! {
    /// Where the last line this thread wrote ends. A worker serves one request at a time, so
    /// after a command this covers every line the command wrote (`write_ack_copies` waits until
    /// the peers are past it) without each command handing positions back.
    static LAST_END: std::cell::Cell<Option<Position>> = const { std::cell::Cell::new(None) };
}

/// Forget this thread's last written position (before a request is served).
pub fn clear_last_end() {
    LAST_END.with(|c| c.set(None));
}

/// The end of the last line this thread wrote since `clear_last_end`, if any.
pub fn last_end() -> Option<Position> {
    LAST_END.with(|c| c.get())
}

struct Current {
    index: u32,
    file: Arc<File>,
    /// where the lines written so far end (the file may be longer after a failed write: see
    /// `torn`)
    size: u64,
    /// a failed write may have left bytes past `size` that could not be cut off yet
    torn: bool,
    /// while lines cannot be written: the status changes are refused with
    refusing: Option<u8>,
    compress_index: u32,
    /// lines written so far
    written: u64,
    /// start offsets (in this file) of intent lines whose change is still being applied
    pending: BTreeSet<u64>,
}

impl Current {
    /// The current file up to its first line whose change is not applied yet.
    fn visible_end(&self) -> Position {
        (
            self.index,
            self.pending.first().copied().unwrap_or(self.size),
        )
    }
}

pub struct Binlog {
    dir: PathBuf,
    cur: Mutex<Current>,
    /// woken whenever lines become visible to sync readers, so that a sync thread sends a
    /// change at once instead of at its next poll (`write_ack_copies` waits on that)
    visible: Condvar,
    /// lines known to be on disk; one fdatasync covers every line written before it
    synced: Mutex<u64>,
    /// fdatasync each line before its change is made (`fsync_after_written_bytes` > 0);
    /// otherwise lines reach the disk on the daemon's `sync_binlog_buff_interval` flush
    durable: bool,
    /// name -> time of its newest delete recorded here (source or replica)
    deleted: Mutex<std::collections::HashMap<String, i64>>,
    /// names whose delete a later create or link of this binlog took back (`write_ack_copies`
    /// undoing a delete no peer confirmed), with that line's time: a delete older than it,
    /// passed on by a peer that got the delete and not yet the take-back, is stale
    recreated: Mutex<std::collections::HashMap<String, i64>>,
    /// deletes before this time are forgotten (persisted in `TOMBSTONE_HORIZON_FILE`)
    horizon: Mutex<i64>,
    /// whether deletes are remembered at all: not while this storage is alone in its group
    keep_tombstones: std::sync::atomic::AtomicBool,
    /// changes refused because their line could not be written
    refused: std::sync::atomic::AtomicU64,
    /// where the binlog ended when it was opened
    opened: Position,
    /// damage found since the start
    damage: std::sync::atomic::AtomicU64,
    /// lines written again for files whose lines damage had lost
    rerecorded: std::sync::atomic::AtomicU64,
    /// the binlog was found shorter at startup than when last flushed
    lost_lines: std::sync::atomic::AtomicBool,
}

/// The status a change is refused with when its line cannot be written: ENOSPC for a full file
/// system (or quota), which clients report as such, EIO for anything else.
pub fn refusal_status(e: &std::io::Error) -> u8 {
    use fdfs_common::proto::errno;
    match e.raw_os_error() {
        Some(nix::libc::ENOSPC) | Some(nix::libc::EDQUOT) => errno::ENOSPC,
        _ => errno::EIO,
    }
}

impl Binlog {
    pub fn open(sync_dir: &Path, durable: bool) -> std::io::Result<Binlog> {
        std::fs::create_dir_all(sync_dir)?;
        let read = read_index(sync_dir);
        let (index, compress_index) = (read.current, read.compress);
        let path = sync_dir.join(binlog_name(index));
        repair_torn_tail(&path)?;
        let file = open_for_lines(&path)?;
        let size = file.metadata()?.len();
        let b = Binlog {
            opened: (index, size),
            damage: std::sync::atomic::AtomicU64::new(0),
            rerecorded: std::sync::atomic::AtomicU64::new(0),
            lost_lines: std::sync::atomic::AtomicBool::new(false),
            dir: sync_dir.to_path_buf(),
            cur: Mutex::new(Current {
                index,
                file: Arc::new(file),
                size,
                torn: false,
                refusing: None,
                compress_index,
                written: 0,
                pending: BTreeSet::new(),
            }),
            visible: Condvar::new(),
            synced: Mutex::new(0),
            durable,
            deleted: Mutex::new(std::collections::HashMap::new()),
            recreated: Mutex::new(std::collections::HashMap::new()),
            horizon: Mutex::new(
                std::fs::read_to_string(sync_dir.join(TOMBSTONE_HORIZON_FILE))
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(0),
            ),
            keep_tombstones: std::sync::atomic::AtomicBool::new(true),
            refused: std::sync::atomic::AtomicU64::new(0),
        };
        let recorded_end = crate::state_file::read_kv(&sync_dir.join(END_FILE))
            .ok()
            .and_then(|kv| {
                let n = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok());
                Some((u32::try_from(n("binlog_index")?).ok()?, n("binlog_size")?))
            });
        if let Some(was) = recorded_end.filter(|was| *was > (index, size)) {
            b.note_damage(&format!(
                "the binlog ended at binlog.{:03} offset {} when last flushed, and now ends at \
                 binlog.{index:03} offset {size}: lines were lost",
                was.0, was.1
            ));
            b.lost_lines
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(problem) = read.problem {
            b.note_damage(&format!(
                "{problem}; binlog.{index:03} is the file written from now on, the binlog index \
                 is written again"
            ));
        }
        b.write_index(index, compress_index)?;
        b.load_deletes(index);
        Ok(b)
    }

    /// Whether the binlog was found shorter at startup than when it was last flushed.
    pub fn lost_lines_before_open(&self) -> bool {
        self.lost_lines.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Where the binlog ended when it was opened: a peer's mark past it points at lines this
    /// binlog no longer has.
    pub fn opened_end(&self) -> Position {
        self.opened
    }

    /// Damage found (a binlog cut short, lost files, a lost index): logged, counted for
    /// `/metrics`. Whoever found it repairs what it can.
    pub fn note_damage(&self, what: &str) {
        self.damage
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        log::error!("binlog damaged: {what}");
    }

    /// Damage found since the start.
    pub fn damage_count(&self) -> u64 {
        self.damage.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `n` lines written again for files whose lines damage had lost.
    pub fn note_rerecorded(&self, n: u64) {
        self.rerecorded
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Lines written again since the start.
    pub fn rerecorded_count(&self) -> u64 {
        self.rerecorded.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write_index(&self, index: u32, compress: u32) -> std::io::Result<()> {
        crate::store::write_atomic(
            &self.dir.join(INDEX_FILE),
            format!("current_write={index}\ncurrent_compress={compress}\n").as_bytes(),
        )
    }

    /// Append one record for a change already made (on disk when this returns, in durable
    /// mode). `args` is the rest after the name (`"3 5"`, a second name, or empty). Concurrent
    /// writers share one fdatasync. An error means the line is not in the binlog.
    pub fn write(&self, timestamp: i64, op: char, name: &str, args: &str) -> std::io::Result<()> {
        self.intent(timestamp, op, name, args).map(drop)
    }

    /// Record a change about to be made. The line is written (and in durable mode on disk)
    /// when this returns `Ok`, so a crash cannot leave the change without its line; sync
    /// readers see it only once the returned guard is dropped (the change made, or given up:
    /// the sender then finds nothing to send). An `Err` means the change must not be made: its
    /// line is not in the binlog (or, in durable mode, may not be on disk).
    pub fn intent(
        &self,
        timestamp: i64,
        op: char,
        name: &str,
        args: &str,
    ) -> std::io::Result<Intent<'_>> {
        let (seq, start) = self.append(timestamp, op, name, args).inspect_err(|_| {
            self.refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })?;
        let intent = Intent {
            binlog: self,
            start,
        };
        self.remember(timestamp, op, name);
        if self.durable {
            self.sync_to(seq)?;
        }
        Ok(intent)
    }

    /// Whether a change can be recorded now: `Ok` while lines could be written last time;
    /// after a failure, a probe (bytes written past the end and cut off again) tells whether
    /// there is room again. `Err` is the status to refuse the change with.
    pub fn writable(&self) -> Result<(), u8> {
        let mut cur = self.cur.lock();
        let Some(code) = cur.refusing else {
            return Ok(());
        };
        let probe = [b'\n'; 256];
        let room = Self::put(&mut cur, &probe).and_then(|()| cur.file.set_len(cur.size));
        match room {
            Ok(()) => {
                cur.torn = false;
                self.writable_again(&mut cur);
                Ok(())
            }
            Err(e) => {
                cur.torn = true;
                self.refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(if code == refusal_status(&e) {
                    code
                } else {
                    refusal_status(&e)
                })
            }
        }
    }

    /// The status changes are refused with while lines cannot be written (`None`: writable).
    pub fn refusing(&self) -> Option<u8> {
        self.cur.lock().refusing
    }

    /// Changes refused since the start because their line could not be written.
    pub fn refused_changes(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How far sync readers may read: the current file up to its first line whose change is
    /// not applied yet.
    pub fn visible_end(&self) -> (u32, u64) {
        self.cur.lock().visible_end()
    }

    /// Wait up to `timeout` for the visible end to move past `at`; returns the visible end.
    pub fn wait_visible_past(&self, at: Position, timeout: std::time::Duration) -> Position {
        let mut cur = self.cur.lock();
        if cur.visible_end() == at {
            self.visible.wait_for(&mut cur, timeout);
        }
        cur.visible_end()
    }

    fn sync_to(&self, seq: u64) -> std::io::Result<()> {
        let mut synced = self.synced.lock();
        if *synced >= seq {
            return Ok(());
        }
        let (file, target) = {
            let cur = self.cur.lock();
            (Arc::clone(&cur.file), cur.written)
        };
        if let Err(e) = file.sync_data() {
            // what the failed fdatasync held may never reach the disk: refuse until a write
            // (and its fdatasync) succeeds again
            self.refuse_from_now(&mut self.cur.lock(), &e);
            return Err(e);
        }
        *synced = target;
        Ok(())
    }

    fn append(
        &self,
        timestamp: i64,
        op: char,
        name: &str,
        args: &str,
    ) -> std::io::Result<(u64, u64)> {
        let line = if args.is_empty() {
            format!("{timestamp} {op} {name}\n")
        } else {
            format!("{timestamp} {op} {name} {args}\n")
        };
        let mut cur = self.cur.lock();
        // a file is left only once every change it records is applied, so that a reader that
        // moved past it never misses a line that became visible later
        if cur.size >= ROTATE_SIZE && cur.pending.is_empty() {
            self.rotate(&mut cur);
        }
        if let Err(e) = Self::put(&mut cur, line.as_bytes()) {
            self.refuse_from_now(&mut cur, &e);
            return Err(e);
        }
        self.writable_again(&mut cur);
        let start = cur.size;
        cur.pending.insert(start);
        cur.size += line.len() as u64;
        cur.written += 1;
        let end = (cur.index, cur.size);
        LAST_END.with(|c| c.set(Some(end)));
        Ok((cur.written, start))
    }

    /// Write `bytes` where the lines written so far end. A write that fails part way is cut
    /// off again (or, if that fails too, before the next write), so what follows always
    /// starts at a line start.
    fn put(cur: &mut Current, bytes: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        if cur.torn {
            cur.file.set_len(cur.size)?;
            cur.torn = false;
        }
        if let Err(e) = cur.file.write_all_at(bytes, cur.size) {
            cur.torn = cur.file.set_len(cur.size).is_err();
            return Err(e);
        }
        Ok(())
    }

    /// A line could not be written: from now on changes are refused, said once in the log.
    fn refuse_from_now(&self, cur: &mut Current, e: &std::io::Error) {
        if cur.refusing.is_none() {
            log::error!(
                "write binlog {} fail: {e}; writes are refused until the binlog can grow \
                 again (reads go on)",
                self.dir.join(binlog_name(cur.index)).display()
            );
        }
        cur.refusing = Some(refusal_status(e));
    }

    fn writable_again(&self, cur: &mut Current) {
        if cur.refusing.take().is_some() {
            log::info!(
                "binlog is writable again: writes are accepted ({} refused meanwhile)",
                self.refused_changes()
            );
        }
    }

    fn rotate(&self, cur: &mut Current) {
        // a file already there holds lines (a binlog index that was lost or restored from a
        // backup): never written over, the next free index is taken
        let mut next = cur.index + 1;
        while self.dir.join(binlog_name(next)).exists() || gz_name(&self.dir, next).exists() {
            self.note_damage(&format!(
                "binlog.{next:03} exists already at the rotation of binlog.{:03}; kept, the \
                 next file is written after it",
                cur.index
            ));
            next += 1;
        }
        let path = self.dir.join(binlog_name(next));
        match open_for_lines(&path) {
            Ok(f) => {
                let _ = cur.file.sync_all();
                cur.file = Arc::new(f);
                cur.index = next;
                cur.size = 0;
                cur.torn = false;
                if let Err(e) = self.write_index(next, cur.compress_index) {
                    log::error!("write binlog index fail: {e}");
                }
            }
            Err(e) => log::error!("open binlog {} fail: {e}", path.display()),
        }
    }

    fn done(&self, start: u64) {
        self.cur.lock().pending.remove(&start);
        self.visible.notify_all();
    }

    /// Make what was written durable (the daemon's `sync_binlog_buff_interval` flush, and at
    /// exit); a failure is logged, since no answer waited for it. With `record_end`, where the
    /// binlog ends is then written to `END_FILE`.
    pub fn sync(&self, record_end: bool) {
        let (file, end) = {
            let cur = self.cur.lock();
            (Arc::clone(&cur.file), (cur.index, cur.size))
        };
        if let Err(e) = file.sync_data() {
            log::error!("fsync binlog fail: {e}");
            return;
        }
        if record_end {
            let text = format!("binlog_index={}\nbinlog_size={}\n", end.0, end.1);
            // a full base_path is reported by the binlog itself
            let _ = crate::store::write_atomic(&self.dir.join(END_FILE), text.as_bytes());
        }
    }

    /// Whether no change was ever recorded here (nothing to copy to a new group member).
    pub fn is_empty(&self) -> bool {
        let cur = self.cur.lock();
        cur.index == 0 && cur.size == 0
    }

    pub fn current_index(&self) -> u32 {
        self.cur.lock().index
    }

    /// Record in the index file that the files below `index` are gzip'ed (upstream's
    /// `current_compress`, which its storage reads on a takeover).
    pub fn set_compressed_below(&self, index: u32) {
        let mut cur = self.cur.lock();
        if cur.compress_index == index {
            return;
        }
        cur.compress_index = index;
        if let Err(e) = self.write_index(cur.index, index) {
            log::error!("write binlog index fail: {e}");
        }
    }
}

/// A change being applied: its line becomes visible to sync readers when this is dropped.
pub struct Intent<'a> {
    binlog: &'a Binlog,
    start: u64,
}

impl Drop for Intent<'_> {
    fn drop(&mut self) {
        self.binlog.done(self.start);
    }
}

#[cfg(test)]
mod tests {
    use super::files::IndexRead;
    use super::*;

    #[test]
    fn tombstones_are_loaded_and_forgotten_by_age() {
        let dir = std::env::temp_dir().join(format!("rfdfs-tombstones-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let b = Binlog::open(&dir, true).unwrap();
        b.write(10, 'D', "M00/00/00/a", "").unwrap();
        b.write(20, 'd', "M00/00/00/b", "").unwrap();
        b.write(30, 'C', "M00/00/00/c", "").unwrap();
        drop(b);
        let b = Binlog::open(&dir, true).unwrap();
        assert_eq!(b.deleted_at("M00/00/00/a"), Some(10));
        assert_eq!(b.deleted_at("M00/00/00/b"), Some(20));
        assert_eq!(b.deleted_at("M00/00/00/c"), None);
        assert_eq!(b.forget_deletes_before(20), 1);
        assert_eq!(b.deleted_at("M00/00/00/a"), None);
        assert_eq!(b.deleted_at("M00/00/00/b"), Some(20));
        // a restart does not bring forgotten deletes back
        drop(b);
        let b = Binlog::open(&dir, true).unwrap();
        assert_eq!(b.deleted_at("M00/00/00/a"), None);
        assert_eq!(b.deleted_at("M00/00/00/b"), Some(20));
        // a storage alone in its group remembers no deletes
        b.keep_tombstones(false);
        b.write(40, 'D', "M00/00/00/d", "").unwrap();
        assert_eq!(b.deleted_at("M00/00/00/d"), None);
        b.keep_tombstones(true);
        b.write(41, 'D', "M00/00/00/e", "").unwrap();
        assert_eq!(b.deleted_at("M00/00/00/e"), Some(41));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn intent_lines_are_durable_but_hidden_until_applied() {
        let dir = std::env::temp_dir().join(format!("rfdfs-binlog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let b = Binlog::open(&dir, true).unwrap();
        b.write(1, 'C', "M00/00/00/a", "").unwrap();
        let first_end = b.visible_end().1;
        let pending = b.intent(2, 'C', "M00/00/00/b", "").unwrap();
        b.write(3, 'D', "M00/00/00/c", "").unwrap();
        // on disk already, but readers stop before the change that is still being applied
        assert_eq!(
            std::fs::read_to_string(dir.join("binlog.000"))
                .unwrap()
                .lines()
                .count(),
            3
        );
        assert_eq!(b.visible_end(), (0, first_end));
        drop(pending);
        assert_eq!(
            b.visible_end().1,
            std::fs::metadata(dir.join("binlog.000")).unwrap().len()
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_torn_last_line_is_cut() {
        let dir = std::env::temp_dir().join(format!("rfdfs-binlog-torn-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("binlog.000"), "1 C M00/00/00/a\n2 C M00/0").unwrap();
        let b = Binlog::open(&dir, true).unwrap();
        b.write(3, 'C', "M00/00/00/c", "").unwrap();
        let text = std::fs::read_to_string(dir.join("binlog.000")).unwrap();
        assert_eq!(text, "1 C M00/00/00/a\n3 C M00/00/00/c\n");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_lost_garbled_or_stale_index_follows_the_files() {
        let dir = std::env::temp_dir().join(format!("rfdfs-index-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // a new storage: nothing there, nothing wrong
        assert_eq!(
            read_index(&dir),
            IndexRead {
                current: 0,
                compress: 0,
                problem: None
            }
        );
        std::fs::write(gz_name(&dir, 0), b"").unwrap();
        std::fs::write(dir.join("binlog.001"), "1 C M00/00/00/a\n").unwrap();
        std::fs::write(dir.join("binlog.002"), "2 C M00/00/00/b\n").unwrap();
        // lost: the newest file is written, the compressed ones are counted
        let lost = read_index(&dir);
        assert_eq!((lost.current, lost.compress), (2, 1));
        assert!(lost.problem.unwrap().contains("lost"));
        // garbled
        std::fs::write(dir.join(INDEX_FILE), "current_write=x\n").unwrap();
        let garbled = read_index(&dir);
        assert_eq!(garbled.current, 2);
        assert!(garbled.problem.unwrap().contains("garbled"));
        // older than the files
        std::fs::write(
            dir.join(INDEX_FILE),
            "current_write=1\ncurrent_compress=1\n",
        )
        .unwrap();
        let stale = read_index(&dir);
        assert_eq!((stale.current, stale.compress), (2, 1));
        assert!(stale.problem.is_some());
        // right
        std::fs::write(
            dir.join(INDEX_FILE),
            "current_write=2\ncurrent_compress=1\n",
        )
        .unwrap();
        assert_eq!(read_index(&dir).problem, None);
        // opening writes the index again, and a rotation never writes over a file there is
        std::fs::remove_file(dir.join(INDEX_FILE)).unwrap();
        let b = Binlog::open(&dir, false).unwrap();
        assert_eq!(b.current_index(), 2);
        assert_eq!(b.damage_count(), 1);
        std::fs::write(dir.join("binlog.003"), "3 C M00/00/00/c\n").unwrap();
        b.rotate(&mut b.cur.lock());
        assert_eq!(b.current_index(), 4);
        assert_eq!(
            std::fs::read_to_string(dir.join("binlog.003")).unwrap(),
            "3 C M00/00/00/c\n"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_binlog_shorter_than_when_last_flushed_lost_lines() {
        let dir = std::env::temp_dir().join(format!("rfdfs-end-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let b = Binlog::open(&dir, false).unwrap();
        b.write(1, 'C', "M00/00/00/a", "").unwrap();
        b.write(2, 'C', "M00/00/00/b", "").unwrap();
        b.sync(true);
        drop(b);
        assert!(!Binlog::open(&dir, false).unwrap().lost_lines_before_open());
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("binlog.000"))
            .unwrap();
        f.set_len(16).unwrap();
        let b = Binlog::open(&dir, false).unwrap();
        assert!(b.lost_lines_before_open());
        assert_eq!(b.damage_count(), 1);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn parse_records() {
        let r = parse_line("1795476250 A M01/00/01/x.log 3 5").unwrap();
        assert_eq!(
            (r.op, r.name.as_str(), r.args.as_str()),
            ('A', "M01/00/01/x.log", "3 5")
        );
        assert!(parse_line("1795476250 L  M01/00/01/x.bin").is_none());
        assert!(parse_line("1795476250 l ").is_none());
        assert!(parse_line("garbage").is_none());
    }
}
