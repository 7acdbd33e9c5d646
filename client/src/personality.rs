//! How the ecosystem's clients put requests on the wire, reproduced write for write, so that
//! `rfdfs_bench` measures what their users see. A server that is fast for a client writing each
//! request in one piece with TCP_NODELAY can still stall 40 ms per request for one that writes
//! a header and a body separately with Nagle's algorithm on (the delayed-ACK trap).
//!
//! | personality | TCP_NODELAY | upload request | query / download request | connections |
//! |---|---|---|---|---|
//! | `rfdfs` | on | one write | one write | pooled (this crate's client) |
//! | `libfdfsclient` (C tools, nginx module, PHP) | off | header + fixed part, then content | one write | kept per thread |
//! | `java` (fastdfs-client-java) | off | header + fixed part, then content | one write | pooled |
//! | `py3fdfs` | off | header, fixed part, content: three writes | header, then body | tracker kept, a new storage connection per operation, closed without QUIT |

use crate::file_id::FileId;
use fdfs_common::codec::Message;
use fdfs_common::config::HostPort;
use fdfs_common::net::{self, NetError, NetResult};
use fdfs_common::proto::client::{FetchReply, GroupFileReq, StoreReply};
use fdfs_common::proto::storage::{DownloadReq, FileIdReply, UploadReq};
use fdfs_common::proto::{cmd, Header, HEADER_LEN};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A client whose request pattern `rfdfs_bench` reproduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    Rfdfs,
    Libfdfsclient,
    Java,
    Py3fdfs,
}

impl Personality {
    pub const ALL: [Personality; 4] = [
        Personality::Rfdfs,
        Personality::Libfdfsclient,
        Personality::Java,
        Personality::Py3fdfs,
    ];

    pub fn parse(name: &str) -> Option<Personality> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Personality::Rfdfs => "rfdfs",
            Personality::Libfdfsclient => "libfdfsclient",
            Personality::Java => "java",
            Personality::Py3fdfs => "py3fdfs",
        }
    }

    /// The pieces an upload request (header, `fixed_len` bytes of fixed part, content) is
    /// written in.
    fn upload_writes(self, request: &[u8], fixed_len: usize) -> Vec<&[u8]> {
        let (head, content) = request.split_at(HEADER_LEN + fixed_len);
        match self {
            Personality::Rfdfs => vec![request],
            Personality::Libfdfsclient | Personality::Java => vec![head, content],
            Personality::Py3fdfs => {
                let (header, fixed) = head.split_at(HEADER_LEN);
                vec![header, fixed, content]
            }
        }
    }

    /// The pieces a request with a small body is written in.
    fn request_writes(self, request: &[u8]) -> Vec<&[u8]> {
        match self {
            Personality::Py3fdfs => {
                let (header, body) = request.split_at(HEADER_LEN);
                vec![header, body]
            }
            _ => vec![request],
        }
    }

    fn keeps_storage_connections(self) -> bool {
        self != Personality::Py3fdfs
    }
}

/// One client thread's connections, kept as that client keeps them.
pub struct WireClient {
    personality: Personality,
    tracker: HostPort,
    timeout: Duration,
    tracker_conn: Option<TcpStream>,
    storage_conns: HashMap<String, TcpStream>,
}

impl WireClient {
    pub fn new(personality: Personality, tracker: HostPort, timeout: Duration) -> WireClient {
        WireClient {
            personality,
            tracker,
            timeout,
            tracker_conn: None,
            storage_conns: HashMap::new(),
        }
    }

    fn connect(&self, addr: &HostPort) -> io::Result<TcpStream> {
        let s = net::connect(&addr.host, addr.port, None, self.timeout, self.timeout)?;
        // net::connect sets TCP_NODELAY as rfdfs's own client does; these clients do not
        s.set_nodelay(self.personality == Personality::Rfdfs)?;
        Ok(s)
    }

    /// Write `pieces` one write each, then read one response body.
    fn exchange(s: &mut TcpStream, pieces: &[&[u8]]) -> NetResult<Vec<u8>> {
        for p in pieces {
            s.write_all(p)?;
        }
        let h = net::recv_header(s)?;
        net::recv_body(s, &h)
    }

    /// A request to the tracker on the kept connection (reconnecting once if it broke).
    fn tracker_request(&mut self, command: u8, body: &[u8]) -> NetResult<Vec<u8>> {
        let request = Header::frame(command, 0, body);
        let pieces = self.personality.request_writes(&request);
        if self.tracker_conn.is_none() {
            self.tracker_conn = Some(self.connect(&self.tracker.clone())?);
        }
        let r = Self::exchange(self.tracker_conn.as_mut().expect("connected"), &pieces);
        if matches!(r, Err(NetError::Io(_))) {
            self.tracker_conn = None;
        }
        r
    }

    /// Run `op` on a connection to `addr`: the kept one, or a new one closed afterwards.
    fn with_storage<T>(
        &mut self,
        addr: &HostPort,
        op: impl FnOnce(&mut TcpStream) -> NetResult<T>,
    ) -> NetResult<T> {
        let key = addr.to_string();
        let mut s = match self.storage_conns.remove(&key) {
            Some(s) => s,
            None => self.connect(addr)?,
        };
        let r = op(&mut s);
        if self.personality.keeps_storage_connections() && !matches!(r, Err(NetError::Io(_))) {
            self.storage_conns.insert(key, s);
        }
        r
    }

    pub fn upload(&mut self, content: &[u8], ext: &str) -> NetResult<FileId> {
        let store = StoreReply::from_bytes(
            &self.tracker_request(cmd::QUERY_STORE_WITHOUT_GROUP_ONE, &[])?,
        )?;
        let addr = HostPort::new(store.server.ip.clone(), store.server.port as u16);
        let fixed = UploadReq {
            store_path_index: store.store_path_index,
            file_size: content.len() as i64,
            ext: ext.to_string(),
        }
        .to_bytes();
        let mut body = fixed.clone();
        body.extend_from_slice(content);
        let request = Header::frame(cmd::UPLOAD_FILE, 0, &body);
        let pieces = self.personality.upload_writes(&request, fixed.len());
        let reply = self.with_storage(&addr, |s| Self::exchange(s, &pieces))?;
        let id = FileIdReply::from_bytes(&reply)?;
        Ok(FileId {
            group: id.group,
            name: id.filename,
        })
    }

    /// Download the whole file; returns its size.
    pub fn download(&mut self, id: &FileId) -> NetResult<u64> {
        let query = GroupFileReq {
            group: id.group.clone(),
            filename: id.name.clone(),
        }
        .to_bytes();
        let fetch = FetchReply::from_bytes(&self.tracker_request(cmd::QUERY_FETCH_ONE, &query)?)?;
        let server = fetch
            .servers
            .first()
            .ok_or_else(|| NetError::Protocol("fetch reply names no storage".into()))?;
        let addr = HostPort::new(server.ip.clone(), server.port as u16);
        let request = download_request(id);
        let pieces = self.personality.request_writes(&request);
        self.with_storage(&addr, |s| {
            for p in &pieces {
                s.write_all(p)?;
            }
            let h = net::recv_header(s)?;
            let got = io::copy(&mut s.take(h.pkg_len as u64), &mut io::sink())?;
            if got != h.pkg_len as u64 {
                return Err(NetError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            Ok(got)
        })
    }
}

/// The whole DOWNLOAD_FILE request for all of `id`.
pub fn download_request(id: &FileId) -> Vec<u8> {
    let body = DownloadReq {
        offset: 0,
        count: 0,
        group: id.group.clone(),
        filename: id.name.clone(),
    };
    Header::frame(cmd::DOWNLOAD_FILE, 0, &body.to_bytes())
}
