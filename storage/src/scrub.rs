//! Scrub (`scrub_bytes_per_second`, rfdfs's own key): a background thread re-reads the stored
//! files at the configured rate and checks each normal file against the size and CRC32 its name
//! carries, and each file in a trunk slot (found through the binlog's create records) against
//! its name and the slot's header. A copy that fails is moved aside into
//! `data/.rfdfs_quarantine/` (never served again, kept for forensics) and fetched again from an
//! ACTIVE member whose copy checks out; a file no member holds intact is reported and its copy
//! stays in quarantine, never deleted. Copies that were repaired are kept only while the
//! quarantine holds less than `scrub_quarantine_size` (oldest dropped first).
//!
//! A copy that cannot be read (EIO: a bad sector) is handled as a corrupt one; in a trunk file,
//! the unreadable blocks are written again whole, with every live slot they hold fetched from a
//! member (`slot_blocks`: a write into part of such a block fails too). The file stays
//! locked against changes from the moment it is found bad until its repair ends, so that a
//! client's delete neither finds it missing nor is undone by the repair.
//!
//! Not checked: appender files and slave files. Their names carry the CRC32 of other content
//! (an appender's first upload, a slave's master), and no member records a CRC of an
//! appender's current content (it would cost a re-read of the whole file at every append).
//! An appender renamed by REGENERATE_APPENDER_FILENAME becomes a normal file and is checked.

use crate::slot_blocks::{self, SlotBytes};
use crate::storage::Storage;
use fdfs_common::file_id::{LogicalName, RemoteName};
use fdfs_common::proto::cluster::Brief;
use fdfs_common::trunk::{SlotHeader, TrunkSlot, SLOT_HEADER_LEN, SLOT_REGULAR};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Where corrupt copies are kept, under a store path's `data/`.
pub const QUARANTINE_DIR: &str = ".rfdfs_quarantine";

/// What opening and closing a file costs, charged to the rate as that many bytes read: without
/// it a store of small files would be scrubbed at thousands of files a second (measured: a
/// quarter of a core at 8 MiB/s over 1 KiB files), far more than the rate suggests.
const PER_FILE_CHARGE: u64 = 4096;

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
pub fn run(st: &Storage, stop_flag: &AtomicBool, rate: u64) {
    let stop = || stop_flag.load(Ordering::Relaxed);
    while !stop() {
        let mut throttle = Throttle {
            rate,
            started: Instant::now(),
            read: 0,
        };
        let n = u64::from(st.cfg.subdir_count_per_path);
        st.scrub
            .subdirs_total
            .store(n * n * st.store.paths.len() as u64, Ordering::Relaxed);
        st.scrub.subdirs_done.store(0, Ordering::Relaxed);
        for index in 0..st.store.paths.len() {
            scrub_store_path(st, index, &mut throttle, &stop);
        }
        scrub_trunk_slots(st, &mut throttle, &stop);
        if !stop() {
            st.scrub.passes.fetch_add(1, Ordering::Relaxed);
            st.scrub
                .last_pass_end
                .store(fdfs_common::now(), Ordering::Relaxed);
        }
        // a small store is passed over at most once a second
        let pause = Instant::now() + Duration::from_secs(1);
        while !stop() && Instant::now() < pause {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn scrub_store_path(st: &Storage, index: usize, throttle: &mut Throttle, stop: &dyn Fn() -> bool) {
    let data = st.store.data_dir(index);
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
            st.scrub.subdirs_done.fetch_add(1, Ordering::Relaxed);
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
                scrub_file(st, index, &name, &f.path(), throttle, stop);
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

fn scrub_file(
    st: &Storage,
    index: usize,
    name: &str,
    path: &Path,
    throttle: &mut Throttle,
    stop: &dyn Fn() -> bool,
) {
    let Some(want) = crate::store::named_size_and_crc(name) else {
        return;
    };
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !md.file_type().is_file() {
        return;
    }
    let stats = &st.scrub;
    throttle.pace(PER_FILE_CHARGE, stop);
    let got = match crate::store::file_crc(path, |n| throttle.pace(n, stop)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return, // deleted meanwhile
        got => got,
    };
    stats.files.fetch_add(1, Ordering::Relaxed);
    if let Ok((len, _)) = &got {
        stats.bytes.fetch_add(*len, Ordering::Relaxed);
    }
    if got.as_ref().is_ok_and(|g| *g == want) || stop() {
        return;
    }
    // from here to the end of the repair a client's delete of the file waits: it neither
    // meets the file in quarantine (ENOENT) nor has the repair put it back after it
    let _g = st.lock_for(name);
    if std::fs::symlink_metadata(path).is_err() {
        return; // deleted while it was read
    }
    stats.corrupt.fetch_add(1, Ordering::Relaxed);
    match &got {
        Ok(got) => log::error!(
            "scrub: {name} is corrupt (size {}, crc32 {:08x}; its name says size {}, crc32 {:08x})",
            got.0,
            got.1,
            want.0,
            want.1
        ),
        Err(e) => {
            stats.unreadable.fetch_add(1, Ordering::Relaxed);
            log::error!("scrub: {name} cannot be read ({e}): a failing disk; fetching it again");
        }
    }
    let mtime = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    let mtime = mtime.map(|d| d.as_secs() as i64).unwrap_or(0);
    if let Err(e) = quarantine(st, index, name, path) {
        log::error!("scrub: move {name} aside fail: {e}; left in place");
        return;
    }
    if repair(st, index, name, path, mtime) {
        stats.repaired.fetch_add(1, Ordering::Relaxed);
        log::info!("scrub: {name} repaired from a member's intact copy");
        mark_repaired(st, index, name);
    } else {
        stats.unrepairable.fetch_add(1, Ordering::Relaxed);
        log::error!(
            "scrub: no member holds an intact copy of {name}; the corrupt one is kept in {}",
            QUARANTINE_DIR
        );
    }
}

fn quarantine_path(st: &Storage, index: usize, name: &str) -> std::io::Result<PathBuf> {
    let dir = st.store.data_dir(index).join(QUARANTINE_DIR);
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join(quarantine_name(name)))
}

fn quarantine_name(name: &str) -> String {
    name.replace('/', "_")
}

/// Move a corrupt copy out of the served tree, named after its file ID.
fn quarantine(st: &Storage, index: usize, name: &str, path: &Path) -> std::io::Result<()> {
    let kept = quarantine_path(st, index, name)?;
    std::fs::rename(path, kept)
}

/// A quarantined copy whose file was repaired: marked as one that may be dropped, and the
/// quarantine held to its size by dropping such copies, oldest first. A copy whose file no
/// member holds intact is never dropped.
fn mark_repaired(st: &Storage, index: usize, name: &str) {
    let dir = st.store.data_dir(index).join(QUARANTINE_DIR);
    let q = dir.join(quarantine_name(name));
    let _ = std::fs::rename(&q, dir.join(format!("{}{REPAIRED}", quarantine_name(name))));
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut kept: Vec<(std::time::SystemTime, u64, PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let md = e.metadata().ok()?;
            Some((md.modified().ok()?, md.len(), e.path()))
        })
        .collect();
    let mut total: u64 = kept.iter().map(|k| k.1).sum();
    kept.sort();
    let limit = st.cfg.scrub_quarantine_size;
    for (_, len, path) in kept {
        if total <= limit {
            break;
        }
        if path.to_string_lossy().ends_with(REPAIRED) && std::fs::remove_file(&path).is_ok() {
            total -= len;
            log::info!(
                "scrub: quarantine above {limit} bytes: dropped {}",
                path.display()
            );
        }
    }
}

/// The suffix of a quarantined copy whose file was repaired.
const REPAIRED: &str = ".repaired";

/// Each ACTIVE member in turn until one gives an intact copy of `name`: `fetch` gets it (None:
/// that member has none), `intact` checks it (and drops it when it is not). A failed fetch and
/// a corrupt copy are logged, and the next member is asked.
fn first_intact_copy<T>(
    st: &Storage,
    name: &str,
    mut fetch: impl FnMut(&Brief) -> std::io::Result<Option<T>>,
    mut intact: impl FnMut(&T) -> bool,
) -> Option<T> {
    for peer in st.active_peers() {
        let got = match fetch(&peer) {
            Ok(Some(got)) => got,
            Ok(None) => continue,
            Err(e) => {
                log::warn!(
                    "scrub: fetch {name} from {}:{} fail: {e}",
                    peer.ip,
                    peer.port
                );
                continue;
            }
        };
        if intact(&got) {
            return Some(got);
        }
        log::error!(
            "scrub: the copy of {name} on {}:{} is corrupt too",
            peer.ip,
            peer.port
        );
    }
    None
}

/// Fetch `name` again from each ACTIVE member in turn until a copy checks out (the fetch
/// checks a copy against the name before it takes the file's place).
fn repair(st: &Storage, index: usize, name: &str, path: &Path, mtime: i64) -> bool {
    first_intact_copy(
        st,
        name,
        |peer| {
            crate::recovery::restore_file(st, peer, name, mtime, path, index, false)
                .map(|restored| restored.then_some(()))
        },
        |_| true,
    )
    .is_some()
}

/// Files in trunk slots, found through the binlog's create records (a slot's header does not
/// carry the whole file ID a repair has to ask for). A slot whose header is all zeros holds
/// nothing here (not arrived yet, or deleted), one whose header is another file's holds that
/// file (this one was deleted, its slot reused once its tombstone was forgotten; or a power
/// cut took this file's bytes and left a deleted one's, which reconcile writes over); one whose
/// header is this file's (but for a damaged byte or two) and whose data disagree with the name
/// is corrupt.
fn scrub_trunk_slots(st: &Storage, throttle: &mut Throttle, stop: &dyn Fn() -> bool) {
    let sync_dir = st.cfg.server.base_path.join("data/sync");
    let mut seen = std::collections::HashSet::new();
    let mut live = Vec::new();
    // names with a delete line, and when each create line was stamped: an empty slot is
    // fetched again only for a file never deleted and created a while ago
    let mut ever_deleted = std::collections::HashSet::new();
    let mut created_at = std::collections::HashMap::new();
    for i in 0..=st.binlog.current_index() {
        let _ =
            crate::binlog::for_each_record(&sync_dir.join(crate::binlog::binlog_name(i)), |r| {
                if r.op.eq_ignore_ascii_case(&'D') {
                    ever_deleted.insert(r.name);
                } else if r.op.eq_ignore_ascii_case(&'C')
                    && is_trunk_name(&r.name)
                    && seen.insert(r.name.clone())
                {
                    created_at.insert(r.name.clone(), r.timestamp);
                    live.push(r.name);
                }
            });
    }
    live.retain(|name| st.binlog.deleted_at(name).is_none());
    let now = fdfs_common::now();
    for name in &live {
        if stop() {
            return;
        }
        let settled = !ever_deleted.contains(name)
            && created_at
                .get(name)
                .is_some_and(|&t| now - t >= EMPTY_SLOT_SETTLE_SECS);
        scrub_slot(st, name, &live, settled, throttle, stop);
    }
}

/// How old a file's create line must be before an empty slot for it counts as lost (a power
/// cut kept the line but not the bytes) rather than not written yet.
const EMPTY_SLOT_SETTLE_SECS: i64 = 30;

fn is_trunk_name(name: &str) -> bool {
    RemoteName::decode(name).is_ok_and(|rn| TrunkSlot::of_name(&rn).is_some())
}

/// `live`: the trunk names the binlog holds live (the neighbours an unreadable block may hold);
/// `settled`: the file was never deleted here and its line is old enough that an empty slot
/// means its bytes were lost.
fn scrub_slot(
    st: &Storage,
    name: &str,
    live: &[String],
    settled: bool,
    throttle: &mut Throttle,
    stop: &dyn Fn() -> bool,
) {
    let Ok(ln) = LogicalName::parse(name, st.store.paths.len()) else {
        return;
    };
    let Ok(rn) = RemoteName::decode(name) else {
        return;
    };
    let (Some(slot), Some(want)) = (
        TrunkSlot::of_name(&rn),
        SlotHeader::for_name(&rn, SLOT_REGULAR),
    ) else {
        return;
    };
    let path = st.store.trunk_file_path(&ln, &slot);
    let Ok(f) = std::fs::File::open(&path) else {
        if settled {
            empty_slot(st, name);
        }
        return;
    };
    let unreadable = |e: std::io::Error| {
        // past the trunk file's end is a slot not written here (yet, or a power cut lost
        // it), not a failing disk
        if e.kind() != std::io::ErrorKind::UnexpectedEof {
            unreadable_slot(st, name, &path, live, &e);
        } else if settled {
            empty_slot(st, name);
        }
    };
    let mut head = [0u8; SLOT_HEADER_LEN as usize];
    if let Err(e) = f.read_exact_at(&mut head, u64::from(slot.offset)) {
        return unreadable(e);
    }
    if head == [0u8; SLOT_HEADER_LEN as usize] {
        if settled {
            empty_slot(st, name);
        }
        return;
    }
    let held = SlotHeader::from_bytes(&head);
    let header_ok = held.names(&rn);
    // a header that is not this file's, and not this file's with a byte or two damaged, is
    // another file's: this name was deleted and its slot (or a part of it) given to a newer
    // file. Nothing to check, and above all nothing to hide: that file is live.
    if !header_ok && !held.resembles(&want) {
        return;
    }
    let data = match crate::store::read_at(&f, slot.data_offset(), want.file_size as usize) {
        Ok(data) => data,
        Err(e) => return unreadable(e),
    };
    throttle.pace(PER_FILE_CHARGE + data.len() as u64, stop);
    let stats = &st.scrub;
    stats.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
    stats.files.fetch_add(1, Ordering::Relaxed);
    let crc = crc32fast::hash(&data);
    if (header_ok && crc == want.crc32) || stop() {
        return;
    }
    stats.corrupt.fetch_add(1, Ordering::Relaxed);
    log::error!(
        "scrub: {name} is corrupt in its trunk slot ({}crc32 {crc:08x}; its name says crc32 {:08x})",
        if header_ok { "" } else { "header differs, " },
        want.crc32
    );
    // the whole slot, header included, is what forensics wants
    let mut whole = head.to_vec();
    whole.extend_from_slice(&data);
    let kept =
        quarantine_path(st, ln.store_path_index, name).and_then(|q| std::fs::write(q, &whole));
    if let Err(e) = kept {
        log::error!("scrub: keep a copy of {name} fail: {e}");
    }
    let _g = st.lock_for(name);
    let intact = first_intact_copy(
        st,
        name,
        |peer| crate::recovery::fetch_bytes(st, peer, name),
        |got: &Vec<u8>| got.len() == data.len() && crc32fast::hash(got) == want.crc32,
    );
    if let Some(got) = intact {
        match st.put_slot(name, &got, &|_| true) {
            Ok(_) => {
                stats.repaired.fetch_add(1, Ordering::Relaxed);
                log::info!("scrub: {name} repaired from a member's intact copy");
                mark_repaired(st, ln.store_path_index, name);
            }
            Err(e) => log::error!("scrub: rewrite the slot of {name} fail: {e}"),
        }
        return;
    }
    // never served again, as a corrupt plain file leaves the served tree: the header goes
    // (the slot stays taken; its bytes are in quarantine)
    let hidden = st.write_at(
        &path,
        &[(u64::from(slot.offset), &[0u8; SLOT_HEADER_LEN as usize])],
    );
    if let Err(e) = hidden {
        log::error!("scrub: hide the corrupt slot of {name} fail: {e}");
    }
    stats.unrepairable.fetch_add(1, Ordering::Relaxed);
    log::error!(
        "scrub: no member holds an intact copy of {name}; a copy of its slot is kept in {}",
        QUARANTINE_DIR
    );
}

/// A live file's slot is empty here though its line is old: the bytes were lost after the line
/// was kept (a power cut in page-cache mode keeps the binlog, fdatasynced every second, and not
/// always the trunk file), and the peer that sent it counts it as delivered. Fetched from a
/// member whose copy checks out; when none has it, nothing happens.
fn empty_slot(st: &Storage, name: &str) {
    let _g = st.lock_for(name);
    let Some(got) = intact_slot(st, name) else {
        return;
    };
    // never over another file: the slot may have been written meanwhile (a late replica)
    match st.put_slot(name, &got.bytes[SLOT_HEADER_LEN as usize..], &|_| false) {
        Ok(false) => {}
        Ok(true) => {
            st.scrub.repaired.fetch_add(1, Ordering::Relaxed);
            log::warn!("scrub: {name}'s slot was empty here (bytes lost after its line was kept); fetched from a member");
        }
        Err(e) => log::error!("scrub: fill the empty slot of {name} fail: {e}"),
    }
}

/// The trunk file a trunk name's slot is in, and the bytes the slot spans there (header and data).
fn slot_place(st: &crate::storage::Storage, name: &str) -> Option<(PathBuf, u64, u64)> {
    let ln = LogicalName::parse(name, st.store.paths.len()).ok()?;
    let rn = RemoteName::decode(name).ok()?;
    let slot = TrunkSlot::of_name(&rn)?;
    let header = SlotHeader::for_name(&rn, SLOT_REGULAR)?;
    let start = u64::from(slot.offset);
    let end = slot.data_offset() + u64::from(header.file_size);
    Some((st.store.trunk_file_path(&ln, &slot), start, end))
}

/// A live trunk name and its slot's bytes as they should be (header and data), with the data
/// fetched intact from a member.
fn intact_slot(st: &Storage, name: &str) -> Option<SlotBytes> {
    let rn = RemoteName::decode(name).ok()?;
    let slot = TrunkSlot::of_name(&rn)?;
    let header = SlotHeader::for_name(&rn, SLOT_REGULAR)?;
    let got = first_intact_copy(
        st,
        name,
        |peer| crate::recovery::fetch_bytes(st, peer, name),
        |got: &Vec<u8>| {
            got.len() == header.file_size as usize && crc32fast::hash(got) == header.crc32
        },
    )?;
    let mut bytes = header.to_bytes().to_vec();
    bytes.extend_from_slice(&got);
    Some(SlotBytes {
        offset: u64::from(slot.offset),
        bytes,
    })
}

/// `name`'s slot in trunk file `path` cannot be read: each unreadable block it touches is
/// written again whole from the intact copies of the live slots it holds (`slot_blocks`), then
/// the slot itself.
fn unreadable_slot(st: &Storage, name: &str, path: &Path, live: &[String], e: &std::io::Error) {
    let stats = &st.scrub;
    stats.files.fetch_add(1, Ordering::Relaxed);
    stats.corrupt.fetch_add(1, Ordering::Relaxed);
    stats.unreadable.fetch_add(1, Ordering::Relaxed);
    log::error!(
        "scrub: {name} cannot be read in its trunk slot ({e}): a failing disk; fetching it again"
    );
    let _g = st.lock_for(name);
    let (Some(mine), Ok(f)) = (intact_slot(st, name), std::fs::File::open(path)) else {
        stats.unrepairable.fetch_add(1, Ordering::Relaxed);
        log::error!("scrub: no member holds an intact copy of {name}; its slot is left as it is");
        return;
    };
    let bad = slot_blocks::unreadable_blocks(&f, mine.offset, mine.end());
    let mut slots = vec![mine];
    for other in live.iter().filter(|o| o.as_str() != name) {
        let in_a_bad_block = slot_place(st, other).is_some_and(|(p, start, end)| {
            p == path && bad.iter().any(|&b| slot_blocks::touches(start, end, b))
        });
        if !in_a_bad_block || st.binlog.deleted_at(other).is_some() {
            continue;
        }
        match intact_slot(st, other) {
            Some(s) => slots.push(s),
            None => {
                stats.unrepairable.fetch_add(1, Ordering::Relaxed);
                log::error!(
                    "scrub: no member holds an intact copy of {other}, whose slot shares an \
                     unreadable block with {name}; left out of the block written again"
                );
            }
        }
    }
    // a block some writer wrote whole since (a new slot) reads again, and is left alone
    let blocks: Vec<(u64, Vec<u8>)> = bad
        .iter()
        .filter(|&&b| !slot_blocks::unreadable_blocks(&f, b, b + 1).is_empty())
        .map(|&b| (b, slot_blocks::compose(b, &slots)))
        .collect();
    let pieces: Vec<(u64, &[u8])> = blocks.iter().map(|(b, v)| (*b, v.as_slice())).collect();
    let mine = &slots[0];
    let written = st
        .write_at(path, &pieces)
        .and_then(|()| st.write_at(path, &[(mine.offset, &mine.bytes)]));
    match written {
        Ok(()) => {
            stats
                .repaired
                .fetch_add(slots.len() as u64, Ordering::Relaxed);
            log::info!(
                "scrub: {name} repaired from a member's intact copy ({} unreadable block(s) of \
                 {} written again whole, with {} other file(s) they hold)",
                blocks.len(),
                path.display(),
                slots.len() - 1
            );
        }
        Err(e) => log::error!("scrub: rewrite the slot of {name} fail: {e}"),
    }
}
