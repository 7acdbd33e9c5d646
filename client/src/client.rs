//! The client: `client.conf`, trackers picked round robin with failover to the next, connections
//! to trackers and storages (pooled with `use_connection_pool`, a storage's other address tried when
//! storage_ids.conf lists two), one request and its answer, and the progress of file transfers.

use crate::progress;
use fdfs_common::config::{ClientConfig, ConfigError, HostPort};
use fdfs_common::net::{self, NetError, NetResult};
use fdfs_common::proto::client::ServerAddr;
use fdfs_common::proto::{cmd, errno};
use fdfs_common::sync::Mutex;
use std::collections::HashMap;
use std::io::{self};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub use fdfs_common::http::anti_steal_token;

/// A connection checked out of the client (returned to the pool when healthy).
pub struct Conn {
    pub stream: TcpStream,
    pub addr: HostPort,
}

pub struct Client {
    pub cfg: ClientConfig,
    next_tracker: AtomicUsize,
    pool: net::ConnPool,
    /// told how far each file content sent or received is (the tools' progress line)
    progress: Mutex<Option<progress::Report>>,
    /// storage id -> the address of it that answered last (`connect_first_by`)
    last_connected: Mutex<HashMap<String, String>>,
}

pub(crate) fn status_err(server: &HostPort, e: &NetError) {
    if let NetError::Status(s) = e {
        log::error!("server: {server}, response status {s} != 0");
    }
}

impl Client {
    pub fn new(cfg: ClientConfig) -> Client {
        fdfs_common::resolver::set_refresh_interval(cfg.dns_refresh_interval);
        let pool = net::ConnPool::new(
            cfg.use_connection_pool,
            Duration::from_secs(cfg.connection_pool_max_idle_time),
        );
        Client {
            cfg,
            next_tracker: AtomicUsize::new(0),
            pool,
            progress: Mutex::new(None),
            last_connected: Mutex::new(HashMap::new()),
        }
    }

    /// Run `io` with the progress report, if one is set. The lock is held only then: threads
    /// sharing a client without a report send and receive file contents in parallel.
    pub(crate) fn with_progress<T>(
        &self,
        io: impl FnOnce(Option<&mut progress::Report>) -> T,
    ) -> T {
        let mut report = self.progress.lock();
        if report.is_none() {
            drop(report);
            return io(None);
        }
        io(report.as_mut())
    }

    /// Report the progress of file contents sent and received from now on.
    pub fn report_progress(&self, report: progress::Report) {
        *self.progress.lock() = Some(report);
    }

    /// A client for `client.conf`; with `load_fdfs_parameters_from_tracker` its `use_storage_id`
    /// and id table come from the trackers, as upstream's client library takes them.
    pub fn from_conf(path: &Path) -> Result<Client, ConfigError> {
        let mut client = Client::new(ClientConfig::load(path)?);
        if client.cfg.load_fdfs_parameters_from_tracker {
            let failed = |what: &str, e: &NetError| ConfigError {
                file: path.display().to_string(),
                line: 0,
                key: "load_fdfs_parameters_from_tracker".into(),
                msg: format!("{what} from tracker server fail: {e}"),
                code: e.errno(),
            };
            let text = client
                .tracker_request(cmd::STORAGE_PARAMETER_REQ, &[])
                .map_err(|e| failed("get parameters", &e))?;
            let text = String::from_utf8_lossy(&text);
            client.cfg.use_storage_id = text
                .lines()
                .filter_map(|l| l.split_once('='))
                .any(|(k, v)| k.trim() == "use_storage_id" && v.trim() == "1");
            if client.cfg.use_storage_id {
                let mut c = client
                    .tracker()
                    .map_err(|e| failed("fetch storage ids", &e))?;
                client.cfg.storage_ids = net::fetch_storage_ids(&mut c.stream)
                    .map_err(|e| failed("fetch storage ids", &NetError::Protocol(e)))?;
                client.release(c);
            }
        }
        Ok(client)
    }

    /// The addresses to try for `addr`, in order: a storage listed with several IPs in the id
    /// table is tried on each (first the one that answered last, with `connect_first_by =
    /// last-connected`), with the id to remember the one that answers under.
    fn addresses_of(&self, addr: &HostPort) -> (Vec<HostPort>, Option<String>) {
        let entry = self
            .cfg
            .storage_ids
            .entries
            .iter()
            .find(|e| e.ips.len() > 1 && e.ips.contains(&addr.host));
        let Some(entry) = entry else {
            return (vec![addr.clone()], None);
        };
        let mut hosts = vec![addr.host.clone()];
        if self.cfg.connect_first_by_last {
            if let Some(last) = self.last_connected.lock().get(&entry.id) {
                hosts.insert(0, last.clone());
            }
        }
        hosts.extend(entry.ips.iter().cloned());
        let mut seen = Vec::new();
        let list = hosts
            .into_iter()
            .filter(|h| {
                let new = !seen.contains(h);
                seen.push(h.clone());
                new
            })
            .map(|host| HostPort::new(host, addr.port))
            .collect();
        (list, Some(entry.id.clone()))
    }

    fn timeouts(&self) -> (Duration, Duration) {
        (
            Duration::from_secs(self.cfg.connect_timeout),
            Duration::from_secs(self.cfg.network_timeout),
        )
    }

    /// Connect to a server (from the pool when enabled).
    pub fn connect(&self, addr: &HostPort) -> io::Result<Conn> {
        let stream = self
            .pool
            .get(&addr.host, addr.port, || self.connect_new(addr))?;
        Ok(Conn {
            stream,
            addr: addr.clone(),
        })
    }

    /// A new connection to `addr`, or to another address of the same storage (`connect_first_by`).
    fn connect_new(&self, addr: &HostPort) -> io::Result<TcpStream> {
        let (ct, nt) = self.timeouts();
        // a dual-address or named tracker_server line: as the daemons connect to it
        if addr.alt.is_some() || addr.names.iter().any(Option::is_some) {
            return net::connect_host_port(addr, None, ct, nt).inspect_err(|e| {
                log::error!(
                    "connect to server {addr} fail, errno: {}, error info: {e}",
                    e.raw_os_error().unwrap_or(0)
                )
            });
        }
        let (candidates, id) = self.addresses_of(addr);
        let mut failure = None;
        for candidate in &candidates {
            match net::connect(&candidate.host, candidate.port, None, ct, nt) {
                Ok(stream) => {
                    net::remember_answered(addr, &candidate.host);
                    if let Some(id) = &id {
                        self.last_connected
                            .lock()
                            .insert(id.clone(), candidate.host.clone());
                    }
                    return Ok(stream);
                }
                Err(e) => {
                    log::error!(
                        "connect to server {candidate} fail, errno: {}, error info: {e}",
                        e.raw_os_error().unwrap_or(0)
                    );
                    failure = Some(e);
                }
            }
        }
        Err(failure.unwrap_or_else(|| io::Error::from_raw_os_error(errno::ECONNREFUSED as i32)))
    }

    /// Give a connection back after a successful exchange (closed when pooling is off).
    pub fn release(&self, c: Conn) {
        if self.cfg.use_connection_pool {
            self.pool.put(&c.addr.host, c.addr.port, c.stream);
        }
    }

    /// A tracker connection: round robin over the configured trackers, failing over to the next.
    pub fn tracker(&self) -> NetResult<Conn> {
        let n = self.cfg.tracker_servers.len();
        let start = self.next_tracker.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            let t = &self.cfg.tracker_servers[(start + k) % n];
            if let Ok(c) = self.connect(t) {
                return Ok(c);
            }
        }
        // what the C tools report when no tracker answers (the non-blocking connect's errno)
        Err(NetError::Io(io::Error::from_raw_os_error(
            errno::EINPROGRESS as i32,
        )))
    }

    /// One request/response on a connection, logging a non-zero status like the C library.
    pub(crate) fn exchange(&self, mut c: Conn, command: u8, body: &[u8]) -> NetResult<Vec<u8>> {
        match net::request(&mut c.stream, command, body) {
            Ok(v) => {
                self.release(c);
                Ok(v)
            }
            Err(e) => {
                status_err(&c.addr, &e);
                Err(e)
            }
        }
    }

    pub(crate) fn tracker_request(&self, command: u8, body: &[u8]) -> NetResult<Vec<u8>> {
        let c = self.tracker()?;
        self.exchange(c, command, body)
    }

    pub(crate) fn addr_of(s: &ServerAddr) -> HostPort {
        HostPort::new(s.ip.clone(), s.port as u16)
    }

    pub(crate) fn storage_request(
        &self,
        addr: &HostPort,
        command: u8,
        body: &[u8],
    ) -> NetResult<Vec<u8>> {
        let c = self.connect(addr)?;
        self.exchange(c, command, body)
    }
}
