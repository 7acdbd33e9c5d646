//! What the daemon's main thread does once a second while it serves: the stat file saved, store
//! path recoveries and binlog re-records started when due (`crate::job`), the daily binlog
//! compression, the binlog flushed every `sync_binlog_buff_interval` (and where it ends recorded
//! about every 10 s), a binlog that refused lines probed again; and the access log's rotation.

use crate::binlog_compression::BinlogCompression;
use crate::reporter::Reporter;
use crate::storage::Storage;
use crate::{access_log, binlog_repair, job, recovery, stat_file, state_file};
use fdfs_common::config::StorageConfig;
use fdfs_common::log::Rotation;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) struct Housekeeping {
    storage: Arc<Storage>,
    stop: Arc<AtomicBool>,
    stat_path: PathBuf,
    stat_every: Duration,
    binlog_every: Duration,
    last_stat: Instant,
    saved_version: u64,
    last_binlog_sync: Instant,
    last_end_record: Instant,
    recoveries: job::Job,
    rerecords: job::Job,
    binlog_compression: BinlogCompression,
}

impl Housekeeping {
    pub(super) fn new(storage: &Arc<Storage>, stop: &Arc<AtomicBool>) -> Housekeeping {
        let cfg = &storage.cfg;
        Housekeeping {
            storage: Arc::clone(storage),
            stop: Arc::clone(stop),
            stat_path: cfg.server.base_path.join("data").join(stat_file::STAT_FILE),
            stat_every: Duration::from_secs(cfg.sync_stat_file_interval),
            binlog_every: Duration::from_secs(cfg.sync_binlog_buff_interval),
            last_stat: Instant::now(),
            saved_version: 0,
            last_binlog_sync: Instant::now(),
            last_end_record: Instant::now(),
            recoveries: job::Job::new("recovery", Duration::from_secs(1)),
            rerecords: job::Job::new("rerecord", Duration::from_secs(1)),
            binlog_compression: BinlogCompression::new(cfg),
        }
    }

    /// The logs the daemon rotates beside its error log: the access log, when on.
    pub(super) fn log_rotations(&self, cfg: &StorageConfig) -> Vec<Rotation> {
        match self.storage.access_log {
            Some(_) => vec![Rotation::of(
                &cfg.access_log_rotation,
                Box::new(AccessLogRotation(Arc::clone(&self.storage))),
            )],
            None => Vec::new(),
        }
    }

    pub(super) fn save_stats(&self) {
        let s = *self.storage.stats.lock();
        let text = stat_file::stat_file_text(&s, self.storage.store.cursor());
        let _ = state_file::save(&self.stat_path, text.as_bytes());
    }

    /// One pass of the main loop.
    pub(super) fn tick(&mut self, rep: &Reporter) {
        let storage = &self.storage;
        if self.last_stat.elapsed() >= self.stat_every {
            self.last_stat = Instant::now();
            let v = storage.stats_version.load(Ordering::Relaxed);
            if v != self.saved_version {
                self.saved_version = v;
                self.save_stats();
            }
        }
        let (s, stop) = (Arc::clone(storage), Arc::clone(&self.stop));
        self.recoveries.poll(
            || (0..storage.store.paths.len()).find(|&i| recovery::due(storage, i)),
            move |i| recovery::run_due(&s, i, &stop),
        );
        let (s, stop) = (Arc::clone(storage), Arc::clone(&self.stop));
        self.rerecords.poll(
            || binlog_repair::requested(storage).then_some(()),
            move |()| binlog_repair::run_requested(&s, &stop),
        );
        rep.note_trunk_compaction();
        self.binlog_compression.run_when_due(storage);
        if self.last_binlog_sync.elapsed() >= self.binlog_every {
            self.last_binlog_sync = Instant::now();
            // where it ends is recorded about every 10 s (three fsyncs), to find lines lost
            let record_end = self.last_end_record.elapsed() >= Duration::from_secs(10);
            if record_end {
                self.last_end_record = Instant::now();
            }
            storage.binlog.sync(record_end);
        }
        // a binlog that refused lines is tried again every tick, so that writes come back
        // (and the trackers hear of it) once there is room, with or without a client asking
        let _ = storage.binlog.writable();
    }

    /// After the stop: the jobs under way finish, the binlog is flushed and its end recorded,
    /// the stat file saved.
    pub(super) fn finish(mut self) {
        self.recoveries.finish();
        self.rerecords.finish();
        self.binlog_compression.finish();
        self.storage.binlog.sync(true);
        self.save_stats();
    }
}

/// The storage's access log as the rotation sees it.
struct AccessLogRotation(Arc<Storage>);

impl fdfs_common::log::LogFile for AccessLogRotation {
    fn path(&self) -> Option<std::path::PathBuf> {
        self.0.access_log.as_ref().map(|l| l.path().to_path_buf())
    }
    /// always with the time: upstream's access log names its old files so
    fn rotate(&self, _with_time: bool) {
        if let Some(l) = &self.0.access_log {
            l.rotate();
        }
    }
    fn size(&self) -> u64 {
        self.0
            .access_log
            .as_ref()
            .map_or(0, access_log::AccessLog::size)
    }
}
