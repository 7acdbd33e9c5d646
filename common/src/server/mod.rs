//! The one connection loop every daemon uses.
//!
//! Blocking `std::net` listeners hand accepted sockets to a crossbeam channel; a pool of worker
//! threads serves them. FastDFS clients keep connections open and idle between requests, and a
//! blocking worker is tied to its connection for that whole time, so the pool grows on demand
//! up to `max_connections` (never fewer than `work_threads` threads) and workers that stay idle
//! retire. That is what keeps hundreds of idle pooled connections from starving a new client.

use crate::proto::{cmd, errno, Header, HEADER_LEN};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// What the connection loop does after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

/// Whatever serves a whole accepted connection (the FastDFS frame loop below, or HTTP).
pub trait Handler: Send + Sync + 'static {
    fn serve(&self, conn: &mut Conn);
}

/// A protocol served by [`Server`]: one call per request, after its header has been read.
pub trait Service: Send + Sync + 'static {
    /// Per-connection state (the tracker remembers which storage joined on it).
    type Session: Default + Send;

    fn handle(&self, conn: &mut Conn, session: &mut Self::Session, header: Header) -> Flow;

    /// Where each request's command, outcome, latency and bytes are counted.
    fn metrics(&self) -> Option<&crate::metrics::Metrics> {
        None
    }

    /// Called once when the connection is gone, whatever the reason.
    fn closed(&self, _conn: &Conn, _session: &mut Self::Session) {}
}

/// Connection counters reported in the storage statistics block.
#[derive(Debug, Default)]
pub struct ConnStats {
    pub current: AtomicI32,
    pub max: AtomicI32,
    pub alloc: AtomicI32,
    /// connections accepted since start
    pub accepted: std::sync::atomic::AtomicU64,
}

/// One accepted connection.
pub struct Conn {
    stream: TcpStream,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    network_timeout: Duration,
    shutdown: Arc<AtomicBool>,
    /// requests completed on this connection
    pub requests: u64,
    /// body bytes read since the current request's header
    body_read: u64,
    /// requests in progress across the server (a graceful stop waits for them)
    active: Arc<AtomicUsize>,
    /// bytes received ahead of what was asked for: a header is read together with what
    /// follows it, so a small request costs one recv instead of two or three
    ahead: Box<[u8]>,
    ahead_pos: usize,
    ahead_end: usize,
    /// status of the last response header sent (0 until one with an error is)
    pub status: u8,
    /// bytes received and sent on this connection
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Size of a connection's read-ahead: a header with any fixed request part, or a 1 KiB upload.
const READ_AHEAD: usize = 2048;

const TICK: Duration = Duration::from_millis(500);

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
            ahead: vec![0u8; READ_AHEAD].into_boxed_slice(),
            ahead_pos: 0,
            ahead_end: 0,
            status: 0,
            bytes_in: 0,
            bytes_out: 0,
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
                    let waiting_idle = idle_ok && got == 0;
                    if waiting_idle && self.is_shutting_down() {
                        return Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "shutting down",
                        ));
                    }
                    if !waiting_idle && last_progress.elapsed() >= self.network_timeout {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "network timeout"));
                    }
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
                    if idle_ok && self.is_shutting_down() {
                        return Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "shutting down",
                        ));
                    }
                    if !idle_ok && last_progress.elapsed() >= self.network_timeout {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "network timeout"));
                    }
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

/// Respond and say whether the connection may continue: upstream storages close after EINVAL.
pub fn flow_after(result: io::Result<()>) -> Flow {
    match result {
        Ok(()) => Flow::Continue,
        Err(_) => Flow::Close,
    }
}

/// Accepts or refuses peers per `allow_hosts` (`*`, IPs, CIDR, `a.b.c.[1-5,9]` ranges, names).
#[derive(Debug, Clone, Default)]
pub struct AllowHosts {
    any: bool,
    nets: Vec<(IpAddr, u8)>,
}

impl AllowHosts {
    pub fn parse(entries: &[String]) -> AllowHosts {
        if entries.is_empty() {
            return AllowHosts {
                any: true,
                nets: Vec::new(),
            };
        }
        let mut a = AllowHosts::default();
        for e in entries {
            let e = e.trim();
            if e == "*" {
                a.any = true;
                continue;
            }
            for host in expand_ranges(e) {
                if let Some((ip, bits)) = host.split_once('/') {
                    if let (Ok(ip), Ok(bits)) = (ip.parse::<IpAddr>(), bits.parse::<u8>()) {
                        a.nets.push((ip, bits));
                        continue;
                    }
                }
                match crate::config::resolve_host(&host) {
                    Ok(ip) => a.nets.push((ip, if ip.is_ipv4() { 32 } else { 128 })),
                    Err(m) => log::warn!("allow_hosts entry \"{host}\" skipped: {m}"),
                }
            }
        }
        a
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        self.any || self.nets.iter().any(|&(net, bits)| in_net(ip, net, bits))
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits.min(32))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits.min(128))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// `10.0.1.[1-3,20]` -> `10.0.1.1`, `10.0.1.2`, `10.0.1.3`, `10.0.1.20`.
fn expand_ranges(e: &str) -> Vec<String> {
    let (Some(l), Some(r)) = (e.find('['), e.find(']')) else {
        return vec![e.to_string()];
    };
    if r < l {
        return vec![e.to_string()];
    }
    let (pre, body, post) = (&e[..l], &e[l + 1..r], &e[r + 1..]);
    let mut out = Vec::new();
    for part in body.split(',') {
        let part = part.trim();
        if let Some((a, b)) = part.split_once('-') {
            let width = a.trim().len();
            if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
                for v in a..=b.min(a + 65535) {
                    out.push(format!("{pre}{v:0width$}{post}"));
                }
            }
        } else if !part.is_empty() {
            out.push(format!("{pre}{part}{post}"));
        }
    }
    out
}

/// Listener settings taken from the daemon's config.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub name: &'static str,
    pub bind_addr: String,
    pub port: u16,
    pub work_threads: usize,
    pub max_connections: usize,
    pub network_timeout: Duration,
    pub allow_hosts: AllowHosts,
}

/// A running listener with its worker pool.
pub struct Server {
    pub local_addr: SocketAddr,
    shutdown: Arc<AtomicBool>,
    accept_thread: Option<thread::JoinHandle<()>>,
    active: Arc<AtomicUsize>,
    pub stats: Arc<ConnStats>,
}

const WORKER_STACK: usize = 512 * 1024;
const IDLE_RETIRE: Duration = Duration::from_secs(60);

/// The FastDFS request loop around a [`Service`].
struct Framed<S>(Arc<S>);

impl<S: Service> Handler for Framed<S> {
    fn serve(&self, conn: &mut Conn) {
        let mut session = S::Session::default();
        loop {
            let (bytes_in, bytes_out) = (conn.bytes_in, conn.bytes_out);
            let header = match conn.read_header() {
                Ok(h) => h,
                Err(e) => {
                    if conn.requests > 0 || e.kind() != io::ErrorKind::UnexpectedEof {
                        log_close(conn, &e);
                    }
                    break;
                }
            };
            if header.pkg_len < 0 {
                log::warn!(
                    "client ip: {}, invalid pkg length: {}, close connection",
                    conn.peer_ip(),
                    header.pkg_len
                );
                break;
            }
            let request = conn.begin_request();
            conn.status = 0;
            let started = Instant::now();
            let flow = self.0.handle(conn, &mut session, header);
            if let Some(m) = self.0.metrics() {
                m.observe(header.cmd, conn.status, started.elapsed());
                m.add_bytes(conn.bytes_in - bytes_in, conn.bytes_out - bytes_out);
            }
            drop(request);
            conn.requests += 1;
            if flow == Flow::Close || header.cmd == cmd::QUIT {
                break;
            }
        }
        self.0.closed(conn, &mut session);
    }
}

struct Pool<H: Handler> {
    handler: Arc<H>,
    rx: Receiver<TcpStream>,
    idle: AtomicUsize,
    workers: AtomicUsize,
    min_workers: usize,
    max_workers: usize,
    network_timeout: Duration,
    shutdown: Arc<AtomicBool>,
    active: Arc<AtomicUsize>,
    stats: Arc<ConnStats>,
}

impl<H: Handler> Pool<H> {
    fn spawn_worker(self: &Arc<Self>) {
        self.workers.fetch_add(1, Ordering::SeqCst);
        self.idle.fetch_add(1, Ordering::SeqCst);
        let pool = Arc::clone(self);
        let r = thread::Builder::new()
            .name("worker".into())
            .stack_size(WORKER_STACK)
            .spawn(move || pool.worker_loop());
        if let Err(e) = r {
            log::error!("spawn worker thread fail: {e}");
            self.workers.fetch_sub(1, Ordering::SeqCst);
            self.idle.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn worker_loop(&self) {
        loop {
            match self.rx.recv_timeout(IDLE_RETIRE) {
                Ok(stream) => {
                    self.idle.fetch_sub(1, Ordering::SeqCst);
                    self.serve(stream);
                    self.idle.fetch_add(1, Ordering::SeqCst);
                }
                Err(RecvTimeoutError::Timeout) => {
                    let w = self.workers.load(Ordering::SeqCst);
                    if w > self.min_workers
                        && self
                            .workers
                            .compare_exchange(w, w - 1, Ordering::SeqCst, Ordering::SeqCst)
                            .is_ok()
                    {
                        self.idle.fetch_sub(1, Ordering::SeqCst);
                        return;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.idle.fetch_sub(1, Ordering::SeqCst);
                    self.workers.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
            }
        }
    }

    fn serve(&self, stream: TcpStream) {
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        let cur = self.stats.current.fetch_add(1, Ordering::SeqCst) + 1;
        self.stats.max.fetch_max(cur, Ordering::SeqCst);
        if let Ok(mut conn) = Conn::new(stream, self.network_timeout, Arc::clone(&self.shutdown)) {
            conn.active = Arc::clone(&self.active);
            self.handler.serve(&mut conn);
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
        self.stats.current.fetch_sub(1, Ordering::SeqCst);
    }
}

fn log_close(conn: &Conn, e: &io::Error) {
    match e.kind() {
        io::ErrorKind::ConnectionAborted => {}
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => {
            log::debug!("client ip: {}, connection disconnected", conn.peer_ip())
        }
        _ => log::warn!("client ip: {}, connection closed: {e}", conn.peer_ip()),
    }
}

/// Bind `bind_addr` (all addresses when empty) and `port`; the error names both, as upstream's
/// log line does.
pub fn bind_listener(bind_addr: &str, port: u16) -> io::Result<TcpListener> {
    let bind_ip = if bind_addr.is_empty() {
        "0.0.0.0"
    } else {
        bind_addr
    };
    TcpListener::bind((bind_ip, port)).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "bind ip {bind_ip}, bind port {port} failed, errno: {}, error info: {e}.",
                e.raw_os_error().unwrap_or(0)
            ),
        )
    })
}

impl Server {
    /// Serve the FastDFS protocol with `service` on a listener bound beforehand (see
    /// `bind_listener`).
    pub fn start_on<S: Service>(
        listener: TcpListener,
        opts: ServerOptions,
        service: Arc<S>,
    ) -> io::Result<Server> {
        Self::start_handler(listener, opts, Arc::new(Framed(service)))
    }

    /// Serve whole connections with `handler` (same pool, limits and shutdown as `start_on`).
    pub fn start_handler<H: Handler>(
        listener: TcpListener,
        opts: ServerOptions,
        handler: Arc<H>,
    ) -> io::Result<Server> {
        let local_addr = listener.local_addr()?;
        let shutdown = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        let stats = Arc::new(ConnStats::default());
        stats
            .alloc
            .store(opts.max_connections as i32, Ordering::Relaxed);
        let (tx, rx): (Sender<TcpStream>, Receiver<TcpStream>) = crossbeam_channel::unbounded();
        let pool = Arc::new(Pool {
            handler,
            rx,
            idle: AtomicUsize::new(0),
            workers: AtomicUsize::new(0),
            min_workers: opts.work_threads.max(1),
            max_workers: opts.max_connections.max(opts.work_threads).max(1),
            network_timeout: opts.network_timeout,
            shutdown: Arc::clone(&shutdown),
            active: Arc::clone(&active),
            stats: Arc::clone(&stats),
        });
        for _ in 0..pool.min_workers {
            pool.spawn_worker();
        }
        let sd = Arc::clone(&shutdown);
        let accept_thread = thread::Builder::new()
            .name(format!("{}-accept", opts.name))
            .spawn(move || accept_loop(listener, opts, pool, tx, sd))?;
        Ok(Server {
            local_addr,
            shutdown,
            accept_thread: Some(accept_thread),
            active,
            stats,
        })
    }

    /// Stop accepting, let in-flight requests finish (up to `wait`), close idle connections.
    pub fn stop(&mut self, wait: Duration) {
        self.shutdown.store(true, Ordering::SeqCst);
        // wake the blocking accept()
        let _ = TcpStream::connect_timeout(&wake_addr(self.local_addr), Duration::from_secs(1));
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
        let deadline = Instant::now() + wait;
        while self.active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if self.active.load(Ordering::SeqCst) > 0 {
            log::warn!("waiting timeout, exit!");
        }
    }

    pub fn shutdown_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.shutdown)
    }
}

fn wake_addr(a: SocketAddr) -> SocketAddr {
    if a.ip().is_unspecified() {
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), a.port())
    } else {
        a
    }
}

fn accept_loop<H: Handler>(
    listener: TcpListener,
    opts: ServerOptions,
    pool: Arc<Pool<H>>,
    tx: Sender<TcpStream>,
    shutdown: Arc<AtomicBool>,
) {
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) => {
                if shutdown.load(Ordering::SeqCst) {
                    break;
                }
                log::error!("accept fail: {e}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if shutdown.load(Ordering::SeqCst) {
            break;
        }
        if !opts.allow_hosts.allows(peer.ip()) {
            log::error!("client ip: {} is not allowed to access", peer.ip());
            continue;
        }
        let current = pool.stats.current.load(Ordering::SeqCst) as usize + tx.len();
        if current >= pool.max_workers {
            log::error!(
                "client ip: {}, too many connections, max_connections: {}, close it",
                peer.ip(),
                pool.max_workers
            );
            continue;
        }
        if pool.idle.load(Ordering::SeqCst) <= tx.len()
            && pool.workers.load(Ordering::SeqCst) < pool.max_workers
        {
            pool.spawn_worker();
        }
        if tx.send(stream).is_err() {
            break;
        }
    }
    drop(tx);
}

/// A request's status byte for an unknown command: EINVAL.
pub const UNKNOWN_COMMAND_STATUS: u8 = errno::EINVAL;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_hosts_forms() {
        let a = AllowHosts::parse(&["10.0.1.[1-3,20]".into(), "192.168.0.0/16".into()]);
        assert!(a.allows("10.0.1.2".parse().unwrap()));
        assert!(a.allows("10.0.1.20".parse().unwrap()));
        assert!(!a.allows("10.0.1.4".parse().unwrap()));
        assert!(a.allows("192.168.77.1".parse().unwrap()));
        assert!(AllowHosts::parse(&[]).allows("1.2.3.4".parse().unwrap()));
        assert!(AllowHosts::parse(&["*".into()]).allows("1.2.3.4".parse().unwrap()));
    }
}
