//! Store paths (docs/protocol/sync-and-storage-layout.md section 1): the `data/HH/HH` tree, the
//! `.fastdfs_vars` mark of each path, new files and their names, the round-robin subdirectory
//! cursor, trunk files opened for reading, and each path's space. The state files beside it are
//! `init_flag` (`.data_init_flag`) and `stat_file` (`storage_stat.dat`).

use fdfs_common::config::{ReservedSpace, StorageConfig};
use fdfs_common::file_id::{format_ext, FilePayload, LogicalName, RemoteName, Source};
use fdfs_common::proto::cluster::PathUsage;
use fdfs_common::proto::errno;
use fdfs_common::proto::trunk::TrunkInfo;
use fdfs_common::sync::Mutex;
use fdfs_common::trunk::{SlotHeader, TrunkSlot, SLOT_HEADER_LEN};
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const MARK_FILE: &str = ".fastdfs_vars";
pub const TEMP_DIR: &str = ".rfdfs_tmp";

pub use fdfs_common::durable::{sync_dir, write_atomic};

/// Parse a `key=value` state file into an ordered map.
/// `len` bytes of `f` from `at` (a slot, or the part of a file a change is about to replace).
pub fn read_at(f: &File, at: u64, len: usize) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut bytes = vec![0u8; len];
    f.read_exact_at(&mut bytes, at)?;
    Ok(bytes)
}

/// A file being received, with no file ID until it is complete. Unnamed (O_TMPFILE) in the
/// directory it will be linked into, so a crash leaves nothing behind and ext4 allocates its
/// inode beside that directory: creating every file in the one temp directory filled that
/// directory's block group and made each create search for a free inode (~0.3 ms instead of
/// ~20 us). Where unnamed files are not supported, a named file in the temp directory, removed
/// when this is dropped.
pub struct NewFile {
    pub file: std::fs::File,
    temp: Option<PathBuf>,
    temp_dir: PathBuf,
    seq: u64,
}

impl NewFile {
    /// When the file was last written (its inode's mtime; now, should that not be read): the
    /// create time its file ID carries.
    pub fn mtime(&self) -> i64 {
        use std::os::unix::fs::MetadataExt;
        self.file
            .metadata()
            .map(|m| m.mtime())
            .unwrap_or_else(|_| fdfs_common::now())
    }

    /// Give the file the name `dest`, refusing to replace an existing file (EEXIST).
    pub fn link_as(&self, dest: &Path) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        match &self.temp {
            Some(temp) => std::fs::hard_link(temp, dest),
            None => {
                let fd = PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()));
                nix::unistd::linkat(
                    None,
                    fd.as_path(),
                    None,
                    dest,
                    nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
                )
                .map_err(std::io::Error::from)
            }
        }
    }

    /// Give the file the name `dest`, atomically replacing a file already there.
    pub fn rename_as(&self, dest: &Path) -> std::io::Result<()> {
        let staged;
        let from = match &self.temp {
            Some(temp) => temp,
            None => {
                // a name first, in the temp directory (same file system, cleared at startup)
                staged = self
                    .temp_dir
                    .join(format!("{}_u{}.tmp", std::process::id(), self.seq));
                self.link_as(&staged)?;
                &staged
            }
        };
        let r = std::fs::rename(from, dest);
        if r.is_err() && self.temp.is_none() {
            let _ = std::fs::remove_file(from);
        }
        r
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        if let Some(temp) = &self.temp {
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// The bytes of one stored file: all of a plain file, or a trunk slot's data.
pub struct Stored {
    pub file: Arc<File>,
    /// where the file's bytes start in `file`
    pub start: u64,
    pub size: u64,
    /// the slot and its header, for a file in a trunk
    pub trunk: Option<(TrunkSlot, SlotHeader)>,
}

/// Round-robin subdirectory cursor (`file_distribute_path_mode = 0`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DistCursor {
    pub high: u32,
    pub low: u32,
    pub count: u32,
}

/// PJW hash as upstream computes it (signed accumulator, arithmetic shift).
pub fn pjw_hash(s: &[u8]) -> i32 {
    let mut h: i32 = 0;
    for &c in s {
        h = h.wrapping_shl(4).wrapping_add(c as i32);
        let t = (h as u32 & 0xF000_0000) as i32;
        if t != 0 {
            h ^= t >> 24;
            h &= 0x0FFF_FFFF;
        }
    }
    h
}

/// What a new file's name is made of: where it goes, and the file ID's fields.
#[derive(Debug, Clone)]
pub struct NameParts<'a> {
    pub path_index: usize,
    pub subdir: (u32, u32),
    pub source: &'a Source,
    pub timestamp: u32,
    pub size: i64,
    pub appender: bool,
    pub crc32: u32,
    /// the extension as the name carries it (`.jpg`, or empty)
    pub x7: &'a str,
}

/// The store paths and name generation.
pub struct Store {
    pub paths: Vec<PathBuf>,
    pub readonly: Vec<bool>,
    pub subdir_count: u32,
    pub distribute_mode: u8,
    pub rotate_count: u32,
    cursor: Mutex<DistCursor>,
    path_cursor: AtomicU64,
    /// store paths found unreadable (a failed disk, a file system unmounted under us): skipped
    /// for new files and reported with no space until they are readable again
    down: Vec<AtomicBool>,
    seq: AtomicU64,
    rng: Mutex<u64>,
    /// new files are created unnamed (O_TMPFILE) in their own directory; cleared on the first
    /// file system that refuses it (or without /proc to link them by)
    unnamed_files: AtomicBool,
    /// open trunk files (read and write) and their length, so that a small upload or download
    /// costs no open and close; filled by the first write into or read from each
    trunk_files: Mutex<HashMap<PathBuf, (Arc<File>, u64)>>,
    /// each store path's space as last read, and when
    usage_seen: Vec<Mutex<Option<(Instant, PathUsage)>>>,
}

/// How long a store path's space, once read, may answer the reserved-space check again.
const USAGE_REUSE: Duration = Duration::from_secs(1);

/// How far from the reserve a store path must be for its last reading to be reused: more than
/// any store path can take in `USAGE_REUSE`, so that near the reserve every upload reads it.
const USAGE_MARGIN_MB: i64 = 2048;

impl Store {
    pub fn new(cfg: &StorageConfig) -> Store {
        let seed = fdfs_common::now() as u64 ^ (std::process::id() as u64) << 32;
        Store {
            paths: cfg.store_paths.clone(),
            readonly: cfg.store_path_readonly.clone(),
            subdir_count: cfg.subdir_count_per_path,
            distribute_mode: cfg.file_distribute_path_mode,
            rotate_count: cfg.file_distribute_rotate_count,
            cursor: Mutex::new(DistCursor::default()),
            path_cursor: AtomicU64::new(0),
            down: cfg
                .store_paths
                .iter()
                .map(|_| AtomicBool::new(false))
                .collect(),
            seq: AtomicU64::new(0),
            rng: Mutex::new(seed | 1),
            unnamed_files: AtomicBool::new(Path::new("/proc/self/fd").is_dir()),
            trunk_files: Mutex::new(HashMap::new()),
            usage_seen: cfg.store_paths.iter().map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Whether store path `index` keeps `reserved` free after `size` more bytes (the check
    /// before an upload). A reading younger than `USAGE_REUSE` answers when it is more than
    /// `USAGE_MARGIN_MB` from the reserve; otherwise the file system is asked (statvfs costs
    /// as much as a small upload's write).
    pub fn has_room(&self, index: usize, reserved: ReservedSpace, size: i64) -> bool {
        let paths = self.paths.len() as i64;
        let seen = *self.usage_seen[index].lock();
        if let Some((at, u)) = seen {
            if at.elapsed() < USAGE_REUSE
                && reserved.has_room(
                    u.total_mb,
                    u.free_mb - (size >> 20) - USAGE_MARGIN_MB,
                    paths,
                )
            {
                return true;
            }
        }
        let u = path_usage(&self.paths[index]);
        *self.usage_seen[index].lock() = Some((Instant::now(), u));
        reserved.has_room(u.total_mb, u.free_mb - (size >> 20), paths)
    }

    /// Create a file to receive into, for a name in `dir` of store path `index`.
    pub fn new_file(&self, index: usize, dir: &Path) -> std::io::Result<NewFile> {
        use std::os::unix::fs::OpenOptionsExt;
        if self.unnamed_files.load(Ordering::Relaxed) {
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_TMPFILE)
                .open(dir)
            {
                Ok(file) => {
                    return Ok(NewFile {
                        file,
                        temp: None,
                        temp_dir: self.temp_dir(index),
                        seq: self.seq.fetch_add(1, Ordering::Relaxed),
                    })
                }
                // EOPNOTSUPP: the file system lacks it; EISDIR/EINVAL: an older kernel
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(nix::libc::EOPNOTSUPP | nix::libc::EISDIR | nix::libc::EINVAL)
                    ) =>
                {
                    log::warn!(
                        "{} cannot hold unnamed files ({e}); new files are written in {} first",
                        dir.display(),
                        self.temp_dir(index).display()
                    );
                    self.unnamed_files.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        let temp = self.temp_path(index);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        Ok(NewFile {
            file,
            temp: Some(temp),
            temp_dir: self.temp_dir(index),
            seq: 0,
        })
    }

    pub fn random(&self) -> u32 {
        let mut s = self.rng.lock();
        // xorshift64*: names only need to differ, not to be unpredictable
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    pub fn cursor(&self) -> DistCursor {
        *self.cursor.lock()
    }

    pub fn set_cursor(&self, c: DistCursor) {
        let sc = self.subdir_count.max(1);
        *self.cursor.lock() = DistCursor {
            high: c.high % sc,
            low: c.low % sc,
            count: c.count,
        };
    }

    /// Create `data/` and whatever part of the `HH/HH` tree is missing. Returns how many sub
    /// directories had to be created (all of them on a first start; some, if a subtree was
    /// lost, which calls for a repair from a peer).
    pub fn make_data_dirs(&self, index: usize) -> std::io::Result<usize> {
        let data = self.paths[index].join("data");
        std::fs::create_dir_all(&data)?;
        let mut created = 0;
        for h in 0..self.subdir_count {
            let hd = data.join(format!("{h:02X}"));
            if !hd.is_dir() {
                if created == 0 {
                    log::info!("data path: {}, mkdir sub dir...", data.display());
                }
                mkdir_ok(&hd)?;
            }
            for l in 0..self.subdir_count {
                let ld = hd.join(format!("{l:02X}"));
                if !ld.is_dir() {
                    mkdir_ok(&ld)?;
                    created += 1;
                }
            }
        }
        Ok(created)
    }

    pub fn data_dir(&self, index: usize) -> PathBuf {
        self.paths[index].join("data")
    }

    /// Local path of a logical name (already validated by `LogicalName::parse`).
    pub fn local_path(&self, n: &LogicalName) -> PathBuf {
        self.data_dir(n.store_path_index).join(n.true_name)
    }

    /// Whether `name`'s own path (a plain file or a link, not a trunk slot) is in its store
    /// path; a name that does not parse is not.
    pub fn holds(&self, name: &str) -> bool {
        LogicalName::parse(name, self.paths.len())
            .is_ok_and(|n| std::fs::symlink_metadata(self.local_path(&n)).is_ok())
    }

    /// The trunk file a trunk name's slot is in: the name's own `HH/HH` directory, the trunk id
    /// as its file name.
    pub fn trunk_file_path(&self, n: &LogicalName, slot: &TrunkSlot) -> PathBuf {
        self.local_path(n).with_file_name(slot.file_name())
    }

    /// The trunk file a block of the trunk server's index is in, on store path `index`.
    pub fn trunk_file_of(&self, index: usize, b: &TrunkInfo) -> PathBuf {
        let file = TrunkSlot {
            trunk_id: b.trunk_id,
            offset: 0,
            alloc_size: 0,
        }
        .file_name();
        self.subdir_path(
            index,
            (u32::from(b.sub_path_high), u32::from(b.sub_path_low)),
        )
        .join(file)
    }

    /// A trunk file from the open ones, or opened (and kept) now, with its length; `create`
    /// (a write into a slot ending there) creates it and extends it to at least that length
    /// or `trunk_file_size`. A store path mounted read-only is read through a handle not kept.
    pub fn open_trunk_file(
        &self,
        path: &Path,
        create: Option<(u64, u64)>,
    ) -> io::Result<(Arc<File>, u64)> {
        let mut open = self.trunk_files.lock();
        let end = create.map_or(0, |(end, _)| end);
        if let Some((f, len)) = open.get(path) {
            if *len >= end {
                return Ok((Arc::clone(f), *len));
            }
        }
        let f = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create.is_some())
            .truncate(false)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if create.is_none() && e.raw_os_error() != Some(errno::ENOENT.into()) => {
                let f = File::open(path)?;
                let len = f.metadata()?.len();
                return Ok((Arc::new(f), len));
            }
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        let want = match create {
            Some((end, trunk_file_size)) => len.max(trunk_file_size).max(end),
            None => len,
        };
        if len < want {
            f.set_len(want)?;
        }
        // a few hundred trunk files are open at most; beyond, start over
        if open.len() >= 256 {
            open.clear();
        }
        // a kept handle sees slot after slot read in rising order (each upload checks its
        // slot's header first) and would ramp readahead up into large page-cache folios, each
        // of which every small write into it then walks whole: 8 us per 1 KiB upload instead
        // of under 2 here. Reads of a slot ask for the slot, so readahead gains them nothing.
        let _ = nix::fcntl::posix_fadvise(
            f.as_raw_fd(),
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_RANDOM,
        );
        let f = Arc::new(f);
        open.insert(path.to_path_buf(), (Arc::clone(&f), want));
        Ok((f, want))
    }

    /// Trunk files may have been replaced under us (a store path being rebuilt): open afresh.
    pub fn forget_trunk_files(&self) {
        self.trunk_files.lock().clear();
    }

    /// Whether an [`Store::open_stored`] failure means the file is not there (a reader
    /// answers "not found"): absent, a directory, or a trunk slot that holds no file.
    pub fn is_absent(e: &io::Error) -> bool {
        e.kind() == io::ErrorKind::NotFound
            || e.raw_os_error()
                .is_some_and(|n| n == i32::from(errno::EISDIR) || n == i32::from(errno::EINVAL))
    }

    /// Open the bytes a name stands for: a plain file whole, or the data of a trunk slot once the
    /// slot is inside its trunk file, can hold the size the name says and carries the header
    /// rebuilt from the name (else ENOENT, as upstream: a reused slot no longer holds the old
    /// name). A geometry no trunk file can have is EINVAL; nothing is read beyond the header.
    pub fn open_stored(&self, n: &LogicalName, full_name: &str) -> io::Result<Stored> {
        let trunk = RemoteName::decode(full_name)
            .ok()
            .and_then(|rn| TrunkSlot::of_name(&rn).map(|slot| (rn, slot)));
        let Some((rn, slot)) = trunk else {
            let file = File::open(self.local_path(n))?;
            let md = file.metadata()?;
            if !md.is_file() {
                return Err(io::Error::from_raw_os_error(errno::EISDIR.into()));
            }
            return Ok(Stored {
                file: Arc::new(file),
                start: 0,
                size: md.len(),
                trunk: None,
            });
        };
        let (file, trunk_len) = self.open_trunk_file(&self.trunk_file_path(n, &slot), None)?;
        let size = rn.payload.file_size().unwrap_or(-1);
        if size < 0 || !slot.holds(size as u64, trunk_len) {
            return Err(io::Error::from_raw_os_error(errno::EINVAL.into()));
        }
        let mut head = [0u8; SLOT_HEADER_LEN as usize];
        file.read_exact_at(&mut head, u64::from(slot.offset))?;
        if !SlotHeader::from_bytes(&head).names(&rn) {
            return Err(io::Error::from_raw_os_error(errno::ENOENT.into()));
        }
        Ok(Stored {
            file,
            start: slot.data_offset(),
            size: size as u64,
            trunk: Some((slot, SlotHeader::from_bytes(&head))),
        })
    }

    /// Whether store path `index` can be written: its temp directory (inside `data/`) is
    /// there. Checked on every upload and disk report, so a path that disappears is skipped at
    /// once and one that comes back is used again; each change is logged once.
    pub fn path_ok(&self, index: usize) -> bool {
        let probe = std::fs::metadata(self.temp_dir(index));
        let ok = probe.as_ref().is_ok_and(|m| m.is_dir());
        let was_down = self.down[index].swap(!ok, Ordering::Relaxed);
        if !ok && !was_down {
            let why = match probe {
                Err(e) => e.to_string(),
                Ok(_) => "not a directory".into(),
            };
            log::error!(
                "store path #{index} {} is unreadable ({}: {why}); it is skipped until it \
                 comes back",
                self.paths[index].display(),
                self.temp_dir(index).display()
            );
        } else if ok && was_down {
            log::info!(
                "store path #{index} {} is readable again",
                self.paths[index].display()
            );
        }
        ok
    }

    /// Total and free MB of store path `index`, nothing for a path that is down.
    pub fn usage(&self, index: usize) -> PathUsage {
        if self.path_ok(index) {
            path_usage(&self.paths[index])
        } else {
            PathUsage::default()
        }
    }

    /// Store path for an upload: the requested one, or (0xFF, read-only, down) round robin
    /// over writable paths that still have room.
    pub fn choose_path(&self, requested: u8, reserved: Option<ReservedSpace>) -> Option<usize> {
        let n = self.paths.len();
        let r = requested as usize;
        if r < n && !self.readonly[r] && self.path_ok(r) {
            return Some(r);
        }
        let start = self.path_cursor.fetch_add(1, Ordering::Relaxed) as usize;
        (0..n).map(|k| (start + k) % n).find(|&i| {
            !self.readonly[i]
                && self.path_ok(i)
                && reserved.is_none_or(|r| {
                    let u = path_usage(&self.paths[i]);
                    r.has_room(u.total_mb, u.free_mb, n as i64)
                })
        })
    }

    /// Subdirectory for a new file.
    pub fn choose_subdir(&self, b27: &str) -> (u32, u32) {
        let sc = self.subdir_count.max(1);
        if self.distribute_mode == 1 {
            let n = (pjw_hash(b27.as_bytes()) as u32) & 0xFFFF;
            return (((n >> 8) & 0xFF) % sc, (n & 0xFF) % sc);
        }
        let mut c = self.cursor.lock();
        let out = (c.high, c.low);
        c.count += 1;
        if c.count >= self.rotate_count {
            c.count = 0;
            c.low += 1;
            if c.low >= sc {
                c.low = 0;
                c.high = (c.high + 1) % sc;
            }
        }
        out
    }

    /// Where incoming files are written before they are complete: one directory per store
    /// path, on the same file system as the files (so linking them into place is atomic), and
    /// outside every `HH/HH` directory (so no file ID can name one).
    pub fn temp_dir(&self, index: usize) -> PathBuf {
        self.data_dir(index).join(TEMP_DIR)
    }

    pub fn temp_path(&self, index: usize) -> PathBuf {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        self.temp_dir(index)
            .join(format!("{}_{seq}.tmp", std::process::id()))
    }

    /// Create the temp directory, removing what an interrupted run left in it.
    pub fn reset_temp_dir(&self, index: usize) -> std::io::Result<()> {
        let dir = self.temp_dir(index);
        if dir.is_dir() {
            for e in std::fs::read_dir(&dir)?.flatten() {
                log::warn!("remove unfinished upload {}", e.path().display());
                let _ = std::fs::remove_file(e.path());
            }
        }
        std::fs::create_dir_all(&dir)
    }

    /// New logical name for a file (its random part drawn here).
    pub fn make_name(&self, p: &NameParts) -> String {
        let payload = FilePayload {
            source: p.source.clone(),
            timestamp: p.timestamp,
            size_field: FilePayload::make_size_field(p.size, p.appender, self.random()),
            crc32: p.crc32,
        };
        format!(
            "M{:02X}/{:02X}/{:02X}/{}{}",
            p.path_index,
            p.subdir.0,
            p.subdir.1,
            payload.encode_b27(),
            p.x7
        )
    }

    /// The directory a new file of `subdir` in store path `index` goes to.
    pub fn subdir_path(&self, index: usize, subdir: (u32, u32)) -> PathBuf {
        self.data_dir(index)
            .join(format!("{:02X}/{:02X}", subdir.0, subdir.1))
    }

    pub fn format_ext(&self, ext: &str) -> String {
        format_ext(ext, || (self.random() % 10) as u8)
    }
}

fn mkdir_ok(p: &Path) -> std::io::Result<()> {
    match std::fs::create_dir(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Total and available MB of the file system holding `p` (statvfs, space for non-root).
pub fn path_usage(p: &Path) -> PathUsage {
    match nix::sys::statvfs::statvfs(p) {
        Ok(s) => {
            let frsize = s.fragment_size() as u128;
            PathUsage {
                total_mb: ((s.blocks() as u128 * frsize) >> 20) as i64,
                free_mb: ((s.blocks_available() as u128 * frsize) >> 20) as i64,
            }
        }
        Err(_) => PathUsage::default(),
    }
}

/// The size and CRC32 a stored normal file must have, as its name says; `None` for names that
/// do not say (appender and slave files, whose names carry another content's CRC32, metadata
/// files).
pub fn named_size_and_crc(name: &str) -> Option<(u64, u32)> {
    let rn = RemoteName::decode(name).ok()?;
    if rn.kind != fdfs_common::file_id::FileKind::Normal || name.ends_with("-m") {
        return None;
    }
    Some((
        u64::try_from(rn.payload.file_size()?).ok()?,
        rn.payload.crc32,
    ))
}

/// Size and CRC-32 of a whole file, told the length of each chunk as it is read (the scrub
/// paces its reads with it).
pub fn file_crc(p: &Path, mut each_chunk: impl FnMut(u64)) -> io::Result<(u64, u32)> {
    use std::io::Read;
    let mut f = File::open(p)?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok((total, h.finalize()));
        }
        h.update(&buf[..n]);
        total += n as u64;
        each_chunk(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_files_unnamed_and_named() {
        let dir = std::env::temp_dir().join(format!("rfdfs-newfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let text = format!(
            "group_name=group1\nbase_path={0}\nstore_path0={0}\ntracker_server=127.0.0.2:22122\n",
            dir.display()
        );
        let ini = fdfs_common::config::IniFile::parse_str("s.conf", &text).unwrap();
        let st = Store::new(&StorageConfig::from_ini(&ini).unwrap());
        st.reset_temp_dir(0).unwrap();
        let sub = st.subdir_path(0, (0x0A, 0x1F));
        assert!(sub.ends_with("data/0A/1F"));
        std::fs::create_dir_all(&sub).unwrap();
        for unnamed in [true, false] {
            st.unnamed_files.store(unnamed, Ordering::Relaxed);
            let mut f = st.new_file(0, &sub).unwrap();
            std::io::Write::write_all(&mut f.file, b"abc").unwrap();
            let a = sub.join(format!("a{unnamed}"));
            f.link_as(&a).unwrap();
            // link refuses to replace; rename replaces
            assert_eq!(
                f.link_as(&a).unwrap_err().kind(),
                std::io::ErrorKind::AlreadyExists
            );
            let b = sub.join(format!("b{unnamed}"));
            std::fs::write(&b, b"old").unwrap();
            f.rename_as(&b).unwrap();
            assert_eq!(std::fs::read(&a).unwrap(), b"abc");
            assert_eq!(std::fs::read(&b).unwrap(), b"abc");
            // a file given up leaves nothing behind
            drop(st.new_file(0, &sub).unwrap());
            drop(f);
            assert_eq!(std::fs::read_dir(st.temp_dir(0)).unwrap().count(), 0);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
