//! The trunk server's free-space index (docs/protocol/sync-and-storage-layout.md 6.5 and 6.6):
//! which blocks of the group's trunk files are free, best-fit allocation with splitting, blocks
//! held between an allocation and its confirmation, and the trunk binlog lines each step writes, in
//! upstream's order, so that a C member replaying our binlog (or we replaying a C trunk server's)
//! ends with the same index.
//!
//! Bookkeeping only: nothing here reads or writes. The caller appends the returned records to
//! `data/trunk/binlog` (whose handle the state carries) before it answers, and creates the trunk
//! file a new-trunk record names.

use fdfs_common::proto::trunk::TrunkInfo;
use fdfs_common::trunk::{TrunkBinlogRecord, TrunkOp};
use std::collections::{BTreeMap, BTreeSet};

/// A block's place: store path, trunk file, offset (its subdirectory follows from the trunk).
type Place = (u8, u32, u32);

fn place(b: &TrunkInfo) -> Place {
    (b.store_path_index, b.trunk_id, b.offset)
}

/// The index. Held blocks stay in it (a restart replays them as free: an allocation that was
/// never confirmed gives its slot back) but are not handed out again.
#[derive(Debug, Default)]
pub struct FreeIndex {
    blocks: BTreeMap<Place, TrunkInfo>,
    /// (size, place) of every block not held: best fit is the first at or above a size, the
    /// lowest place among equals
    by_size: BTreeSet<(u32, Place)>,
    held: BTreeSet<Place>,
    /// blocks freed by a delete, and when: not handed out again in that second (see `alloc`)
    freed_at: BTreeMap<Place, i64>,
    /// after a takeover, blocks of trunk files up to this id are not handed out (0: none): the
    /// previous trunk server may have handed them out in lines that never reached us
    pub quarantine_up_to: u32,
}

impl FreeIndex {
    /// Apply a binlog line (at startup, from `storage_trunk.dat` and the binlog after it).
    pub fn replay(&mut self, r: &TrunkBinlogRecord) {
        match r.op {
            TrunkOp::Add => self.insert(r.block),
            TrunkOp::Delete => self.remove(&r.block),
        }
    }

    fn insert(&mut self, b: TrunkInfo) {
        if let Some(old) = self.blocks.insert(place(&b), b) {
            self.by_size.remove(&(old.size, place(&old)));
        }
        self.held.remove(&place(&b));
        self.freed_at.remove(&place(&b));
        self.by_size.insert((b.size, place(&b)));
    }

    fn remove(&mut self, b: &TrunkInfo) {
        if let Some(old) = self.blocks.remove(&place(b)) {
            self.by_size.remove(&(old.size, place(&old)));
        }
        self.held.remove(&place(b));
        self.freed_at.remove(&place(b));
    }

    /// A new trunk file's whole extent becomes free.
    pub fn add_trunk(&mut self, ts: i64, whole: TrunkInfo) -> Vec<TrunkBinlogRecord> {
        self.insert(whole);
        vec![record(ts, TrunkOp::Add, whole)]
    }

    /// Take `size` bytes (already rounded to the slot rules) on store path `spi`: the smallest
    /// free block that fits, split when what is left could hold a slot of `slot_min_size`.
    /// `None` when no block fits: the caller adds a trunk file and asks again.
    ///
    /// A block freed by a delete is not handed out in the same second: a slot is known by its
    /// header (size, CRC, second, ext), so a new file of the same content, second and ext in
    /// the slot a deleted one left would bring the deleted name back.
    pub fn alloc(
        &mut self,
        ts: i64,
        spi: u8,
        size: u32,
        slot_min_size: u32,
    ) -> Option<(TrunkInfo, Vec<TrunkBinlogRecord>)> {
        let &(_, at) = self.by_size.range((size, (0, 0, 0))..).find(|(_, p)| {
            p.0 == spi && p.1 > self.quarantine_up_to && self.freed_at.get(p) != Some(&ts)
        })?;
        let block = self.blocks[&at];
        let mut lines = vec![record(ts, TrunkOp::Delete, block)];
        self.remove(&block);
        let mut piece = block;
        let rest = block.size - size;
        if rest >= slot_min_size.max(1) {
            piece.size = size;
            let remainder = TrunkInfo {
                offset: block.offset + size,
                size: rest,
                ..block
            };
            self.insert(remainder);
            lines.push(record(ts, TrunkOp::Add, remainder));
        }
        self.blocks.insert(place(&piece), piece);
        self.held.insert(place(&piece));
        lines.push(record(ts, TrunkOp::Add, piece));
        Some((piece, lines))
    }

    /// TRUNK_ALLOC_CONFIRM: a stored upload takes its held block out of the index; a failed one
    /// gives it back.
    pub fn confirm(&mut self, ts: i64, piece: &TrunkInfo, stored: bool) -> Vec<TrunkBinlogRecord> {
        if !self.held.contains(&place(piece)) {
            return Vec::new();
        }
        if stored {
            self.remove(piece);
            vec![record(ts, TrunkOp::Delete, *piece)]
        } else {
            self.held.remove(&place(piece));
            self.by_size.insert((piece.size, place(piece)));
            Vec::new()
        }
    }

    /// Whether any of block `b`'s bytes are in a block of the index (free, or held for an
    /// allocation not yet confirmed): a free of `b` would then hand those bytes out twice.
    pub fn overlaps(&self, b: &TrunkInfo) -> bool {
        let end = u64::from(b.offset) + u64::from(b.size);
        let trunk =
            (b.store_path_index, b.trunk_id, 0)..=(b.store_path_index, b.trunk_id, u32::MAX);
        // blocks in the index never overlap each other: the last one starting before `b`'s
        // end is the only one that can reach into it, besides those starting inside it
        self.blocks
            .range(trunk)
            .take_while(|(p, _)| u64::from(p.2) < end)
            .any(|(_, x)| u64::from(x.offset) + u64::from(x.size) > u64::from(b.offset))
    }

    /// TRUNK_FREE_SPACE (a deleted file's slot): the block is free again.
    pub fn free(&mut self, ts: i64, block: TrunkInfo) -> Vec<TrunkBinlogRecord> {
        self.insert(block);
        self.freed_at.insert(place(&block), ts);
        vec![record(ts, TrunkOp::Add, block)]
    }

    /// `trunk_free_space_merge`: free blocks that touch in one trunk file become one block.
    /// Held blocks are left alone (a confirmation names them by their exact extent). Nothing is
    /// logged, as upstream does not log it: the snapshot written next carries the merged blocks,
    /// and a replay without it still ends with the same free bytes. Returns how many blocks
    /// disappeared into a neighbour.
    pub fn merge_adjacent(&mut self) -> usize {
        let mut merged: Vec<(TrunkInfo, Vec<TrunkInfo>, Option<i64>)> = Vec::new();
        let mut run: Option<(TrunkInfo, Vec<TrunkInfo>, Option<i64>)> = None;
        for b in self.blocks.values() {
            if self.held.contains(&place(b)) {
                merged.extend(run.take());
                continue;
            }
            let freed = self.freed_at.get(&place(b)).copied();
            run = match run.take() {
                Some((mut whole, mut parts, at))
                    if whole.store_path_index == b.store_path_index
                        && whole.trunk_id == b.trunk_id
                        && whole.offset + whole.size == b.offset =>
                {
                    whole.size += b.size;
                    parts.push(*b);
                    Some((whole, parts, at.max(freed)))
                }
                done => {
                    merged.extend(done);
                    Some((*b, vec![*b], freed))
                }
            };
        }
        merged.extend(run);
        let mut gone = 0;
        for (whole, parts, freed) in merged.into_iter().filter(|m| m.1.len() > 1) {
            gone += parts.len() - 1;
            for p in &parts {
                self.remove(p);
            }
            self.insert(whole);
            if let Some(t) = freed {
                self.freed_at.insert(place(&whole), t);
            }
        }
        gone
    }

    /// `storage_trunk.dat`'s lines, and a compacted binlog's: every block of the index as an
    /// `A` line. Held blocks are written too, so that an allocation never confirmed comes back
    /// after a restart (its confirmation, when it comes, is a `D` line after them).
    pub fn snapshot(&self, ts: i64) -> Vec<TrunkBinlogRecord> {
        self.blocks
            .values()
            .map(|b| record(ts, TrunkOp::Add, *b))
            .collect()
    }

    /// Take a block out without a binlog line (`trunk_init_check_occupying` at load).
    pub fn drop_block(&mut self, b: &TrunkInfo) {
        self.remove(b);
    }

    /// Block `b` holds files after all (their allocations' lines were lost): it leaves the
    /// index, and what lies between the `occupied` extents (offset, size, in any order; parts
    /// outside `b` do not count) comes back as free blocks, without a binlog line (the
    /// snapshot written next carries them). Returns the bytes taken out.
    pub fn carve(&mut self, b: &TrunkInfo, occupied: &[(u32, u32)]) -> u64 {
        let (start, end) = (b.offset, b.offset + b.size);
        let mut taken: Vec<(u32, u32)> = occupied
            .iter()
            .map(|&(o, n)| (o.max(start), o.saturating_add(n).min(end)))
            .filter(|(from, to)| from < to)
            .collect();
        if taken.is_empty() {
            return 0;
        }
        taken.sort_unstable();
        self.remove(b);
        let mut at = start;
        let mut out = 0u64;
        for (from, to) in taken {
            if from > at {
                self.insert(TrunkInfo {
                    offset: at,
                    size: from - at,
                    ..*b
                });
            }
            if to > at {
                out += u64::from(to - from.max(at));
                at = to;
            }
        }
        if end > at {
            self.insert(TrunkInfo {
                offset: at,
                size: end - at,
                ..*b
            });
        }
        out
    }

    /// Free blocks (held ones included), in place order.
    pub fn blocks(&self) -> impl Iterator<Item = &TrunkInfo> {
        self.blocks.values()
    }

    pub fn free_bytes(&self) -> u64 {
        self.blocks.values().map(|b| u64::from(b.size)).sum()
    }
}

/// What the trunk server keeps: the free-space index, rebuilt from the trunk binlog when the
/// role arrives, and the binlog it appends every change to before answering.
pub struct TrunkServerState {
    pub(crate) index: FreeIndex,
    pub(crate) binlog: std::fs::File,
    pub(crate) unwritten: UnwrittenLines,
    /// the largest trunk file id seen; a new trunk file takes the next one
    pub(crate) last_trunk_id: u32,
    /// the binlog's length right after the last compaction: unchanged, no new compaction
    pub(crate) compacted_len: Option<u64>,
    /// while a quarantine holds (`FreeIndex::quarantine_up_to`): since when every other
    /// member has been ACTIVE
    pub(crate) members_back_since: Option<std::time::Instant>,
}

/// Lines of allocations not yet in the trunk binlog. They go in with the next lines that must
/// be there before an answer (a confirm, a free, a new trunk file), so a small upload costs one
/// binlog write and not two. A crash loses only lines of blocks never confirmed, which a
/// restart hands back to the free list anyway; what is written is always a prefix of the
/// whole, in order.
#[derive(Default)]
pub struct UnwrittenLines(String);

impl UnwrittenLines {
    /// An allocation's lines, to wait for the next write.
    pub fn defer(&mut self, lines: &[TrunkBinlogRecord]) {
        self.0.extend(lines.iter().map(|r| r.to_line()));
    }

    /// What the next write appends: every deferred line, then `lines`.
    pub fn take_with(&mut self, lines: &[TrunkBinlogRecord]) -> String {
        let mut text = std::mem::take(&mut self.0);
        text.extend(lines.iter().map(|r| r.to_line()));
        text
    }

    /// Lines `take_with` gave that could not be written: first again at the next write.
    pub fn put_back(&mut self, mut text: String) {
        text.push_str(&self.0);
        self.0 = text;
    }

    /// Forget the deferred lines: the binlog was rewritten from an index that holds them.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

fn record(timestamp: i64, op: TrunkOp, block: TrunkInfo) -> TrunkBinlogRecord {
    TrunkBinlogRecord {
        timestamp,
        op,
        block,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_block_that_reaches_into_a_free_or_held_one_overlaps() {
        let mut ix = FreeIndex::default();
        let b = |offset, size| TrunkInfo {
            store_path_index: 0,
            sub_path_high: 0,
            sub_path_low: 0,
            trunk_id: 1,
            offset,
            size,
        };
        ix.insert(b(1000, 1000));
        assert!(ix.overlaps(&b(1500, 10)), "inside");
        assert!(ix.overlaps(&b(500, 501)), "reaching in from before");
        assert!(ix.overlaps(&b(1999, 100)), "reaching in from inside");
        assert!(ix.overlaps(&b(0, 5000)), "around");
        assert!(!ix.overlaps(&b(0, 1000)), "touching before");
        assert!(!ix.overlaps(&b(2000, 10)), "touching after");
        let other_trunk = TrunkInfo {
            trunk_id: 2,
            ..b(1500, 10)
        };
        assert!(!ix.overlaps(&other_trunk));
    }

    use super::*;

    fn block(offset: u32, size: u32) -> TrunkInfo {
        TrunkInfo {
            store_path_index: 0,
            sub_path_high: 0,
            sub_path_low: 0,
            trunk_id: 1,
            offset,
            size,
        }
    }

    /// A repeatable stream of numbers below `n`.
    fn xorshift(mut seed: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        }
    }

    fn lines(v: &[TrunkBinlogRecord]) -> Vec<String> {
        v.iter()
            .map(|r| r.to_line().trim_end().to_string())
            .collect()
    }

    /// The first allocation in a fresh 4 MiB trunk, as upstream logged it (6.6).
    #[test]
    fn first_allocation_matches_upstream() {
        let mut ix = FreeIndex::default();
        let mut all = ix.add_trunk(1795476841, block(0, 4194304));
        assert!(ix.alloc(1795476841, 0, 8 << 20, 256).is_none());
        let (piece, l) = ix.alloc(1795476841, 0, 256, 256).unwrap();
        all.extend(l);
        all.extend(ix.confirm(1795476841, &piece, true));
        assert_eq!(
            lines(&all),
            [
                "1795476841 A 0 0 0 1 0 4194304",
                "1795476841 D 0 0 0 1 0 4194304",
                "1795476841 A 0 0 0 1 256 4194048",
                "1795476841 A 0 0 0 1 0 256",
                "1795476841 D 0 0 0 1 0 256",
            ]
        );
        assert_eq!(ix.free_bytes(), 4194048);
    }

    #[test]
    fn merge_joins_touching_free_blocks_and_leaves_held_ones() {
        let mut ix = FreeIndex::default();
        ix.add_trunk(1, block(0, 2048));
        let pieces: Vec<_> = (0..8)
            .map(|_| ix.alloc(1, 0, 256, 256).unwrap().0)
            .collect();
        for p in &pieces {
            ix.confirm(1, p, true);
        }
        // free 0,1,2 and 5,6; hold 4 again
        for i in [0, 1, 2, 5, 6] {
            ix.free(2, pieces[i]);
        }
        let (held, _) = ix.alloc(3, 0, 256, 256).unwrap();
        assert_eq!(ix.merge_adjacent(), 2);
        let got: Vec<_> = ix.blocks().map(|b| (b.offset, b.size)).collect();
        assert_eq!(got, [(0, 256), (256, 512), (1280, 512)]);
        assert_eq!(held.offset, 0);
        // the held block is still held: not handed out, and its confirmation removes it
        assert_eq!(ix.confirm(4, &held, true).len(), 1);
        assert_eq!(ix.alloc(4, 0, 512, 256).unwrap().0.offset, 256);
    }

    #[test]
    fn quarantined_trunk_files_are_not_handed_out() {
        let mut ix = FreeIndex::default();
        ix.add_trunk(1, block(0, 4096));
        ix.quarantine_up_to = 1;
        assert!(ix.alloc(1, 0, 256, 256).is_none());
        ix.add_trunk(
            1,
            TrunkInfo {
                trunk_id: 2,
                ..block(0, 4096)
            },
        );
        assert_eq!(ix.alloc(1, 0, 256, 256).unwrap().0.trunk_id, 2);
        // only trunk 1 has a whole 4096 left, and only once the quarantine is over
        assert!(ix.alloc(1, 0, 4096, 256).is_none());
        ix.quarantine_up_to = 0;
        assert_eq!(ix.alloc(1, 0, 4096, 256).unwrap().0.trunk_id, 1);
    }

    #[test]
    fn carving_keeps_the_free_space_between_occupied_slots() {
        let mut index = FreeIndex::default();
        index.replay(&record(1, TrunkOp::Add, block(0, 4096)));
        // two slots the lost lines had allocated, one reaching past the block
        let out = index.carve(&block(0, 4096), &[(1024, 512), (3584, 1024), (9000, 10)]);
        assert_eq!(out, 512 + 512);
        let left: Vec<(u32, u32)> = index.blocks().map(|b| (b.offset, b.size)).collect();
        assert_eq!(left, [(0, 1024), (1536, 2048)]);
        assert_eq!(index.free_bytes(), 3072);
        // nothing occupied: the block stays as it is
        assert_eq!(index.carve(&block(0, 1024), &[]), 0);
        assert_eq!(index.blocks().count(), 2);
    }

    #[test]
    fn held_blocks_are_not_handed_out_twice_and_come_back_on_failure() {
        let mut ix = FreeIndex::default();
        ix.add_trunk(1, block(0, 512));
        let (a, _) = ix.alloc(1, 0, 256, 256).unwrap();
        let (b, _) = ix.alloc(1, 0, 256, 256).unwrap();
        assert_ne!(a.offset, b.offset);
        assert!(ix.alloc(1, 0, 256, 256).is_none());
        assert!(ix.confirm(1, &a, false).is_empty());
        let (c, _) = ix.alloc(1, 0, 256, 256).unwrap();
        assert_eq!(c.offset, a.offset);
        // a block freed by a delete waits for the next second
        ix.confirm(1, &b, true);
        ix.confirm(1, &c, true);
        ix.free(5, b);
        assert!(ix.alloc(5, 0, 256, 256).is_none());
        assert_eq!(ix.alloc(6, 0, 256, 256).unwrap().0.offset, b.offset);
        // a remainder smaller than a slot stays with the piece
        let mut ix = FreeIndex::default();
        ix.add_trunk(1, block(0, 300));
        let (p, l) = ix.alloc(1, 0, 256, 256).unwrap();
        assert_eq!((p.size, l.len()), (300, 2));
    }

    /// With allocation lines deferred to the next write, a crash at any moment leaves a binlog
    /// that replays to free blocks which overlap neither one another nor any piece whose
    /// confirm was answered.
    #[test]
    fn deferred_allocation_lines_never_free_a_confirmed_piece() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
        let mut ix = FreeIndex::default();
        let mut pending = UnwrittenLines::default();
        let mut disk = String::new();
        let mut held: Vec<TrunkInfo> = Vec::new();
        let mut taken: Vec<TrunkInfo> = Vec::new();
        let mut trunks = 0;
        for step in 0..6_000 {
            match next(10) {
                0..=4 => {
                    let size = 256 * (1 + next(64) as u32);
                    let mut got = ix.alloc(step, 0, size, 256);
                    if got.is_none() && trunks < 3 {
                        trunks += 1;
                        let whole = TrunkInfo {
                            trunk_id: trunks,
                            ..block(0, 1 << 20)
                        };
                        disk += &pending.take_with(&ix.add_trunk(step, whole));
                        got = ix.alloc(step, 0, size, 256);
                    }
                    if let Some((piece, lines)) = got {
                        pending.defer(&lines);
                        held.push(piece);
                    }
                }
                5..=7 if !held.is_empty() => {
                    let p = held.swap_remove(next(held.len() as u64) as usize);
                    let stored = next(4) != 0;
                    disk += &pending.take_with(&ix.confirm(step, &p, stored));
                    if stored {
                        taken.push(p);
                    }
                }
                _ if !taken.is_empty() => {
                    let p = taken.swap_remove(next(taken.len() as u64) as usize);
                    disk += &pending.take_with(&ix.free(step, p));
                }
                _ => {}
            }
            if step % 61 == 0 {
                let mut replayed = FreeIndex::default();
                for r in disk.lines().filter_map(TrunkBinlogRecord::parse) {
                    replayed.replay(&r);
                }
                let mut extents: Vec<(u32, u32, u32, bool)> = replayed
                    .blocks()
                    .map(|b| (b.trunk_id, b.offset, b.offset + b.size, false))
                    .chain(
                        taken
                            .iter()
                            .map(|b| (b.trunk_id, b.offset, b.offset + b.size, true)),
                    )
                    .collect();
                extents.sort();
                for w in extents.windows(2) {
                    assert!(
                        w[0].0 != w[1].0 || w[0].2 <= w[1].1,
                        "step {step}: {:?} overlaps {:?}",
                        w[0],
                        w[1]
                    );
                }
            }
        }
        assert!(trunks > 1 && !taken.is_empty());
    }

    /// Random allocations, confirmations (stored or failed) and frees over two trunk files: at
    /// every step the free blocks and the pieces handed out tile the trunks exactly, with no
    /// overlap, and replaying the binlog written so far rebuilds the same free blocks (held
    /// pieces counted free, as after a restart).
    #[test]
    fn random_operations_never_hand_out_a_byte_twice() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1du64);
        let trunk = 1 << 20;
        let mut ix = FreeIndex::default();
        let mut log = Vec::new();
        let mut held: Vec<TrunkInfo> = Vec::new();
        let mut taken: Vec<TrunkInfo> = Vec::new();
        let mut trunks = 0;
        for step in 0..20_000 {
            match next(10) {
                0..=4 => {
                    let size = 256 * (1 + next(64) as u32);
                    let got = match ix.alloc(step, 0, size, 256) {
                        Some(x) => Some(x),
                        None if trunks < 2 => {
                            trunks += 1;
                            log.extend(ix.add_trunk(
                                step,
                                TrunkInfo {
                                    trunk_id: trunks,
                                    ..block(0, trunk)
                                },
                            ));
                            ix.alloc(step, 0, size, 256)
                        }
                        None => None,
                    };
                    if let Some((piece, lines)) = got {
                        assert!(piece.size >= size);
                        log.extend(lines);
                        held.push(piece);
                    }
                }
                5..=7 if !held.is_empty() => {
                    let p = held.swap_remove(next(held.len() as u64) as usize);
                    let stored = next(4) != 0;
                    log.extend(ix.confirm(step, &p, stored));
                    if stored {
                        taken.push(p);
                    }
                }
                _ if !taken.is_empty() => {
                    let p = taken.swap_remove(next(taken.len() as u64) as usize);
                    log.extend(ix.free(step, p));
                }
                _ => {}
            }
            if step % 1000 == 999 || step == 19_999 {
                // free blocks (held ones are in the index too) and taken pieces tile the trunks
                let mut all: Vec<(u32, u32, u32)> = ix
                    .blocks()
                    .map(|b| (b.trunk_id, b.offset, b.size))
                    .chain(taken.iter().map(|b| (b.trunk_id, b.offset, b.size)))
                    .collect();
                all.sort();
                let mut at = (1, 0);
                for (id, off, size) in &all {
                    if (*id, *off) != at {
                        assert_eq!((*id, *off), (at.0 + 1, 0), "gap or overlap at {at:?}");
                        assert_eq!(at.1, trunk, "trunk {} not covered to its end", at.0);
                    }
                    at = (*id, off + size);
                }
                assert_eq!(at, (trunks, trunk));
                let mut replayed = FreeIndex::default();
                for r in &log {
                    replayed.replay(r);
                }
                let a: Vec<_> = replayed.blocks().collect();
                let b: Vec<_> = ix.blocks().collect();
                assert_eq!(a, b);
                // every other checkpoint: merge, then go on from the snapshot (a compacted
                // binlog) as the trunk server does
                if step % 2000 == 1999 {
                    let before = ix.free_bytes();
                    ix.merge_adjacent();
                    assert_eq!(ix.free_bytes(), before);
                    log = ix.snapshot(step);
                }
            }
        }
    }
}
