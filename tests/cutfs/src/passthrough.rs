//! The FUSE side: every operation passed through to the backing directory, data writes
//! recorded in `Unsynced` first, and everything stopped for good at the cut.
//!
//! What a power cut loses here is what LazyFS loses: file data written since that file's last
//! fsync/fdatasync (and size changes since: appends, truncations, fallocate). Directory
//! operations (create, mkdir, rename, link, unlink) are durable when they return, as a journal
//! commits them in order; a real file system can lose the last of them too, so this harness
//! is kinder there than a disk is (docs/decisions/power-cut-harness.md).
//!
//! The cut is atomic with respect to operations: each one that changes anything runs under the
//! state lock and first checks `frozen`; the cut takes the lock, sets it and puts the unsynced
//! bytes back. From then on every operation (reads included) parks its thread forever: the
//! daemons' requests stay unanswered until the process exits and the kernel fails them, by
//! which time the harness has killed the daemons.

use crate::unsynced::{Dropped, Unsynced, PAGE};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the kernel may keep names and attributes: every change goes through this mount,
/// so its caches stay right.
const TTL: Duration = Duration::from_secs(1);

struct Node {
    parent: u64,
    name: OsString,
}

struct State {
    unsynced: Unsynced<Arc<File>>,
}

pub struct CutFs {
    root: PathBuf,
    root_ino: u64,
    /// FUSE inode -> its (last known) name, for the operations that come by inode
    nodes: Mutex<HashMap<u64, Node>>,
    handles: Mutex<HashMap<u64, Arc<File>>>,
    next_fh: AtomicU64,
    state: Arc<Mutex<State>>,
    frozen: Arc<AtomicBool>,
}

/// The power switch of a mounted `CutFs`.
#[derive(Clone)]
pub struct Cutter {
    state: Arc<Mutex<State>>,
    frozen: Arc<AtomicBool>,
}

impl Cutter {
    /// Write back, as the kernel's flusher does, the files dirtied more than `expire` ago.
    pub fn write_back(&self, expire: Duration) -> usize {
        let mut st = self.state.lock();
        if self.frozen.load(Ordering::SeqCst) {
            return 0;
        }
        st.unsynced.write_back_older_than(expire)
    }

    /// The cut: no operation after this one; every file back to what its last fsync kept.
    pub fn cut(&self) -> Dropped {
        let mut st = self.state.lock();
        self.frozen.store(true, Ordering::SeqCst);
        st.unsynced.cut(|file, saved, len| {
            for (page, bytes) in saved {
                let _ = file.write_all_at(bytes, page * PAGE);
            }
            let _ = file.set_len(len);
        })
    }
}

fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

fn errno(e: std::io::Error) -> Errno {
    Errno::from(e)
}

impl CutFs {
    pub fn new(root: &Path) -> std::io::Result<CutFs> {
        let root_ino = std::fs::metadata(root)?.ino();
        Ok(CutFs {
            root: root.to_path_buf(),
            root_ino,
            nodes: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            state: Arc::new(Mutex::new(State {
                unsynced: Unsynced::default(),
            })),
            frozen: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn cutter(&self) -> Cutter {
        Cutter {
            state: Arc::clone(&self.state),
            frozen: Arc::clone(&self.frozen),
        }
    }

    /// Parks the calling thread for good once the power is cut.
    fn halt_if_cut(&self) {
        if self.frozen.load(Ordering::SeqCst) {
            park_forever();
        }
    }

    /// The state lock, for an operation that changes anything (or parked, after the cut).
    fn change(&self) -> MutexGuard<'_, State> {
        let st = self.state.lock();
        if self.frozen.load(Ordering::SeqCst) {
            drop(st);
            park_forever();
        }
        st
    }

    /// The root is inode 1 for FUSE; other inodes keep the backing file system's numbers.
    fn fuse_ino(&self, backing: u64) -> u64 {
        if backing == self.root_ino {
            1
        } else if backing == 1 {
            self.root_ino
        } else {
            backing
        }
    }

    fn path(&self, ino: INodeNo) -> Option<PathBuf> {
        let nodes = self.nodes.lock();
        let mut names = Vec::new();
        let mut at = ino.0;
        while at != 1 {
            let n = nodes.get(&at)?;
            names.push(n.name.clone());
            at = n.parent;
            if names.len() > 256 {
                return None;
            }
        }
        let mut p = self.root.clone();
        for n in names.iter().rev() {
            p.push(n);
        }
        Some(p)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Option<PathBuf> {
        self.path(parent).map(|p| p.join(name))
    }

    fn remember(&self, parent: INodeNo, name: &OsStr, attr: &FileAttr) {
        self.nodes.lock().insert(
            attr.ino.0,
            Node {
                parent: parent.0,
                name: name.to_os_string(),
            },
        );
    }

    /// Answer a lookup or a new name with `made`'s metadata, remembering the name.
    fn reply_entry(
        &self,
        parent: INodeNo,
        name: &OsStr,
        made: std::io::Result<std::fs::Metadata>,
        reply: ReplyEntry,
    ) {
        match made {
            Ok(m) => {
                let a = self.attr(&m);
                self.remember(parent, name, &a);
                reply.entry(&TTL, &a, Generation(0))
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn attr(&self, m: &std::fs::Metadata) -> FileAttr {
        let time = |s: i64, ns: i64| {
            if s >= 0 {
                UNIX_EPOCH + Duration::new(s as u64, ns as u32)
            } else {
                UNIX_EPOCH
            }
        };
        let kind = FileType::from_std(m.file_type()).unwrap_or(FileType::RegularFile);
        FileAttr {
            ino: INodeNo(self.fuse_ino(m.ino())),
            size: m.size(),
            blocks: m.blocks(),
            atime: time(m.atime(), m.atime_nsec()),
            mtime: time(m.mtime(), m.mtime_nsec()),
            ctime: time(m.ctime(), m.ctime_nsec()),
            crtime: UNIX_EPOCH,
            kind,
            perm: (m.mode() & 0o7777) as u16,
            nlink: m.nlink() as u32,
            uid: m.uid(),
            gid: m.gid(),
            rdev: m.rdev() as u32,
            blksize: 4096,
            flags: 0,
        }
    }

    fn new_handle(&self, f: Arc<File>) -> FileHandle {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles.lock().insert(fh, f);
        FileHandle(fh)
    }

    fn handle(&self, fh: FileHandle) -> Option<Arc<File>> {
        self.handles.lock().get(&fh.0).cloned()
    }

    /// Bytes `[start, end)` of `file` are about to change: save what the cut must put back.
    fn before_change(
        st: &mut State,
        file: &Arc<File>,
        start: u64,
        end: u64,
    ) -> std::io::Result<()> {
        let m = file.metadata()?;
        if !st.unsynced.is_dirty(m.ino()) || start < m.size() {
            st.unsynced.before_change(
                m.ino(),
                m.size(),
                start,
                end,
                || Arc::clone(file),
                |at, n| {
                    let mut b = vec![0u8; n];
                    // every page below the durable length that is not saved yet still holds
                    // its durable bytes (a truncation saves the pages it cuts first)
                    let got = file.read_at(&mut b, at).unwrap_or(0);
                    b.truncate(got);
                    b.resize(n, 0);
                    b
                },
            );
        }
        Ok(())
    }

    /// Open `path` for the kernel's `flags`, always readable (a cut needs the old bytes).
    fn open_backing(path: &Path, flags: i32, create: Option<u32>) -> std::io::Result<File> {
        let acc = flags & nix::libc::O_ACCMODE;
        let mut o = std::fs::OpenOptions::new();
        o.read(true).write(acc != nix::libc::O_RDONLY);
        if let Some(mode) = create {
            o.write(true).mode(mode);
            if flags & nix::libc::O_EXCL != 0 {
                o.create_new(true);
            } else {
                o.create(true);
            }
        }
        o.open(path)
    }

    fn truncate(&self, st: &mut State, file: &Arc<File>, size: u64) -> std::io::Result<()> {
        Self::before_change(st, file, size, u64::MAX)?;
        file.set_len(size)
    }
}

impl Filesystem for CutFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.halt_if_cut();
        let Some(p) = self.child(parent, name) else {
            return reply.error(Errno::ENOENT);
        };
        self.reply_entry(parent, name, std::fs::symlink_metadata(&p), reply)
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        self.halt_if_cut();
        let m = match fh.and_then(|fh| self.handle(fh)) {
            Some(f) => f.metadata(),
            None => match self.path(ino) {
                Some(p) => std::fs::symlink_metadata(p),
                None => return reply.error(Errno::ENOENT),
            },
        };
        match m {
            Ok(m) => reply.attr(&TTL, &self.attr(&m)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut st = self.change();
        let Some(p) = self.path(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let r = (|| -> std::io::Result<std::fs::Metadata> {
            if let Some(size) = size {
                let f = match fh.and_then(|fh| self.handle(fh)) {
                    Some(f) => f,
                    None => Arc::new(Self::open_backing(&p, nix::libc::O_RDWR, None)?),
                };
                self.truncate(&mut st, &f, size)?;
            }
            if let Some(mode) = mode {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode & 0o7777))?;
            }
            if uid.is_some() || gid.is_some() {
                std::os::unix::fs::lchown(&p, uid, gid)?;
            }
            if atime.is_some() || mtime.is_some() {
                use nix::sys::time::TimeSpec;
                let ts = |t: Option<TimeOrNow>| match t {
                    None => TimeSpec::UTIME_OMIT,
                    Some(TimeOrNow::Now) => TimeSpec::UTIME_NOW,
                    Some(TimeOrNow::SpecificTime(t)) => {
                        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
                        TimeSpec::new(d.as_secs() as i64, d.subsec_nanos() as i64)
                    }
                };
                nix::sys::stat::utimensat(
                    None,
                    &p,
                    &ts(atime),
                    &ts(mtime),
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                )
                .map_err(std::io::Error::from)?;
            }
            std::fs::symlink_metadata(&p)
        })();
        match r {
            Ok(m) => reply.attr(&TTL, &self.attr(&m)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.halt_if_cut();
        match self.path(ino).map(std::fs::read_link) {
            Some(Ok(t)) => reply.data(t.as_os_str().as_encoded_bytes()),
            Some(Err(e)) => reply.error(errno(e)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let _st = self.change();
        let Some(p) = self.child(parent, name) else {
            return reply.error(Errno::ENOENT);
        };
        let r = std::fs::DirBuilder::new()
            .mode(mode & !umask & 0o7777)
            .create(&p)
            .and_then(|()| std::fs::symlink_metadata(&p));
        self.reply_entry(parent, name, r, reply)
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _st = self.change();
        match self.child(parent, name).map(std::fs::remove_file) {
            Some(Ok(())) => reply.ok(),
            Some(Err(e)) => reply.error(errno(e)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _st = self.change();
        match self.child(parent, name).map(std::fs::remove_dir) {
            Some(Ok(())) => reply.ok(),
            Some(Err(e)) => reply.error(errno(e)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let _st = self.change();
        let Some(p) = self.child(parent, link_name) else {
            return reply.error(Errno::ENOENT);
        };
        let made =
            std::os::unix::fs::symlink(target, &p).and_then(|()| std::fs::symlink_metadata(&p));
        self.reply_entry(parent, link_name, made, reply)
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let _st = self.change();
        let (Some(from), Some(to)) = (self.child(parent, name), self.child(newparent, newname))
        else {
            return reply.error(Errno::ENOENT);
        };
        let moved = std::fs::symlink_metadata(&from).map(|m| self.fuse_ino(m.ino()));
        let r = if flags.is_empty() {
            std::fs::rename(&from, &to)
        } else {
            nix::fcntl::renameat2(
                None,
                &from,
                None,
                &to,
                nix::fcntl::RenameFlags::from_bits_truncate(flags.bits()),
            )
            .map_err(std::io::Error::from)
        };
        match r {
            Ok(()) => {
                if let Ok(ino) = moved {
                    self.nodes.lock().insert(
                        ino,
                        Node {
                            parent: newparent.0,
                            name: newname.to_os_string(),
                        },
                    );
                }
                reply.ok()
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let _st = self.change();
        let (Some(from), Some(to)) = (self.path(ino), self.child(newparent, newname)) else {
            return reply.error(Errno::ENOENT);
        };
        // remembered by the new name: the old one is usually about to be removed (write, link,
        // unlink)
        let made = std::fs::hard_link(&from, &to).and_then(|()| std::fs::symlink_metadata(&to));
        self.reply_entry(newparent, newname, made, reply)
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut st = self.change();
        let Some(p) = self.path(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let r = Self::open_backing(&p, flags.0, None).and_then(|f| {
            let f = Arc::new(f);
            if flags.0 & nix::libc::O_TRUNC != 0 {
                self.truncate(&mut st, &f, 0)?;
            }
            Ok(f)
        });
        match r {
            Ok(f) => reply.opened(self.new_handle(f), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut st = self.change();
        let Some(p) = self.child(parent, name) else {
            return reply.error(Errno::ENOENT);
        };
        let r = Self::open_backing(&p, flags, Some(mode & !umask & 0o7777)).and_then(|f| {
            let f = Arc::new(f);
            if flags & nix::libc::O_TRUNC != 0 {
                self.truncate(&mut st, &f, 0)?;
            }
            let m = f.metadata()?;
            Ok((f, m))
        });
        match r {
            Ok((f, m)) => {
                let a = self.attr(&m);
                self.remember(parent, name, &a);
                reply.created(
                    &TTL,
                    &a,
                    Generation(0),
                    self.new_handle(f),
                    FopenFlags::empty(),
                )
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        self.halt_if_cut();
        let Some(f) = self.handle(fh) else {
            return reply.error(Errno::EBADF);
        };
        let mut buf = vec![0u8; size as usize];
        let mut got = 0;
        while got < buf.len() {
            match f.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return reply.error(errno(e)),
            }
        }
        reply.data(&buf[..got])
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut st = self.change();
        let Some(f) = self.handle(fh) else {
            return reply.error(Errno::EBADF);
        };
        let r = Self::before_change(&mut st, &f, offset, offset + data.len() as u64)
            .and_then(|()| f.write_all_at(data, offset));
        match r {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok()
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        // an unsynced file keeps its own handle in `Unsynced` until the cut or its fsync
        self.handles.lock().remove(&fh.0);
        reply.ok()
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut st = self.change();
        let Some(f) = self.handle(fh) else {
            return reply.error(Errno::EBADF);
        };
        match f.metadata() {
            Ok(m) => {
                st.unsynced.synced(m.ino());
                reply.ok()
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.halt_if_cut();
        reply.opened(FileHandle(0), FopenFlags::empty())
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        self.halt_if_cut();
        let Some(p) = self.path(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let entries = match std::fs::read_dir(&p) {
            Ok(rd) => rd.flatten().collect::<Vec<_>>(),
            Err(e) => return reply.error(errno(e)),
        };
        use std::os::unix::fs::DirEntryExt;
        for (i, e) in entries.iter().enumerate().skip(offset as usize) {
            let kind = e
                .file_type()
                .ok()
                .and_then(FileType::from_std)
                .unwrap_or(FileType::RegularFile);
            if reply.add(
                INodeNo(self.fuse_ino(e.ino())),
                i as u64 + 1,
                kind,
                e.file_name(),
            ) {
                break;
            }
        }
        reply.ok()
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // directory operations are durable when they return (the module doc)
        let _st = self.change();
        reply.ok()
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.halt_if_cut();
        match nix::sys::statvfs::statvfs(&self.root) {
            Ok(s) => reply.statfs(
                s.blocks(),
                s.blocks_free(),
                s.blocks_available(),
                s.files(),
                s.files_free(),
                s.block_size() as u32,
                s.name_max() as u32,
                s.fragment_size() as u32,
            ),
            Err(e) => reply.error(Errno::from_i32(e as i32)),
        }
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok()
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let mut st = self.change();
        let Some(f) = self.handle(fh) else {
            return reply.error(Errno::EBADF);
        };
        use nix::fcntl::FallocateFlags as F;
        let flags = F::from_bits_truncate(mode);
        // a hole punched or a range zeroed changes bytes; collapsing or inserting moves all
        // that follows; a plain allocation only changes the length
        let end = if flags.intersects(F::FALLOC_FL_COLLAPSE_RANGE | F::FALLOC_FL_INSERT_RANGE) {
            u64::MAX
        } else if flags.intersects(F::FALLOC_FL_PUNCH_HOLE | F::FALLOC_FL_ZERO_RANGE) {
            offset + length
        } else {
            offset
        };
        use std::os::fd::AsRawFd;
        let r = Self::before_change(&mut st, &f, offset, end).and_then(|()| {
            nix::fcntl::fallocate(f.as_raw_fd(), flags, offset as i64, length as i64)
                .map_err(std::io::Error::from)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }
}
