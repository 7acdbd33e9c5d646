//! The index itself: the run file (`run_file.rs`) plus the changes applied since it was
//! written, held in memory until they are merged into a new run file. Pure bookkeeping over
//! binlog records; what it needs from the store paths (an appender's size on disk, a file's
//! `fdfs-expires` metadata) comes through [`Disk`], so the property tests below drive it with
//! no daemon.
//!
//! | binlog op (either case) | index |
//! |---|---|
//! | `C`, `L` of a file | listed (an appender with its size on disk) |
//! | `R new old` | `old` gone, `new` listed |
//! | `D` of a file | gone (unless the file is still on disk: a delete cut short) |
//! | `A old len`, `T old new`, `M off len` | an appender's size: `old + len`, `new`, at least `off + len` |
//! | `C`, `U`, `D` of a `-m` file | the file's expiry and S3 name read again (`D`: none) |
//!
//! Metadata files themselves (`-m`) are never listed. Counts of files and bytes per store path
//! are kept as changes are applied, and so is the map of S3 names (bucket, key) to the files
//! that carry them (`storage/src/s3/`): of two files with one key, the later written is the
//! object (an overwrite writes the new file before it deletes the old one).

use super::entry::{Entry, Meta, S3Name};
use super::run_file::RunFile;
use crate::binlog::{Position, Record};
use fdfs_common::file_id::RemoteName;
use std::collections::BTreeMap;

/// What the index reads from the store paths.
pub trait Disk {
    /// An appender file's size on disk now.
    fn appender_size(&self, name: &str) -> Option<u64>;
    /// What the metadata of `name` says: its `fdfs-expires` time and S3 name, if any.
    fn meta(&self, name: &str) -> Meta;
    /// Whether `name` is a file (or link) on disk now.
    fn holds(&self, name: &str) -> bool;
}

/// Files and bytes of one store path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub files: i64,
    pub bytes: i64,
}

pub struct Index {
    pub(super) run: RunFile,
    /// changes since the run file: `None` for a file gone
    delta: BTreeMap<String, Option<Entry>>,
    /// the binlog position applied up to
    pub position: Position,
    counts: BTreeMap<usize, Count>,
    /// files whose metadata line came while they were not listed. A file's metadata is
    /// written after the file, and each change of it is a line of its own that sets the
    /// expiry, so a new file's expiry is read from disk only when its metadata came first:
    /// reading it for every create was a fifth of the follower's time
    /// (`scripts/listing-upkeep.sh`)
    meta_first: std::collections::HashSet<String>,
    /// bucket -> key -> every listed file with that S3 name
    keys: Keys,
}

/// What a listing of a bucket needs of one file carrying a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFile {
    pub etag: String,
    pub expires: Option<i64>,
}

/// The files carrying one key, by (written, name): the last is the object.
pub type KeyFiles = BTreeMap<(u64, String), KeyFile>;
/// The S3 names of the listed files: bucket -> key -> its files.
pub type Keys = BTreeMap<String, BTreeMap<String, KeyFiles>>;

fn add_key(keys: &mut Keys, name: &str, e: &Entry, n: &S3Name) {
    keys.entry(n.bucket.clone())
        .or_default()
        .entry(n.key.clone())
        .or_default()
        .insert(
            (n.written, name.to_string()),
            KeyFile {
                etag: n.etag.clone(),
                expires: e.expires,
            },
        );
}

fn remove_key(keys: &mut Keys, name: &str, n: &S3Name) {
    let Some(bucket) = keys.get_mut(&n.bucket) else {
        return;
    };
    if let Some(set) = bucket.get_mut(&n.key) {
        set.remove(&(n.written, name.to_string()));
        if set.is_empty() {
            bucket.remove(&n.key);
        }
    }
    if bucket.is_empty() {
        keys.remove(&n.bucket);
    }
}

/// A page of the index: the entries, and the name to go on after (`None`: nothing is left).
pub struct Page {
    pub entries: Vec<(String, Entry)>,
    pub next: Option<String>,
}

/// The size of a listed file: the one kept (appenders), else the one its name carries.
pub fn size_of(name: &str, e: &Entry) -> i64 {
    e.size.map(|s| s as i64).unwrap_or_else(|| {
        RemoteName::decode(name)
            .ok()
            .and_then(|r| r.payload.file_size())
            .unwrap_or(0)
    })
}

fn store_path_of(name: &str) -> usize {
    name.get(1..3)
        .and_then(|h| usize::from_str_radix(h, 16).ok())
        .unwrap_or(0)
}

/// A file's entry as it is first listed: an appender keeps its size (`appender_size`, asked
/// only for one; any other file's size is in its name), and what its metadata says.
pub fn first_entry(name: &str, appender_size: impl FnOnce() -> Option<u64>, meta: Meta) -> Entry {
    let appender = RemoteName::decode(name).is_ok_and(|r| r.payload.is_appender());
    Entry {
        size: if appender { appender_size() } else { None },
        expires: meta.expires,
        s3: meta.s3,
    }
}

/// A file newly listed from a binlog line: an appender with its size on disk; its metadata
/// read when `read_meta` (see [`Index::meta_first`]).
fn new_entry(name: &str, disk: &dyn Disk, read_meta: bool) -> Entry {
    let meta = if read_meta {
        disk.meta(name)
    } else {
        Meta::default()
    };
    first_entry(name, || disk.appender_size(name), meta)
}

impl Index {
    /// An index of nothing, to be built from the binlog's start (its run file to be at
    /// `path`).
    pub fn empty(path: &std::path::Path) -> Index {
        let run = RunFile::empty(path);
        Index {
            position: run.position,
            run,
            delta: BTreeMap::new(),
            counts: BTreeMap::new(),
            meta_first: Default::default(),
            keys: Keys::new(),
        }
    }

    /// The index in the run file at `path`, counted as the file is checked (`Ok(None)`: there
    /// is none; `Err`: it is damaged, and why).
    pub fn open(path: &std::path::Path) -> Result<Option<Index>, String> {
        let mut counts: BTreeMap<usize, Count> = BTreeMap::new();
        let mut keys = Keys::new();
        let run = RunFile::open(path, |name, e| {
            let c = counts.entry(store_path_of(name)).or_default();
            c.files += 1;
            c.bytes += size_of(name, e);
            if let Some(n) = &e.s3 {
                add_key(&mut keys, name, e, n);
            }
        })?;
        Ok(run.map(|run| Index {
            position: run.position,
            run,
            delta: BTreeMap::new(),
            counts,
            meta_first: Default::default(),
            keys,
        }))
    }

    /// Changes held in memory.
    pub fn pending(&self) -> usize {
        self.delta.len()
    }

    pub fn counts(&self) -> &BTreeMap<usize, Count> {
        &self.counts
    }

    /// The entry of `name` now.
    pub fn get(&self, name: &str) -> std::io::Result<Option<Entry>> {
        match self.delta.get(name) {
            Some(e) => Ok(e.clone()),
            None => self.run.get(name),
        }
    }

    fn set(&mut self, name: &str, e: Option<Entry>) -> std::io::Result<()> {
        let old = self.get(name)?;
        let c = self.counts.entry(store_path_of(name)).or_default();
        if let Some(o) = &old {
            c.files -= 1;
            c.bytes -= size_of(name, o);
            if let Some(n) = &o.s3 {
                remove_key(&mut self.keys, name, n);
            }
        }
        if let Some(n) = &e {
            c.files += 1;
            c.bytes += size_of(name, n);
            if let Some(k) = &n.s3 {
                add_key(&mut self.keys, name, n, k);
            }
        }
        self.delta.insert(name.to_string(), e);
        Ok(())
    }

    /// The S3 names of the listed files.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Set `name`'s entry to what the store path holds (`None`: nothing), where the binlog led
    /// the index astray (reconcile's comparison, `super::against_disk`).
    pub fn correct(&mut self, name: &str, e: Option<Entry>) -> std::io::Result<()> {
        self.set(name, e)
    }

    /// Apply one binlog record that ends at `end`.
    pub fn apply(&mut self, rec: &Record, end: Position, disk: &dyn Disk) -> std::io::Result<()> {
        self.position = end;
        let name = rec.name.as_str();
        if let Some(master) = name.strip_suffix("-m") {
            let upper = rec.op.to_ascii_uppercase();
            match self.get(master)? {
                Some(mut e) => {
                    let meta = match upper {
                        'D' => Meta::default(),
                        _ => disk.meta(master),
                    };
                    e.expires = meta.expires;
                    e.s3 = meta.s3;
                    self.set(master, Some(e))?;
                }
                None if upper != 'D' => {
                    self.meta_first.insert(master.to_string());
                }
                None => {
                    self.meta_first.remove(master);
                }
            }
            return Ok(());
        }
        let listed = |index: &Self| index.get(name);
        match rec.op.to_ascii_uppercase() {
            'C' => {
                let read_meta = self.meta_first.remove(name);
                let mut e = new_entry(name, disk, read_meta);
                // listed already (an S3 write notes its object before the follower comes
                // by): what its metadata said stays until the metadata's own line
                if let (false, Some(before)) = (read_meta, self.get(name)?) {
                    e.expires = before.expires;
                    e.s3 = before.s3;
                }
                self.set(name, Some(e))?
            }
            'L' => self.set(name, Some(new_entry(name, disk, true)))?,
            'R' => {
                let old = rec.args.trim();
                if !old.is_empty() && self.get(old)?.is_some() {
                    self.set(old, None)?;
                }
                self.set(name, Some(new_entry(name, disk, true)))?;
            }
            // a delete line whose file is still there was cut short (a crash after the line,
            // before the unlink): the file stays, as the sync sender leaves it on the other
            // members, and stays listed so that it is found again (an expiry sweep)
            'D' if disk.holds(name) => {}
            // a name not listed leaves a mark the next merge drops
            'D' => self.set(name, None)?,
            op @ ('A' | 'T' | 'M') => {
                if let (Some(mut e), Some((a, b))) = (listed(self)?, rec.arg_pair::<u64>()) {
                    let now = e.size.unwrap_or(0);
                    e.size = Some(match op {
                        'A' => a + b,
                        'T' => b,
                        _ => now.max(a + b),
                    });
                    self.set(name, Some(e))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Up to `limit` entries after `after` whose names start with `prefix` and that `keep`
    /// accepts, in name order, examining at most `budget` names; and where to go on from
    /// (`None`: nothing is left).
    pub fn page(
        &self,
        after: &str,
        prefix: &str,
        limit: usize,
        budget: usize,
        mut keep: impl FnMut(&str, &Entry) -> bool,
    ) -> std::io::Result<Page> {
        let mut out = Vec::new();
        let mut examined = 0usize;
        let next = self.scan(after, prefix, |name, e| {
            examined += 1;
            if keep(name, e) {
                out.push((name.to_string(), e.clone()));
            }
            out.len() < limit && examined < budget
        })?;
        Ok(Page { entries: out, next })
    }

    /// Show `visit` each entry after `after` whose name starts with `prefix`, in name order,
    /// while it answers true; the name it stopped at (`None`: it saw every one).
    pub fn scan(
        &self,
        after: &str,
        prefix: &str,
        mut visit: impl FnMut(&str, &Entry) -> bool,
    ) -> std::io::Result<Option<String>> {
        let from = if prefix > after {
            prefix_floor(prefix)
        } else {
            after.to_string()
        };
        let mut run = self.run.scan_from(&from)?.peekable();
        let mut delta = self
            .delta
            .range::<str, _>((
                std::ops::Bound::Excluded(from.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .peekable();
        loop {
            // the smaller of the two next names; the delta wins a tie
            let next_run = match run.peek() {
                Some(Ok((n, _))) => Some(n.clone()),
                Some(Err(_)) => return Err(run.next().expect("peeked").expect_err("an error")),
                None => None,
            };
            let take_delta = match (&next_run, delta.peek()) {
                (None, None) => return Ok(None),
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (Some(r), Some((d, _))) => d.as_str() <= r.as_str(),
            };
            let (name, entry) = if take_delta {
                let (d, e) = delta.next().expect("peeked");
                if next_run.as_deref() == Some(d.as_str()) {
                    run.next();
                }
                (d.clone(), e.clone())
            } else {
                let (n, e) = run.next().expect("peeked")?;
                (n, Some(e))
            };
            if !name.starts_with(prefix) {
                if name.as_str() > prefix {
                    return Ok(None);
                }
                continue;
            }
            let go_on = match entry {
                Some(e) => visit(&name, &e),
                // a name deleted since the run file: nothing to show, and not a place to stop
                None => true,
            };
            if !go_on {
                return Ok(Some(name));
            }
        }
    }

    /// A new run file at `path` holding every change (written while listings go on reading
    /// this one); [`Index::adopt`] then puts it in place.
    pub fn merged_run(&self, path: &std::path::Path) -> std::io::Result<RunFile> {
        self.run.merged(path, self.position, &self.delta)
    }

    /// Take `run`, made by [`Index::merged_run`] with no change applied since.
    pub fn adopt(&mut self, run: RunFile) {
        self.run = run;
        self.delta.clear();
    }

    #[cfg(test)]
    fn merge(&mut self, path: &std::path::Path) -> std::io::Result<()> {
        let run = self.merged_run(path)?;
        self.adopt(run);
        Ok(())
    }
}

/// A name just before every name starting with `prefix` (the scan starts after it).
fn prefix_floor(prefix: &str) -> String {
    let mut s = prefix.to_string();
    match s.pop() {
        Some(c) => {
            if let Some(p) = char::from_u32(c as u32 - 1).filter(|_| c as u32 > 0) {
                s.push(p);
                s.push(char::MAX);
            }
            s
        }
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fdfs_common::file_id::{FilePayload, Source};
    use std::collections::BTreeSet;

    struct NoDisk;
    impl Disk for NoDisk {
        fn appender_size(&self, _: &str) -> Option<u64> {
            Some(0)
        }
        fn meta(&self, _: &str) -> Meta {
            Meta::default()
        }
        fn holds(&self, _: &str) -> bool {
            false
        }
    }

    fn name(k: u64) -> String {
        let p = FilePayload {
            source: Source::Ipv4([10, 0, 0, 1]),
            timestamp: 1_700_000_000 + k as u32,
            size_field: (k % 1000) as i64,
            crc32: k as u32,
        };
        format!("M0{}/{:02X}/00/{}.txt", k % 2, k % 7, p.encode_b27())
    }

    fn rec(op: char, name: &str) -> Record {
        Record {
            timestamp: 1,
            op,
            name: name.to_string(),
            args: String::new(),
        }
    }

    fn list_all(index: &Index, prefix: &str, limit: usize) -> Vec<String> {
        let mut after = String::new();
        let mut out = Vec::new();
        loop {
            let page = index
                .page(&after, prefix, limit, usize::MAX, |_, _| true)
                .unwrap();
            out.extend(page.entries.into_iter().map(|(n, _)| n));
            match page.next {
                Some(n) => after = n,
                None => return out,
            }
        }
    }

    /// Random creates and deletes, merges at random points: every page listing equals a
    /// plain set of the live names, whole and by prefix, and the counts add up.
    #[test]
    fn listings_equal_the_live_set_through_merges() {
        let dir = std::env::temp_dir().join(format!("rfdfs-listing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("group1.list");
        for seed in 1..=20u64 {
            let _ = std::fs::remove_file(&path);
            let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut next = || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let mut index = Index::empty(&path);
            let mut live = BTreeSet::new();
            for step in 0..2000u64 {
                let k = next() % 600;
                let n = name(k);
                if next() % 3 == 0 {
                    index.apply(&rec('D', &n), (0, step), &NoDisk).unwrap();
                    live.remove(&n);
                } else {
                    index.apply(&rec('c', &n), (0, step), &NoDisk).unwrap();
                    live.insert(n);
                }
                if next() % 300 == 0 {
                    index.merge(&path).unwrap();
                }
            }
            let want: Vec<String> = live.iter().cloned().collect();
            assert_eq!(
                list_all(&index, "", 1 + (seed as usize % 37)),
                want,
                "seed {seed}"
            );
            let m01: Vec<String> = want
                .iter()
                .filter(|n| n.starts_with("M01/03/"))
                .cloned()
                .collect();
            assert_eq!(list_all(&index, "M01/03/", 5), m01, "seed {seed}");
            let files: i64 = index.counts().values().map(|c| c.files).sum();
            assert_eq!(files as usize, live.len());
            let bytes: i64 = index.counts().values().map(|c| c.bytes).sum();
            assert_eq!(
                bytes,
                live.iter()
                    .map(|n| size_of(n, &Entry::default()))
                    .sum::<i64>()
            );
            // a merged index read back from its file lists the same
            index.merge(&path).unwrap();
            let reopened = Index::open(&path).unwrap().unwrap();
            assert_eq!(list_all(&reopened, "", 100), want);
            assert_eq!(reopened.counts(), index.counts());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_run_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("rfdfs-listing-d-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("group1.list");
        let mut index = Index::empty(&path);
        for k in 0..10 {
            index.apply(&rec('C', &name(k)), (0, k), &NoDisk).unwrap();
        }
        index.merge(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("\t-\t", "\t7\t", 1)).unwrap();
        let why = |p: &std::path::Path| RunFile::open(p, |_, _| ()).err().unwrap_or_default();
        assert!(why(&path).contains("mismatch"), "{}", why(&path));
        std::fs::write(&path, &text[..text.len() - 5]).unwrap();
        assert!(!why(&path).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
