//! The follower: the thread that applies the binlog to the listing index (`super`), and what
//! the index reads from the store paths while it does.

use super::entry::Meta;
use super::index::Disk;
use super::{merge_after, Listing, MERGE_IDLE};
use crate::binlog::{BinlogReader, Next};
use crate::storage::Storage;
use fdfs_common::file_id::LogicalName;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long the follower lets binlog lines gather once it has caught up.
const GATHER: Duration = Duration::from_millis(20);

/// The store paths, as the index reads them.
struct StoreDisk<'a>(&'a Storage);

impl StoreDisk<'_> {
    fn path_of(&self, name: &str) -> Option<PathBuf> {
        let n = LogicalName::parse(name, self.0.store.paths.len()).ok()?;
        Some(self.0.store.local_path(&n))
    }
}

impl Disk for StoreDisk<'_> {
    fn appender_size(&self, name: &str) -> Option<u64> {
        std::fs::metadata(self.path_of(name)?).ok().map(|m| m.len())
    }

    fn meta(&self, name: &str) -> Meta {
        self.0.listed_meta(name)
    }

    fn holds(&self, name: &str) -> bool {
        self.0.store.holds(name)
    }
}

impl Storage {
    /// What the listing index keeps of `name`'s metadata: its `fdfs-expires` time and, for an
    /// object written through S3, its S3 name (one read of the `-m` file).
    pub(crate) fn listed_meta(&self, name: &str) -> Meta {
        let Ok(ln) = LogicalName::parse(name, self.store.paths.len()) else {
            return Meta::default();
        };
        let Ok(bytes) = std::fs::read(crate::storage::meta_path(&self.store.local_path(&ln)))
        else {
            return Meta::default();
        };
        let items = fdfs_common::metadata::unpack(&bytes);
        Meta {
            expires: crate::expiry::expires_in_items(&items),
            s3: fdfs_common::s3::meta::name_of(&items).map(Box::new),
        }
    }
}

/// The follower: apply the binlog to the index until `stop`, merging as it goes; at the stop,
/// merge what is held so that the next start reads little.
pub fn follow(storage: &Storage, stop: &AtomicBool) {
    let listing: &Listing = &storage.listing;
    let disk = StoreDisk(storage);
    // an index past the binlog's end (lines lost in a crash, a binlog restored from a backup)
    // would skip the lines written from here on: rebuild it
    let end = storage.binlog.visible_end();
    let at = listing.index.read().position;
    if at > end {
        log::warn!(
            "listing index is at binlog.{:03}:{} past the binlog's end binlog.{:03}:{}: rebuilt \
             from the binlog",
            at.0,
            at.1,
            end.0,
            end.1
        );
        listing.reset();
    }
    let start = listing.index.read().position;
    let mut reader = BinlogReader::new(storage.binlog.dir(), start.0, start.1);
    let mut last_change = Instant::now();
    let mut changed = false;
    while !stop.load(Ordering::Relaxed) {
        let end = storage.binlog.visible_end();
        let mut batch = 0;
        {
            let mut index = listing.index.write();
            while batch < 1024 {
                // the reader leaves moving on to its caller (a sync thread moves once sent)
                match reader.next(end) {
                    Ok(Next::Record(rec, len)) => {
                        reader.offset += len;
                        if let Err(e) = index.apply(&rec, reader.position(), &disk) {
                            log::error!("listing index: apply {} fail: {e}", rec.name);
                        }
                        batch += 1;
                    }
                    Ok(Next::Invalid(_, len)) => {
                        reader.offset += len;
                        batch += 1;
                    }
                    Ok(Next::Eof) => break,
                    Err(e) => {
                        log::error!("listing index: read binlog fail: {e}");
                        break;
                    }
                }
            }
            index.position = reader.position();
        }
        *listing.applied.lock() = reader.position();
        listing.moved.notify_all();
        if batch > 0 {
            changed = true;
            last_change = Instant::now();
            let due = {
                let index = listing.index.read();
                index.pending() >= merge_after(index.run.lines)
            };
            if due {
                listing.merge();
            }
            if batch < 1024 && listing.ready() {
                // caught up: let lines gather rather than wake for each upload (the thread
                // switches were a quarter of the follower's time under a steady stream of
                // uploads, scripts/listing-upkeep.sh); a request waiting for the index cuts
                // it short
                listing.gather(GATHER);
            }
            continue;
        }
        if !listing.ready() {
            listing.ready.store(true, Ordering::Relaxed);
            log::info!("listing index built from the binlog");
            listing.merge();
            changed = false;
        }
        if changed && last_change.elapsed() >= MERGE_IDLE {
            listing.merge();
            changed = false;
        }
        storage
            .binlog
            .wait_visible_past(reader.position(), Duration::from_millis(500));
    }
    if changed {
        listing.merge();
    }
}
