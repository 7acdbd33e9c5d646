//! Scrub (`scrub_bytes_per_second`, rfdfs's own key): a background thread re-reads the stored
//! files at the configured rate and checks each normal file against the size and CRC32 its name
//! carries. A copy that fails is moved aside into `data/.rfdfs_quarantine/` (never served
//! again, kept for forensics) and fetched again from an ACTIVE member whose copy checks out; a
//! file no member holds intact is reported and its copy stays in quarantine, never deleted.
//!
//! Not covered yet: appender and slave files (their names carry no CRC of the current content)
//! and files in trunk slots.

use crate::reporter::Reporter;
use fdfs_common::file_id::{FileKind, RemoteName};
use fdfs_common::proto::status;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Where corrupt copies are kept, under a store path's `data/`.
pub const QUARANTINE_DIR: &str = ".rfdfs_quarantine";

/// The reads of one pass, held to `rate` bytes per second.
struct Throttle {
    rate: u64,
    started: Instant,
    read: u64,
}

impl Throttle {
    fn pace(&mut self, n: u64, stop: &dyn Fn() -> bool) {
        self.read += n;
        let due = Duration::from_secs_f64(self.read as f64 / self.rate.max(1) as f64);
        while !stop() {
            let ahead = due.saturating_sub(self.started.elapsed());
            if ahead.is_zero() {
                break;
            }
            std::thread::sleep(ahead.min(Duration::from_millis(200)));
        }
    }
}

/// The scrub thread's body: passes over every store path until the daemon stops.
pub fn run(rep: &Reporter, rate: u64) {
    let stop = || rep.stop.load(Ordering::Relaxed);
    while !stop() {
        let mut throttle = Throttle {
            rate,
            started: Instant::now(),
            read: 0,
        };
        for index in 0..rep.storage.store.paths.len() {
            scrub_store_path(rep, index, &mut throttle, &stop);
        }
        // a small store is passed over at most once a second
        let pause = Instant::now() + Duration::from_secs(1);
        while !stop() && Instant::now() < pause {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn scrub_store_path(
    rep: &Reporter,
    index: usize,
    throttle: &mut Throttle,
    stop: &dyn Fn() -> bool,
) {
    let data = rep.storage.store.data_dir(index);
    let Ok(top) = std::fs::read_dir(&data) else {
        return;
    };
    let mut high: Vec<PathBuf> = top.flatten().map(|e| e.path()).collect();
    high.sort();
    for h in high.iter().filter(|p| is_subdir_name(p)) {
        let Ok(low) = std::fs::read_dir(h) else {
            continue;
        };
        let mut low: Vec<PathBuf> = low.flatten().map(|e| e.path()).collect();
        low.sort();
        for l in low.iter().filter(|p| is_subdir_name(p)) {
            let Ok(files) = std::fs::read_dir(l) else {
                continue;
            };
            for f in files.flatten() {
                if stop() {
                    return;
                }
                let name = format!(
                    "M{index:02X}/{}/{}/{}",
                    file_name(h),
                    file_name(l),
                    f.file_name().to_string_lossy()
                );
                scrub_file(rep, index, &name, &f.path(), throttle, stop);
            }
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn is_subdir_name(p: &Path) -> bool {
    let n = file_name(p);
    n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()) && p.is_dir()
}

/// The size and CRC32 a stored normal file must have, from its name.
fn expected(name: &str) -> Option<(u64, u32)> {
    let rn = RemoteName::decode(name).ok()?;
    if rn.kind != FileKind::Normal || name.ends_with("-m") {
        return None;
    }
    Some((
        u64::try_from(rn.payload.file_size()?).ok()?,
        rn.payload.crc32,
    ))
}

fn scrub_file(
    rep: &Reporter,
    index: usize,
    name: &str,
    path: &Path,
    throttle: &mut Throttle,
    stop: &dyn Fn() -> bool,
) {
    let Some(want) = expected(name) else { return };
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !md.file_type().is_file() {
        return;
    }
    let stats = &rep.storage.scrub;
    let Ok(got) = crate::store::file_crc(path, |n| throttle.pace(n, stop)) else {
        return;
    };
    stats.bytes.fetch_add(got.0, Ordering::Relaxed);
    stats.files.fetch_add(1, Ordering::Relaxed);
    if got == want || stop() {
        return;
    }
    stats.corrupt.fetch_add(1, Ordering::Relaxed);
    log::error!(
        "scrub: {name} is corrupt (size {}, crc32 {:08x}; its name says size {}, crc32 {:08x})",
        got.0,
        got.1,
        want.0,
        want.1
    );
    let mtime = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    let mtime = mtime.map(|d| d.as_secs() as i64).unwrap_or(0);
    if let Err(e) = quarantine(rep, index, name, path) {
        log::error!("scrub: move {name} aside fail: {e}; left in place");
        return;
    }
    if repair(rep, index, name, path, mtime, want) {
        stats.repaired.fetch_add(1, Ordering::Relaxed);
        log::info!("scrub: {name} repaired from a member's intact copy");
    } else {
        stats.unrepairable.fetch_add(1, Ordering::Relaxed);
        log::error!(
            "scrub: no member holds an intact copy of {name}; the corrupt one is kept in {}",
            QUARANTINE_DIR
        );
    }
}

/// Move a corrupt copy out of the served tree, named after its file ID and the time.
fn quarantine(rep: &Reporter, index: usize, name: &str, path: &Path) -> std::io::Result<()> {
    let dir = rep.storage.store.data_dir(index).join(QUARANTINE_DIR);
    std::fs::create_dir_all(&dir)?;
    let kept = dir.join(format!("{}.{}", name.replace('/', "_"), fdfs_common::now()));
    std::fs::rename(path, kept)
}

/// Fetch `name` again from each ACTIVE member in turn until a copy checks out.
fn repair(
    rep: &Reporter,
    index: usize,
    name: &str,
    path: &Path,
    mtime: i64,
    want: (u64, u32),
) -> bool {
    let me = rep.storage.my_id.read().clone();
    let peers: Vec<_> = rep
        .storage
        .members
        .read()
        .iter()
        .filter(|b| b.id != me && b.status == status::ACTIVE)
        .cloned()
        .collect();
    for peer in peers {
        match crate::recovery::restore_file(rep, &peer, name, mtime, path, index) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                log::warn!(
                    "scrub: fetch {name} from {}:{} fail: {e}",
                    peer.ip,
                    peer.port
                );
                continue;
            }
        }
        if crate::store::file_crc(path, |_| {}).ok() == Some(want) {
            return true;
        }
        log::error!(
            "scrub: the copy of {name} on {}:{} is corrupt too",
            peer.ip,
            peer.port
        );
        let _ = std::fs::remove_file(path);
    }
    false
}
