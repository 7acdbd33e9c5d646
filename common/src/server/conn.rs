//! One accepted connection as a request handler sees it: blocking reads bounded by
//! `network_timeout`, a small read-ahead, and the TCP acknowledgement policy that keeps clients
//! which write a request in pieces from stalling.

use crate::proto::{cmd, Header, HEADER_LEN};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One accepted connection.
pub struct Conn {
    pub(super) stream: TcpStream,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    network_timeout: Duration,
    shutdown: Arc<AtomicBool>,
    /// requests completed on this connection
    pub requests: u64,
    /// body bytes read since the current request's header
    body_read: u64,
    /// requests in progress across the server (a graceful stop waits for them)
    pub(super) active: Arc<AtomicUsize>,
    /// workers of the pool waiting for a connection with a request (see [`Conn::turn_over`])
    pub(super) idle_workers: Arc<AtomicUsize>,
    /// bytes received ahead of what was asked for: a header is read together with what
    /// follows it, so a small request costs one recv instead of two or three
    ahead: Box<[u8]>,
    ahead_pos: usize,
    ahead_end: usize,
    /// when the first byte of the current request was taken in
    request_began: Instant,
    /// status of the last response header sent (0 until one with an error is)
    pub status: u8,
    /// bytes received and sent on this connection
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// the file the current request is about, where a handler that reads it itself says so
    /// (the storage's access log)
    pub log_name: String,
}

/// Size of a connection's read-ahead: a header with any fixed request part, or a 1 KiB upload.
const READ_AHEAD: usize = 2048;

/// How often a blocked read wakes to check `network_timeout` and a stopping server.
pub(super) const TICK: Duration = Duration::from_millis(500);

impl Conn {
    pub fn new(
        stream: TcpStream,
        network_timeout: Duration,
        shutdown: Arc<AtomicBool>,
    ) -> io::Result<Conn> {
        let peer = stream.peer_addr()?;
        let local = stream.local_addr()?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(TICK.min(network_timeout)))?;
        stream.set_write_timeout(Some(network_timeout))?;
        Ok(Conn {
            stream,
            peer,
            local,
            network_timeout,
            shutdown,
            requests: 0,
            body_read: 0,
            active: Arc::new(AtomicUsize::new(0)),
            idle_workers: Arc::new(AtomicUsize::new(1)),
            ahead: vec![0u8; READ_AHEAD].into_boxed_slice(),
            ahead_pos: 0,
            ahead_end: 0,
            request_began: Instant::now(),
            status: 0,
            bytes_in: 0,
            bytes_out: 0,
            log_name: String::new(),
        })
    }

    pub fn peer_ip(&self) -> String {
        self.peer.ip().to_string()
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    /// When the first byte of the current request was taken in: a request's latency counts
    /// from here, so time lost between its pieces is seen.
    pub fn request_began(&self) -> Instant {
        self.request_began
    }

    /// Whether a handler that has served a request should give its worker up now, parking
    /// the connection (its next request, if already in the socket, wakes the next free
    /// worker): no worker is idle, so other connections may be waiting with requests, and
    /// nothing of this one's next request has been taken in yet. Serving a client that sends
    /// again at once while others wait made the queue unfair: 1 MiB S3 PUTs from 16 clients
    /// to 4 workers saw p99 200 ms against a p50 of 12 ms; handing over after each request,
    /// 30 ms against 20.
    pub fn turn_over(&self) -> bool {
        !self.has_read_ahead() && self.idle_workers.load(Ordering::Relaxed) == 0
    }

    /// Whether bytes of a next request are already in the read-ahead.
    pub fn has_read_ahead(&self) -> bool {
        self.ahead_pos < self.ahead_end
    }

    /// Whether nothing of a next request is here: the read-ahead is empty and the socket has
    /// nothing to read. Whatever has arrived is kept in the read-ahead; a closed or failed
    /// socket is not quiet (the next read reports it).
    pub fn quiet(&mut self) -> bool {
        if self.ahead_pos < self.ahead_end {
            return false;
        }
        match nix::sys::socket::recv(
            self.stream.as_raw_fd(),
            &mut self.ahead,
            nix::sys::socket::MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(n) => {
                self.bytes_in += n as u64;
                self.ahead_pos = 0;
                self.ahead_end = n;
                false
            }
            Err(nix::errno::Errno::EAGAIN) => true,
            Err(_) => false,
        }
    }

    /// Whether bytes are waiting in the socket (left there: epoll reports them).
    pub(super) fn bytes_waiting(&self) -> bool {
        let mut one = [0u8; 1];
        let flags = nix::sys::socket::MsgFlags::MSG_PEEK | nix::sys::socket::MsgFlags::MSG_DONTWAIT;
        matches!(
            nix::sys::socket::recv(self.stream.as_raw_fd(), &mut one, flags),
            Ok(1..)
        )
    }

    /// Acknowledge what has arrived now rather than after the delayed-ACK timer. A client
    /// that writes a request in pieces without TCP_NODELAY (libfdfsclient, the Java client,
    /// py3fdfs) holds each later piece back until the earlier one is acknowledged (Nagle), and
    /// Linux delays that acknowledgement by 40 ms while it expects an answer to carry it: so
    /// every read that may block in the middle of a request is preceded by this. The kernel
    /// leaves quick-ack mode by itself, which is why it is set again each time.
    pub fn quick_ack(&self) {
        let _ = socket2::SockRef::from(&self.stream).set_quickack(true);
    }

    /// Fill `buf` completely. A peer that stops sending for `network_timeout` in the middle
    /// is cut off; `idle_ok` lets a fresh request wait indefinitely before its first byte. With
    /// `whole`, all of `buf` must arrive within `network_timeout` of its first byte, so that a
    /// client dribbling a header byte by byte cannot hold a worker (slowloris).
    fn read_full(&mut self, buf: &mut [u8], idle_ok: bool, whole: bool) -> io::Result<()> {
        let mut got = self.take_ahead(buf);
        self.body_read += got as u64;
        let mut last_progress = Instant::now();
        let mut first_byte: Option<Instant> = (got > 0).then_some(last_progress);
        while got < buf.len() {
            // a header not yet begun has nothing to acknowledge; anything else is mid-request
            if !whole || got > 0 {
                self.quick_ack();
            }
            match self.recv_into(&mut buf[got..]) {
                Ok(0) => {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed"));
                }
                Ok(n) => {
                    got += n;
                    self.body_read += n as u64;
                    last_progress = Instant::now();
                    let first = *first_byte.get_or_insert(last_progress);
                    if whole && got < buf.len() && first.elapsed() >= self.network_timeout {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "request header too slow",
                        ));
                    }
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    self.read_timed_out(idle_ok && got == 0, last_progress)?;
                    if whole && first_byte.is_some_and(|f| f.elapsed() >= self.network_timeout) {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "request header too slow",
                        ));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if whole {
            self.request_began = first_byte.unwrap_or(last_progress);
        }
        Ok(())
    }

    /// A blocked read woke without data: a peer waiting between requests (`waiting_idle`) is
    /// hung up on once the server stops, one in the middle of a request after
    /// `network_timeout` without progress.
    fn read_timed_out(&self, waiting_idle: bool, last_progress: Instant) -> io::Result<()> {
        if waiting_idle && self.is_shutting_down() {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "shutting down",
            ));
        }
        if !waiting_idle && last_progress.elapsed() >= self.network_timeout {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "network timeout"));
        }
        Ok(())
    }

    /// Copy read-ahead bytes into `buf`; returns how many.
    fn take_ahead(&mut self, buf: &mut [u8]) -> usize {
        let n = (self.ahead_end - self.ahead_pos).min(buf.len());
        buf[..n].copy_from_slice(&self.ahead[self.ahead_pos..self.ahead_pos + n]);
        self.ahead_pos += n;
        n
    }

    /// One recv for `buf`: a short `buf` is filled through the read-ahead (whatever else has
    /// arrived is kept for the next read), a long one directly.
    fn recv_into(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.len() >= READ_AHEAD {
            let n = self.stream.read(buf)?;
            self.bytes_in += n as u64;
            return Ok(n);
        }
        let n = self.stream.read(&mut self.ahead)?;
        self.bytes_in += n as u64;
        self.ahead_pos = 0;
        self.ahead_end = n;
        Ok(self.take_ahead(buf))
    }

    /// Read the next request header. A connection that never completed a request must send
    /// one within `network_timeout`; one that did may idle indefinitely (upstream behaviour).
    pub fn read_header(&mut self) -> io::Result<Header> {
        let mut b = [0u8; HEADER_LEN];
        self.read_full(&mut b, self.requests > 0, true)?;
        self.body_read = 0;
        Header::decode(&b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    }

    pub fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.read_full(buf, false, false)
    }

    /// Read a whole small body, refusing (without allocating) lengths above `max`.
    pub fn read_body(&mut self, len: i64, max: usize) -> io::Result<Vec<u8>> {
        if len < 0 || len as u64 > max as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("body length {len} out of range"),
            ));
        }
        let mut v = vec![0u8; len as usize];
        self.read_exact(&mut v)?;
        Ok(v)
    }

    /// Read into `buf` whatever is available now (at least one byte), for streaming bodies.
    pub fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_available(buf, false)?;
        self.body_read += n as u64;
        Ok(n)
    }

    /// Body bytes of the current request read so far.
    pub fn body_read(&self) -> u64 {
        self.body_read
    }

    /// Skip `n` body bytes that will not be used.
    pub fn discard(&mut self, mut n: u64) -> io::Result<()> {
        let mut buf = vec![0u8; (n as usize).min(64 << 10)];
        while n > 0 {
            let k = (n as usize).min(buf.len());
            self.read_exact(&mut buf[..k])?;
            n -= k as u64;
        }
        Ok(())
    }

    pub fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        self.stream.write_all(b)?;
        self.bytes_out += b.len() as u64;
        Ok(())
    }

    /// Success or error response with a body, header and body in one write.
    pub fn respond(&mut self, status: u8, body: &[u8]) -> io::Result<()> {
        self.status = status;
        self.write_all(&Header::frame(cmd::RESP, status, body))
    }

    /// Header-only response.
    pub fn respond_status(&mut self, status: u8) -> io::Result<()> {
        self.status = status;
        self.write_all(&Header::response(status, 0).to_bytes())
    }

    /// Count a response written past this type (sendfile): its status and bytes.
    pub fn note_sent(&mut self, status: u8, bytes: u64) {
        self.status = status;
        self.bytes_out += bytes;
    }

    pub fn network_timeout(&self) -> Duration {
        self.network_timeout
    }

    /// Mark a request as in progress until the guard drops (a graceful stop waits for it).
    pub fn begin_request(&self) -> ActiveRequest {
        self.active.fetch_add(1, Ordering::SeqCst);
        ActiveRequest(Arc::clone(&self.active))
    }

    /// Read whatever arrives (at least one byte). Before the first byte of a request
    /// (`idle_ok`) the peer may wait indefinitely, except that a stopping server hangs up;
    /// once a request has begun, `network_timeout` without progress ends it.
    pub fn read_available(&mut self, buf: &mut [u8], idle_ok: bool) -> io::Result<usize> {
        let got = self.take_ahead(buf);
        if got > 0 {
            // top up with what has already arrived, so that a body is written in one piece
            if got < buf.len() {
                if let Ok(n) = nix::sys::socket::recv(
                    self.stream.as_raw_fd(),
                    &mut buf[got..],
                    nix::sys::socket::MsgFlags::MSG_DONTWAIT,
                ) {
                    self.bytes_in += n as u64;
                    return Ok(got + n);
                }
            }
            return Ok(got);
        }
        let mut last_progress = Instant::now();
        loop {
            if !idle_ok {
                self.quick_ack();
            }
            match self.stream.read(buf) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed")),
                Ok(n) => {
                    self.bytes_in += n as u64;
                    return Ok(n);
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    self.read_timed_out(idle_ok, last_progress)?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => last_progress = Instant::now(),
                Err(e) => return Err(e),
            }
        }
    }
}

/// See [`Conn::begin_request`].
pub struct ActiveRequest(Arc<AtomicUsize>);

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
