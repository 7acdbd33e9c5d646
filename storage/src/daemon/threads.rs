//! The storage's threads beside the server loop (docs/architecture.md): one reporter per
//! tracker, the trunk binlog pusher, the listing index's follower, and scrub and reconcile when
//! configured; and their end,
//! in the order a clean stop needs.

use crate::reporter::Reporter;
use crate::storage::Storage;
use crate::{expiry, listing, reconcile, scrub, trunk};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub(super) struct Background {
    reporters: Vec<JoinHandle<()>>,
    trunk_pusher: JoinHandle<()>,
    scrubber: Option<JoinHandle<()>>,
    reconciler: Option<JoinHandle<()>>,
    listing: JoinHandle<()>,
    sweeper: Option<JoinHandle<()>>,
}

/// A thread named `name` running `body` with the storage and the stop flag.
fn spawn(
    name: &str,
    storage: &Arc<Storage>,
    stop: &Arc<AtomicBool>,
    body: impl FnOnce(&Storage, &AtomicBool) + Send + 'static,
) -> JoinHandle<()> {
    let (s, stop) = (Arc::clone(storage), Arc::clone(stop));
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || body(&s, &stop))
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"))
}

impl Background {
    pub(super) fn start(rep: &Arc<Reporter>, stop: &Arc<AtomicBool>) -> Background {
        let storage = &rep.storage;
        let cfg = &storage.cfg;
        let reporters = cfg
            .tracker_servers
            .iter()
            .map(|t| {
                let r = Arc::clone(rep);
                let t = t.clone();
                std::thread::Builder::new()
                    .name("reporter".into())
                    .spawn(move || r.run(t))
                    .expect("spawn reporter")
            })
            .collect();
        // the trunk server pushes its trunk binlog to the members (nothing to do otherwise)
        // every 100 ms, not upstream's second: a member taking the role after a crash knows
        // nothing of the allocations it was not sent, and may hand their slots out again
        let trunk_pusher = spawn("trunk-binlog", storage, stop, |s, stop| {
            let mut jobs = trunk::TrunkJobs::default();
            while !stop.load(Ordering::Relaxed) {
                s.trunk_housekeeping(&mut jobs);
                s.push_trunk_binlog();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let rate = cfg.scrub_bytes_per_second;
        let scrubber = (rate > 0).then(|| {
            spawn("scrub", storage, stop, move |s, stop| {
                scrub::run(s, stop, rate)
            })
        });
        let interval = cfg.reconcile_interval;
        let reconciler = (interval > 0).then(|| {
            spawn("reconcile", storage, stop, move |s, stop| {
                reconcile::run(s, stop, interval)
            })
        });
        // the listing index follows the binlog (and merges what it holds at the stop)
        let listing = spawn("listing", storage, stop, listing::follower::follow);
        let every = cfg.expire_sweep_interval;
        let sweeper = (every > 0).then(|| {
            spawn("expiry", storage, stop, move |s, stop| {
                expiry::run(s, stop, every)
            })
        });
        Background {
            sweeper,
            reporters,
            trunk_pusher,
            scrubber,
            reconciler,
            listing,
        }
    }

    /// After the stop flag is set: reporters and the trunk pusher end, the trunk state is saved,
    /// the sync sessions' sockets are shut so that no sync thread waits for a silent peer, and
    /// every thread is joined.
    pub(super) fn join(self, rep: &Reporter, storage: &Storage) {
        for r in self.reporters {
            let _ = r.join();
        }
        let _ = self.trunk_pusher.join();
        storage.save_trunk_state_at_exit();
        rep.note_trunk_compaction();
        storage.open_syncs.end_all();
        for (_, t) in rep.sync_threads.lock().drain() {
            let _ = t.join();
        }
        let _ = self.listing.join();
        for h in [self.scrubber, self.reconciler, self.sweeper]
            .into_iter()
            .flatten()
        {
            let _ = h.join();
        }
    }
}
