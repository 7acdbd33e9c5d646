//! Download bytes from a stored file to a socket without copying them through user space:
//! `sendfile` for everything, and for small immutable files a memory map written together with
//! the response header in one `writev`, so header and content leave in a single syscall.
//!
//! This is the only module with `unsafe` in the storage, and it has exactly one use: mapping a
//! file (see `map_immutable`).

use memmap2::Mmap;
use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::net::TcpStream;

/// Files up to this size are served from a memory map with the header in the same write.
pub const MMAP_MAX: u64 = 64 * 1024;

/// Send `len` bytes of `file` starting at `offset` with sendfile.
pub fn send_file(sock: &TcpStream, file: &File, offset: u64, len: u64) -> io::Result<()> {
    let mut off = offset as i64;
    let end = offset + len;
    while (off as u64) < end {
        let want = ((end - off as u64).min(1 << 30)) as usize;
        match nix::sys::sendfile::sendfile(sock, file, Some(&mut off), want) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while sending",
                ))
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "send timeout"));
            }
            Err(e) => return Err(io::Error::from_raw_os_error(e as i32)),
        }
    }
    Ok(())
}

/// Map a file that nobody will modify or truncate while the map lives.
///
/// SAFETY contract (why the `unsafe` below is sound): callers pass only files that are immutable
/// once their name exists - normal and slave files are written under a temporary name and
/// renamed into place complete, and are never modified afterwards (appender files, which can be
/// truncated, are never mapped). Deleting the file only unlinks the name; the mapping keeps the
/// pages. The map is dropped before the call returns to the request loop. The remaining hazard
/// is an operator truncating a stored file by hand while it is being served, which upstream
/// FastDFS does not guard against either.
fn map_immutable(file: &File) -> io::Result<Mmap> {
    // SAFETY: see the contract above.
    unsafe { Mmap::map(file) }
}

/// Write `header` and then `len` bytes of `file` from `offset`. `immutable` says the file may be
/// memory mapped (not an appender file).
pub fn send_with_header(
    sock: &mut TcpStream,
    header: &[u8],
    file: &File,
    offset: u64,
    len: u64,
    file_size: u64,
    immutable: bool,
) -> io::Result<()> {
    if immutable && file_size > 0 && file_size <= MMAP_MAX {
        let map = map_immutable(file)?;
        let end = (offset + len).min(map.len() as u64) as usize;
        let body = &map[offset as usize..end];
        return write_all_vectored(sock, header, body);
    }
    sock.write_all(header)?;
    if len > 0 {
        send_file(sock, file, offset, len)?;
    }
    Ok(())
}

fn write_all_vectored(sock: &mut TcpStream, mut a: &[u8], mut b: &[u8]) -> io::Result<()> {
    while !a.is_empty() || !b.is_empty() {
        let n = sock.write_vectored(&[IoSlice::new(a), IoSlice::new(b)])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "socket closed"));
        }
        let k = n.min(a.len());
        a = &a[k..];
        b = &b[n - k..];
    }
    Ok(())
}
