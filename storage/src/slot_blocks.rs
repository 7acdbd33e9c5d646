//! The disk blocks of a trunk file that can no longer be read (EIO: a bad sector, a data
//! checksum that fails), written again whole. A write into part of such a block has to read
//! the rest of it first and fails too, so the repair of a slot writes each unreadable block it
//! touches whole: the bytes of every live slot the block holds (the repaired one and its
//! neighbours, fetched intact from a member), zeros where no live slot is (free space).

use std::fs::File;
use std::os::unix::fs::FileExt;

/// The unit a disk fails in, as far as a repair is concerned: the page size (a multiple of any
/// sector size, and btrfs's checksum block).
pub const BLOCK: u64 = 4096;

/// A live slot as it should be on disk: where it starts in its trunk file, its header and data.
pub struct SlotBytes {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

impl SlotBytes {
    /// Where its bytes end in the trunk file.
    pub fn end(&self) -> u64 {
        self.offset + self.bytes.len() as u64
    }
}

/// Whether bytes `[start, end)` of a trunk file reach into the block at `at`.
pub fn touches(start: u64, end: u64, at: u64) -> bool {
    start < at + BLOCK && at < end
}

/// The blocks of `[from, to)` in `f` that cannot be read, by their offsets.
pub fn unreadable_blocks(f: &File, from: u64, to: u64) -> Vec<u64> {
    let mut buf = vec![0u8; BLOCK as usize];
    (from / BLOCK..to.div_ceil(BLOCK))
        .map(|b| b * BLOCK)
        .filter(|&at| f.read_at(&mut buf, at).is_err())
        .collect()
}

/// The block at `at` as it should be: the parts of `slots` it holds, zeros elsewhere.
pub fn compose(at: u64, slots: &[SlotBytes]) -> Vec<u8> {
    let mut block = vec![0u8; BLOCK as usize];
    for s in slots {
        let (lo, hi) = (s.offset.max(at), s.end().min(at + BLOCK));
        if lo < hi {
            block[(lo - at) as usize..(hi - at) as usize]
                .copy_from_slice(&s.bytes[(lo - s.offset) as usize..(hi - s.offset) as usize]);
        }
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_holds_the_parts_of_the_slots_in_it_and_zeros_elsewhere() {
        let slots = [
            // ends 100 bytes into the block
            SlotBytes {
                offset: BLOCK - 156,
                bytes: vec![1; 256],
            },
            SlotBytes {
                offset: BLOCK + 256,
                bytes: vec![2; 512],
            },
            // runs past the block's end
            SlotBytes {
                offset: 2 * BLOCK - 10,
                bytes: vec![3; 100],
            },
            // another block altogether
            SlotBytes {
                offset: 3 * BLOCK,
                bytes: vec![4; 10],
            },
        ];
        let b = compose(BLOCK, &slots);
        assert_eq!(b.len(), BLOCK as usize);
        assert!(b[..100].iter().all(|&x| x == 1));
        assert!(b[100..256].iter().all(|&x| x == 0));
        assert!(b[256..768].iter().all(|&x| x == 2));
        assert!(b[768..BLOCK as usize - 10].iter().all(|&x| x == 0));
        assert!(b[BLOCK as usize - 10..].iter().all(|&x| x == 3));
        let touching: Vec<bool> = slots
            .iter()
            .map(|s| touches(s.offset, s.end(), BLOCK))
            .collect();
        assert_eq!(touching, [true, true, true, false]);
    }

    #[test]
    fn blocks_past_the_end_of_the_file_are_not_unreadable() {
        let dir = std::env::temp_dir().join(format!("rfdfs-slot-blocks-{}", std::process::id()));
        std::fs::write(&dir, vec![7u8; 5000]).unwrap();
        let f = File::open(&dir).unwrap();
        assert!(unreadable_blocks(&f, 100, 3 * BLOCK).is_empty());
        let _ = std::fs::remove_file(&dir);
    }
}
