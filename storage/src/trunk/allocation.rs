//! The trunk server's answers to members: TRUNK_ALLOC_SPACE, TRUNK_ALLOC_CONFIRM and
//! TRUNK_FREE_SPACE, each change appended to the trunk binlog before the answer depends on it, and
//! frees deferred until the delete they follow has arrived here.

use crate::storage::{io_errno, Outcome, Storage};
use crate::trunk_alloc::TrunkServerState;
use fdfs_common::codec::Message;
use fdfs_common::file_id::RemoteName;
use fdfs_common::proto::trunk::{TrunkAllocReq, TrunkInfo, TrunkSlotReq};
use fdfs_common::proto::{errno, Header};
use fdfs_common::refusal::Refusal;
use fdfs_common::trunk::{TrunkSlot, SLOT_HEADER_LEN};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;

/// Deferred TRUNK_FREE_SPACE requests kept at the most (each waits for a delete to arrive).
const MAX_DEFERRED_FREES: usize = 100_000;

/// A TRUNK_ALLOC_CONFIRM status that keeps the slot taken (stored, or "slot occupied").
fn confirm_keeps(status: u8) -> bool {
    status == 0 || status == errno::EEXIST
}

impl Storage {
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
    pub(super) fn alloc_here(&self, spi: u8, requested: u32) -> Result<TrunkInfo, u8> {
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
    pub(super) fn next_trunk_file(
        &self,
        st: &mut TrunkServerState,
        spi: u8,
        size: u64,
    ) -> TrunkInfo {
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
    pub(super) fn create_trunk_file(&self, whole: &TrunkInfo, size: u64) -> Result<(), u8> {
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

    pub(super) fn confirm_here(&self, info: &TrunkInfo, status: u8) -> Result<(), u8> {
        self.with_trunk_state(|st| {
            let lines = st
                .index
                .confirm(fdfs_common::now(), info, confirm_keeps(status));
            self.append_trunk_binlog(st, &lines)
                .map_err(|e| io_errno(&e))
        })?
    }

    pub(super) fn free_here(&self, info: &TrunkInfo) -> Result<(), u8> {
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

    /// TRUNK_ALLOC_SPACE (27), on the trunk server.
    pub(crate) fn trunk_alloc_space(&self, body: &[u8]) -> Outcome {
        let req = TrunkAllocReq::from_bytes(body)?;
        self.check_group(&req.group)?;
        let info = self
            .alloc_here(req.store_path_index, req.size as u32)
            .map_err(Refusal::done)?;
        Ok(info.to_bytes())
    }

    /// TRUNK_ALLOC_CONFIRM (28), on the trunk server; the header status is the upload's result.
    pub(crate) fn trunk_alloc_confirm(&self, h: Header, body: &[u8]) -> Outcome {
        let req = TrunkSlotReq::from_bytes(body)?;
        self.check_group(&req.group)?;
        self.confirm_here(&req.info, h.status)
            .map_err(Refusal::done)?;
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
        self.check_group(&req.group)?;
        // a block that is (partly) free or held already: a double free, or no block this
        // trunk server handed out; freeing it would give the same bytes to two files
        // (an error: this member is not the trunk server)
        let bogus = self
            .with_trunk_state(|st| st.index.overlaps(&req.info))
            .map_err(Refusal::done)?;
        if bogus {
            log::error!(
                "TRUNK_FREE_SPACE of {:?}: its bytes are free or held already: refused",
                req.info
            );
            return Err(Refusal::done(errno::EINVAL));
        }
        if !self.may_free_now(&req.info) {
            self.defer_free(req.info);
            return Ok(Vec::new());
        }
        self.free_here(&req.info).map_err(Refusal::done)?;
        Ok(Vec::new())
    }

    /// Whether a member's free of block `info` may be applied now: since the block was last
    /// given out, this trunk server recorded the delete line of a file in it, and its copy of
    /// the slot holds no file. (A tombstone would not do: the file deleted in the slot before
    /// it was given out again has one too.) After a restart the record is empty: a free whose
    /// delete line arrived before it waits for good, a leak of one slot, not a loss.
    pub(super) fn may_free_now(&self, info: &TrunkInfo) -> bool {
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
    pub(super) fn retry_deferred_frees(&self) {
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
}
