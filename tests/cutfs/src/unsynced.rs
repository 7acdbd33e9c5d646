//! What the file system was told but not yet asked to keep: for each file changed since its
//! last fsync, the length it had then and the original bytes of every page overwritten since.
//!
//! This is the undo side of a power cut. The writes themselves go straight to the backing file
//! (so reads need no overlay); a cut puts back each page saved here and cuts or extends the
//! file to its durable length, which leaves exactly what the last fsync (or fdatasync) of
//! each file made durable. An fsync of a file forgets its entry. Pure bookkeeping: the bytes
//! are read and written through closures, so the rules are tested on a model file.

use std::collections::{BTreeMap, HashMap};

/// The granularity of saved bytes: a page, as the page cache loses them.
pub const PAGE: u64 = 4096;

/// One file's unsynced changes. `H` is how the file is reached again at the cut (an open
/// handle, in the file system: the file may have been renamed or unlinked since).
pub struct FileUndo<H> {
    pub handle: H,
    /// when the file first changed after its last fsync (the kernel's `dirtied_when`)
    pub dirtied: std::time::Instant,
    /// the length at the last fsync (or when first changed after it)
    pub durable_len: u64,
    /// page index -> the page's bytes at the last fsync (shorter for the last page)
    pub saved: BTreeMap<u64, Vec<u8>>,
}

/// All files with unsynced changes, by backing inode number.
pub struct Unsynced<H> {
    files: HashMap<u64, FileUndo<H>>,
}

impl<H> Default for Unsynced<H> {
    fn default() -> Self {
        Unsynced {
            files: HashMap::new(),
        }
    }
}

/// What a cut dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    pub files: usize,
    pub pages: usize,
}

impl<H> Unsynced<H> {
    /// Bytes `[start, end)` of file `ino` are about to change (a write, a truncation, a hole
    /// punched). `len` is the file's length now, `handle` reaches it, `read(offset, n)` reads
    /// its current bytes. Saves what the change would lose of the durable content.
    pub fn before_change(
        &mut self,
        ino: u64,
        len: u64,
        start: u64,
        end: u64,
        handle: impl FnOnce() -> H,
        mut read: impl FnMut(u64, usize) -> Vec<u8>,
    ) {
        let f = self.files.entry(ino).or_insert_with(|| FileUndo {
            handle: handle(),
            dirtied: std::time::Instant::now(),
            durable_len: len,
            saved: BTreeMap::new(),
        });
        let end = end.min(f.durable_len);
        if start >= end {
            return;
        }
        for page in start / PAGE..end.div_ceil(PAGE) {
            f.saved.entry(page).or_insert_with(|| {
                let at = page * PAGE;
                read(at, (f.durable_len - at).min(PAGE) as usize)
            });
        }
    }

    /// File `ino` was fsynced: all of it is durable now.
    pub fn synced(&mut self, ino: u64) {
        self.files.remove(&ino);
    }

    /// The kernel's writeback: every file that first changed more than `expire` ago is
    /// written back whole (Linux writes an inode's dirty pages once its oldest is
    /// `dirty_expire_centisecs` old, 30 s by default); how many.
    pub fn write_back_older_than(&mut self, expire: std::time::Duration) -> usize {
        let before = self.files.len();
        self.files.retain(|_, f| f.dirtied.elapsed() < expire);
        before - self.files.len()
    }

    pub fn is_dirty(&self, ino: u64) -> bool {
        self.files.contains_key(&ino)
    }

    /// The cut: every file back to its durable state, through `restore(handle, saved pages,
    /// durable length)`; what was dropped.
    pub fn cut(&mut self, mut restore: impl FnMut(&H, &BTreeMap<u64, Vec<u8>>, u64)) -> Dropped {
        let mut d = Dropped::default();
        for (_, f) in self.files.drain() {
            restore(&f.handle, &f.saved, f.durable_len);
            d.files += 1;
            d.pages += f.saved.len();
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift: the test's operations, repeatable
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// A file changed the way the file system changes it: writes (anywhere, past the end too),
    /// truncations both ways, fsyncs; the cut must leave it as at its last fsync.
    #[test]
    fn a_cut_leaves_each_file_as_its_last_fsync_left_it() {
        for seed in 1..300u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut file: Vec<u8> = (0..rng.below(3 * PAGE)).map(|i| i as u8).collect();
            let mut durable = file.clone();
            let mut u: Unsynced<()> = Unsynced::default();
            for step in 0..40u64 {
                match rng.below(10) {
                    0..6 => {
                        let at = rng.below(file.len() as u64 + 2 * PAGE);
                        let n = 1 + rng.below(2 * PAGE);
                        let snapshot = file.clone();
                        u.before_change(
                            7,
                            file.len() as u64,
                            at,
                            at + n,
                            || (),
                            |o, k| snapshot[o as usize..o as usize + k].to_vec(),
                        );
                        let end = (at + n) as usize;
                        if file.len() < end {
                            file.resize(end, 0);
                        }
                        for b in &mut file[at as usize..end] {
                            *b = (step as u8).wrapping_mul(31) ^ 0xa5;
                        }
                    }
                    6..8 => {
                        let to = rng.below(file.len() as u64 + PAGE);
                        let snapshot = file.clone();
                        u.before_change(
                            7,
                            file.len() as u64,
                            to,
                            u64::MAX,
                            || (),
                            |o, k| snapshot[o as usize..o as usize + k].to_vec(),
                        );
                        file.resize(to as usize, 0);
                    }
                    _ => {
                        u.synced(7);
                        durable = file.clone();
                    }
                }
            }
            u.cut(|_, saved, len| {
                for (page, bytes) in saved {
                    let at = (page * PAGE) as usize;
                    if file.len() < at + bytes.len() {
                        file.resize(at + bytes.len(), 0);
                    }
                    file[at..at + bytes.len()].copy_from_slice(bytes);
                }
                file.resize(len as usize, 0);
            });
            assert_eq!(file, durable, "seed {seed}");
        }
    }

    #[test]
    fn writeback_keeps_only_the_files_dirtied_long_enough_ago() {
        let mut u: Unsynced<()> = Unsynced::default();
        u.before_change(1, 0, 0, 10, || (), |_, _| Vec::new());
        std::thread::sleep(std::time::Duration::from_millis(30));
        u.before_change(2, 0, 0, 10, || (), |_, _| Vec::new());
        assert_eq!(
            u.write_back_older_than(std::time::Duration::from_millis(20)),
            1
        );
        assert!(!u.is_dirty(1) && u.is_dirty(2));
    }

    #[test]
    fn appends_past_the_durable_length_save_nothing() {
        let mut u: Unsynced<()> = Unsynced::default();
        u.before_change(1, 100, 100, 9000, || (), |_, _| panic!("nothing to save"));
        assert!(u.is_dirty(1));
        let d = u.cut(|_, saved, len| {
            assert!(saved.is_empty());
            assert_eq!(len, 100);
        });
        assert_eq!(d, Dropped { files: 1, pages: 0 });
    }
}
