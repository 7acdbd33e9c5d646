//! Client side of a FastDFS connection: connect (optionally from a bound source address) and
//! exchange one request for one response. Used by the client library and by the storage's
//! reporter threads.

use crate::proto::{cmd, Header, HEADER_LEN};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Responses larger than this are refused unless a caller streams them itself.
pub const MAX_RESPONSE: i64 = 16 << 20;

/// An error talking to a server: a transport failure or a non-zero status.
#[derive(Debug)]
pub enum NetError {
    Io(io::Error),
    Status(u8),
    Protocol(String),
}

impl NetError {
    /// The errno the C tools would report for this error.
    pub fn errno(&self) -> i32 {
        match self {
            NetError::Io(e) => crate::proto::errno::of_io(e) as i32,
            NetError::Status(s) => *s as i32,
            NetError::Protocol(_) => 22,
        }
    }
}

impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetError::Io(e) => write!(f, "{e}"),
            NetError::Status(s) => write!(f, "response status {s} != 0"),
            NetError::Protocol(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for NetError {}

impl From<io::Error> for NetError {
    fn from(e: io::Error) -> Self {
        NetError::Io(e)
    }
}

/// An answer that does not decode: the codec's account of it (which field).
impl From<crate::codec::DecodeError> for NetError {
    fn from(e: crate::codec::DecodeError) -> Self {
        NetError::Protocol(e.to_string())
    }
}

pub type NetResult<T> = Result<T, NetError>;

/// Connect to `host:port` within `timeout`, from `bind_ip` when given.
pub fn connect(
    host: &str,
    port: u16,
    bind_ip: Option<IpAddr>,
    timeout: Duration,
    io_timeout: Duration,
) -> io::Result<TcpStream> {
    let addr: SocketAddr = (host, port).to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("host \"{host}\" is invalid"),
        )
    })?;
    let stream = match bind_ip {
        // a source of the other family (bind_addr of both families) cannot be bound to
        Some(ip) if !ip.is_unspecified() && ip.is_ipv4() == addr.is_ipv4() => {
            connect_from(addr, ip, timeout)?
        }
        _ => TcpStream::connect_timeout(&addr, timeout)?,
    };
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(io_timeout))?;
    stream.set_write_timeout(Some(io_timeout))?;
    Ok(stream)
}

/// Connect to a tracker or storage by its configured address. A dual-address
/// `tracker_server` line's addresses are tried from the one that answered last (the first at
/// the start), then the others, as upstream's client does; the one that answers is remembered
/// for the process. An address written as a host name is its present address, and is asked
/// again when it does not answer (`crate::resolver`). The error is the last address's.
pub fn connect_host_port(
    hp: &crate::config::HostPort,
    bind_ip: Option<IpAddr>,
    timeout: Duration,
    io_timeout: Duration,
) -> io::Result<TcpStream> {
    let hosts = hp.current_hosts();
    let first = answered_last(hp).min(hosts.len() - 1);
    let mut last = None;
    for i in [first, 1 - first] {
        let Some(host) = hosts.get(i) else { continue };
        let mut tried = host.clone();
        let mut outcome = connect(host, hp.port, bind_ip, timeout, io_timeout);
        if outcome.is_err() {
            if let Some(moved) = hp.name_of(i).and_then(|n| crate::resolver::moved(n, host)) {
                outcome = connect(&moved, hp.port, bind_ip, timeout, io_timeout);
                tried = moved;
            }
        }
        match outcome {
            Ok(s) => {
                if i != first {
                    log::info!("{hp}: {tried}:{} answers", hp.port);
                    remember_answered(hp, hp.hosts().nth(i).unwrap_or(host));
                }
                return Ok(s);
            }
            Err(e) => {
                log::debug!("connect to {tried}:{} fail: {e}", hp.port);
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no address")))
}

/// Which address of each dual-address entry answered last (0 or 1), by the entry's text.
static ANSWERED: crate::sync::Mutex<std::collections::BTreeMap<String, usize>> =
    crate::sync::Mutex::new(std::collections::BTreeMap::new());

/// Note that `host`, one of `hp`'s addresses, answered (for callers that connect themselves).
pub fn remember_answered(hp: &crate::config::HostPort, host: &str) {
    if hp.alt.as_deref() == Some(host) {
        ANSWERED.lock().insert(hp.to_string(), 1);
    } else if hp.alt.is_some() && hp.host == host {
        ANSWERED.lock().remove(&hp.to_string());
    }
}

fn answered_last(hp: &crate::config::HostPort) -> usize {
    ANSWERED.lock().get(&hp.to_string()).copied().unwrap_or(0)
}

/// The address of `hp` that answered last: the one to name in output (`fdfs_monitor`'s
/// "tracker server is"), as upstream names the connection it made.
pub fn host_in_use(hp: &crate::config::HostPort) -> &str {
    match (&hp.alt, answered_last(hp)) {
        (Some(alt), 1) => alt,
        _ => &hp.host,
    }
}

/// std has no bind-then-connect; nix's socket calls are safe wrappers.
fn connect_from(addr: SocketAddr, ip: IpAddr, timeout: Duration) -> io::Result<TcpStream> {
    use nix::sys::socket::{
        bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrStorage,
    };
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd =
        socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).map_err(io::Error::from)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(SocketAddr::new(ip, 0)),
    )
    .map_err(io::Error::from)?;
    let stream = TcpStream::from(fd);
    // a blocking connect bounded by a send timeout
    stream.set_write_timeout(Some(timeout))?;
    connect(
        std::os::fd::AsRawFd::as_raw_fd(&stream),
        &SockaddrStorage::from(addr),
    )
    .map_err(io::Error::from)?;
    Ok(stream)
}

/// Send one request (header and body in one write).
pub fn send_request(
    stream: &mut TcpStream,
    command: u8,
    status: u8,
    body: &[u8],
) -> io::Result<()> {
    stream.write_all(&Header::frame(command, status, body))
}

/// Read a response header; a non-zero status is `NetError::Status`.
pub fn recv_header(stream: &mut TcpStream) -> NetResult<Header> {
    let mut b = [0u8; HEADER_LEN];
    stream.read_exact(&mut b)?;
    let h = Header::decode(&b)?;
    if h.cmd != cmd::RESP {
        return Err(NetError::Protocol(format!(
            "response cmd {} != {}",
            h.cmd,
            cmd::RESP
        )));
    }
    if h.status != 0 {
        return Err(NetError::Status(h.status));
    }
    if h.pkg_len < 0 {
        return Err(NetError::Protocol(format!(
            "response pkg_len {} < 0",
            h.pkg_len
        )));
    }
    Ok(h)
}

/// Read a whole (bounded) response body after its header.
pub fn recv_body(stream: &mut TcpStream, h: &Header) -> NetResult<Vec<u8>> {
    if h.pkg_len > MAX_RESPONSE {
        return Err(NetError::Protocol(format!(
            "response too large: {}",
            h.pkg_len
        )));
    }
    let mut v = vec![0u8; h.pkg_len as usize];
    stream.read_exact(&mut v)?;
    Ok(v)
}

/// One request, one whole response.
pub fn request(stream: &mut TcpStream, command: u8, body: &[u8]) -> NetResult<Vec<u8>> {
    send_request(stream, command, 0, body)?;
    let h = recv_header(stream)?;
    recv_body(stream, &h)
}

/// The storage id table a tracker holds, read page by page with FETCH_STORAGE_IDS on one
/// connection (what upstream's storages and clients do with storage ids on).
pub fn fetch_storage_ids(
    stream: &mut TcpStream,
) -> Result<crate::config::storage_ids::StorageIds, String> {
    use crate::codec::Message;
    use crate::proto::cluster::{FetchStorageIdsReq, StorageIdsPage};
    let mut ids = crate::config::storage_ids::StorageIds::default();
    let mut start = 0;
    loop {
        let req = FetchStorageIdsReq {
            start_index: start,
            allow_empty: 0,
        };
        let page = request(stream, cmd::STORAGE_FETCH_STORAGE_IDS, &req.to_bytes())
            .map_err(|e| e.to_string())
            .and_then(|b| StorageIdsPage::from_bytes(&b).map_err(|e| e.to_string()))?;
        ids.extend_from_page(&page.lines)?;
        start += page.count;
        if page.count <= 0 || start >= page.total {
            return Ok(ids);
        }
    }
}

/// Send QUIT and drop the connection.
pub fn quit(mut stream: TcpStream) {
    let _ = send_request(&mut stream, cmd::QUIT, 0, &[]);
}

/// A pooled connection and since when it has been idle.
type IdleConn = (TcpStream, std::time::Instant);

/// Outgoing connections kept open between requests (`use_connection_pool`): one idle list per
/// server, a connection idle longer than `connection_pool_max_idle_time` or closed by its peer
/// meanwhile is dropped rather than reused. With the pool off, `put` ends the connection with
/// QUIT, as before.
pub struct ConnPool {
    enabled: bool,
    max_idle: Duration,
    idle: crate::sync::Mutex<std::collections::HashMap<(String, u16), Vec<IdleConn>>>,
}

impl ConnPool {
    pub fn new(enabled: bool, max_idle: Duration) -> ConnPool {
        ConnPool {
            enabled,
            max_idle,
            idle: crate::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// An idle connection to `host:port`, else a new one from `connect`.
    pub fn get(
        &self,
        host: &str,
        port: u16,
        connect: impl FnOnce() -> io::Result<TcpStream>,
    ) -> io::Result<TcpStream> {
        if self.enabled {
            let mut idle = self.idle.lock();
            if let Some(list) = idle.get_mut(&(host.to_string(), port)) {
                while let Some((s, since)) = list.pop() {
                    if since.elapsed() < self.max_idle && still_open(&s) {
                        return Ok(s);
                    }
                }
            }
        }
        connect()
    }

    /// One exchange with `host:port` on a pooled connection (else a new one from `connect`):
    /// the connection goes back to the pool only after a whole answer, error statuses
    /// included; a broken exchange leaves it unusable and it is dropped.
    pub fn request(
        &self,
        host: &str,
        port: u16,
        connect: impl FnOnce() -> io::Result<TcpStream>,
        exchange: impl FnOnce(&mut TcpStream) -> NetResult<Vec<u8>>,
    ) -> NetResult<Vec<u8>> {
        let mut s = self.get(host, port, connect)?;
        let r = exchange(&mut s);
        if matches!(r, Ok(_) | Err(NetError::Status(_))) {
            self.put(host, port, s);
        }
        r
    }

    /// Give back a connection whose last exchange succeeded.
    pub fn put(&self, host: &str, port: u16, stream: TcpStream) {
        if !self.enabled {
            return quit(stream);
        }
        self.idle
            .lock()
            .entry((host.to_string(), port))
            .or_default()
            .push((stream, std::time::Instant::now()));
    }
}

/// Whether an idle connection can still carry a request: nothing to read (a server sends
/// nothing unasked, so readable means closed or broken).
fn still_open(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let open = matches!(s.peek(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).is_ok() && open
}
