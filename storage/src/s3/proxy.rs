//! A request for another group's bucket (its name is that group's) is passed on to an ACTIVE
//! storage of that group, at the same S3 port, and its answer passed back: a client may send
//! every request to any storage. The request goes on as it came, its signature included (the
//! storages of a cluster share the credentials file), so the storage that answers checks it; it
//! is not signed again. Redirects were the other way: S3 clients do not follow a 307 to
//! another host for a signed request (botocore surfaces it as an error).
//!
//! Where that group's storages are comes from the trackers (SERVER_LIST_STORAGE), kept for
//! [`KEEP`]. A bucket of keys lives in the group whose storage created it and is served by
//! that group's storages only.

use super::request::{Done, Failure};
use super::server::S3Server;
use fdfs_common::codec::Message;
use fdfs_common::http::{Body, Request};
use fdfs_common::proto::client::{decode_storage_stats, ListStorageReq};
use fdfs_common::proto::{cmd, status};
use fdfs_common::s3::sigv4::uri_encode;
use fdfs_common::s3::S3Error;
use fdfs_common::server::Conn;
use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

/// How long where a group's storage is, once asked, is used without asking again.
pub(crate) const KEEP: Duration = Duration::from_secs(10);

/// Request headers not passed on: they are about this hop.
const HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "expect",
    "proxy-connection",
    "te",
    "upgrade",
];

impl S3Server {
    /// An ACTIVE storage of `group` the trackers name (not this one).
    pub(super) fn storage_of_group(&self, group: &str) -> Option<String> {
        if let Some((ip, at)) = self.groups.lock().get(group) {
            if at.elapsed() < KEEP {
                return Some(ip.clone());
            }
        }
        let st = &self.storage;
        let req = ListStorageReq {
            group: group.to_string(),
            storage_id: None,
        }
        .to_bytes();
        let found = st.cfg.tracker_servers.iter().find_map(|t| {
            let mut s = st.connect_to_host_port(t).ok()?;
            let body = fdfs_common::net::request(&mut s, cmd::SERVER_LIST_STORAGE, &req).ok()?;
            fdfs_common::net::quit(s);
            decode_storage_stats(&body)
                .ok()?
                .into_iter()
                .find(|m| m.status == status::ACTIVE)
                .map(|m| m.ip)
        })?;
        self.groups
            .lock()
            .insert(group.to_string(), (found.clone(), Instant::now()));
        Some(found)
    }

    /// Pass `req` (and its body) on to `ip`'s S3 port; its answer back to the client.
    pub(super) fn proxy(&self, conn: &mut Conn, req: &Request, body: &mut Body, ip: &str) -> Done {
        let port = self.cfg.server_port;
        let unreachable = |e: std::io::Error| {
            log::warn!("s3: pass a request on to {ip}:{port} fail: {e}");
            S3Error::slow_down(format!("the bucket's group could not be reached ({e})"))
        };
        let mut up = self.storage.connect_to(ip, port).map_err(unreachable)?;
        let mut head = format!("{} {}", req.method, uri_encode(&req.path, true));
        if !req.query.is_empty() {
            head.push('?');
            head.push_str(&req.query);
        }
        head.push_str(" HTTP/1.1\r\n");
        for (k, v) in &req.headers {
            if !HOP.contains(&k.as_str()) {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        head.push_str("Connection: close\r\n\r\n");
        up.write_all(head.as_bytes()).map_err(unreachable)?;
        // the body as it came (the client is told to go on, if it waits for that)
        std::io::copy(&mut body.reader(conn), &mut up).map_err(Failure::Io)?;
        let mut answer = BufReader::new(up);
        let mut line = String::new();
        let mut out = String::new();
        let mut len: Option<u64> = None;
        loop {
            line.clear();
            if answer.read_line(&mut line).map_err(unreachable)? == 0 {
                return Err(unreachable(std::io::ErrorKind::UnexpectedEof.into()).into());
            }
            if line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().ok();
            }
            if !lower.starts_with("connection:") {
                out.push_str(&line);
            }
        }
        out.push_str("Connection: keep-alive\r\n\r\n");
        conn.write_all(out.as_bytes())?;
        let mut rest = answer.take(if req.method == "HEAD" {
            0
        } else {
            len.unwrap_or(0)
        });
        std::io::copy(&mut rest, conn.stream_mut())?;
        Ok(())
    }
}
