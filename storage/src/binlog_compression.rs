//! `compress_binlog` (storage.conf): the daily gzip, in place, of the binlog files every peer's
//! mark has passed, in a thread of its own (a 1 GiB file takes a while).

use crate::mark::Mark;
use crate::storage::Storage;
use fdfs_common::config::StorageConfig;
use std::path::Path;
use std::sync::Arc;

/// `compress_binlog`: the daily gzip of the binlog files every peer has passed, in a thread of
/// its own (a 1 GiB file takes a while).
pub struct BinlogCompression {
    time: (u8, u8),
    next: Option<i64>,
    running: Option<std::thread::JoinHandle<()>>,
}

impl BinlogCompression {
    const DAY: u64 = 86400;

    pub fn new(cfg: &StorageConfig) -> BinlogCompression {
        let next = cfg.compress_binlog.then(|| {
            fdfs_common::log::next_scheduled(
                fdfs_common::now(),
                cfg.compress_binlog_time,
                Self::DAY,
            )
        });
        BinlogCompression {
            time: cfg.compress_binlog_time,
            next,
            running: None,
        }
    }

    pub fn run_when_due(&mut self, storage: &Arc<Storage>) {
        let now = fdfs_common::now();
        if self.next.is_none_or(|at| now < at)
            || self.running.as_ref().is_some_and(|h| !h.is_finished())
        {
            return;
        }
        self.next = Some(fdfs_common::log::next_scheduled(now, self.time, Self::DAY));
        let storage = Arc::clone(storage);
        self.running = std::thread::Builder::new()
            .name("binlog-compress".into())
            .spawn(move || {
                let dir = storage.cfg.server.base_path.join("data/sync");
                let n = compress_binlogs(&storage.binlog, &dir);
                log::info!("binlog compression done, {n} file(s) compressed");
            })
            .map_err(|e| log::error!("spawn binlog compression fail: {e}"))
            .ok();
    }

    pub fn finish(&mut self) {
        if let Some(h) = self.running.take() {
            let _ = h.join();
        }
    }
}

/// `compress_binlog`: gzip, in place, every rotated binlog file below the one the slowest sync
/// peer's mark file is in (a peer not heard of for a while still has its mark, so its sync
/// never has to wait for a file to come back; a new member's full sync unzips what it needs).
/// While a file is compressed, `.binlog.NNN.flag` says "zip", as upstream's does. Returns the
/// number of files compressed.
pub fn compress_binlogs(binlog: &crate::binlog::Binlog, sync_dir: &Path) -> usize {
    let mut below = binlog.current_index();
    if let Ok(entries) = std::fs::read_dir(sync_dir) {
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "mark") {
                match Mark::load(&path) {
                    Ok(Some(m)) => below = below.min(m.binlog_index),
                    Ok(None) => {}
                    // a mark that cannot be read may stand anywhere: compress nothing
                    Err(e) => {
                        log::warn!("binlog compression skipped: {e}");
                        return 0;
                    }
                }
            }
        }
    }
    let mut compressed = 0;
    for index in 0..below {
        let name = crate::binlog::binlog_name(index);
        let path = sync_dir.join(&name);
        if !path.exists() {
            continue;
        }
        let flag = sync_dir.join(format!(".{name}.flag"));
        if let Err(e) = std::fs::write(&flag, b"zip") {
            log::error!("write {} fail: {e}", flag.display());
            return compressed;
        }
        let status = std::process::Command::new("gzip")
            .arg("-f")
            .arg("--")
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_file(&flag);
        match status {
            Ok(st) if st.success() => {
                log::info!("binlog {} compressed", path.display());
                compressed += 1;
            }
            Ok(st) => {
                log::error!("gzip {} fail: {st}", path.display());
                return compressed;
            }
            Err(e) => {
                log::error!("run gzip for {} fail: {e}", path.display());
                return compressed;
            }
        }
    }
    binlog.set_compressed_below(below);
    compressed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binlog::{BinlogReader, Next};

    #[test]
    fn compression_stops_at_the_slowest_mark_and_leaves_the_current_file() {
        let dir = std::env::temp_dir().join(format!("rfdfs-compress-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..4 {
            std::fs::write(
                dir.join(format!("binlog.00{i}")),
                format!("{i} C M00/00/00/f{i}\n"),
            )
            .unwrap();
        }
        std::fs::write(
            dir.join("binlog_index.dat"),
            "current_write=3\ncurrent_compress=0\n",
        )
        .unwrap();
        let binlog = crate::binlog::Binlog::open(&dir, false).unwrap();
        let mark = |index: u32| Mark {
            binlog_index: index,
            ..Mark::default()
        };
        mark(2).save(&dir.join("10.0.0.2_23000.mark"));
        mark(1).save(&dir.join("10.0.0.3_23000.mark"));
        assert_eq!(compress_binlogs(&binlog, &dir), 1);
        let present = |name: &str| dir.join(name).exists();
        assert!(present("binlog.000.gz") && !present("binlog.000"));
        assert!(present("binlog.001") && present("binlog.002") && present("binlog.003"));
        let index = std::fs::read_to_string(dir.join("binlog_index.dat")).unwrap();
        assert_eq!(index, "current_write=3\ncurrent_compress=1\n");
        // the slow peer moves on: the files up to the current one follow, never the current
        mark(3).save(&dir.join("10.0.0.3_23000.mark"));
        mark(3).save(&dir.join("10.0.0.2_23000.mark"));
        assert_eq!(compress_binlogs(&binlog, &dir), 2);
        assert!(present("binlog.002.gz") && present("binlog.003") && !present("binlog.003.gz"));
        assert!(!present(".binlog.001.flag"));
        // a file a reader unzipped again is compressed again
        let mut r = BinlogReader::new(&dir, 0, 0);
        assert!(matches!(r.next((3, 0)).unwrap(), Next::Record(..)));
        assert!(present("binlog.000"));
        assert_eq!(compress_binlogs(&binlog, &dir), 1);
        std::fs::remove_dir_all(&dir).ok();
    }
}
