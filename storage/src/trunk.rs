//! A storage's part in trunk files (docs/protocol/sync-and-storage-layout.md 6.5, 6.6).
//!
//! Every member: small uploads go into a slot it asks the trunk server for (TRUNK_ALLOC_SPACE),
//! written data first, confirmed (TRUNK_ALLOC_CONFIRM), then made visible by the slot header; a
//! client delete gives the slot back (TRUNK_FREE_SPACE). The member keeps a copy of the trunk
//! binlog the trunk server pushes (TRUNK_SYNC_BINLOG, TRUNK_TRUNCATE_BINLOG_FILE), which the
//! tracker elects trunk servers by (TRUNK_GET_BINLOG_SIZE).
//!
//! The trunk server: the free-space index (`trunk_alloc`), rebuilt from `storage_trunk.dat` and
//! the trunk binlog when the role arrives, every change appended to the binlog before an
//! answer depends on it (an allocation's lines go in with its confirm), new trunk files created
//! as needed, the binlog pushed to the members every 100 ms
//! with a mark per member.

use crate::binlog::op;
use crate::storage::{io_errno, AtOffset, Fail, Storage};
use crate::trunk_alloc::{FreeIndex, TrunkServerState};
use fdfs_common::codec::{DecodeError, Message};
use fdfs_common::file_id::{FilePayload, RemoteName, Source, TRUNK_FILE_FLAG};
use fdfs_common::net::{self, NetError};
use fdfs_common::proto::cluster::Brief;
use fdfs_common::proto::trunk::{
    TrunkAllocReq, TrunkBinlogLines, TrunkBinlogSize, TrunkInfo, TrunkSlotReq,
};
use fdfs_common::proto::{cmd, errno, Header};
use fdfs_common::server::Conn;
use fdfs_common::trunk::{SlotHeader, TrunkBinlogRecord, TrunkSlot, SLOT_HEADER_LEN, SLOT_REGULAR};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// `data/trunk/.takeover`: TRUNK_DELETE_BINLOG_MARKS came (this storage takes the role from
/// another); kept until the quarantine it starts is over, removed by a push from another
/// trunk server.
const TAKEOVER_MARKER: &str = ".takeover";

/// Uploads up to this size are taken into memory and written with their slot header in one
/// `pwrite` after the confirm; bigger ones go into the slot as they arrive.
const SLOT_IN_ONE_WRITE: i64 = 64 << 10;

/// An upload received for its slot, not yet visible: the trunk file, the new file's name, the
/// header that will make it visible, and a small upload's slot image.
struct ReceivedSlot {
    file: Arc<File>,
    name: String,
    header: SlotHeader,
    timestamp: i64,
    image: Option<SlotImage>,
}

/// A small upload's slot as it will be written: room for the header, then the data.
struct SlotImage(Vec<u8>);

impl Write for SlotImage {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl crate::storage::DataSink for SlotImage {
    fn sync_data(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Deferred TRUNK_FREE_SPACE requests kept at the most (each waits for a delete to arrive).
const MAX_DEFERRED_FREES: usize = 100_000;

/// How often the trunk server checks that a member's copy of the trunk binlog is as long as
/// what it pushed there.
const TRUNK_COPY_CHECK: std::time::Duration = std::time::Duration::from_secs(10);

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

type Outcome = Result<Vec<u8>, Fail>;

/// Every block of the index as an `A` line, stamped now: `storage_trunk.dat`'s body and a
/// compacted binlog.
fn index_lines(index: &FreeIndex) -> String {
    index
        .snapshot(fdfs_common::now())
        .iter()
        .map(|r| r.to_line())
        .collect()
}

/// A TRUNK_ALLOC_CONFIRM status that keeps the slot taken (stored, or "slot occupied").
fn confirm_keeps(status: u8) -> bool {
    status == 0 || status == errno::EEXIST
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
        if !body.is_empty() {
            return Err(DecodeError::Trailing { len: body.len() }.into());
        }
        let size = std::fs::metadata(self.trunk_dir().join("binlog"))
            .map(|m| m.len() as i64)
            .unwrap_or(0);
        Ok(TrunkBinlogSize { size }.to_bytes())
    }

    /// TRUNK_DELETE_BINLOG_MARKS (32): sent to a storage about to become trunk server in
    /// another's place. Its snapshot and marks describe an index it did not keep: they go, and
    /// it starts from its copy of the trunk binlog. The trunk server itself refuses.
    pub(crate) fn trunk_delete_binlog_marks(&self, body: &[u8]) -> Outcome {
        if !body.is_empty() {
            return Err(DecodeError::Trailing { len: body.len() }.into());
        }
        if self.is_trunk_server() {
            return Err(Fail::done(errno::EINVAL));
        }
        let _ = std::fs::remove_file(self.trunk_snapshot_path());
        self.remove_trunk_marks();
        std::fs::create_dir_all(self.trunk_dir()).map_err(|e| Fail::done(io_errno(&e)))?;
        std::fs::write(self.trunk_dir().join(TAKEOVER_MARKER), b"")
            .map_err(|e| Fail::done(io_errno(&e)))?;
        log::info!("trunk binlog marks deleted: this storage becomes the trunk server");
        Ok(Vec::new())
    }

    /// The slot bytes an upload of `size` needs, or `None` for a plain file: trunks take only
    /// normal uploads whose slot (24-byte header included) fits `slot_max_size`.
    pub(crate) fn trunk_slot_size(&self, size: i64) -> Option<u32> {
        let p = self.params.read();
        if !p.use_trunk_file || size < 0 || self.trunk_server.read().is_none() {
            return None;
        }
        let want = u64::try_from(size).ok()? + u64::from(SLOT_HEADER_LEN);
        (want <= u64::from(p.slot_max_size)).then_some(want as u32)
    }

    /// Run `f` on the trunk server state, loading it from the trunk binlog the first time.
    fn with_trunk_state<R>(&self, f: impl FnOnce(&mut TrunkServerState) -> R) -> Result<R, u8> {
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

    fn trunk_snapshot_path(&self) -> PathBuf {
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

    fn append_trunk_binlog(
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

    /// Upstream's slot size: at least `slot_min_size`, else rounded up to the alignment.
    fn rounded_slot(&self, requested: u32) -> u32 {
        let p = self.params.read();
        if requested <= p.slot_min_size {
            p.slot_min_size
        } else if p.trunk_alloc_alignment_size > 0 {
            requested.div_ceil(p.trunk_alloc_alignment_size) * p.trunk_alloc_alignment_size
        } else {
            requested
        }
    }

    /// Allocate on this trunk server: best fit, or a new trunk file when nothing fits.
    fn alloc_here(&self, spi: u8, requested: u32) -> Result<TrunkInfo, u8> {
        let size = self.rounded_slot(requested);
        let trunk_size = self.params.read().trunk_file_size;
        if u64::from(size) > trunk_size || usize::from(spi) >= self.store.paths.len() {
            return Err(errno::EINVAL);
        }
        let slot_min = self.params.read().slot_min_size;
        self.with_trunk_state(|st| {
            let now = fdfs_common::now();
            let found = match st.index.alloc(now, spi, size, slot_min) {
                Some(x) => x,
                None => {
                    // the id is taken in the binlog before the file exists: a crash in between
                    // leaves a free block whose file is created when first written, never an
                    // id handed out twice
                    let whole = self.next_trunk_file(st, spi, trunk_size);
                    let added = st.index.add_trunk(now, whole);
                    self.append_trunk_binlog(st, &added)
                        .map_err(|e| io_errno(&e))?;
                    self.create_trunk_file(&whole, trunk_size)?;
                    st.index
                        .alloc(now, spi, size, slot_min)
                        .ok_or(errno::ENOSPC)?
                }
            };
            st.unwritten.defer(&found.1);
            self.slots_deleted_here.lock().remove(&(
                found.0.store_path_index,
                found.0.trunk_id,
                found.0.offset,
            ));
            Ok(found.0)
        })?
    }

    /// The next trunk file of store path `spi`: the next id, in the next data directory.
    fn next_trunk_file(&self, st: &mut TrunkServerState, spi: u8, size: u64) -> TrunkInfo {
        let (high, low) = self.store.choose_subdir("");
        st.last_trunk_id += 1;
        TrunkInfo {
            store_path_index: spi,
            sub_path_high: high as u8,
            sub_path_low: low as u8,
            trunk_id: st.last_trunk_id,
            offset: 0,
            size: size as u32,
        }
    }

    /// Create a trunk file sparse at its full size.
    fn create_trunk_file(&self, whole: &TrunkInfo, size: u64) -> Result<(), u8> {
        let path = self
            .store
            .trunk_file_of(whole.store_path_index.into(), whole);
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                log::error!("create trunk file {} fail: {e}", path.display());
                io_errno(&e)
            })?;
        f.set_len(size).map_err(|e| io_errno(&e))?;
        log::info!("trunk file {} created", path.display());
        Ok(())
    }

    fn confirm_here(&self, info: &TrunkInfo, status: u8) -> Result<(), u8> {
        self.with_trunk_state(|st| {
            let lines = st
                .index
                .confirm(fdfs_common::now(), info, confirm_keeps(status));
            self.append_trunk_binlog(st, &lines)
                .map_err(|e| io_errno(&e))
        })?
    }

    fn free_here(&self, info: &TrunkInfo) -> Result<(), u8> {
        self.with_trunk_state(|st| {
            // checked again under the lock that frees: a deferred free is applied long after
            // its request was checked, and this storage's own deletes free here too
            if st.index.overlaps(info) {
                log::error!("trunk free of {info:?}: its bytes are free or held already: refused");
                return Err(errno::EINVAL);
            }
            let lines = st.index.free(fdfs_common::now(), *info);
            self.append_trunk_binlog(st, &lines)
                .map_err(|e| io_errno(&e))
        })?
    }

    /// One request to the trunk server; the answer's body.
    fn ask_trunk_server(&self, command: u8, status: u8, body: &[u8]) -> Result<Vec<u8>, u8> {
        let Some(ts) = self.trunk_server.read().clone() else {
            return Err(errno::EAGAIN);
        };
        let port = u16::try_from(ts.port).map_err(|_| errno::EINVAL)?;
        self.pooled_request(&ts.ip, port, |s| {
            net::send_request(s, command, status, body)?;
            let h = net::recv_header(s)?;
            net::recv_body(s, &h)
        })
        .map_err(|e| e.errno() as u8)
    }

    fn alloc_slot(&self, spi: u8, requested: u32) -> Result<TrunkInfo, u8> {
        if self.is_trunk_server() {
            return self.alloc_here(spi, requested);
        }
        let req = TrunkAllocReq {
            group: self.group.clone(),
            size: requested as i32,
            store_path_index: spi,
        };
        let b = self.ask_trunk_server(cmd::TRUNK_ALLOC_SPACE, 0, &req.to_bytes())?;
        TrunkInfo::from_bytes(&b).map_err(|_| errno::EIO)
    }

    fn confirm_slot(&self, info: &TrunkInfo, status: u8) -> Result<(), u8> {
        let r = if self.is_trunk_server() {
            self.confirm_here(info, status)
        } else {
            let req = TrunkSlotReq {
                group: self.group.clone(),
                info: *info,
            };
            self.ask_trunk_server(cmd::TRUNK_ALLOC_CONFIRM, status, &req.to_bytes())
                .map(|_| ())
        };
        if let Err(code) = r {
            log::warn!("trunk alloc confirm of {info:?} fail, errno: {code}");
        }
        r
    }

    /// Give a deleted file's slot back to the trunk server's free list.
    pub(crate) fn free_slot(&self, info: &TrunkInfo) {
        let r = if self.is_trunk_server() {
            self.free_here(info)
        } else {
            let req = TrunkSlotReq {
                group: self.group.clone(),
                info: *info,
            };
            self.ask_trunk_server(cmd::TRUNK_FREE_SPACE, 0, &req.to_bytes())
                .map(|_| ())
        };
        if let Err(code) = r {
            log::warn!("trunk free space of {info:?} fail, errno: {code}");
        }
    }

    /// Store an upload of `size` bytes into a trunk slot: allocate (through the trunk server),
    /// write the data and then the header into this member's copy of the trunk file, confirm,
    /// and record the create. Returns the new file's name.
    pub(crate) fn upload_into_trunk(
        &self,
        conn: &mut Conn,
        info: TrunkInfo,
        size: i64,
        source: &Source,
        x7: &str,
    ) -> Result<String, Fail> {
        let spi = usize::from(info.store_path_index);
        let slot = TrunkSlot {
            trunk_id: info.trunk_id,
            offset: info.offset,
            alloc_size: info.size,
        };
        // the data first; the slot is taken at the trunk server (confirm) before the header makes
        // the file visible here: a confirm that fails leaves a slot that holds nothing, and a
        // crash after it only a slot nobody uses
        let received = self.receive_slot_data(conn, spi, &info, &slot, size, source, x7);
        let ReceivedSlot {
            file: f,
            name,
            header,
            timestamp,
            image,
        } = match received {
            Ok(r) => r,
            Err(f) => {
                let status = if f.code == errno::EEXIST {
                    errno::EEXIST
                } else {
                    errno::EIO
                };
                let _ = self.confirm_slot(&info, status);
                return Err(f);
            }
        };
        // the line before the confirm: a change that cannot be recorded gives its slot back
        let _intent = match self.intent(timestamp, op::CREATE, &name, "") {
            Ok(i) => i,
            Err(f) => {
                let _ = self.confirm_slot(&info, errno::EIO);
                return Err(f);
            }
        };
        self.confirm_slot(&info, 0).map_err(Fail::done)?;
        let written = match image {
            Some(mut image) => {
                image.0[..SLOT_HEADER_LEN as usize].copy_from_slice(&header.to_bytes());
                f.write_all_at(&image.0, u64::from(info.offset))
            }
            None => f.write_all_at(&header.to_bytes(), u64::from(info.offset)),
        };
        if let Err(e) = written.and_then(|()| self.sync_file(f.as_ref())) {
            // not (surely) stored: the slot is emptied and given back, the upload refused
            log::error!("write trunk slot of {name} fail: {e}");
            let _ = f.write_all_at(&[0u8; SLOT_HEADER_LEN as usize], u64::from(info.offset));
            self.free_slot(&info);
            return Err(Fail::done(io_errno(&e)));
        }
        Ok(name)
    }

    /// A slot of `requested` bytes on store path `spi` for an upload, from the trunk server;
    /// `None` (said once a minute at most) when it gives none: the upload becomes a plain file.
    pub(crate) fn slot_for_upload(&self, spi: usize, requested: u32) -> Option<TrunkInfo> {
        match self.alloc_slot(spi as u8, requested) {
            Ok(info) => Some(info),
            Err(code) => {
                let now = fdfs_common::now();
                let last = self.trunk_alloc_fail_logged.swap(now, Ordering::Relaxed);
                if now - last >= 60 {
                    log::warn!(
                        "no trunk slot from the trunk server (errno {code}): small uploads are \
                         stored as plain files meanwhile"
                    );
                }
                None
            }
        }
    }

    /// The upload's bytes into the slot of this member's trunk file (a small one into memory,
    /// returned, to be written with its header), the slot checked empty first; the file's name
    /// and the header that will make it visible.
    #[allow(clippy::too_many_arguments)]
    fn receive_slot_data(
        &self,
        conn: &mut Conn,
        spi: usize,
        info: &TrunkInfo,
        slot: &TrunkSlot,
        size: i64,
        source: &Source,
        x7: &str,
    ) -> Result<ReceivedSlot, Fail> {
        let path = self.store.trunk_file_of(spi, info);
        let (f, head) = self.open_slot_for_write(&path, slot, size as u64)?;
        if head != [0u8; SLOT_HEADER_LEN as usize] {
            log::error!("trunk slot {slot:?} handed out is not empty");
            return Err(Fail::early(errno::EEXIST));
        }
        let mut crc = crc32fast::Hasher::new();
        let image = if size <= SLOT_IN_ONE_WRITE {
            let mut image = SlotImage(Vec::with_capacity(SLOT_HEADER_LEN as usize + size as usize));
            image.0.resize(SLOT_HEADER_LEN as usize, 0);
            self.receive_and_sync(conn, &mut image, size as u64, Some(&mut crc))?;
            Some(image)
        } else {
            let mut w = AtOffset {
                file: &f,
                pos: slot.data_offset(),
            };
            self.receive_and_sync(conn, &mut w, size as u64, Some(&mut crc))?;
            None
        };
        let timestamp = fdfs_common::now();
        let payload = FilePayload {
            source: source.clone(),
            timestamp: timestamp as u32,
            size_field: FilePayload::make_size_field(size, false, self.store.random())
                | TRUNK_FILE_FLAG,
            crc32: crc.finalize(),
        };
        let name = format!(
            "M{spi:02X}/{:02X}/{:02X}/{}{}{x7}",
            info.sub_path_high,
            info.sub_path_low,
            payload.encode_b27(),
            slot.encode_b16()
        );
        let rn = RemoteName::decode(&name).map_err(|_| Fail::done(errno::EINVAL))?;
        let header = SlotHeader::for_name(&rn, SLOT_REGULAR).ok_or(Fail::done(errno::EINVAL))?;
        Ok(ReceivedSlot {
            file: f,
            name,
            header,
            timestamp,
            image,
        })
    }

    /// Write the bytes of the file `name` names into its trunk slot here (data first, the
    /// header last, as a replica is written), once they match the size and CRC32 the name
    /// carries. A slot that is not empty (it holds this file already, or another one) is left
    /// alone (`false`) unless `over` says otherwise of the header found there: the scrub,
    /// rewriting a corrupt copy of the same file; reconcile, over the bytes of a file deleted
    /// long ago that a power cut brought back in place of this one's.
    pub(crate) fn put_slot(
        &self,
        name: &str,
        bytes: &[u8],
        over: &dyn Fn(&SlotHeader) -> bool,
    ) -> std::io::Result<bool> {
        let bad = |why: &str| std::io::Error::other(format!("{name}: {why}"));
        let rn = RemoteName::decode(name).map_err(|_| bad("not a file ID"))?;
        let slot = TrunkSlot::of_name(&rn).ok_or_else(|| bad("not in a trunk slot"))?;
        let header = SlotHeader::for_name(&rn, SLOT_REGULAR).ok_or_else(|| bad("no size"))?;
        if bytes.len() != header.file_size as usize || crc32fast::hash(bytes) != header.crc32 {
            return Err(bad("the copy does not match its name"));
        }
        let ln = fdfs_common::file_id::LogicalName::parse(name, self.store.paths.len())
            .map_err(|_| bad("not a file ID"))?;
        let path = self.store.trunk_file_path(&ln, &slot);
        let (_, on_disk) = self
            .open_slot_for_write(&path, &slot, bytes.len() as u64)
            .map_err(|f| std::io::Error::from_raw_os_error(f.code.into()))?;
        if on_disk != [0u8; SLOT_HEADER_LEN as usize] {
            let holder = SlotHeader::from_bytes(&on_disk);
            let other = !holder.names(&rn);
            if !over(&holder) {
                if other {
                    log::warn!("{name}: its slot holds another file here; left alone");
                }
                return Ok(false);
            }
            if other {
                log::warn!("{name}: written over what its slot held here ({holder:?})");
            }
        }
        self.write_at(
            &path,
            &[
                (slot.data_offset(), bytes),
                (u64::from(slot.offset), &header.to_bytes()),
            ],
        )?;
        Ok(true)
    }

    /// TRUNK_ALLOC_SPACE (27), on the trunk server.
    pub(crate) fn trunk_alloc_space(&self, body: &[u8]) -> Outcome {
        let req = TrunkAllocReq::from_bytes(body)?;
        if req.group != self.group {
            return Err(Fail::done(errno::EINVAL));
        }
        let info = self
            .alloc_here(req.store_path_index, req.size as u32)
            .map_err(Fail::done)?;
        Ok(info.to_bytes())
    }

    /// TRUNK_ALLOC_CONFIRM (28), on the trunk server; the header status is the upload's result.
    pub(crate) fn trunk_alloc_confirm(&self, h: Header, body: &[u8]) -> Outcome {
        let req = TrunkSlotReq::from_bytes(body)?;
        if req.group != self.group {
            return Err(Fail::done(errno::EINVAL));
        }
        self.confirm_here(&req.info, h.status).map_err(Fail::done)?;
        Ok(Vec::new())
    }

    /// TRUNK_FREE_SPACE (29), on the trunk server: a deleted file's slot. The slot is freed
    /// once this member has recorded the delete of a file in it (the delete's line arrived, as
    /// it does from the member that sends the free) and its copy of the slot holds no file. Till
    /// then the free waits: the delete may not have reached this copy yet (it is then freed when
    /// it does), or the request frees a live file's slot (a buggy or hostile peer; also one
    /// whose replica has not reached this member, so that the slot looks empty here), which
    /// the next allocation would overwrite. It is answered 0 either way, so a member's delete
    /// goes on as with upstream.
    pub(crate) fn trunk_free_space(&self, body: &[u8]) -> Outcome {
        let req = TrunkSlotReq::from_bytes(body)?;
        if req.group != self.group {
            return Err(Fail::done(errno::EINVAL));
        }
        // a block that is (partly) free or held already: a double free, or no block this
        // trunk server handed out; freeing it would give the same bytes to two files
        // (an error: this member is not the trunk server)
        let bogus = self
            .with_trunk_state(|st| st.index.overlaps(&req.info))
            .map_err(Fail::done)?;
        if bogus {
            log::error!(
                "TRUNK_FREE_SPACE of {:?}: its bytes are free or held already: refused",
                req.info
            );
            return Err(Fail::done(errno::EINVAL));
        }
        if !self.may_free_now(&req.info) {
            self.defer_free(req.info);
            return Ok(Vec::new());
        }
        self.free_here(&req.info).map_err(Fail::done)?;
        Ok(Vec::new())
    }

    /// Whether a member's free of block `info` may be applied now: since the block was last
    /// given out, this trunk server recorded the delete line of a file in it, and its copy of
    /// the slot holds no file. (A tombstone would not do: the file deleted in the slot before
    /// it was given out again has one too.) After a restart the record is empty: a free whose
    /// delete line arrived before it waits for good, a leak of one slot, not a loss.
    fn may_free_now(&self, info: &TrunkInfo) -> bool {
        let key = (info.store_path_index, info.trunk_id, info.offset);
        self.slots_deleted_here.lock().contains(&key) && !self.slot_holds_a_file_here(info)
    }

    /// A delete line of `name`, a file in a trunk slot of store path `spi`, was recorded here:
    /// on the trunk server, a member's free of that slot may be applied (`may_free_now`).
    pub(crate) fn note_slot_deleted(&self, spi: u8, name: &str) {
        if !self.is_trunk_server() {
            return;
        }
        let Some(slot) = RemoteName::decode(name)
            .ok()
            .and_then(|rn| TrunkSlot::of_name(&rn))
        else {
            return;
        };
        let mut seen = self.slots_deleted_here.lock();
        if seen.len() >= MAX_DEFERRED_FREES {
            log::warn!(
                "{} deleted slots not freed yet: forgotten (their frees wait for good: a leak, \
                 not a loss)",
                seen.len()
            );
            seen.clear();
        }
        seen.insert((spi, slot.trunk_id, slot.offset));
    }

    /// Whether block `info`'s slot header in this member's copy of its trunk file is set.
    fn slot_holds_a_file_here(&self, info: &TrunkInfo) -> bool {
        let path = self.store.trunk_file_of(info.store_path_index.into(), info);
        let mut head = [0u8; SLOT_HEADER_LEN as usize];
        File::open(path)
            .and_then(|f| f.read_exact_at(&mut head, u64::from(info.offset)))
            .is_ok_and(|()| head != [0u8; SLOT_HEADER_LEN as usize])
    }

    fn defer_free(&self, info: TrunkInfo) {
        let mut d = self.deferred_frees.lock();
        if d.0.contains(&info) {
            return;
        }
        if d.0.len() >= MAX_DEFERRED_FREES {
            let dropped = d.0.remove(0);
            log::warn!(
                "too many deferred trunk frees: {dropped:?} stays allocated (a leak, not a loss)"
            );
        }
        log::warn!(
            "TRUNK_FREE_SPACE of {info:?}: no delete of a file in it is recorded here yet, or \
             its slot still holds a file here; freed once that file's delete arrives"
        );
        d.0.push(info);
    }

    /// Free the deferred slots whose file has been deleted here since; every second at most.
    fn retry_deferred_frees(&self) {
        let ready: Vec<TrunkInfo> = {
            let mut d = self.deferred_frees.lock();
            if d.0.is_empty()
                || d.1
                    .is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1))
            {
                return;
            }
            d.1 = Some(std::time::Instant::now());
            let (ready, waiting) = std::mem::take(&mut d.0)
                .into_iter()
                .partition(|info| self.may_free_now(info));
            d.0 = waiting;
            ready
        };
        for info in ready {
            match self.free_here(&info) {
                Ok(()) => {
                    log::info!("deferred trunk free of {info:?} done: its file was deleted here")
                }
                Err(code) => {
                    log::warn!("deferred trunk free of {info:?} fail, errno {code}: tried again");
                    self.deferred_frees.lock().0.push(info);
                }
            }
        }
    }

    /// This member's copy of a trunk file, ready to take `file_size` bytes into `slot`: created
    /// sparse at `trunk_file_size` (or extended to hold the slot) when needed, the slot checked
    /// against the file, and the slot's current header (all zeros when free).
    pub(crate) fn open_slot_for_write(
        &self,
        path: &std::path::Path,
        slot: &TrunkSlot,
        file_size: u64,
    ) -> Result<(Arc<File>, [u8; SLOT_HEADER_LEN as usize]), Fail> {
        let end = u64::from(slot.offset) + u64::from(slot.alloc_size);
        let trunk_file_size = self.params.read().trunk_file_size;
        let (f, len) = self
            .store
            .open_trunk_file(path, Some((end, trunk_file_size)))
            .map_err(|e| Fail::early(io_errno(&e)))?;
        if !slot.holds(file_size, len) {
            return Err(Fail::early(errno::EINVAL));
        }
        let mut head = [0u8; SLOT_HEADER_LEN as usize];
        f.read_exact_at(&mut head, u64::from(slot.offset))
            .map_err(|e| Fail::early(io_errno(&e)))?;
        Ok((f, head))
    }

    /// The trunk server's progress in pushing its trunk binlog to member `id` (upstream's
    /// names: `data/trunk/<ip>_<port>.mark`, `<id>.mark` with storage ids).
    fn trunk_mark_path(&self, id: &str) -> PathBuf {
        if self.params.read().use_storage_id {
            self.trunk_dir().join(format!("{id}.mark"))
        } else {
            self.trunk_dir()
                .join(format!("{id}_{}.mark", self.cfg.server.port))
        }
    }

    /// One round of the trunk server's binlog push (TRUNK_SYNC_BINLOG): every other member gets
    /// the lines past its mark, whole lines only, a truncate (TRUNK_TRUNCATE_BINLOG_FILE) first
    /// when it starts from the beginning. A member that fails is retried next round.
    pub fn push_trunk_binlog(&self) {
        if !self.is_trunk_server() {
            return;
        }
        // a member is sent at most about 256 KiB of whole lines a round, read from its mark on:
        // nothing is read for a member that has everything
        const CHUNK: u64 = 256 * 1024;
        let _push = self.trunk_push_lock.lock();
        let Ok(binlog) = File::open(self.trunk_dir().join("binlog")) else {
            return;
        };
        let Ok(len) = binlog.metadata().map(|m| m.len()) else {
            return;
        };
        let me = self.my_id.read().clone();
        let members: Vec<Brief> = self
            .members
            .read()
            .iter()
            .filter(|b| b.id != me && b.status == fdfs_common::proto::status::ACTIVE)
            .cloned()
            .collect();
        // a member that was away may come back with its copy cut short: checked again
        self.trunk_copies_checked
            .lock()
            .retain(|id, _| members.iter().any(|m| m.id == *id));
        for m in members {
            let mark = self.trunk_mark_path(&m.id);
            // what this run pushed comes first: a mark that could not be written must not
            // make the same lines go again (the member would hold them twice)
            let pushed = self.trunk_pushed.lock().get(&m.id).copied();
            let offset = pushed
                .or_else(|| {
                    std::fs::read_to_string(&mark).ok().and_then(|t| {
                        t.lines()
                            .find_map(|l| l.strip_prefix("binlog_offset="))
                            .and_then(|v| v.trim().parse::<u64>().ok())
                    })
                })
                .unwrap_or(0)
                .min(len);
            if offset == len {
                continue;
            }
            let offset = self.trunk_copy_agrees(&m, offset);
            let read = |n: u64| {
                let mut buf = vec![0u8; n as usize];
                binlog.read_exact_at(&mut buf, offset).map(|_| buf)
            };
            let mut lines = match read(CHUNK.min(len - offset)) {
                Ok(b) => b,
                Err(e) => {
                    log::error!("read trunk binlog fail: {e}");
                    return;
                }
            };
            if !lines.contains(&b'\n') && (lines.len() as u64) < len - offset {
                // a line longer than the window: up to the end
                lines = match read(len - offset) {
                    Ok(b) => b,
                    Err(_) => continue,
                };
            }
            let Some(whole) = lines.iter().rposition(|&c| c == b'\n').map(|p| p + 1) else {
                continue; // only a line still being written
            };
            let chunk_end = offset + whole as u64;
            match self.send_trunk_lines(&m, offset == 0, &lines[..whole]) {
                Ok(()) => {
                    self.trunk_pushed.lock().insert(m.id.clone(), chunk_end);
                    let text = format!("binlog_offset={chunk_end}\n");
                    let _ = crate::state_file::save(&mark, text.as_bytes());
                }
                Err(e) => log::warn!("push trunk binlog to {}:{} fail: {e}", m.ip, m.port),
            }
        }
    }

    /// The offset to push member `m`'s copy of the trunk binlog from: its mark, unless the copy
    /// is not that long (cut short, or replaced): then it gets the whole binlog again. Asked
    /// (TRUNK_GET_BINLOG_SIZE, which C storages answer too) at the first push and every
    /// `TRUNK_COPY_CHECK` after; lines appended to a copy shorter than the mark would sit at
    /// the wrong place in it, and a member elected trunk server from such a copy would hand
    /// out slots in use.
    fn trunk_copy_agrees(&self, m: &Brief, offset: u64) -> u64 {
        if offset == 0 {
            return 0;
        }
        let due = self
            .trunk_copies_checked
            .lock()
            .get(&m.id)
            .is_none_or(|at| at.elapsed() >= TRUNK_COPY_CHECK);
        if !due {
            return offset;
        }
        let Ok(port) = u16::try_from(m.port) else {
            return offset;
        };
        let asked = self.pooled_request(&m.ip, port, |s| {
            net::request(s, cmd::TRUNK_GET_BINLOG_SIZE, &[])
        });
        let Ok(size) = asked.and_then(|b| {
            TrunkBinlogSize::from_bytes(&b).map_err(|e| NetError::Protocol(e.to_string()))
        }) else {
            return offset; // asked again at the next push
        };
        self.trunk_copies_checked
            .lock()
            .insert(m.id.clone(), std::time::Instant::now());
        if u64::try_from(size.size) == Ok(offset) {
            return offset;
        }
        self.binlog.note_damage(&format!(
            "storage {}'s copy of the trunk binlog is {} bytes, {offset} were pushed to it: it \
             gets the trunk binlog again from the start",
            m.id, size.size
        ));
        0
    }

    fn send_trunk_lines(&self, m: &Brief, from_start: bool, lines: &[u8]) -> Result<(), NetError> {
        let port = u16::try_from(m.port).map_err(|_| NetError::Status(errno::EINVAL))?;
        self.pooled_request(&m.ip, port, |s| {
            if from_start {
                net::request(s, cmd::TRUNK_TRUNCATE_BINLOG_FILE, &[])?;
            }
            net::request(s, cmd::TRUNK_SYNC_BINLOG, lines)
        })
        .map(|_| ())
    }

    /// TRUNK_SYNC_BINLOG (30), on a member: the trunk server's next whole lines.
    pub(crate) fn trunk_sync_binlog(&self, body: &[u8]) -> Outcome {
        let lines = TrunkBinlogLines::from_bytes(body)?;
        if self.is_trunk_server() {
            return Err(Fail::done(errno::EINVAL));
        }
        std::fs::create_dir_all(self.trunk_dir()).map_err(|e| Fail::done(io_errno(&e)))?;
        let _ = std::fs::remove_file(self.trunk_dir().join(TAKEOVER_MARKER));
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.trunk_dir().join("binlog"))
            .map_err(|e| Fail::done(io_errno(&e)))?;
        let before = f.metadata().map_err(|e| Fail::done(io_errno(&e)))?.len();
        let written = f
            .write_all(lines.text.as_bytes())
            .and_then(|()| self.sync_file(&f));
        if let Err(e) = written {
            // the trunk server sends these lines again: none may stay half written before them
            let _ = f.set_len(before);
            return Err(Fail::done(io_errno(&e)));
        }
        Ok(Vec::new())
    }

    /// TRUNK_TRUNCATE_BINLOG_FILE (33), on a member: the trunk server starts its push from the
    /// beginning. The old binlog is kept as `binlog.<YYYYmmddHHMMSS>` beside it.
    pub(crate) fn trunk_truncate_binlog_file(&self, body: &[u8]) -> Outcome {
        if !body.is_empty() {
            return Err(DecodeError::Trailing { len: body.len() }.into());
        }
        if self.is_trunk_server() {
            return Err(Fail::done(errno::EINVAL));
        }
        let path = self.trunk_dir().join("binlog");
        let _ = std::fs::remove_file(self.trunk_dir().join(TAKEOVER_MARKER));
        // a snapshot describes the binlog it was written beside, never the one coming
        let _ = std::fs::remove_file(self.trunk_snapshot_path());
        let keep = self.params.read().trunk.binlog_max_backups as usize;
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
            if keep == 0 {
                let f = OpenOptions::new().write(true).open(&path);
                f.and_then(|f| f.set_len(0))
                    .map_err(|e| Fail::done(io_errno(&e)))?;
            } else {
                let stamp =
                    fdfs_common::log::format_time(fdfs_common::now()).replace(['-', ' ', ':'], "");
                let backup = self.trunk_dir().join(format!("binlog.{stamp}"));
                std::fs::rename(&path, &backup).map_err(|e| Fail::done(io_errno(&e)))?;
                self.prune_trunk_binlog_backups(keep);
            }
        }
        Ok(Vec::new())
    }

    /// Keep the newest `keep` dated trunk binlog backups.
    fn prune_trunk_binlog_backups(&self, keep: usize) {
        let Ok(dir) = std::fs::read_dir(self.trunk_dir()) else {
            return;
        };
        let mut backups: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix("binlog."))
                    .is_some_and(|d| d.len() == 14 && d.bytes().all(|c| c.is_ascii_digit()))
            })
            .collect();
        backups.sort();
        let excess = backups.len().saturating_sub(keep);
        for old in &backups[..excess] {
            let _ = std::fs::remove_file(old);
        }
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
