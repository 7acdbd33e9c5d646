//! fdfs-client: a FastDFS client library and the `fdfs_*` command-line tools.
//!
//! [`Client`] takes a `client.conf`, picks trackers round robin and fails over to the next one
//! when a tracker cannot be reached, optionally pools connections, and offers every client
//! operation (upload, download, delete, metadata, appender operations, file info, cluster
//! listings). The tools in `tools` are thin front ends that keep upstream's arguments, output
//! and exit codes.

#![forbid(unsafe_code)]

pub mod bench;
pub mod fleet;
pub mod human;
pub mod logging;
pub mod personality;
pub mod progress;
pub mod stat_tools;
pub mod tools;

use fdfs_common::codec::Message;
use fdfs_common::config::{ClientConfig, ConfigError, HostPort};
use fdfs_common::file_id::{split_file_id, FileKind, RemoteName, Source};
use fdfs_common::metadata::{self, MetaItem};
use fdfs_common::net::{self, NetError, NetResult};
use fdfs_common::proto::client::{
    decode_group_stats, decode_storage_stats, DeleteStorageReq, FetchReply, GroupFileReq, GroupReq,
    GroupStat, ListStorageReq, ServerAddr, StorageStat, StoreAllReply, StoreReply,
};
use fdfs_common::proto::storage::{
    AppendHead, DownloadReq, FileIdReply, FileInfoReply, ModifyHead, SetMetadataReq, TruncateReq,
    UploadReq, UploadSlaveHead,
};
use fdfs_common::proto::{cmd, errno, Header};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Where an upload's content comes from.
pub enum Content<'a> {
    Buffer(&'a [u8]),
    File(&'a Path),
}

impl Content<'_> {
    fn len(&self) -> io::Result<u64> {
        match self {
            Content::Buffer(b) => Ok(b.len() as u64),
            Content::File(p) => Ok(std::fs::metadata(p)?.len()),
        }
    }

    /// Write the content after `head` (header and fixed fields go out in one write), telling
    /// `report` how far it is.
    fn send(
        &self,
        stream: &mut TcpStream,
        head: &[u8],
        report: Option<&mut progress::Report>,
    ) -> io::Result<()> {
        match self {
            Content::Buffer(b) => {
                if b.len() <= 64 * 1024 {
                    let mut v = Vec::with_capacity(head.len() + b.len());
                    v.extend_from_slice(head);
                    v.extend_from_slice(b);
                    stream.write_all(&v)
                } else {
                    stream.write_all(head)?;
                    stream.write_all(b)
                }
            }
            Content::File(p) => {
                let mut f = File::open(p)?;
                let total = f.metadata()?.len();
                stream.write_all(head)?;
                progress::copy(&mut f, stream, total, report).map(|_| ())
            }
        }
    }
}

/// A file ID split into group and remote name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileId {
    pub group: String,
    pub name: String,
}

impl FileId {
    pub fn parse(id: &str) -> NetResult<FileId> {
        let (g, n) = split_file_id(id).map_err(|_| NetError::Status(errno::EINVAL))?;
        Ok(FileId {
            group: g.to_string(),
            name: n.to_string(),
        })
    }
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.group, self.name)
    }
}

/// What `fdfs_file_info` reports about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub from_server: bool,
    pub kind: FileKind,
    pub source_id: u32,
    pub source_ip: String,
    pub create_timestamp: i64,
    pub file_size: i64,
    pub crc32: u32,
}

/// A connection checked out of the client (returned to the pool when healthy).
pub struct Conn {
    pub stream: TcpStream,
    pub addr: HostPort,
}

/// Which upload command [`Client::upload`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// UPLOAD_FILE: a file that is written once
    File,
    /// UPLOAD_APPENDER_FILE: a file that can be appended to, modified and truncated later
    Appender,
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

fn status_err(server: &HostPort, e: &NetError) {
    if let NetError::Status(s) = e {
        log::error!("server: {server}, response status {s} != 0");
    }
}

impl Client {
    pub fn new(cfg: ClientConfig) -> Client {
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
    fn with_progress<T>(&self, io: impl FnOnce(Option<&mut progress::Report>) -> T) -> T {
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
            .map(|host| HostPort {
                host,
                port: addr.port,
            })
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
        let (candidates, id) = self.addresses_of(addr);
        let mut failure = None;
        for candidate in &candidates {
            match net::connect(&candidate.host, candidate.port, None, ct, nt) {
                Ok(stream) => {
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
    fn exchange(&self, mut c: Conn, command: u8, body: &[u8]) -> NetResult<Vec<u8>> {
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

    fn tracker_request(&self, command: u8, body: &[u8]) -> NetResult<Vec<u8>> {
        let c = self.tracker()?;
        self.exchange(c, command, body)
    }

    fn addr_of(s: &ServerAddr) -> HostPort {
        HostPort {
            host: s.ip.clone(),
            port: s.port as u16,
        }
    }

    // ---- tracker queries -------------------------------------------------------------------

    pub fn query_store(&self, group: Option<&str>) -> NetResult<StoreReply> {
        let body = match group {
            Some(g) => self.tracker_request(
                cmd::QUERY_STORE_WITH_GROUP_ONE,
                &GroupReq { group: g.into() }.to_bytes(),
            )?,
            None => self.tracker_request(cmd::QUERY_STORE_WITHOUT_GROUP_ONE, &[])?,
        };
        StoreReply::from_bytes(&body).map_err(|e| NetError::Protocol(e.to_string()))
    }

    pub fn query_store_all(&self, group: Option<&str>) -> NetResult<StoreAllReply> {
        let body = match group {
            Some(g) => self.tracker_request(
                cmd::QUERY_STORE_WITH_GROUP_ALL,
                &GroupReq { group: g.into() }.to_bytes(),
            )?,
            None => self.tracker_request(cmd::QUERY_STORE_WITHOUT_GROUP_ALL, &[])?,
        };
        StoreAllReply::from_bytes(&body).map_err(|e| NetError::Protocol(e.to_string()))
    }

    fn query_file(&self, command: u8, id: &FileId) -> NetResult<FetchReply> {
        let req = GroupFileReq {
            group: id.group.clone(),
            filename: id.name.clone(),
        };
        let body = self.tracker_request(command, &req.to_bytes())?;
        FetchReply::from_bytes(&body).map_err(|e| NetError::Protocol(e.to_string()))
    }

    pub fn query_fetch(&self, id: &FileId) -> NetResult<HostPort> {
        let r = self.query_file(cmd::QUERY_FETCH_ONE, id)?;
        r.servers
            .first()
            .map(Self::addr_of)
            .ok_or(NetError::Protocol("empty fetch reply".into()))
    }

    pub fn query_fetch_all(&self, id: &FileId) -> NetResult<Vec<HostPort>> {
        Ok(self
            .query_file(cmd::QUERY_FETCH_ALL, id)?
            .servers
            .iter()
            .map(Self::addr_of)
            .collect())
    }

    pub fn query_update(&self, id: &FileId) -> NetResult<HostPort> {
        let r = self.query_file(cmd::QUERY_UPDATE, id)?;
        r.servers
            .first()
            .map(Self::addr_of)
            .ok_or(NetError::Protocol("empty update reply".into()))
    }

    pub fn list_groups(&self) -> NetResult<Vec<GroupStat>> {
        let body = self.tracker_request(cmd::SERVER_LIST_ALL_GROUPS, &[])?;
        decode_group_stats(&body).map_err(|e| NetError::Protocol(e.to_string()))
    }

    pub fn list_one_group(&self, group: &str) -> NetResult<GroupStat> {
        let body = self.tracker_request(
            cmd::SERVER_LIST_ONE_GROUP,
            &GroupReq {
                group: group.into(),
            }
            .to_bytes(),
        )?;
        GroupStat::from_bytes(&body).map_err(|e| NetError::Protocol(e.to_string()))
    }

    pub fn list_storages(&self, group: &str, id: Option<&str>) -> NetResult<Vec<StorageStat>> {
        let req = ListStorageReq {
            group: group.into(),
            storage_id: id.map(String::from),
        };
        let body = self.tracker_request(cmd::SERVER_LIST_STORAGE, &req.to_bytes())?;
        decode_storage_stats(&body).map_err(|e| NetError::Protocol(e.to_string()))
    }

    /// On every configured tracker, as the C client does.
    pub fn delete_storage(&self, group: &str, id: &str) -> NetResult<()> {
        let req = DeleteStorageReq {
            group: group.into(),
            storage_id: Some(id.into()),
        }
        .to_bytes();
        let mut enoent = 0;
        let trackers = self.cfg.tracker_servers.clone();
        for t in &trackers {
            let c = self.connect(t)?;
            match self.exchange(c, cmd::SERVER_LIST_STORAGE, &req) {
                Ok(b) => {
                    let list =
                        decode_storage_stats(&b).map_err(|e| NetError::Protocol(e.to_string()))?;
                    if list.iter().any(|s| {
                        matches!(
                            s.status,
                            fdfs_common::proto::status::ONLINE | fdfs_common::proto::status::ACTIVE
                        )
                    }) {
                        return Err(NetError::Status(errno::EBUSY));
                    }
                }
                Err(NetError::Status(s)) if s == errno::ENOENT => {}
                Err(e) => return Err(e),
            }
        }
        let mut result = Ok(());
        for t in &trackers {
            let c = self.connect(t)?;
            match self.exchange(c, cmd::SERVER_DELETE_STORAGE, &req) {
                Ok(_) => {}
                Err(NetError::Status(s)) if s == errno::ENOENT => enoent += 1,
                Err(NetError::Status(s)) if s == errno::EALREADY => {
                    result = Err(NetError::Status(s))
                }
                Err(e) => return Err(e),
            }
        }
        if enoent == trackers.len() {
            return Err(NetError::Status(errno::ENOENT));
        }
        result
    }

    pub fn delete_group(&self, group: &str) -> NetResult<()> {
        let req = GroupReq {
            group: group.into(),
        }
        .to_bytes();
        for t in self.cfg.tracker_servers.clone() {
            let c = self.connect(&t)?;
            self.exchange(c, cmd::SERVER_DELETE_GROUP, &req)?;
        }
        Ok(())
    }

    /// Returns the new trunk server id.
    pub fn set_trunk_server(&self, group: &str, id: &str) -> NetResult<String> {
        let req = ListStorageReq {
            group: group.into(),
            storage_id: (!id.is_empty()).then(|| id.into()),
        }
        .to_bytes();
        let mut last = NetError::Status(errno::EOPNOTSUPP);
        for t in self.cfg.tracker_servers.clone() {
            let c = self.connect(&t)?;
            match self.exchange(c, cmd::SERVER_SET_TRUNK_SERVER, &req) {
                Ok(b) => return Ok(fdfs_common::codec::text_until_nul(&b)),
                Err(NetError::Status(s)) if s == errno::EOPNOTSUPP => last = NetError::Status(s),
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// TRACKER_CLUSTER_STAT, asked of the leader (found with GET_LEADER on any tracker).
    pub fn tracker_cluster_stat(
        &self,
        filter: fdfs_common::proto::stats::TrackerClusterStatReq,
    ) -> NetResult<Vec<fdfs_common::proto::stats::TrackerClusterStat>> {
        let leader = String::from_utf8_lossy(&self.tracker_request(cmd::SERVER_GET_LEADER, &[])?)
            .into_owned();
        let hp =
            fdfs_common::config::parse_host_port(&leader, 22122).map_err(NetError::Protocol)?;
        let body =
            self.storage_request(&hp, cmd::SERVER_TRACKER_CLUSTER_STAT, &filter.to_bytes())?;
        fdfs_common::proto::stats::TrackerClusterStat::decode_list(&body)
            .map_err(|e| NetError::Protocol(e.to_string()))
    }

    /// STORAGE_CLUSTER_STAT: `(use_storage_id, use_trunk_file, records)`.
    pub fn storage_cluster_stat(
        &self,
        filter: fdfs_common::proto::stats::StorageClusterStatReq,
    ) -> NetResult<(
        bool,
        bool,
        Vec<fdfs_common::proto::stats::StorageClusterStat>,
    )> {
        let body = self.tracker_request(cmd::SERVER_STORAGE_CLUSTER_STAT, &filter.to_bytes())?;
        fdfs_common::proto::stats::StorageClusterStat::decode_list(&body)
            .map_err(|e| NetError::Protocol(e.to_string()))
    }

    /// STORAGE_VOLUMN_STAT: `(use_trunk_file, groups)`.
    pub fn volume_stat(
        &self,
        filter: fdfs_common::proto::stats::VolumeStatReq,
    ) -> NetResult<(bool, Vec<fdfs_common::proto::stats::VolumeStat>)> {
        let body = self.tracker_request(cmd::SERVER_STORAGE_VOLUMN_STAT, &filter.to_bytes())?;
        fdfs_common::proto::stats::VolumeStat::decode_list(&body)
            .map_err(|e| NetError::Protocol(e.to_string()))
    }

    /// RFDFS_STATUS of an rfdfs storage (a C storage refuses it).
    pub fn rfdfs_status(&self, addr: &HostPort) -> NetResult<fdfs_common::proto::rfdfs::Status> {
        let c = self.connect(addr)?;
        let body = self.exchange(c, cmd::RFDFS_STATUS, &[])?;
        fdfs_common::proto::rfdfs::Status::from_bytes(&body)
            .map_err(|e| NetError::Protocol(e.to_string()))
    }

    pub fn active_test(&self, addr: &HostPort) -> NetResult<()> {
        let c = self.connect(addr)?;
        self.exchange(c, cmd::ACTIVE_TEST, &[]).map(|_| ())
    }

    // ---- storage operations ----------------------------------------------------------------

    /// Send a request whose body is `head` followed by `content`, then read a whole reply.
    fn streamed(
        &self,
        addr: &HostPort,
        command: u8,
        head: &[u8],
        content: &Content,
    ) -> NetResult<Vec<u8>> {
        let len = content.len()?;
        let mut c = self.connect(addr)?;
        let mut frame = Header::new(command, head.len() + len as usize)
            .to_bytes()
            .to_vec();
        frame.extend_from_slice(head);
        let r = self
            .with_progress(|report| content.send(&mut c.stream, &frame, report))
            .map_err(NetError::Io)
            .and_then(|_| net::recv_header(&mut c.stream))
            .and_then(|h| net::recv_body(&mut c.stream, &h));
        match r {
            Ok(v) => {
                self.release(c);
                Ok(v)
            }
            Err(e) => {
                status_err(addr, &e);
                Err(e)
            }
        }
    }

    /// Upload to a storage chosen by the tracker (or to `target` with a store path index).
    pub fn upload(
        &self,
        content: Content,
        ext: &str,
        kind: Upload,
        target: Option<(HostPort, u8)>,
        group: Option<&str>,
    ) -> NetResult<FileId> {
        let (addr, path_index) = match target {
            Some(t) => t,
            None => {
                let r = self.query_store(group)?;
                (Self::addr_of(&r.server), r.store_path_index)
            }
        };
        let head = UploadReq {
            store_path_index: path_index,
            file_size: content.len()? as i64,
            ext: ext.into(),
        };
        let command = match kind {
            Upload::File => cmd::UPLOAD_FILE,
            Upload::Appender => cmd::UPLOAD_APPENDER_FILE,
        };
        let body = self.streamed(&addr, command, &head.to_bytes(), &content)?;
        let r = FileIdReply::from_bytes(&body).map_err(|e| NetError::Protocol(e.to_string()))?;
        Ok(FileId {
            group: r.group,
            name: r.filename,
        })
    }

    pub fn upload_slave(
        &self,
        master: &FileId,
        prefix: &str,
        ext: &str,
        content: Content,
    ) -> NetResult<FileId> {
        let addr = self.query_update(master)?;
        let mut head = UploadSlaveHead {
            master_len: master.name.len() as i64,
            file_size: content.len()? as i64,
            prefix: prefix.into(),
            ext: ext.into(),
        }
        .to_bytes();
        head.extend_from_slice(master.name.as_bytes());
        let body = self.streamed(&addr, cmd::UPLOAD_SLAVE_FILE, &head, &content)?;
        let r = FileIdReply::from_bytes(&body).map_err(|e| NetError::Protocol(e.to_string()))?;
        Ok(FileId {
            group: r.group,
            name: r.filename,
        })
    }

    /// Download a range into `out`; returns the number of bytes. Nothing is written to `out`
    /// unless the storage accepted the request.
    pub fn download_to<W: Write>(
        &self,
        id: &FileId,
        offset: i64,
        count: i64,
        out: impl FnOnce() -> io::Result<W>,
    ) -> NetResult<u64> {
        let addr = self.query_fetch(id)?;
        self.download_from(&addr, id, offset, count, out)
    }

    pub fn download_from<W: Write>(
        &self,
        addr: &HostPort,
        id: &FileId,
        offset: i64,
        count: i64,
        out: impl FnOnce() -> io::Result<W>,
    ) -> NetResult<u64> {
        let mut c = self.connect(addr)?;
        let req = DownloadReq {
            offset,
            count,
            group: id.group.clone(),
            filename: id.name.clone(),
        };
        net::send_request(&mut c.stream, cmd::DOWNLOAD_FILE, 0, &req.to_bytes())?;
        let h = net::recv_header(&mut c.stream).inspect_err(|e| status_err(addr, e))?;
        let mut w = out()?;
        let total = h.pkg_len as u64;
        let body = &mut (&mut c.stream).take(total);
        let n = self.with_progress(|report| progress::copy(body, &mut w, total, report))?;
        if n != h.pkg_len as u64 {
            return Err(NetError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "short download",
            )));
        }
        w.flush()?;
        self.release(c);
        Ok(n)
    }

    pub fn download_to_vec(&self, id: &FileId, offset: i64, count: i64) -> NetResult<Vec<u8>> {
        let mut v = Vec::new();
        self.download_to(id, offset, count, || Ok(&mut v))?;
        Ok(v)
    }

    fn storage_request(&self, addr: &HostPort, command: u8, body: &[u8]) -> NetResult<Vec<u8>> {
        let c = self.connect(addr)?;
        self.exchange(c, command, body)
    }

    pub fn delete(&self, id: &FileId) -> NetResult<()> {
        let addr = self.query_update(id)?;
        self.delete_on(&addr, id)
    }

    /// Delete `id` on the storage at `addr` (no tracker query).
    pub fn delete_on(&self, addr: &HostPort, id: &FileId) -> NetResult<()> {
        let req = GroupFileReq {
            group: id.group.clone(),
            filename: id.name.clone(),
        };
        self.storage_request(addr, cmd::DELETE_FILE, &req.to_bytes())
            .map(|_| ())
    }

    /// `op` is `b'O'` (overwrite) or `b'M'` (merge).
    pub fn set_metadata(&self, id: &FileId, items: &[MetaItem], op: u8) -> NetResult<()> {
        let addr = self.query_update(id)?;
        self.set_metadata_on(&addr, id, items, op)
    }

    pub fn set_metadata_on(
        &self,
        addr: &HostPort,
        id: &FileId,
        items: &[MetaItem],
        op: u8,
    ) -> NetResult<()> {
        let req = SetMetadataReq {
            op,
            group: id.group.clone(),
            filename: id.name.clone(),
            metadata: metadata::pack(items),
        };
        self.storage_request(addr, cmd::SET_METADATA, &req.to_bytes())
            .map(|_| ())
    }

    pub fn get_metadata(&self, id: &FileId) -> NetResult<Vec<MetaItem>> {
        let addr = self.query_update(id)?;
        let req = GroupFileReq {
            group: id.group.clone(),
            filename: id.name.clone(),
        };
        Ok(metadata::unpack(&self.storage_request(
            &addr,
            cmd::GET_METADATA,
            &req.to_bytes(),
        )?))
    }

    /// QUERY_FILE_INFO on the storage that has the file (flags: 1 no CRC, 2 keep silent).
    pub fn query_file_info(&self, id: &FileId, flags: u8) -> NetResult<FileInfoReply> {
        let addr = self.query_fetch(id)?;
        let mut c = self.connect(&addr)?;
        let req = GroupFileReq {
            group: id.group.clone(),
            filename: id.name.clone(),
        };
        net::send_request(&mut c.stream, cmd::QUERY_FILE_INFO, flags, &req.to_bytes())?;
        let h = net::recv_header(&mut c.stream).inspect_err(|e| status_err(&addr, e))?;
        let body = net::recv_body(&mut c.stream, &h)?;
        self.release(c);
        FileInfoReply::from_bytes(&body).map_err(|e| NetError::Protocol(e.to_string()))
    }

    /// What `fdfs_file_info` prints: decoded from the name for normal files, asked from the
    /// storage for appender and slave files and names carrying a server id.
    pub fn file_info(&self, id: &FileId, flags: u8) -> NetResult<FileInfo> {
        let rn = RemoteName::decode(&id.name).map_err(|_| NetError::Status(errno::EINVAL))?;
        // a name with a server id is resolved in the id table, when there is one (upstream)
        let (source_id, ip) = match &rn.payload.source {
            Source::Id(v) => (
                *v,
                self.cfg
                    .storage_ids
                    .by_id(&v.to_string())
                    .and_then(|e| e.ips.first().cloned()),
            ),
            Source::Ipv4(_) => (0, rn.payload.source.ip_text()),
        };
        let needs_server = matches!(rn.kind, FileKind::Appender | FileKind::Slave) || ip.is_none();
        if !needs_server {
            return Ok(FileInfo {
                from_server: false,
                kind: rn.kind,
                source_id,
                source_ip: ip.unwrap_or_default(),
                create_timestamp: rn.payload.timestamp as i64,
                file_size: rn.payload.file_size().unwrap_or(0),
                crc32: rn.payload.crc32,
            });
        }
        let r = self.query_file_info(id, flags)?;
        Ok(FileInfo {
            from_server: true,
            kind: rn.kind,
            source_id,
            source_ip: r.source_ip,
            create_timestamp: r.create_timestamp,
            file_size: r.file_size,
            crc32: r.crc32,
        })
    }

    pub fn append(&self, id: &FileId, content: Content) -> NetResult<()> {
        let addr = self.query_update(id)?;
        let mut head = AppendHead {
            name_len: id.name.len() as i64,
            file_size: content.len()? as i64,
        }
        .to_bytes();
        head.extend_from_slice(id.name.as_bytes());
        self.streamed(&addr, cmd::APPEND_FILE, &head, &content)
            .map(|_| ())
    }

    pub fn modify(&self, id: &FileId, offset: i64, content: Content) -> NetResult<()> {
        let addr = self.query_update(id)?;
        let mut head = ModifyHead {
            name_len: id.name.len() as i64,
            offset,
            file_size: content.len()? as i64,
        }
        .to_bytes();
        head.extend_from_slice(id.name.as_bytes());
        self.streamed(&addr, cmd::MODIFY_FILE, &head, &content)
            .map(|_| ())
    }

    pub fn truncate(&self, id: &FileId, new_size: i64) -> NetResult<()> {
        let addr = self.query_update(id)?;
        let req = TruncateReq {
            new_size,
            filename: id.name.clone(),
        };
        self.storage_request(&addr, cmd::TRUNCATE_FILE, &req.to_bytes())
            .map(|_| ())
    }

    pub fn regenerate_appender_filename(&self, id: &FileId) -> NetResult<FileId> {
        let addr = self.query_update(id)?;
        let body =
            self.storage_request(&addr, cmd::REGENERATE_APPENDER_FILENAME, id.name.as_bytes())?;
        let r = FileIdReply::from_bytes(&body).map_err(|e| NetError::Protocol(e.to_string()))?;
        Ok(FileId {
            group: r.group,
            name: r.filename,
        })
    }
}

pub use fdfs_common::http::anti_steal_token;

/// The `p` quantile (0..=1) of sorted microsecond latencies, in milliseconds (0 when empty):
/// rfdfs_bench's figures and its fleet's.
pub(crate) fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    sorted_us[i] as f64 / 1000.0
}

/// The command line of one of rfdfs's own tools (clap's conventions): `Err` carries the exit
/// code after clap printed the usage, `--help` or `--version`.
pub(crate) fn parse_command_line<T: clap::Parser>(args: &[String]) -> Result<T, i32> {
    T::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        e.exit_code()
    })
}

/// A download URL for `id` under `base` (`http://host:port`): `/M00/...`, or with `with_group`
/// `/<group>/M00/...`. With `token = Some((secret, ts))` the anti-steal arguments follow,
/// computed over the path without the group, which is what storages (and the nginx module)
/// check.
pub fn http_url(base: &str, id: &FileId, with_group: bool, token: Option<(&str, i64)>) -> String {
    let mut url = base.trim_end_matches('/').to_string();
    if with_group {
        url += &format!("/{}", id.group);
    }
    url += &format!("/{}", id.name);
    if let Some((secret, ts)) = token {
        url += &format!("?token={}&ts={ts}", anti_steal_token(&id.name, secret, ts));
    }
    url
}
