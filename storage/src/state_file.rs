//! The daemon's small state files (mark files, the trunk marks, the stat file, the tombstone
//! horizon), written whole and renamed into place. On a full or failing base_path these writes
//! fail many times a second (a mark per peer after every batch sent): the first failure of a
//! file is logged, then at most a line a minute saying how many more there were, and a line
//! once it is written again, so the log tells what happened without drowning everything else.

use fdfs_common::sync::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub fn read_kv(path: &Path) -> std::io::Result<BTreeMap<String, String>> {
    Ok(parse_kv(&std::fs::read_to_string(path)?))
}

/// `key=value` lines into an ordered map (other lines are ignored).
pub fn parse_kv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// How often a file that keeps failing is logged again.
const EVERY: Duration = Duration::from_secs(60);

/// Write `content` to `path` atomically; a failure is logged (as above) and returned.
pub fn save(path: &Path, content: &[u8]) -> std::io::Result<()> {
    static FAILING: Mutex<Option<Failing>> = Mutex::new(None);
    let written = fdfs_common::durable::write_atomic(path, content);
    let mut failing = FAILING.lock();
    let failing = failing.get_or_insert_with(Failing::default);
    match &written {
        Ok(()) => {
            if let Some(n) = failing.succeeded(path) {
                log::info!("{} is written again ({n} write(s) failed)", path.display());
            }
        }
        Err(e) => match failing.failed(path, Instant::now()) {
            Some(0) => log::error!("write {} fail: {e}", path.display()),
            Some(n) => log::error!(
                "write {} fail: {e} ({n} more failure(s) in the last minute)",
                path.display()
            ),
            None => {}
        },
    }
    written
}

/// The files whose last write failed: when each was last logged, and the failures since.
#[derive(Default)]
struct Failing {
    files: HashMap<PathBuf, Failures>,
}

struct Failures {
    logged: Instant,
    since: u64,
    total: u64,
}

impl Failing {
    /// A write of `path` failed at `now`: Some(failures not logged since the last line) when
    /// this one is to be logged.
    fn failed(&mut self, path: &Path, now: Instant) -> Option<u64> {
        match self.files.get_mut(path) {
            None => {
                self.files.insert(
                    path.to_path_buf(),
                    Failures {
                        logged: now,
                        since: 0,
                        total: 1,
                    },
                );
                Some(0)
            }
            Some(f) => {
                f.total += 1;
                if now.duration_since(f.logged) >= EVERY {
                    f.logged = now;
                    Some(std::mem::take(&mut f.since))
                } else {
                    f.since += 1;
                    None
                }
            }
        }
    }

    /// A write of `path` succeeded: Some(how many failed) when it had been failing.
    fn succeeded(&mut self, path: &Path) -> Option<u64> {
        self.files.remove(path).map(|f| f.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_file_is_logged_first_then_once_a_minute_then_when_written_again() {
        let mut f = Failing::default();
        let (a, b) = (Path::new("/b/data/sync/a.mark"), Path::new("/b/data/x.dat"));
        let t0 = Instant::now();
        assert_eq!(f.failed(a, t0), Some(0));
        for s in 1..=30 {
            assert_eq!(f.failed(a, t0 + Duration::from_secs(s)), None);
        }
        // another file is its own story
        assert_eq!(f.failed(b, t0 + Duration::from_secs(31)), Some(0));
        assert_eq!(f.failed(a, t0 + EVERY), Some(30));
        assert_eq!(f.failed(a, t0 + EVERY + Duration::from_secs(1)), None);
        assert_eq!(f.succeeded(a), Some(33));
        assert_eq!(f.succeeded(a), None);
        // failing again later is said again at once
        assert_eq!(f.failed(a, t0 + 3 * EVERY), Some(0));
    }
}
