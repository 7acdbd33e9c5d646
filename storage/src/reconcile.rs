//! Reconcile (`reconcile_interval`, rfdfs's own key): repair that does not trust the binlog.
//!
//! Every `reconcile_interval` seconds this member asks each ACTIVE rfdfs peer for one digest per
//! sub directory of each store path: a hash of the sorted (file name, size) list, built from a
//! directory walk (readdir and one stat per file; no file is read, since a normal file's CRC32
//! is in its name and content checks are the scrub's job). Only sub directories whose digests
//! differ are listed in full, and every file the peer holds and this member lacks is fetched,
//! unless a delete recorded here says a client deleted it: then the peer is sent that delete (a
//! fact it missed, its line lost with a damaged binlog or never sent), rather than this member
//! fetching the file back. Nothing else is ever deleted: a file this member holds and a peer
//! lacks is the peer's to fetch on its own pass.
//!
//! Deletes are remembered (the binlog's tombstones) until every member has sent something newer
//! (see `prune_tombstones`) and, with reconcile on, until a pass that began at least
//! `TOMBSTONE_MARGIN` after the delete compared with every rfdfs member, none of them down:
//! by then every member that still held the file has been sent its delete, so no pass can
//! fetch it back. A member that is down keeps every delete remembered until it is back.
//!
//! That repairs what the binlog cannot: a lost or truncated binlog, an emptied or stale mark
//! file, files removed by hand, a store path replaced by an empty one.
//!
//! The walk is also set beside the listing index (`IndexCheck`, `listing::against_disk`), which
//! follows the binlog and so is as wrong as the binlog: what two passes in a row find different
//! is corrected to what the store path holds.
//!
//! Files in trunk slots are compared too: a sub directory's list holds, beside its plain
//! files, the files of trunk slots the binlog creates there and no delete undoes, whose slot
//! header here names them (a slot emptied by a power cut, or not written yet, is not held);
//! one a peer holds and this member lacks is fetched into its slot, never over a file held
//! here (see `may_write_over` for the dead file a power cut can leave in the slot).
//! A trunk file itself is compared by size only. Not covered: two copies of one name that
//! differ in size (counted and logged, not changed: an appender file's newer length is for its
//! source's sync to carry).

use crate::listing::against_disk::{self, Difference};
use crate::listing::index::first_entry;
use crate::storage::Storage;
use fdfs_common::codec::Message;
use fdfs_common::file_id::RemoteName;
use fdfs_common::net::{self, NetError};
use fdfs_common::proto::rfdfs::{Digests, DigestsReq, Listing, ListingReq, Status};
use fdfs_common::proto::sync::SyncDeleteReq;
use fdfs_common::proto::{cmd, errno, status};
use fdfs_common::refusal::Refusal;
use fdfs_common::trunk::{SlotHeader, TrunkSlot};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A sub directory's files: name -> size (a link's size is its target's).
type SubdirFiles = BTreeMap<String, u64>;

use crate::storage::SlotFiles;

/// The files of trunk slots of store path `index` that this member holds: created by a binlog
/// line, not deleted since (a line or a remembered delete), and named by their slot's header
/// here. A pass over the binlog and one header read per file.
fn held_slot_files(st: &Storage, index: usize) -> SlotFiles {
    use fdfs_common::trunk::{SlotHeader, TrunkSlot, SLOT_HEADER_LEN};
    use std::os::unix::fs::FileExt;
    let sync_dir = st.cfg.server.base_path.join("data/sync");
    let prefix = format!("M{index:02X}/");
    let mut live = std::collections::BTreeSet::new();
    for i in 0..=st.binlog.current_index() {
        let _ =
            crate::binlog::for_each_record(&sync_dir.join(crate::binlog::binlog_name(i)), |r| {
                if !r.name.starts_with(&prefix) {
                    return;
                }
                if r.op.eq_ignore_ascii_case(&'C') {
                    live.insert(r.name);
                } else if r.op.eq_ignore_ascii_case(&'D') {
                    live.remove(&r.name);
                }
            });
    }
    let mut held = SlotFiles::new();
    let mut trunk_files: BTreeMap<std::path::PathBuf, Option<std::fs::File>> = BTreeMap::new();
    for name in live {
        if st.binlog.deleted_at(&name).is_some() {
            continue;
        }
        let Ok(rn) = RemoteName::decode(&name) else {
            continue;
        };
        let (Some(slot), Ok(ln)) = (
            TrunkSlot::of_name(&rn),
            fdfs_common::file_id::LogicalName::parse(&name, st.store.paths.len()),
        ) else {
            continue;
        };
        let path = st.store.trunk_file_path(&ln, &slot);
        let f = trunk_files
            .entry(path.clone())
            .or_insert_with(|| std::fs::File::open(&path).ok());
        let mut head = [0u8; SLOT_HEADER_LEN as usize];
        let named = f.as_ref().is_some_and(|f| {
            f.read_exact_at(&mut head, u64::from(slot.offset)).is_ok()
                && SlotHeader::from_bytes(&head).names(&rn)
        });
        let (Some(high), Some(low)) = (
            u32::from_str_radix(&name[4..6], 16).ok(),
            u32::from_str_radix(&name[7..9], 16).ok(),
        ) else {
            continue;
        };
        if named {
            let size = rn.payload.file_size().unwrap_or(0).max(0) as u64;
            held.entry((high, low))
                .or_default()
                .insert(name[10..].to_string(), size);
        }
    }
    held
}

fn list_subdir(dir: &Path) -> SubdirFiles {
    let mut files = SubdirFiles::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return files;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // hidden names are rfdfs's and upstream's own (temp files, quarantine)
        if name.starts_with('.') {
            continue;
        }
        if let Ok(md) = std::fs::metadata(e.path()) {
            if md.is_file() {
                files.insert(name, md.len());
            }
        }
    }
    files
}

/// FNV-1a over the sorted list: equal lists give equal digests on every member.
fn digest(files: &SubdirFiles) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, size) in files {
        for b in name.bytes().chain([0]).chain(size.to_le_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

impl Storage {
    fn subdir_dir(&self, index: usize, high: u32, low: u32) -> std::path::PathBuf {
        self.store
            .data_dir(index)
            .join(format!("{high:02X}"))
            .join(format!("{low:02X}"))
    }

    /// The digests of a store path, from the last walk while it is younger than
    /// `reconcile_interval`.
    fn recent_digests(&self, index: usize) -> Digests {
        let fresh = Duration::from_secs(self.cfg.reconcile_interval);
        if let Some((at, d)) = self.reconcile.walked.lock().get(&index) {
            if at.elapsed() < fresh {
                return d.clone();
            }
        }
        self.store_path_digests(index).0
    }

    /// The files of trunk slots of store path `index` held here, listed again when the last
    /// list is older than `reconcile_interval`.
    fn slot_files(&self, index: usize, fresh: bool) -> std::sync::Arc<SlotFiles> {
        let max_age = Duration::from_secs(self.cfg.reconcile_interval);
        if !fresh {
            if let Some((at, l)) = self.reconcile.slots_listed.lock().get(&index) {
                if at.elapsed() < max_age {
                    return std::sync::Arc::clone(l);
                }
            }
        }
        let l = std::sync::Arc::new(held_slot_files(self, index));
        self.reconcile
            .slots_listed
            .lock()
            .insert(index, (Instant::now(), std::sync::Arc::clone(&l)));
        l
    }

    /// A sub directory's plain files and the files of trunk slots held there.
    fn subdir_files(&self, index: usize, high: u32, low: u32, slots: &SlotFiles) -> SubdirFiles {
        let mut files = list_subdir(&self.subdir_dir(index, high, low));
        if let Some(more) = slots.get(&(high, low)) {
            files.extend(more.iter().map(|(k, v)| (k.clone(), *v)));
        }
        files
    }

    /// Every sub directory's digest of one store path (a walk), and how many files were listed.
    fn store_path_digests(&self, index: usize) -> (Digests, u64) {
        self.walk_store_path(index, |_, _, _| ())
    }

    /// [`Storage::store_path_digests`], showing `visit` each sub directory's list as it is
    /// walked.
    fn walk_store_path(
        &self,
        index: usize,
        mut visit: impl FnMut(u32, u32, &SubdirFiles),
    ) -> (Digests, u64) {
        let n = self.cfg.subdir_count_per_path;
        let mut files = 0;
        let mut digests = Vec::with_capacity((n * n) as usize);
        let slots = self.slot_files(index, true);
        for high in 0..n {
            for low in 0..n {
                let list = self.subdir_files(index, high, low, &slots);
                files += list.len() as u64;
                digests.push(digest(&list));
                visit(high, low, &list);
            }
        }
        let d = Digests {
            subdir_count: n,
            digests,
        };
        self.reconcile
            .walked
            .lock()
            .insert(index, (Instant::now(), d.clone()));
        (d, files)
    }

    /// RECONCILE_DIGESTS
    pub(crate) fn reconcile_digests(&self, body: &[u8]) -> Result<Vec<u8>, Refusal> {
        let req = DigestsReq::from_bytes(body)?;
        let index = req.store_path_index as usize;
        if req.group != self.group || index >= self.store.paths.len() {
            return Err(Refusal::done(errno::EINVAL));
        }
        Ok(self.recent_digests(index).to_bytes())
    }

    /// RECONCILE_LISTING
    pub(crate) fn reconcile_listing(&self, body: &[u8]) -> Result<Vec<u8>, Refusal> {
        let req = ListingReq::from_bytes(body)?;
        let index = req.store_path_index as usize;
        let n = self.cfg.subdir_count_per_path;
        if req.group != self.group
            || index >= self.store.paths.len()
            || u32::from(req.high) >= n
            || u32::from(req.low) >= n
        {
            return Err(Refusal::done(errno::EINVAL));
        }
        let slots = self.slot_files(index, false);
        let files = self.subdir_files(index, req.high.into(), req.low.into(), &slots);
        Ok(Listing {
            files: files.into_iter().collect(),
        }
        .to_bytes())
    }

    /// RFDFS_STATUS: what `rfdfs_admin status` shows of this member.
    pub(crate) fn rfdfs_status(&self) -> Result<Vec<u8>, Refusal> {
        let mut items: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, v: String| items.push((k.to_string(), v));
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
        put("group", self.group.clone());
        put("id", self.my_id.read().clone());
        let active: Vec<String> = self.active_peers().into_iter().map(|b| b.id).collect();
        put("active_peers", active.join(","));
        put("write_ack_copies", self.cfg.write_ack_copies.to_string());
        put("copies_confirmed", load(&self.copies.confirmed));
        put("copies_failed", load(&self.copies.failed));
        let end = self.binlog.visible_end();
        put("binlog_end", format!("{}:{}", end.0, end.1));
        let refusing = self.binlog.refusing();
        put("binlog_writable", u8::from(refusing.is_none()).to_string());
        if let Some(code) = refusing {
            let name = if code == errno::ENOSPC {
                "ENOSPC"
            } else {
                "EIO"
            };
            put("binlog_refusing_with", name.into());
        }
        put(
            "binlog_refused_changes",
            self.binlog.refused_changes().to_string(),
        );
        put("binlog_damage", self.binlog.damage_count().to_string());
        let recovering = self.recovering.load(Ordering::Relaxed);
        put("recovering_store_paths", recovering.to_string());
        put(
            "binlog_rerecorded",
            self.binlog.rerecorded_count().to_string(),
        );
        for (peer, at) in self.copies.positions() {
            put(&format!("peer.{peer}"), format!("{}:{}", at.0, at.1));
        }
        let s = &self.scrub;
        put(
            "scrub_bytes_per_second",
            self.cfg.scrub_bytes_per_second.to_string(),
        );
        put("scrub_bytes", load(&s.bytes));
        put("scrub_files", load(&s.files));
        put("scrub_corrupt", load(&s.corrupt));
        put("scrub_unreadable", load(&s.unreadable));
        put("scrub_repaired", load(&s.repaired));
        put("scrub_unrepairable", load(&s.unrepairable));
        put("scrub_passes", load(&s.passes));
        put(
            "scrub_pass_subdirs",
            format!("{}/{}", load(&s.subdirs_done), load(&s.subdirs_total)),
        );
        put(
            "scrub_last_pass_end",
            s.last_pass_end.load(Ordering::Relaxed).to_string(),
        );
        let r = &self.reconcile;
        put(
            "reconcile_interval",
            self.cfg.reconcile_interval.to_string(),
        );
        put("reconcile_passes", load(&r.passes));
        put(
            "reconcile_last_pass_end",
            r.last_pass_end.load(Ordering::Relaxed).to_string(),
        );
        put("reconcile_last_pass_millis", load(&r.last_pass_millis));
        put("reconcile_last_pass_files", load(&r.last_pass_files));
        put(
            "reconcile_last_pass_differences",
            load(&r.last_pass_differences),
        );
        put("reconcile_last_pass_fetched", load(&r.last_pass_fetched));
        put("reconcile_differences", load(&r.differences));
        put("reconcile_fetched", load(&r.fetched));
        put("reconcile_deleted_kept_away", load(&r.deleted_kept_away));
        put("reconcile_deletes_sent", load(&r.deletes_sent));
        Ok(Status { items }.to_bytes())
    }
}

/// The reconcile thread's body.
pub fn run(st: &Storage, stop_flag: &AtomicBool, interval: u64) {
    let stop = || stop_flag.load(Ordering::Relaxed);
    // peers that refused the command (C storages): asked again only after a restart
    let mut not_rfdfs: Vec<String> = Vec::new();
    // the listing index's differences from the files the last pass found (`IndexCheck`)
    let mut suspects = IndexSuspects::new();
    loop {
        let next = Instant::now() + Duration::from_secs(interval);
        while !stop() && Instant::now() < next {
            std::thread::sleep(Duration::from_millis(100));
        }
        if stop() {
            return;
        }
        pass(st, stop_flag, &mut not_rfdfs, &mut suspects);
    }
}

fn pass(
    st: &Storage,
    stop: &AtomicBool,
    not_rfdfs: &mut Vec<String>,
    suspects: &mut IndexSuspects,
) {
    let r = &st.reconcile;
    let began = Instant::now();
    let started_at = fdfs_common::now();
    let mut peers = st.active_peers();
    peers.retain(|b| !not_rfdfs.contains(&b.id));
    // a pass that compares with every rfdfs member (none down) lets the deletes older than it
    // be forgotten: any member that still held such a file was sent its delete
    let me = st.my_id.read().clone();
    let mut complete = st.members.read().iter().all(|m| {
        m.id == me
            || status::gone(m.status)
            || not_rfdfs.contains(&m.id)
            || m.status == status::ACTIVE
    });
    let (mut files, mut differences, mut fetched) = (0, 0, 0);
    let mut index_check = IndexCheck::new(st, suspects);
    for index in 0..st.store.paths.len() {
        if !st.store.path_ok(index) {
            complete = false;
            continue;
        }
        index_check.catch_up();
        let (mine, listed) = st.walk_store_path(index, |high, low, list| {
            index_check.visit(index, high, low, list)
        });
        files += listed;
        for peer in &peers {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match reconcile_with(st, stop, peer, index, &mine) {
                Ok((d, f)) => {
                    differences += d;
                    fetched += f;
                }
                Err(NetError::Status(s)) if s == errno::EINVAL => {
                    complete = false;
                    log::info!(
                        "reconcile: storage {} does not answer rfdfs's RECONCILE_DIGESTS \
                         (a C storage?); not asked again",
                        peer.id
                    );
                    not_rfdfs.push(peer.id.clone());
                }
                Err(e) => {
                    complete = false;
                    log::warn!("reconcile with storage {}: {e}", peer.id)
                }
            }
        }
    }
    *suspects = index_check.finish();
    if complete {
        r.complete_pass_start.store(started_at, Ordering::Relaxed);
    }
    r.passes.fetch_add(1, Ordering::Relaxed);
    r.last_pass_end.store(fdfs_common::now(), Ordering::Relaxed);
    r.last_pass_millis
        .store(began.elapsed().as_millis() as u64, Ordering::Relaxed);
    r.last_pass_files.store(files, Ordering::Relaxed);
    r.last_pass_differences
        .store(differences, Ordering::Relaxed);
    r.last_pass_fetched.store(fetched, Ordering::Relaxed);
    if differences > 0 {
        log::info!(
            "reconcile: {files} files compared with {} member(s) in {:.1?}; {differences} \
             difference(s), {fetched} file(s) fetched",
            peers.len(),
            began.elapsed()
        );
    }
}

/// The listing index compared with the walk of each sub directory (`listing::against_disk`).
/// A difference is corrected when the pass before found it too: one seen once may be an upload
/// or a delete whose binlog line was not written yet when the walk passed, which the follower
/// applies itself a moment later.
struct IndexCheck<'a> {
    st: &'a Storage,
    /// false while the index is rebuilt from the binlog: nothing to compare yet
    ready: bool,
    /// what the pass before found
    before: &'a IndexSuspects,
    /// what this pass finds and does not correct
    seen: IndexSuspects,
    corrected: u64,
}

/// Differences between the listing index and the files, by name.
type IndexSuspects = std::collections::HashSet<(String, Difference)>;

impl<'a> IndexCheck<'a> {
    fn new(st: &'a Storage, before: &'a IndexSuspects) -> IndexCheck<'a> {
        IndexCheck {
            st,
            ready: st.listing.ready(),
            before,
            seen: Default::default(),
            corrected: 0,
        }
    }

    /// Let the follower apply what the binlog holds before a store path is walked, so that
    /// the index is not behind the walk by more than the lines written meanwhile.
    fn catch_up(&self) {
        if self.ready {
            self.st.listing.catch_up(self.st.binlog.visible_end());
        }
    }

    fn visit(&mut self, index: usize, high: u32, low: u32, on_disk: &SubdirFiles) {
        if !self.ready {
            return;
        }
        let prefix = format!("M{index:02X}/{high:02X}/{low:02X}/");
        let listed =
            self.st
                .listing
                .index
                .read()
                .page("", &prefix, usize::MAX, usize::MAX, |_, _| true);
        let listed = match listed {
            Ok(page) => page.entries,
            Err(e) => {
                log::error!("reconcile: read the listing index of {prefix} fail: {e}");
                return;
            }
        };
        for (name, d) in against_disk::compare(&prefix, &listed, on_disk) {
            let key = (name, d);
            if !self.before.contains(&key) {
                self.seen.insert(key);
                continue;
            }
            let (name, d) = key;
            let entry = match d {
                Difference::NotOnDisk => None,
                Difference::NotListed(size) | Difference::Size(size) => Some(first_entry(
                    &name,
                    || Some(size),
                    self.st.listed_meta(&name),
                )),
            };
            match self.st.listing.correct(&name, entry) {
                Ok(()) => {
                    self.corrected += 1;
                    log::warn!(
                        "reconcile: the listing index {} {name}: corrected",
                        match d {
                            Difference::NotListed(_) => "did not list",
                            Difference::NotOnDisk => "listed the absent",
                            Difference::Size(_) => "had another size for",
                        }
                    );
                }
                Err(e) => log::error!("reconcile: correct the listing index for {name} fail: {e}"),
            }
        }
    }

    /// What this pass found uncorrected: what the next pass corrects if found again.
    fn finish(self) -> IndexSuspects {
        self.st
            .reconcile
            .index_corrected
            .fetch_add(self.corrected, Ordering::Relaxed);
        self.seen
    }
}

fn peer_request(
    st: &Storage,
    peer: &fdfs_common::proto::cluster::Brief,
    command: u8,
    body: &[u8],
) -> Result<Vec<u8>, NetError> {
    let mut s = st.connect_to(&peer.ip, peer.port as u16)?;
    let r = net::request(&mut s, command, body);
    net::quit(s);
    r
}

/// Send the delete of `name` (made here at `deleted`) to a peer that still holds the file, as
/// the sync thread would have (SYNC_DELETE_FILE: the peer records it as a replicated delete).
fn pass_on_delete(
    st: &Storage,
    peer: &fdfs_common::proto::cluster::Brief,
    name: &str,
    deleted: i64,
) {
    // a file created after that delete (a delete taken back) is not the one deleted
    let created = RemoteName::decode(name.strip_suffix("-m").unwrap_or(name))
        .map(|rn| i64::from(rn.payload.timestamp))
        .unwrap_or(0);
    if created > deleted {
        return;
    }
    let body = SyncDeleteReq {
        timestamp: deleted as i32,
        group: st.group.clone(),
        filename: name.to_string(),
    }
    .to_bytes();
    match peer_request(st, peer, cmd::SYNC_DELETE_FILE, &body) {
        Ok(_) | Err(NetError::Status(errno::ENOENT)) => {
            st.reconcile.deletes_sent.fetch_add(1, Ordering::Relaxed);
            log::info!(
                "reconcile: {name} was deleted here; the delete sent to storage {}",
                peer.id
            );
        }
        Err(e) => log::warn!("reconcile: send the delete of {name} to {}: {e}", peer.id),
    }
}

/// Compare one store path with one peer; fetch what it has and we lack. Returns (differences,
/// files fetched).
fn reconcile_with(
    st: &Storage,
    stop: &AtomicBool,
    peer: &fdfs_common::proto::cluster::Brief,
    index: usize,
    mine: &Digests,
) -> Result<(u64, u64), NetError> {
    let req = DigestsReq {
        group: st.group.clone(),
        store_path_index: index as u8,
    };
    let theirs = peer_request(st, peer, cmd::RECONCILE_DIGESTS, &req.to_bytes())?;
    let theirs = Digests::from_bytes(&theirs)?;
    if theirs.subdir_count != mine.subdir_count {
        return Err(NetError::Protocol(format!(
            "it has {} sub directories per level, this member {}",
            theirs.subdir_count, mine.subdir_count
        )));
    }
    let n = mine.subdir_count;
    let (mut differences, mut fetched) = (0, 0);
    let slots = st.slot_files(index, false);
    let places = std::cell::OnceCell::new();
    for (i, (a, b)) in mine.digests.iter().zip(&theirs.digests).enumerate() {
        if a == b {
            continue;
        }
        let (high, low) = (i as u32 / n, i as u32 % n);
        let req = ListingReq {
            group: st.group.clone(),
            store_path_index: index as u8,
            high: high as u8,
            low: low as u8,
        };
        let listing = peer_request(st, peer, cmd::RECONCILE_LISTING, &req.to_bytes())?;
        let listing = Listing::from_bytes(&listing)?;
        let dir = st.subdir_dir(index, high, low);
        let here = st.subdir_files(index, high, low, &slots);
        for (file, size) in listing.files {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let name = format!("M{index:02X}/{high:02X}/{low:02X}/{file}");
            match here.get(&file) {
                Some(s) if *s == size => continue,
                Some(s) => {
                    differences += 1;
                    st.reconcile.differences.fetch_add(1, Ordering::Relaxed);
                    log::warn!(
                        "reconcile: {name} is {s} bytes here and {size} on storage {}; left as is",
                        peer.id
                    );
                    continue;
                }
                None => {}
            }

            st.reconcile.differences.fetch_add(1, Ordering::Relaxed);
            if let Some(deleted) = st.binlog.deleted_at(&name) {
                st.reconcile
                    .deleted_kept_away
                    .fetch_add(1, Ordering::Relaxed);
                // deleted here: a fact the peer missed (a line lost with a damaged binlog, a
                // member away): it gets the delete, rather than this member the file again
                pass_on_delete(st, peer, &name, deleted);
                continue;
            }
            // a trunk file is not a file ID: nothing to download it by
            let base = name.strip_suffix("-m").unwrap_or(&name);
            let Ok(rn) = RemoteName::decode(base) else {
                continue;
            };
            let ts = i64::from(rn.payload.timestamp);
            differences += 1;
            let dest = dir.join(&file);
            let in_slot = fdfs_common::trunk::TrunkSlot::of_name(&rn).is_some();
            let restored = if in_slot {
                let places = places.get_or_init(|| held_slot_places(&slots, index));
                let over = |holder: &SlotHeader| may_write_over(places, &rn, holder);
                let _g = st.lock_for(&name);
                crate::recovery::restore_slot(st, peer, &name, &over)
            } else {
                crate::recovery::restore_file(st, peer, &name, ts, &dest, index, false)
            };
            match restored {
                Ok(true) => {
                    // deleted here while it was on its way: the delete stands
                    if st.binlog.deleted_at(&name).is_some() {
                        if in_slot {
                            hide_slot(st, &name);
                        } else {
                            let _ = std::fs::remove_file(&dest);
                        }
                        continue;
                    }
                    // this storage's binlog names every file it holds
                    if let Err(e) = st.binlog.write(ts, 'c', &name, "") {
                        log::error!("reconcile: record {name} in the binlog fail: {e}");
                    }
                    fetched += 1;
                    st.reconcile.fetched.fetch_add(1, Ordering::Relaxed);
                    log::info!("reconcile: {name} fetched from storage {}", peer.id);
                }
                Ok(false) => {}
                Err(e) => {
                    st.reconcile.failed_fetches.fetch_add(1, Ordering::Relaxed);
                    log::warn!("reconcile: fetch {name} from storage {}: {e}", peer.id);
                }
            }
        }
    }
    Ok((differences, fetched))
}

/// Where the files held here in trunk slots of one store path lie: trunk id -> slot offset ->
/// slot end.
type HeldSlots = BTreeMap<u32, BTreeMap<u64, u64>>;

fn held_slot_places(slots: &SlotFiles, index: usize) -> HeldSlots {
    let mut places = HeldSlots::new();
    for ((high, low), files) in slots {
        for file in files.keys() {
            let name = format!("M{index:02X}/{high:02X}/{low:02X}/{file}");
            let Some(slot) = RemoteName::decode(&name)
                .ok()
                .and_then(|rn| TrunkSlot::of_name(&rn))
            else {
                continue;
            };
            places
                .entry(slot.trunk_id)
                .or_default()
                .insert(u64::from(slot.offset), slot_end(&slot));
        }
    }
    places
}

fn slot_end(slot: &TrunkSlot) -> u64 {
    u64::from(slot.offset) + u64::from(slot.alloc_size)
}

/// Whether the bytes of `rn`, a file a peer holds live and this member lacks, may be written
/// over what its slot holds here (`holder`, another file's header or the middle of its data).
/// A power cut in page-cache mode brings this about: the member had written `rn` over the slot
/// of a file deleted before, and the cut took `rn`'s bytes and left the old file's. The old
/// file is dead, as the trunk server gives a slot out again only once its file is deleted, so
/// it is written over, unless a file held here (live in this binlog and named by its own
/// header) overlaps the slot (then one of the two binlogs is wrong: left alone and logged), or
/// the holder is a file's header newer than `rn` (a replica that arrived after `rn` was
/// deleted and its slot given out again, since the listing was made).
fn may_write_over(places: &HeldSlots, rn: &RemoteName, holder: &SlotHeader) -> bool {
    let Some(slot) = TrunkSlot::of_name(rn) else {
        return false;
    };
    if holder.names(rn) {
        return false;
    }
    let overlaps = places.get(&slot.trunk_id).is_some_and(|held| {
        held.range(..slot_end(&slot))
            .next_back()
            .is_some_and(|(_, end)| *end > u64::from(slot.offset))
    });
    let newer = holder.is_a_header_for(holder.alloc_size) && holder.mtime > rn.payload.timestamp;
    !overlaps && !newer
}

/// Empty the slot of `name` again, for a file deleted while it was fetched: as a replica's
/// delete empties it.
fn hide_slot(st: &Storage, name: &str) {
    let Ok(ln) = fdfs_common::file_id::LogicalName::parse(name, st.store.paths.len()) else {
        return;
    };
    let emptied = st
        .store
        .open_stored(&ln, name)
        .and_then(|stored| st.zero_slot(&ln, &stored));
    if let Err(e) = emptied {
        log::error!("reconcile: empty the slot of {name} again fail: {e}");
    }
}
