//! The one connection loop every daemon uses.
//!
//! Blocking `std::net` listeners (`accept_threads` of them) hand accepted sockets to a pool of
//! worker threads (`pool`). A worker serves a connection while it has requests (one at a time
//! when no worker is idle) and parks it with a readiness watcher (`watcher`, epoll) when it
//! goes quiet, so thousands of idle pooled connections cost a file descriptor each and no
//! thread, and never starve a new client.
//! Reads within a request block, bounded by `network_timeout` (`conn`). What serves a
//! connection is a [`Handler`] (`handler`); the FastDFS protocols are served through the frame
//! loop of `framed`, which calls a [`Service`] once per request. This file binds, accepts and
//! starts the pool.

mod allow_hosts;
mod conn;
mod framed;
mod handler;
mod options;
mod pool;
mod watcher;

pub use allow_hosts::AllowHosts;
pub use conn::{ActiveRequest, Conn};
pub use framed::{flow_after, log_malformed, Body, Service};
pub use handler::{Flow, Handler};
pub use options::ServerOptions;
pub use pool::OVERFLOW_WORKERS;

use crate::config::AddressFamily;
use crate::metrics::ConnStats;
use framed::Framed;
use pool::Pool;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A running listener with its worker pool.
pub struct Server {
    pub local_addrs: Vec<SocketAddr>,
    shutdown: Arc<AtomicBool>,
    accept_threads: Vec<thread::JoinHandle<()>>,
    active: Arc<AtomicUsize>,
    pub stats: Arc<ConnStats>,
}

/// Bind `bind_addr` (all addresses when empty) and `port`; the error names both, as upstream's
/// log line does.
/// The sockets a server accepts on: one per address it listens on.
pub type Listeners = Vec<TcpListener>;

/// Listen on `port` at each address of `bind_addr` (upstream's forms: one IPv4 address, one
/// IPv6 address, or both as `IPv4,IPv6`); an empty `bind_addr` means every address of the
/// family `address_family` asks for (auto and IPv4: 0.0.0.0, IPv6: [::], both: the two).
pub fn bind_listener(bind_addr: &str, family: AddressFamily, port: u16) -> io::Result<Listeners> {
    let mut addrs = crate::config::split_bind_addr(bind_addr);
    if addrs.is_empty() {
        addrs = match family {
            AddressFamily::Auto | AddressFamily::V4 => vec!["0.0.0.0"],
            AddressFamily::V6 => vec!["::"],
            AddressFamily::Both => vec!["0.0.0.0", "::"],
        };
    }
    addrs
        .iter()
        .map(|a| {
            bind_one(a, port).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "bind ip {a}, bind port {port} failed, errno: {}, error info: {e}.",
                        e.raw_os_error().unwrap_or(0)
                    ),
                )
            })
        })
        .collect()
}

/// One listening socket; an IPv6 one takes IPv6 only, so that 0.0.0.0 and [::] can share a
/// port and IPv4 peers keep their plain addresses.
fn bind_one(addr: &str, port: u16) -> io::Result<TcpListener> {
    use nix::sys::socket::{self, sockopt, AddressFamily as Af, SockFlag, SockType};
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "not an IP address"))?;
    let IpAddr::V6(v6) = ip else {
        return TcpListener::bind((ip, port));
    };
    let fd = socket::socket(Af::Inet6, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    let sa = socket::SockaddrIn6::from(std::net::SocketAddrV6::new(v6, port, 0, 0));
    socket::bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &sa)?;
    socket::listen(&fd, socket::Backlog::MAXCONN)?;
    Ok(TcpListener::from(fd))
}

impl Server {
    /// Serve the FastDFS protocol with `service` on a listener bound beforehand (see
    /// `bind_listener`).
    pub fn start_on<S: Service>(
        listener: Listeners,
        opts: ServerOptions,
        service: Arc<S>,
    ) -> io::Result<Server> {
        Self::start_handler(listener, opts, Arc::new(Framed(service)))
    }

    /// Serve connections with `handler` (same pool, limits and shutdown as `start_on`).
    pub fn start_handler<H: Handler>(
        listeners: Listeners,
        opts: ServerOptions,
        handler: Arc<H>,
    ) -> io::Result<Server> {
        let local_addrs = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        let shutdown = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ConnStats::default());
        stats
            .alloc
            .store(opts.max_connections as i32, Ordering::Relaxed);
        let pool = Pool::start(handler, &opts, Arc::clone(&shutdown), Arc::clone(&stats))?;
        let active = Arc::clone(&pool.active);
        let opts = Arc::new(opts);
        let mut accept_threads = Vec::new();
        for listener in &listeners {
            for _ in 0..opts.accept_threads.max(1) {
                let (l, o, p) = (listener.try_clone()?, Arc::clone(&opts), Arc::clone(&pool));
                accept_threads.push(
                    thread::Builder::new()
                        .name(format!("{}-accept", opts.name))
                        .spawn(move || accept_loop(l, &o, &p))?,
                );
            }
        }
        Ok(Server {
            local_addrs,
            shutdown,
            accept_threads,
            active,
            stats,
        })
    }

    /// Stop accepting, let in-flight requests finish (up to `wait`), close idle connections.
    pub fn stop(&mut self, wait: Duration) {
        self.shutdown.store(true, Ordering::SeqCst);
        // one connection wakes each blocking accept()
        let per_listener = self.accept_threads.len() / self.local_addrs.len().max(1);
        for a in &self.local_addrs {
            for _ in 0..per_listener {
                let _ = TcpStream::connect_timeout(&wake_addr(*a), Duration::from_secs(1));
            }
        }
        for t in self.accept_threads.drain(..) {
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
}

fn wake_addr(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::from([127, 0, 0, 1]), a.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), a.port())
        }
        _ => a,
    }
}

/// A log line at most once a second, counting the ones held back: a flood of refused
/// connections must not flood the log too.
struct RateLimited {
    last: Option<Instant>,
    held_back: u64,
}

impl RateLimited {
    fn new() -> RateLimited {
        RateLimited {
            last: None,
            held_back: 0,
        }
    }

    fn error(&mut self, line: impl FnOnce() -> String) {
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            self.held_back += 1;
            return;
        }
        let mut text = line();
        if self.held_back > 0 {
            text += &format!(" ({} more like this in the last second)", self.held_back);
        }
        log::error!("{text}");
        self.last = Some(Instant::now());
        self.held_back = 0;
    }
}

fn accept_loop<H: Handler>(listener: TcpListener, opts: &ServerOptions, pool: &Arc<Pool<H>>) {
    // a descriptor held back for the moment the process runs out of them: closed, it makes
    // room to accept the waiting connection and close it, so that the client is refused at
    // once instead of waiting in the backlog while accept() fails in a loop
    let mut reserve = std::fs::File::open("/dev/null").ok();
    let mut errors = RateLimited::new();
    let mut refusals = RateLimited::new();
    loop {
        pool.wait_for_workers();
        let (stream, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) => {
                if pool.shutdown.load(Ordering::SeqCst) {
                    break;
                }
                let out_of_fds = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                let mut refused = None;
                if out_of_fds && reserve.take().is_some() {
                    refused = listener.accept().ok().map(|(_, peer)| peer);
                    reserve = std::fs::File::open("/dev/null").ok();
                }
                match refused {
                    Some(peer) => errors.error(|| {
                        format!(
                            "accept fail: {e}, connection from {} refused ({} connections open, \
                             open files limit {})",
                            peer.ip(),
                            pool.open_connections(),
                            nofile_limit().0
                        )
                    }),
                    None => {
                        errors.error(|| format!("accept fail: {e}"));
                        thread::sleep(Duration::from_millis(10));
                    }
                }
                continue;
            }
        };
        if pool.shutdown.load(Ordering::SeqCst) {
            break;
        }
        if !opts.allow_hosts.allows(peer.ip()) {
            log::error!("client ip: {} is not allowed to access", peer.ip());
            continue;
        }
        if pool.open_connections() >= opts.max_connections.max(1) {
            refusals.error(|| {
                format!(
                    "client ip: {}, too many connections, max_connections: {}, close it",
                    peer.ip(),
                    opts.max_connections
                )
            });
            continue;
        }
        pool.admit(stream);
    }
}

/// The soft and hard RLIMIT_NOFILE.
pub fn nofile_limit() -> (u64, u64) {
    use nix::sys::resource::{getrlimit, Resource};
    getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((0, 0))
}
