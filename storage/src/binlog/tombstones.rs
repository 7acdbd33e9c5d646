//! What the binlog remembers of deletes: the time of each name's newest delete (a replicated
//! create older than it is stale), the deletes a later create took back, loaded at open from the
//! files still on disk and forgotten by age (`rfdfs_tombstone_horizon.dat`).

use super::files::binlog_name;
use super::record::{for_each_record, op};
use super::{Binlog, TOMBSTONE_HORIZON_FILE};

impl Binlog {
    /// Deletes recorded in the binlog files still on disk (not the compressed ones).
    pub(super) fn load_deletes(&self, last: u32) {
        let horizon = *self.horizon.lock();
        let mut deleted = self.deleted.lock();
        let mut recreated = self.recreated.lock();
        for i in 0..=last {
            let _ = for_each_record(&self.dir.join(binlog_name(i)), |r| {
                if r.timestamp >= horizon {
                    Self::apply(&mut deleted, &mut recreated, r.timestamp, r.op, &r.name);
                }
            });
        }
    }

    /// A line's effect on the tombstones: a delete is remembered, a create or link of the same
    /// name made after it (a delete taken back) forgets it and is remembered as a take-back.
    pub(super) fn apply(
        deleted: &mut std::collections::HashMap<String, i64>,
        recreated: &mut std::collections::HashMap<String, i64>,
        timestamp: i64,
        op: char,
        name: &str,
    ) {
        let upper = op.to_ascii_uppercase();
        if upper == op::DELETE {
            deleted.insert(name.to_string(), timestamp);
            if recreated.get(name).is_some_and(|c| *c <= timestamp) {
                recreated.remove(name);
            }
        } else if (upper == op::CREATE || upper == op::LINK)
            && deleted.get(name).is_some_and(|d| *d <= timestamp)
        {
            deleted.remove(name);
            recreated.insert(name.to_string(), timestamp);
        }
    }

    /// When the delete of `name` was taken back here by a create or link line, if it was.
    pub fn recreated_at(&self, name: &str) -> Option<i64> {
        self.recreated.lock().get(name).copied()
    }

    /// When `name` was last deleted here, if it was. A replicated create of a file older than
    /// that is stale: a peer that crashed before sending it must not bring a deleted file back.
    pub fn deleted_at(&self, name: &str) -> Option<i64> {
        self.deleted.lock().get(name).copied()
    }

    /// Whether deletes from now on are remembered (see [`Binlog::deleted_at`]).
    pub fn keep_tombstones(&self, keep: bool) {
        self.keep_tombstones
            .store(keep, std::sync::atomic::Ordering::Relaxed);
    }

    /// Drop the tombstones of deletes made before `ts`; returns how many are left.
    pub fn forget_deletes_before(&self, ts: i64) -> usize {
        let mut deleted = self.deleted.lock();
        deleted.retain(|_, d| *d >= ts);
        self.recreated.lock().retain(|_, c| *c >= ts);
        let mut horizon = self.horizon.lock();
        if ts > *horizon {
            *horizon = ts;
            let path = self.dir.join(TOMBSTONE_HORIZON_FILE);
            let _ = crate::state_file::save(&path, format!("{ts}\n").as_bytes());
        }
        drop(horizon);
        // give the memory back after a burst of deletes (or the history loaded at startup)
        if deleted.capacity() > 4 * deleted.len().max(1024) {
            deleted.shrink_to_fit();
        }
        deleted.len()
    }

    /// Keep the tombstones in step with a line just written: a delete is remembered, a create
    /// or link of the same name made after it (a delete taken back) forgets it.
    pub(super) fn remember(&self, timestamp: i64, op: char, name: &str) {
        if op.eq_ignore_ascii_case(&op::DELETE)
            && !self
                .keep_tombstones
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let mut deleted = self.deleted.lock();
        Self::apply(
            &mut deleted,
            &mut self.recreated.lock(),
            timestamp,
            op,
            name,
        );
    }
}
