//! What the group holds, listed and counted from this member's binlog (issue 32).
//!
//! Every member's binlog names every file it holds, its own uploads (upper-case lines) and
//! those it received (lower case). The index is derived from it alone: a follower thread reads
//! the binlog as a sync thread does, from where the index is complete, and applies each line
//! (`index.rs` has the table). Nothing new is written on the upload path, and nothing is kept
//! that the binlog cannot give back: a missing or damaged index is rebuilt by reading the binlog
//! from its start.
//!
//! On disk, `base_path/data/listing/<group>.list` (`run_file.rs`), every live file in name
//! order as of a binlog position; in memory, the changes since (merged into a new run file
//! every [`merge_after`] changes, after [`MERGE_IDLE`] with changes waiting, and at a clean
//! stop) and one name in 128 of the run file. A listing reads the run file from where it
//! starts, merged with the changes: name order, so a resume token (the last name a page
//! examined) never lists a file twice nor misses one that existed for the whole scan.
//!
//! Reconcile compares the index with the files (`against_disk.rs`) and corrects it where the
//! binlog led it astray (a lost line, files removed or restored by hand).
//!
//! Before a listing answers, the follower has applied every line the binlog had when the request
//! came (waited for up to [`CATCH_UP_WAIT`]): a listing after an upload here shows it.

pub mod against_disk;
mod bloom;
pub mod entry;
pub mod follower;
pub mod index;
mod query;
mod run_file;

use crate::binlog::Position;
use fdfs_common::sync::{Condvar, Mutex, RwLock};
use index::Index;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Merge the changes into a new run file once this many are held, or an eighth of the files
/// listed if that is more, up to [`MERGE_MOST`]: a merge writes every file again, so waiting
/// for changes in proportion keeps a merge's cost per change the same however many files the
/// group holds (about 8 lines written per change), and the cap bounds the memory they take
/// (some 150 bytes each).
pub const MERGE_EVERY: usize = 100_000;
pub const MERGE_MOST: usize = 400_000;

/// How many changes wait for a merge when the run file lists `lines` files.
pub fn merge_after(lines: u64) -> usize {
    ((lines / 8) as usize).clamp(MERGE_EVERY, MERGE_MOST)
}
/// Merge the changes held, however few, once they have waited this long with nothing new
/// coming.
pub const MERGE_IDLE: Duration = Duration::from_secs(300);
/// How long a listing waits for the follower to reach the binlog's end.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(2);

pub struct Listing {
    path: PathBuf,
    pub(crate) index: RwLock<Index>,
    /// the binlog position applied, for listings waiting to catch up
    pub(crate) applied: Mutex<Position>,
    pub(crate) moved: Condvar,
    /// false while the index is being rebuilt from the binlog's start
    pub(crate) ready: AtomicBool,
    /// held (exclusively) from a merge's new run file until it is in place, so that no
    /// correction lands in the changes the new run file replaces unseen; shared by the notes
    /// of S3 writes, which must not skip each other (`note`)
    merging: RwLock<()>,
    /// set (and `hurried` notified) by a request waiting for the follower, which then does
    /// not let lines gather
    hurry: Mutex<bool>,
    pub(crate) hurried: Condvar,
}

impl Listing {
    /// The index of `group` under `data_dir`: the run file as it is, or an empty index to be
    /// rebuilt from the binlog when there is none or it is damaged (logged).
    pub fn open(data_dir: &std::path::Path, group: &str) -> Listing {
        let dir = data_dir.join("listing");
        let path = dir.join(format!("{group}.list"));
        let index = match Index::open(&path) {
            Ok(Some(index)) => Some(index),
            Ok(None) => {
                log::info!(
                    "listing index {}: none yet, built from the binlog",
                    path.display()
                );
                None
            }
            Err(why) => {
                log::warn!(
                    "listing index {} is damaged ({why}): rebuilt from the binlog",
                    path.display()
                );
                None
            }
        };
        let ready = index.is_some();
        let index = index.unwrap_or_else(|| Index::empty(&path));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            log::error!("mkdir {} fail: {e}", dir.display());
        }
        Listing {
            applied: Mutex::new(index.position),
            path,
            index: RwLock::new(index),
            moved: Condvar::new(),
            ready: AtomicBool::new(ready),
            merging: RwLock::new(()),
            hurry: Mutex::new(false),
            hurried: Condvar::new(),
        }
    }

    /// Whether the index holds the whole binlog (false while it is rebuilt).
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Wait until the follower has applied the binlog up to `end`; whether it did in time.
    pub fn catch_up(&self, end: Position) -> bool {
        let deadline = Instant::now() + CATCH_UP_WAIT;
        if *self.applied.lock() >= end {
            return true;
        }
        *self.hurry.lock() = true;
        self.hurried.notify_one();
        let mut applied = self.applied.lock();
        while *applied < end {
            if self.moved.wait_until(&mut applied, deadline).timed_out() {
                return *applied >= end;
            }
        }
        true
    }

    /// The follower, caught up: let lines gather for `gather`, unless a request waits for it.
    pub(crate) fn gather(&self, gather: Duration) {
        let mut h = self.hurry.lock();
        if !*h {
            self.hurried.wait_for(&mut h, gather);
        }
        *h = false;
    }

    /// Forget everything: the index is rebuilt from the binlog's start.
    pub(crate) fn reset(&self) {
        *self.index.write() = Index::empty(&self.path);
        *self.applied.lock() = (0, 0);
        self.ready.store(false, Ordering::Relaxed);
    }

    /// Set `name`'s entry to what the store path holds (reconcile's correction).
    pub(crate) fn correct(&self, name: &str, e: Option<entry::Entry>) -> std::io::Result<()> {
        let _m = self.merging.write();
        self.index.write().correct(name, e)
    }

    /// List `name` as `e` (`None`: not at all) now, ahead of the follower: an object written
    /// or deleted through S3, so that the next request on this member finds it under its key,
    /// or does not. Skipped while a merge is being written: the follower applies the binlog's
    /// line once the merge is done. (An exclusive lock here made two writes noting themselves
    /// at once skip one of them: the object missed a read-after-write on this member and the
    /// file it overwrote was never deleted.)
    pub(crate) fn note(&self, name: &str, e: Option<entry::Entry>) -> std::io::Result<()> {
        match self.merging.try_read() {
            Some(_m) => self.index.write().correct(name, e),
            None => Ok(()),
        }
    }

    /// Write the changes held into a new run file (the follower's thread, and at a stop).
    pub(crate) fn merge(&self) {
        let _m = self.merging.write();
        let began = Instant::now();
        let run = self.index.read().merged_run(&self.path);
        match run {
            Ok(run) => {
                log::info!(
                    "listing index: {} files written to {} in {:.1?}",
                    run.lines,
                    self.path.display(),
                    began.elapsed()
                );
                self.index.write().adopt(run)
            }
            Err(e) => log::error!("write listing index {} fail: {e}", self.path.display()),
        }
    }
}
