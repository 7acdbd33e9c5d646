//! Slow links (issue 29): every byte between two sets of daemons held back by a fixed delay
//! each way, by a TCP proxy of the test's own that the kernel puts on the link.
//!
//! This kernel has no `tc netem` and nftables cannot hold a packet back, so delay needs a
//! proxy; but a storage connects to whatever address the tracker gives out for a peer, so the
//! proxy cannot simply be configured in. Instead an nftables `nat` table rewrites the
//! destination of each new connection from an address of one side to a listening port of the
//! other (DNAT in the output hook) to a listener of the proxy on the same address. The proxy
//! connects on to the real port from the client's own address (a member-only rule still sees
//! the member) with a socket mark the rule skips, so its own connection is not sent back to
//! it. Each direction of a proxied connection is a reader and a writer: a chunk read is written
//! `delay` after it arrived, in order, so the link stays a stream and only its latency grows.
//!
//! Dropping the value is the heal: the connections through the proxy are shut down (as a link
//! that comes back after a fault often drops its connections; the daemons connect again) and
//! then the table goes, so new connections are direct. Not the other way round: without the
//! table the kernel stops translating the proxied connections' addresses, and a daemon waiting
//! for an answer on one would hear nothing more, neither bytes nor the end.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The mark on the proxy's own outgoing sockets: the DNAT rule leaves them alone.
const PROXY_MARK: u32 = 0x7264_6673;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A delay on the links between two sets of daemons, until dropped.
pub struct SlowLink {
    table: String,
    healed: Arc<AtomicBool>,
    proxied: Arc<AtomicU32>,
    /// both sockets of every proxied connection, to end them at the heal
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl SlowLink {
    /// Hold back by `delay` every byte, both ways, of every connection from an address of `a`
    /// to a listening address of `b` and from an address of `b` to a listening address of `a`.
    /// Each side is its daemons' (address, listening port).
    pub fn between(a: &[(String, u16)], b: &[(String, u16)], delay: Duration) -> SlowLink {
        let table = format!(
            "rfdfs_slow_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let healed = Arc::new(AtomicBool::new(false));
        let proxied = Arc::new(AtomicU32::new(0));
        let open = Arc::new(Mutex::new(Vec::new()));
        let mut rules = String::new();
        for (from, to) in [(a, b), (b, a)] {
            let sources: Vec<&str> = from.iter().map(|(ip, _)| ip.as_str()).collect();
            for (ip, port) in to {
                let listener = TcpListener::bind((ip.as_str(), 0)).expect("proxy listener");
                let at = listener.local_addr().unwrap();
                let target: SocketAddr = format!("{ip}:{port}").parse().unwrap();
                rules += &format!(
                    "    meta mark != {PROXY_MARK} ip saddr {{ {} }} ip daddr {ip} tcp dport {port} \
                     dnat to {at}\n",
                    sources.join(", ")
                );
                let link = Link {
                    target,
                    delay,
                    healed: Arc::clone(&healed),
                    proxied: Arc::clone(&proxied),
                    open: Arc::clone(&open),
                };
                thread::spawn(move || accept_loop(listener, link));
            }
        }
        crate::partition::nft(&format!(
            "table ip {table} {{\n  chain out {{\n    type nat hook output priority -100; \
             policy accept;\n{rules}  }}\n}}\n"
        ));
        // the rule takes new connections only: the daemons' long-lived ones (heartbeats, syncs)
        // are aborted, as a link that goes bad often does, so that they come back through it
        for (x, _) in a {
            for (y, _) in b {
                for (src, dst) in [(x, y), (y, x)] {
                    let _ = std::process::Command::new("ss")
                        .args(["-K", "src", src, "dst", dst])
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .status();
                }
            }
        }
        SlowLink {
            table,
            healed,
            proxied,
            open,
        }
    }

    /// How many connections went through the proxy: the delay took.
    pub fn proxied(&self) -> u32 {
        self.proxied.load(Ordering::SeqCst)
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.healed.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        // the ends reach the daemons while their addresses are still translated
        thread::sleep(Duration::from_millis(200));
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "ip", &self.table])
            .status();
    }
}

/// What each proxied connection of one listening address shares.
struct Link {
    target: SocketAddr,
    delay: Duration,
    healed: Arc<AtomicBool>,
    proxied: Arc<AtomicU32>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

fn accept_loop(listener: TcpListener, link: Link) {
    listener.set_nonblocking(true).unwrap();
    let link = Arc::new(link);
    while !link.healed.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, from)) => {
                let _ = client.set_nonblocking(false);
                link.proxied.fetch_add(1, Ordering::SeqCst);
                let link = Arc::clone(&link);
                thread::spawn(move || proxy(client, from, &link));
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A connection to `target` from the client's own address, marked so the DNAT rule skips it.
fn connect_as(from: SocketAddr, target: SocketAddr) -> std::io::Result<TcpStream> {
    use nix::sys::socket::{
        bind, connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn,
    };
    let (SocketAddr::V4(from), SocketAddr::V4(target)) = (from, target) else {
        return Err(std::io::Error::other("IPv4 only"));
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, sockopt::Mark, &PROXY_MARK)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(std::net::SocketAddrV4::new(*from.ip(), 0)),
    )?;
    connect(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(target),
    )?;
    Ok(TcpStream::from(fd))
}

fn proxy(client: TcpStream, from: SocketAddr, link: &Link) {
    let Ok(server) = connect_as(from, link.target) else {
        return;
    };
    {
        let mut open = link.open.lock().unwrap();
        if link.healed.load(Ordering::SeqCst) {
            return;
        }
        open.extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
    }
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (delay, healed) = (link.delay, Arc::clone(&link.healed));
    thread::spawn(move || one_way(c2, s2, delay, healed));
    one_way(server, client, link.delay, Arc::clone(&link.healed));
}

/// Copy `from` to `to`, each chunk `delay` after it was read (at once once healed); the end of
/// the stream is passed on the same way.
fn one_way(mut from: TcpStream, mut to: TcpStream, delay: Duration, healed: Arc<AtomicBool>) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = thread::spawn(move || {
        for (due, chunk) in rx {
            let now = Instant::now();
            if due > now && !healed.load(Ordering::SeqCst) {
                thread::sleep(due - now);
            }
            if chunk.is_empty() {
                break;
            }
            if to.write_all(&chunk).is_err() {
                // the other way reads `to`: end it too
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).unwrap_or(0);
        let _ = tx.send((Instant::now() + delay, buf[..n].to_vec()));
        if n == 0 {
            break;
        }
    }
    drop(tx);
    let _ = writer.join();
    let _ = from.shutdown(Shutdown::Read);
}
