//! The storage's HTTP file server on `http.server_port` (docs/protocol/config-cli-http.md section
//! 5): what upstream needs nginx plus fastdfs-nginx-module for. `GET`/`HEAD` of `/M00/..` and
//! `/<group>/M00/..`, conditional requests, ranges (multipart when several), the anti-steal token,
//! keep-alive; bodies leave by sendfile through the zero-copy module.
//!
//! A path is served only if it parses as a file name of this storage (store path index, two
//! upper-case hex subdirectories, a name without `/`), so nothing outside the store paths can
//! be reached whatever the URL holds.

use crate::storage::Storage;
use crate::store::Stored;
use crate::zero_copy;
use fdfs_common::config::HttpConfig;
use fdfs_common::file_id::{FileKind, LogicalName, RemoteName};
use fdfs_common::http::{self, respond_simple, respond_text, Ranges, Request};
use fdfs_common::proto::errno;
use fdfs_common::proto::listing::{ListFilesReq, MAX_PAGE};
use fdfs_common::server::{Conn, Flow, Handler};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

pub struct HttpServer {
    pub storage: Arc<Storage>,
    pub cfg: HttpConfig,
}

impl Handler for HttpServer {
    type Session = http::HttpSession;

    fn serve(&self, conn: &mut Conn, session: &mut http::HttpSession) -> Flow {
        http::serve_requests(conn, session, |conn, req, keep| {
            self.respond(conn, req, keep)
        })
    }
}

/// What a URL names on this storage.
struct Target {
    /// `Mxx/HH/HH/<name>`, the path the token covers
    logical: String,
    name: RemoteName,
}

impl HttpServer {
    /// `/M00/..` or `/<group>/M00/..`; `Err(status)` for a URL this storage cannot serve.
    fn target(&self, path: &str) -> Result<Target, u16> {
        let rest = path.strip_prefix('/').ok_or(400u16)?;
        let logical = if rest.starts_with('M') && rest.as_bytes().get(3) == Some(&b'/') {
            rest
        } else {
            let (group, logical) = rest.split_once('/').ok_or(400u16)?;
            if group != self.storage.group {
                return Err(404);
            }
            logical
        };
        LogicalName::parse(logical, self.storage.store.paths.len()).map_err(|_| 400u16)?;
        let name = RemoteName::decode(logical).map_err(|_| 400u16)?;
        Ok(Target {
            logical: logical.to_string(),
            name,
        })
    }

    fn respond(&self, conn: &mut Conn, req: &Request, keep: bool) -> io::Result<()> {
        if !matches!(req.method.as_str(), "GET" | "HEAD") {
            let mut out = "HTTP/1.1 405 Method Not Allowed\r\nServer: rfdfs\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\n".to_string();
            out += if keep {
                "\r\n"
            } else {
                "Connection: close\r\n\r\n"
            };
            return conn.write_all(out.as_bytes());
        }
        if matches!(req.path.as_str(), "/list" | "/stat") {
            return self.listing(conn, req, keep);
        }
        let target = match self.target(&req.path) {
            Ok(t) => t,
            Err(status) => return respond_simple(conn, status, keep),
        };
        let bypassed = self
            .cfg
            .bypass_header
            .as_ref()
            .is_some_and(|(name, value)| req.header(name) == Some(value.as_str()));
        if self.cfg.check_token && !bypassed && !self.token_passes(req, &target) {
            return match &self.cfg.token_check_fail {
                Some(p) => {
                    let opened = File::open(p).and_then(|file| {
                        let size = file.metadata()?.len();
                        Ok(Stored {
                            file: std::sync::Arc::new(file),
                            start: 0,
                            size,
                            trunk: None,
                        })
                    });
                    match opened {
                        Ok(_) => self.send_file(conn, req, opened, p, None, keep),
                        // gone since startup: the plain refusal, as without the file
                        Err(_) => respond_simple(conn, 403, keep),
                    }
                }
                None => respond_simple(conn, 403, keep),
            };
        }
        if self.storage.expired(&target.logical) {
            return respond_simple(conn, 404, keep);
        }
        let ln = LogicalName::parse(&target.logical, self.storage.store.paths.len())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let path = self.storage.store.local_path(&ln);
        let opened = self.storage.store.open_stored(&ln, &target.logical);
        self.send_file(conn, req, opened, &path, Some(&target), keep)
    }

    /// `GET /list` and `GET /stat`: the listing index (`crate::listing`), the parameters
    /// those of LIST_FILES (`prefix`, `since`, `until`, `source`, `limit` (default 1000),
    /// `token`), the answer its text; 503 while the index is rebuilt.
    fn listing(&self, conn: &mut Conn, req: &Request, keep: bool) -> io::Result<()> {
        let num = |k: &str| req.param(k).and_then(|v| v.parse::<i64>().ok());
        let limit = num("limit").unwrap_or(1000);
        if !(1..=MAX_PAGE as i64).contains(&limit) {
            return respond_simple(conn, 400, keep);
        }
        let q = ListFilesReq {
            group: self.storage.group.clone(),
            limit: limit as u64,
            since: num("since").unwrap_or(0),
            until: num("until").unwrap_or(0),
            counts_only: req.path == "/stat",
            prefix: req.param("prefix").unwrap_or_default(),
            source: req.param("source").unwrap_or_default(),
            token: req.param("token").unwrap_or_default(),
        };
        match self.storage.list_files(&q) {
            Ok(text) => respond_text(conn, 200, &text, keep),
            Err(r) if r.status == errno::EBUSY => respond_simple(conn, 503, keep),
            Err(_) => respond_simple(conn, 500, keep),
        }
    }

    fn token_passes(&self, req: &Request, t: &Target) -> bool {
        let (Some(token), Some(ts)) = (req.param("token"), req.param("ts")) else {
            return false;
        };
        let Ok(ts) = ts.parse::<i64>() else {
            return false;
        };
        http::token_ok(
            &t.logical,
            &self.cfg.secret_key,
            &token,
            ts,
            self.cfg.token_ttl,
            fdfs_common::now(),
        )
    }

    /// Serve what was opened at `path`: a stored file (`target`; a trunk file's slot) or the
    /// token-failure file. Trunk slots are sent from the trunk file in place, like any file.
    fn send_file(
        &self,
        conn: &mut Conn,
        req: &Request,
        opened: io::Result<Stored>,
        path: &std::path::Path,
        target: Option<&Target>,
        keep: bool,
    ) -> io::Result<()> {
        // only GET and HEAD get this far (`respond`)
        let head_only = req.method == "HEAD";
        let stored = match opened {
            Ok(s) => s,
            Err(e) if crate::store::Store::is_absent(&e) => return respond_simple(conn, 404, keep),
            Err(e) => {
                log::error!("http: open {} fail: {e}", path.display());
                return respond_simple(conn, 500, keep);
            }
        };
        let md = stored.file.metadata()?;
        let (file, start, size) = (&stored.file, stored.start, stored.size);
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // a normal file never changes: its ID's timestamp and CRC describe it; appender and
        // slave files are described by their inode's mtime
        let (last_modified, etag) = match target {
            Some(t) if matches!(t.name.kind, FileKind::Normal | FileKind::Trunk) => (
                t.name.payload.timestamp as i64,
                format!("\"{:08x}-{size:x}\"", t.name.payload.crc32),
            ),
            _ => (md.mtime(), format!("\"{:x}-{size:x}\"", md.mtime())),
        };
        let content_type = self.cfg.content_type(&file_name).to_string();
        let mut common = format!(
            "Server: rfdfs\r\nLast-Modified: {}\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\n",
            http::http_date(last_modified)
        );
        if let Some(f) = req
            .param("filename")
            .filter(|f| !f.contains(['"', '\r', '\n']))
        {
            common += &format!("Content-Disposition: attachment; filename=\"{f}\"\r\n");
        }
        common += if keep {
            "Connection: keep-alive\r\n"
        } else {
            "Connection: close\r\n"
        };
        let not_modified = match req.header("if-none-match") {
            Some(v) => v.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t == etag || t.strip_prefix("W/") == Some(etag.as_str())
            }),
            None => req
                .header("if-modified-since")
                .and_then(http::parse_http_date)
                .is_some_and(|since| last_modified <= since),
        };
        if not_modified {
            return conn.write_all(format!("HTTP/1.1 304 Not Modified\r\n{common}\r\n").as_bytes());
        }
        let ranges = match req.header("if-range") {
            // a range only applies to the version the client has
            Some(v) if v.trim() != etag => Ranges::Whole,
            _ => http::parse_ranges(req.header("range"), size),
        };
        match ranges {
            Ranges::Whole => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\n{common}Content-Type: {content_type}\r\nContent-Length: {size}\r\n\r\n"
                );
                self.body(conn, &head, file, start, if head_only { 0 } else { size })
            }
            Ranges::Unsatisfiable => conn.write_all(
                format!(
                    "HTTP/1.1 416 Range Not Satisfiable\r\n{common}Content-Range: bytes */{size}\r\nContent-Length: 0\r\n\r\n"
                )
                .as_bytes(),
            ),
            Ranges::Parts(parts) if parts.len() == 1 => {
                let (a, b) = parts[0];
                let len = b - a + 1;
                let head = format!(
                    "HTTP/1.1 206 Partial Content\r\n{common}Content-Type: {content_type}\r\nContent-Range: bytes {a}-{b}/{size}\r\nContent-Length: {len}\r\n\r\n"
                );
                self.body(conn, &head, file, start + a, if head_only { 0 } else { len })
            }
            Ranges::Parts(_) if !self.cfg.multi_range => conn.write_all(
                format!(
                    "HTTP/1.1 416 Range Not Satisfiable\r\n{common}Content-Range: bytes */{size}\r\nContent-Length: 0\r\n\r\n"
                )
                .as_bytes(),
            ),
            Ranges::Parts(parts) => {
                let boundary = format!("{:016x}", fdfs_common::now_micros());
                let part_heads: Vec<String> = parts
                    .iter()
                    .map(|(a, b)| {
                        format!(
                            "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {a}-{b}/{size}\r\n\r\n"
                        )
                    })
                    .collect();
                let tail = format!("\r\n--{boundary}--\r\n");
                let total: u64 = part_heads.iter().map(|h| h.len() as u64).sum::<u64>()
                    + parts.iter().map(|(a, b)| b - a + 1).sum::<u64>()
                    + tail.len() as u64;
                let head = format!(
                    "HTTP/1.1 206 Partial Content\r\n{common}Content-Type: multipart/byteranges; boundary={boundary}\r\nContent-Length: {total}\r\n\r\n"
                );
                conn.write_all(head.as_bytes())?;
                if head_only {
                    return Ok(());
                }
                for (h, (a, b)) in part_heads.iter().zip(&parts) {
                    self.body(conn, h, file, start + a, b - a + 1)?;
                }
                conn.write_all(tail.as_bytes())
            }
        }
    }

    fn body(
        &self,
        conn: &mut Conn,
        head: &str,
        file: &File,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        zero_copy::send_with_header(conn.stream_mut(), head.as_bytes(), file, offset, len)?;
        conn.stream_mut().flush()
    }
}
