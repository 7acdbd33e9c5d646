//! The files a write of a key made older (what it overwrote), deleted by a thread of their
//! own after the write is answered.
//!
//! Why not in the request: deleting a file the kernel is writing back waits for that I/O, and
//! on ext4 every such unlink of the moment ends with the same journal commit. Overwriting
//! 1 MiB objects from 16 clients, unlinks took 50-200 ms, all workers waited in them at once
//! every ~0.7 s, and p99 went from 30 ms (new keys) to 170 ms. Nothing a reader sees depends
//! on when the older files go: a key names its last written file (`names.rs`), so GET, HEAD
//! and LIST find the new object as soon as it is written.
//!
//! A retirement still queued when the daemon dies leaves its older files behind, named under
//! the key but never read through it; the next write or read of the key queues them again
//! (`S3Server::object_of`; a read queues nothing while the key has a retirement pending), and
//! a DELETE of the key removes every file of it.

use super::key_files::{delete_key_file, files_of};
use crate::storage::Storage;
use fdfs_common::sync::Mutex;
use std::collections::HashMap;
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A key just written as `written`.
struct Written {
    bucket: String,
    key: String,
    written: String,
}

/// Keys with a retirement queued or under way, and how many.
type Pending = Mutex<HashMap<(String, String), usize>>;

/// The queue of retirements and the thread that carries them out.
pub(super) struct Retirer {
    queue: Mutex<Option<Sender<Written>>>,
    pending: Arc<Pending>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Retirer {
    pub(super) fn start(storage: Arc<Storage>) -> Retirer {
        let (tx, rx) = channel::<Written>();
        let pending = Arc::new(Pending::default());
        let done = Arc::clone(&pending);
        let thread = std::thread::Builder::new()
            .name("s3-retire".into())
            .spawn(move || {
                for w in rx {
                    retire_older(&storage, &w.bucket, &w.key, &w.written);
                    unmark(&done, w);
                }
            })
            .map_err(|e| log::error!("s3: start the thread deleting overwritten files: {e}"))
            .ok();
        Retirer {
            queue: Mutex::new(thread.is_some().then_some(tx)),
            pending,
            thread: Mutex::new(thread),
        }
    }

    /// After `written` was stored as `bucket`/`key`: have the files of that key written
    /// before it deleted, and `written` itself if a later write of the key is there already
    /// (a long upload that finished after a short one begun later: the later write is the
    /// object, as in S3).
    pub(super) fn retire(&self, storage: &Storage, bucket: &str, key: &str, written: &str) {
        self.queue(storage, bucket, key, written, false);
    }

    /// A read found `last` and older files of `bucket`/`key`: have the older ones deleted,
    /// unless a retirement of the key is queued already (it is what left them there for the
    /// moment; every read of a key just overwritten would queue one more otherwise).
    pub(super) fn requeue(&self, storage: &Storage, bucket: &str, key: &str, last: &str) {
        self.queue(storage, bucket, key, last, true);
    }

    fn queue(
        &self,
        storage: &Storage,
        bucket: &str,
        key: &str,
        written: &str,
        unless_pending: bool,
    ) {
        let w = Written {
            bucket: bucket.to_string(),
            key: key.to_string(),
            written: written.to_string(),
        };
        {
            let mut pending = self.pending.lock();
            let n = pending
                .entry((w.bucket.clone(), w.key.clone()))
                .or_default();
            if unless_pending && *n > 0 {
                return;
            }
            *n += 1;
        }
        let queued = match self.queue.lock().as_ref() {
            Some(q) => q.send(w).map_err(|e| e.0),
            None => Err(w),
        };
        // no thread (it could not start, or the daemon is stopping): here and now
        if let Err(w) = queued {
            retire_older(storage, &w.bucket, &w.key, &w.written);
            unmark(&self.pending, w);
        }
    }

    /// Carry out what is queued, then take no more (a stopping daemon).
    pub(super) fn finish(&self) {
        drop(self.queue.lock().take());
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

/// `w`'s retirement is done.
fn unmark(pending: &Pending, w: Written) {
    let mut pending = pending.lock();
    let k = (w.bucket, w.key);
    if let Some(n) = pending.get_mut(&k) {
        *n -= 1;
        if *n == 0 {
            pending.remove(&k);
        }
    }
}

fn retire_older(storage: &Storage, bucket: &str, key: &str, written: &str) {
    let Some(files) = files_with(storage, bucket, key, written) else {
        return;
    };
    let at = files.iter().position(|n| n == written).unwrap_or(0);
    let superseded = at + 1 < files.len();
    let older = files[..at].iter();
    let gone = older.chain(superseded.then_some(&files[at]));
    for name in gone {
        if let Err(e) = delete_key_file(storage, name) {
            log::warn!("s3: delete {name}, overwritten, fail: {e}");
        }
    }
}

/// The files of `bucket`/`key` once the index holds `written` among them, `None` if it is
/// gone already (a later write's retirement, a DELETE of the key). The write noted itself in
/// the index, but not while a merge was being written out; the follower applies lines only up
/// to the first whose change is still under way (another worker's upload): wait for that to
/// move on until the follower has the line. `None` too after a minute (the follower stopped or
/// rebuilding; a later read of the key queues this again).
fn files_with(storage: &Storage, bucket: &str, key: &str, written: &str) -> Option<Vec<String>> {
    let mut end = storage.binlog.visible_end();
    for _ in 0..60 {
        storage.listing.catch_up(end);
        let files = files_of(storage, bucket, key);
        if files.iter().any(|n| n == written) {
            return Some(files);
        }
        // S3 objects are never trunk slots
        if !storage.store.holds(written) {
            return None;
        }
        end = storage
            .binlog
            .wait_visible_past(end, Duration::from_secs(1));
    }
    None
}
