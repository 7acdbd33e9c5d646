//! The trunk server role: the lease that says this storage holds it, the free-space index
//! (`crate::trunk_alloc`) loaded from `storage_trunk.dat` and the trunk binlog when the role
//! arrives, snapshots and compaction of that binlog, the quarantine a new trunk server keeps, new
//! trunk files created ahead, and what the tracker asks of trunk servers (TRUNK_GET_BINLOG_SIZE,
//! TRUNK_DELETE_BINLOG_MARKS). docs/protocol/sync-and-storage-layout.md 6.5, 6.6.

use crate::storage::{io_errno, Outcome, Storage};
use crate::trunk_alloc::{FreeIndex, TrunkServerState};
use fdfs_common::codec::Message;
use fdfs_common::codec::Reader;
use fdfs_common::proto::errno;
use fdfs_common::proto::trunk::{TrunkBinlogSize, TrunkInfo};
use fdfs_common::refusal::Refusal;
use fdfs_common::trunk::{SlotHeader, TrunkBinlogRecord, SLOT_HEADER_LEN};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

/// `data/trunk/.takeover`: TRUNK_DELETE_BINLOG_MARKS came (this storage takes the role from
/// another); kept until the quarantine it starts is over, removed by a push from another
/// trunk server.
pub(super) const TAKEOVER_MARKER: &str = ".takeover";

/// Trunk file ids a new trunk server leaves unused after the last one it knows of: more than
/// the trunk server before it can have made between its last beat and the end of its lease
/// (each takes `trunk_file_size` bytes of uploads).
const TAKEOVER_ID_GAP: u32 = 100;

/// How long every member must have been ACTIVE before a new trunk server allocates from the
/// trunk files of the one before it: the files that one handed out last have reached us by
/// then (they sync within seconds of its return).
const QUARANTINE_SETTLE: std::time::Duration = std::time::Duration::from_secs(30);

/// When the trunk server's scheduled jobs run next (`None`: not yet computed, or just run).
#[derive(Debug, Default)]
pub struct TrunkJobs {
    create_at: Option<i64>,
    compress_at: Option<i64>,
}

/// Every block of the index as an `A` line, stamped now: `storage_trunk.dat`'s body and a
/// compacted binlog.
fn index_lines(index: &FreeIndex) -> String {
    index
        .snapshot(fdfs_common::now())
        .iter()
        .map(|r| r.to_line())
        .collect()
}

impl Storage {
    /// `data/trunk`: the trunk binlog and the trunk server's per-member marks.
    pub fn trunk_dir(&self) -> PathBuf {
        self.cfg.server.base_path.join("data").join("trunk")
    }

    /// Whether the leader named this storage the group's trunk server.
    pub fn is_trunk_server(&self) -> bool {
        let me = self.my_id.read();
        self.trunk_server
            .read()
            .as_ref()
            .is_some_and(|b| !me.is_empty() && b.id == *me)
    }

    /// A beat answered by the leader tracker, whose change list leaves the trunk server role
    /// here: the role is sure for another `trunk_lease()`.
    pub(crate) fn renew_trunk_lease(&self) {
        let until = std::time::Instant::now() + self.trunk_lease();
        *self.trunk_lease_until.lock() = Some(until);
    }

    /// How long a beat holds the role: one and a half beat intervals, less than the tracker's
    /// `check_active_interval` (upstream's advice: three beats or more), after which a trunk
    /// server that stopped beating loses the role.
    fn trunk_lease(&self) -> std::time::Duration {
        let hb = self.cfg.heart_beat_interval.max(1);
        std::time::Duration::from_millis(hb * 1500)
    }

    fn trunk_lease_holds(&self) -> bool {
        self.trunk_lease_until
            .lock()
            .is_some_and(|until| std::time::Instant::now() < until)
    }

    /// TRUNK_GET_BINLOG_SIZE (31): how much trunk history this storage holds; the tracker
    /// makes the member with the most the trunk server.
    pub(crate) fn trunk_get_binlog_size(&self, body: &[u8]) -> Outcome {
        Reader::new(body).finish()?;
        let size = std::fs::metadata(self.trunk_dir().join("binlog"))
            .map(|m| m.len() as i64)
            .unwrap_or(0);
        Ok(TrunkBinlogSize { size }.to_bytes())
    }

    /// The commands a trunk server sends its members (and the tracker a member about to take
    /// the role) are refused by the trunk server itself.
    pub(super) fn refuse_on_trunk_server(&self) -> Result<(), Refusal> {
        if self.is_trunk_server() {
            return Err(Refusal::invalid(
                "command",
                "sent to the trunk server itself",
            ));
        }
        Ok(())
    }

    /// TRUNK_DELETE_BINLOG_MARKS (32): sent to a storage about to become trunk server in
    /// another's place. Its snapshot and marks describe an index it did not keep: they go, and
    /// it starts from its copy of the trunk binlog. The trunk server itself refuses.
    pub(crate) fn trunk_delete_binlog_marks(&self, body: &[u8]) -> Outcome {
        Reader::new(body).finish()?;
        self.refuse_on_trunk_server()?;
        let _ = std::fs::remove_file(self.trunk_snapshot_path());
        self.remove_trunk_marks();
        std::fs::create_dir_all(self.trunk_dir()).map_err(|e| Refusal::done(io_errno(&e)))?;
        std::fs::write(self.trunk_dir().join(TAKEOVER_MARKER), b"")
            .map_err(|e| Refusal::done(io_errno(&e)))?;
        log::info!("trunk binlog marks deleted: this storage becomes the trunk server");
        Ok(Vec::new())
    }

    /// Run `f` on the trunk server state, loading it from the trunk binlog the first time.
    pub(super) fn with_trunk_state<R>(
        &self,
        f: impl FnOnce(&mut TrunkServerState) -> R,
    ) -> Result<R, u8> {
        if !self.is_trunk_server() {
            return Err(errno::EINVAL);
        }
        // the role is held on a lease: a trunk server that has not heard the leader tracker
        // lately (paused, cut off) may have lost it to another one, which allocates from the
        // same trunk files; it gives nothing out until its next beat says it still holds it
        if !self.trunk_lease_holds() {
            return Err(errno::EAGAIN);
        }
        let mut guard = self.trunk_state.lock();
        if guard.is_none() {
            *guard = Some(self.load_trunk_state().map_err(|e| io_errno(&e))?);
        }
        Ok(f(guard.as_mut().expect("loaded")))
    }

    fn load_trunk_state(&self) -> std::io::Result<TrunkServerState> {
        let dir = self.trunk_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("binlog");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut index = FreeIndex::default();
        let mut last_trunk_id = 0;
        let mut apply = |r: TrunkBinlogRecord| {
            last_trunk_id = last_trunk_id.max(r.block.trunk_id);
            index.replay(&r);
        };
        // `storage_trunk.dat`, when there is one: the binlog's size when it was written, then
        // the free blocks at that point; the binlog is replayed from there
        let snapshot = self.trunk_snapshot_path();
        let mut from = 0;
        let tuning = self.params.read().trunk.clone();
        if tuning.init_reload_from_binlog {
            let _ = std::fs::remove_file(&snapshot);
        }
        // a binlog shorter than when the snapshot was taken lost lines: allocations among
        // them, whose slots hold files now, must not be handed out again
        let mut lost_lines = false;
        if let Ok(s) = std::fs::read_to_string(&snapshot) {
            let mut lines = s.lines();
            match lines.next().and_then(|l| l.trim().parse::<usize>().ok()) {
                Some(size) if size <= text.len() && text.is_char_boundary(size) => {
                    lines
                        .filter_map(TrunkBinlogRecord::parse)
                        .for_each(&mut apply);
                    from = size;
                }
                Some(size) if size > text.len() => {
                    lost_lines = true;
                    self.binlog.note_damage(&format!(
                        "the trunk binlog is {} bytes, {size} when {} was written; replaying \
                         it whole, and looking in the trunk files for slots in use",
                        text.len(),
                        snapshot.display()
                    ));
                }
                _ => log::warn!(
                    "{} does not fit the trunk binlog: replaying the whole binlog",
                    snapshot.display()
                ),
            }
        }
        for line in text[from..].lines() {
            match TrunkBinlogRecord::parse(line) {
                Some(r) => apply(r),
                None => log::warn!("trunk binlog line skipped: {line:?}"),
            }
        }
        if tuning.init_check_occupying || lost_lines {
            self.carve_occupied_blocks(&mut index);
        }
        // taking over from another trunk server (the tracker said so with 32): that server
        // may have handed out blocks in lines we never got, and their files may not be here
        // yet; its trunk files wait until every member is back (`lift_quarantine`)
        if dir.join(TAKEOVER_MARKER).exists() && last_trunk_id > 0 {
            index.quarantine_up_to = last_trunk_id;
            // the one before may have made trunk files this one never heard of, in the moments
            // before its lease ran out: new ones start well past any id it could have taken
            last_trunk_id += TAKEOVER_ID_GAP;
            log::warn!(
                "trunk server after another one: trunk files up to id {last_trunk_id} are not \
                 allocated from until every member has been ACTIVE for {}s",
                QUARANTINE_SETTLE.as_secs()
            );
        }
        let binlog = OpenOptions::new().create(true).append(true).open(&path)?;
        log::info!(
            "trunk server: {} free blocks, {} bytes free, last trunk file id {last_trunk_id}",
            index.blocks().count(),
            index.free_bytes()
        );
        let mut st = TrunkServerState {
            index,
            binlog,
            unwritten: Default::default(),
            last_trunk_id,
            compacted_len: None,
            members_back_since: None,
        };
        // as upstream: once the binlog past the snapshot is replayed, a new snapshot (or a
        // compaction) spares the next start that work, unless compaction runs on a schedule
        if from < text.len() && tuning.compress_binlog_interval == 0 {
            if let Err(e) = self.trunk_save(&mut st) {
                log::error!("save trunk snapshot fail: {e}");
            }
        }
        Ok(st)
    }

    /// `trunk_init_check_occupying`, and a trunk binlog that lost lines: slots in use inside
    /// the free blocks (their allocations' lines lost) leave the index; the free space between
    /// them stays. Upstream drops a block whose first bytes are a slot header; this looks
    /// through every block, so a slot cut from the middle of a block is found too.
    fn carve_occupied_blocks(&self, index: &mut FreeIndex) {
        let blocks: Vec<TrunkInfo> = index.blocks().copied().collect();
        let mut taken = 0;
        for b in blocks {
            let occupied = self.slots_in_use(&b);
            if !occupied.is_empty() {
                log::warn!(
                    "trunk space occupied, not free: store path {} trunk {} offset {} size {}: \
                     {} slot(s) in use",
                    b.store_path_index,
                    b.trunk_id,
                    b.offset,
                    b.size,
                    occupied.len()
                );
                taken += index.carve(&b, &occupied);
            }
        }
        if taken > 0 {
            log::warn!("{taken} bytes of trunk space found in use were taken out of the free list");
        }
    }

    /// The slots (offset, size) whose header says they hold a file inside block `b` of this
    /// storage's trunk file.
    fn slots_in_use(&self, b: &TrunkInfo) -> Vec<(u32, u32)> {
        let path = self.store.trunk_file_of(b.store_path_index.into(), b);
        let Ok((f, len)) = self.store.open_trunk_file(&path, None) else {
            return Vec::new();
        };
        let end = (u64::from(b.offset) + u64::from(b.size)).min(len);
        let Some(n) = end.checked_sub(u64::from(b.offset)) else {
            return Vec::new();
        };
        let Ok(bytes) = crate::store::read_at(&f, u64::from(b.offset), n as usize) else {
            return Vec::new();
        };
        let head = SLOT_HEADER_LEN as usize;
        let mut out = Vec::new();
        let mut p = 0;
        while p + head <= bytes.len() {
            // a free slot is zeros: what is not starts a slot, or is bytes of one never made
            // visible (its upload failed before its header)
            match bytes[p..].iter().position(|&c| c != 0) {
                Some(k) => p += k,
                None => break,
            }
            if p + head > bytes.len() {
                break;
            }
            let h = SlotHeader::from_bytes(bytes[p..p + head].try_into().expect("24 bytes"));
            // a slot may reach past the block (carving clips it), not past the trunk file
            if h.is_a_header_for(h.alloc_size) && u64::from(h.alloc_size) <= len {
                out.push((b.offset + p as u32, h.alloc_size));
                p += h.alloc_size as usize;
            } else {
                p += 1;
            }
        }
        out
    }

    pub(super) fn trunk_snapshot_path(&self) -> PathBuf {
        self.cfg
            .server
            .base_path
            .join("data")
            .join("storage_trunk.dat")
    }

    /// Upstream's save: a compaction when the last one is older than
    /// `trunk_compress_binlog_min_interval` (when set), else the snapshot.
    fn trunk_save(&self, st: &mut TrunkServerState) -> std::io::Result<()> {
        let min = self.params.read().trunk.compress_binlog_min_interval;
        let last = self.trunk_last_compress_time.load(Ordering::Relaxed);
        if min > 0 && fdfs_common::now() - last > min {
            self.compact_trunk_binlog(st)
        } else {
            self.save_trunk_snapshot(st)
        }
    }

    fn merge_if_configured(&self, st: &mut TrunkServerState) {
        if self.params.read().trunk.free_space_merge {
            let gone = st.index.merge_adjacent();
            if gone > 0 {
                log::info!("trunk free space merged: {gone} blocks joined their neighbours");
            }
        }
    }

    /// `storage_trunk.dat`: the trunk binlog's size, then every block of the index as an `A`
    /// line; the next load replays only the binlog past that size.
    fn save_trunk_snapshot(&self, st: &mut TrunkServerState) -> std::io::Result<()> {
        self.merge_if_configured(st);
        // the snapshot holds the index as it is now: the binlog must say as much
        self.append_trunk_binlog(st, &[])?;
        let size = st.binlog.metadata()?.len();
        let text = format!("{size}\n{}", index_lines(&st.index));
        crate::store::write_atomic(&self.trunk_snapshot_path(), text.as_bytes())?;
        log::info!(
            "trunk snapshot saved: {} free blocks, {} bytes free",
            st.index.blocks().count(),
            st.index.free_bytes()
        );
        Ok(())
    }

    /// Compaction (`trunk_compress_binlog_*`): the trunk binlog becomes the index as `A`
    /// lines. The members start over from it: their marks go before the new binlog takes the
    /// old one's place, so a crash in between costs a resend, never a member reading the new
    /// binlog at an offset into the old one. The snapshot goes after (its size line describes
    /// the old binlog).
    fn compact_trunk_binlog(&self, st: &mut TrunkServerState) -> std::io::Result<()> {
        self.merge_if_configured(st);
        let dir = self.trunk_dir();
        let path = dir.join("binlog");
        let old_len = st.binlog.metadata()?.len();
        let text = index_lines(&st.index);
        // the index already holds what the unwritten lines say
        st.unwritten.clear();
        let _push = self.trunk_push_lock.lock();
        self.remove_trunk_marks();
        crate::store::write_atomic(&path, text.as_bytes())?;
        st.binlog = OpenOptions::new().create(true).append(true).open(&path)?;
        st.compacted_len = Some(text.len() as u64);
        let _ = std::fs::remove_file(self.trunk_snapshot_path());
        let now = fdfs_common::now();
        self.trunk_last_compress_time.store(now, Ordering::Relaxed);
        log::info!(
            "trunk binlog compacted: {old_len} -> {} bytes, {} free blocks",
            text.len(),
            st.index.blocks().count()
        );
        Ok(())
    }

    /// The role came to this storage. Its marks may date from an earlier turn, before another
    /// trunk server rewrote every member's binlog; a tracker sends TRUNK_DELETE_BINLOG_MARKS
    /// only when it remembers the previous holder (a C leader forgets it when the holder dies,
    /// and its trunk server then appends to the members' binlogs at stale offsets). Every
    /// member gets the binlog again from a truncate instead: bytes, never a wrong copy.
    pub(crate) fn trunk_role_arrived(&self) {
        let _push = self.trunk_push_lock.lock();
        self.remove_trunk_marks();
        self.trunk_copies_checked.lock().clear();
    }

    /// Every member's mark goes (and what this run knows it pushed): the next push starts over.
    fn remove_trunk_marks(&self) {
        self.trunk_pushed.lock().clear();
        if let Ok(dir) = std::fs::read_dir(self.trunk_dir()) {
            for e in dir.flatten() {
                if e.path().extension().is_some_and(|x| x == "mark") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    /// At shutdown: what upstream's save does, so the next start replays little.
    pub fn save_trunk_state_at_exit(&self) {
        let mut guard = self.trunk_state.lock();
        if let Some(st) = guard.as_mut() {
            if let Err(e) = self.trunk_save(st) {
                log::error!("save trunk state fail: {e}");
            }
        }
    }

    /// The trunk server's scheduled jobs, run by the trunk binlog thread between pushes (so a
    /// compaction never races a push): trunk files created ahead of need
    /// (`trunk_create_file_*`) and binlog compaction (`trunk_compress_binlog_*`), each at its
    /// time base and every interval after.
    pub fn trunk_housekeeping(&self, jobs: &mut TrunkJobs) {
        if !self.is_trunk_server() {
            *jobs = TrunkJobs::default();
            return;
        }
        self.lift_quarantine();
        self.retry_deferred_frees();
        let t = self.params.read().trunk.clone();
        let now = fdfs_common::now();
        // the first run at the time base, then every interval after the previous one
        let due = |at: &mut Option<i64>, base, interval: u64| {
            let next =
                *at.get_or_insert_with(|| fdfs_common::log::next_scheduled(now, base, interval));
            if now < next {
                return false;
            }
            let step = interval as i64;
            *at = Some(next + ((now - next) / step + 1) * step);
            true
        };
        if t.create_file_advance
            && t.create_file_interval > 0
            && due(
                &mut jobs.create_at,
                t.create_file_time_base,
                t.create_file_interval,
            )
        {
            self.create_trunk_files_ahead(t.create_file_space_threshold);
        }
        if t.compress_binlog_interval > 0
            && due(
                &mut jobs.compress_at,
                t.compress_binlog_time_base,
                t.compress_binlog_interval,
            )
        {
            let r = self.with_trunk_state(|st| {
                let len = st.binlog.metadata()?.len();
                if st.compacted_len == Some(len) {
                    log::debug!("trunk binlog not changed since its compaction: not compacted");
                    return Ok(());
                }
                self.compact_trunk_binlog(st)
            });
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::error!("compact trunk binlog fail: {e}"),
                Err(code) => log::error!("compact trunk binlog fail: errno {code}"),
            }
        }
    }

    /// The quarantine after a takeover ends once every other member has been ACTIVE for
    /// `QUARANTINE_SETTLE` without a break.
    fn lift_quarantine(&self) {
        let mut guard = self.trunk_state.lock();
        let Some(st) = guard.as_mut() else {
            return;
        };
        if st.index.quarantine_up_to == 0 {
            return;
        }
        let me = self.my_id.read().clone();
        let all_back = self
            .members
            .read()
            .iter()
            .filter(|b| b.id != me)
            .all(|b| b.status == fdfs_common::proto::status::ACTIVE);
        if !all_back {
            st.members_back_since = None;
            return;
        }
        let since = *st
            .members_back_since
            .get_or_insert_with(std::time::Instant::now);
        if since.elapsed() >= QUARANTINE_SETTLE {
            log::info!(
                "every member back for {}s: trunk files up to id {} are allocated from again",
                QUARANTINE_SETTLE.as_secs(),
                st.index.quarantine_up_to
            );
            st.index.quarantine_up_to = 0;
            let _ = std::fs::remove_file(self.trunk_dir().join(TAKEOVER_MARKER));
        }
    }

    /// `trunk_create_file_advance`: trunk files until `threshold` bytes of trunk space are free,
    /// on the store paths uploads would use (never into the reserved space).
    pub fn create_trunk_files_ahead(&self, threshold: u64) {
        let (trunk_size, reserved) = {
            let p = self.params.read();
            (p.trunk_file_size, p.reserved)
        };
        let r = self.with_trunk_state(|st| {
            let free = st.index.free_bytes();
            let count = threshold.saturating_sub(free) / trunk_size.max(1);
            let mut made = 0;
            for _ in 0..count {
                let Some(spi) = self.store.choose_path(0xFF, reserved) else {
                    log::error!("create trunk file ahead: no store path has room");
                    break;
                };
                let whole = self.next_trunk_file(st, spi as u8, trunk_size);
                let added = st.index.add_trunk(fdfs_common::now(), whole);
                if let Err(e) = self.append_trunk_binlog(st, &added) {
                    log::error!("write trunk binlog fail: {e}");
                    break;
                }
                if self.create_trunk_file(&whole, trunk_size).is_err() {
                    break;
                }
                made += 1;
            }
            if made > 0 {
                log::info!("{made} trunk files created ahead of need");
            }
        });
        if let Err(code) = r {
            log::error!("create trunk files ahead fail: errno {code}");
        }
    }

    pub(super) fn append_trunk_binlog(
        &self,
        st: &mut TrunkServerState,
        lines: &[TrunkBinlogRecord],
    ) -> std::io::Result<()> {
        let text = st.unwritten.take_with(lines);
        if text.is_empty() {
            return Ok(());
        }
        let before = st.binlog.metadata()?.len();
        // on disk before the slot is handed out, in page-cache mode too: an allocation lost to
        // a power cut gives the slot again, and the file in it, acknowledged long before the
        // cut, is overwritten (tests/power_cut.rs found it); a lost free only leaks a slot
        let allocates = lines
            .iter()
            .any(|r| matches!(r.op, fdfs_common::trunk::TrunkOp::Delete));
        let written = st.binlog.write_all(text.as_bytes()).and_then(|()| {
            if self.durable() || allocates {
                st.binlog.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            // a full or failing disk: no torn line is left for the members (or a replay) to
            // read, and the lines wait for the next write, in order
            if let Err(cut) = st.binlog.set_len(before) {
                log::error!("cut the trunk binlog back to {before} bytes fail: {cut}");
            }
            st.unwritten.put_back(text);
            return Err(e);
        }
        Ok(())
    }

    /// What the trunk server tells the trackers: its last trunk file id and its free trunk
    /// space in MB. `None` unless this storage is the trunk server.
    pub fn trunk_report(&self) -> Option<(u32, i64)> {
        self.with_trunk_state(|st| (st.last_trunk_id, (st.index.free_bytes() >> 20) as i64))
            .ok()
    }

    /// The group's trunk file id as the tracker has it (FETCH_TRUNK_FID): a trunk server whose
    /// own binlog is behind never reuses an id another trunk server gave out.
    pub fn raise_trunk_id(&self, id: u32) {
        let _ = self.with_trunk_state(|st| st.last_trunk_id = st.last_trunk_id.max(id));
    }
}
