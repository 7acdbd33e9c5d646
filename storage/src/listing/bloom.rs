//! Which names a run file surely does not hold, in about 10 bits a name.
//!
//! The follower looks every new file up before it lists it (a name already listed must not be
//! counted twice), and nearly every name it meets is new. A lookup in the run file is a read
//! of up to [`super::run_file::STRIDE`] lines; measured with `scripts/listing-upkeep.sh`, those
//! reads were a third of the follower's time. This filter answers "not there" for a new name
//! from memory; a "maybe" (every name that is there, and about 1% of the others) still reads
//! the file.

/// A Bloom filter over names: 10 bits and 7 probes a name for about 1% false "maybe"s.
pub struct Bloom {
    bits: Vec<u64>,
}

const BITS_PER_NAME: u64 = 10;
const PROBES: u64 = 7;

impl Bloom {
    /// A filter sized for `names` names (more fill it past its error rate, never wrong).
    pub fn with_capacity(names: u64) -> Bloom {
        let words = (names.max(64) * BITS_PER_NAME).div_ceil(64);
        Bloom {
            bits: vec![0; words as usize],
        }
    }

    /// The word and bit of each probe for `name`.
    fn probes(&self, name: &str) -> [(usize, u64); PROBES as usize] {
        // FNV-1a, split into the two hashes of the double-hashing scheme
        let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        let (h1, h2) = (h & 0xffff_ffff, (h >> 32) | 1);
        let m = self.bits.len() as u64 * 64;
        std::array::from_fn(|i| {
            let bit = h1.wrapping_add((i as u64).wrapping_mul(h2)) % m;
            ((bit / 64) as usize, 1u64 << (bit % 64))
        })
    }

    pub fn insert(&mut self, name: &str) {
        for (w, mask) in self.probes(name) {
            self.bits[w] |= mask;
        }
    }

    /// False when `name` was surely never inserted.
    pub fn may_hold(&self, name: &str) -> bool {
        self.probes(name)
            .iter()
            .all(|&(w, mask)| self.bits[w] & mask != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_put_in_is_held_and_few_others_seem_so() {
        let mut b = Bloom::with_capacity(10_000);
        let name = |k: u32| {
            format!(
                "M00/{:02X}/{:02X}/wKgAA2sEyyCAT2X8AAAA{k:08}.txt",
                k % 256,
                k / 256 % 256
            )
        };
        for k in 0..10_000 {
            b.insert(&name(k));
        }
        assert!((0..10_000).all(|k| b.may_hold(&name(k))));
        let false_maybes = (10_000..110_000).filter(|&k| b.may_hold(&name(k))).count();
        // about 1% expected
        assert!(false_maybes < 2_000, "{false_maybes} of 100,000");
    }

    #[test]
    fn an_empty_filter_holds_nothing() {
        let b = Bloom::with_capacity(0);
        assert!(!b.may_hold("M00/00/00/x.txt"));
    }
}
