//! The object reads and deletes: GetObject and HeadObject (a file's bytes, sent from the file
//! in place, a trunk file's slot included, as the HTTP port sends them), DeleteObject and
//! DeleteObjects (the ordinary delete, so its binlog line reaches every member).
//!
//! Every answer naming an object carries its FastDFS file ID (`x-rfdfs-file-id`): the same
//! bytes through FastDFS clients, the HTTP port and the nginx module. In the group's bucket a
//! file's FastDFS metadata is given as `x-amz-meta-<name>` headers (where name and value can
//! be headers) and its ETag is made from its file ID; an object written through S3 has the
//! ETag, headers and user metadata it was written with.

use super::body::read_small;
use super::list::etag_of;
use super::names::Kind;
use super::reply;
use super::request::{Ctx, Done};
use super::server::S3Server;
use crate::storage::meta_path;
use crate::store::Store;
use crate::zero_copy;
use fdfs_common::file_id::{FileKind, LogicalName, RemoteName};
use fdfs_common::http::{self, Body, Ranges};
use fdfs_common::s3::auth::Auth;
use fdfs_common::s3::meta::ObjectMeta;
use fdfs_common::s3::xml::{all_texts, Xml};
use fdfs_common::s3::S3Error;
use fdfs_common::server::Conn;
use std::io::Write;
use std::os::unix::fs::MetadataExt;

/// The largest DeleteObjects document read (1,000 keys of 1,024 bytes, with their markup).
const MAX_DELETE_DOCUMENT: u64 = 2 << 20;

/// Whether a header may carry `s` as it is.
fn header_safe(s: &[u8]) -> bool {
    s.iter().all(|&b| (0x20..0x7f).contains(&b))
}

/// Whether `etag` is among `list` (`If-Match` / `If-None-Match`: `*` or quoted tags, weak or
/// not).
fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').any(|t| {
        let t = t.trim();
        let t = t.strip_prefix("W/").unwrap_or(t);
        t == "*" || t == etag || t.trim_matches('"') == etag.trim_matches('"')
    })
}

/// A file's FastDFS metadata as `x-amz-meta-*` headers (those that can be headers).
fn fastdfs_meta_headers(meta: &[u8]) -> Vec<(String, String)> {
    fdfs_common::metadata::unpack(meta)
        .into_iter()
        .filter(|(name, value)| {
            !name.is_empty()
                && name
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
                && header_safe(value)
        })
        .map(|(name, value)| {
            (
                format!(
                    "x-amz-meta-{}",
                    String::from_utf8_lossy(&name).to_ascii_lowercase()
                ),
                String::from_utf8_lossy(&value).into_owned(),
            )
        })
        .collect()
}

impl S3Server {
    /// GetObject (HeadObject with `head_only`) of `key` in a bucket of `kind`.
    pub(super) fn get_object(
        &self,
        conn: &mut Conn,
        ctx: &Ctx<'_>,
        kind: Kind,
        bucket: &str,
        key: &str,
        head_only: bool,
    ) -> Done {
        let storage = &self.storage;
        let name = match kind {
            Kind::Group => key.to_string(),
            Kind::Named => self
                .object_of(bucket, key)
                .ok_or_else(S3Error::no_such_key)?,
        };
        let paths = storage.store.paths.len();
        let (Ok(ln), Ok(rn)) = (LogicalName::parse(&name, paths), RemoteName::decode(&name)) else {
            return Err(S3Error::no_such_key().into());
        };
        if storage.expired(&name) {
            return Err(S3Error::no_such_key().into());
        }
        let path = storage.store.local_path(&ln);
        let stored = match storage.store.open_stored(&ln, &name) {
            Ok(s) => s,
            Err(e) if Store::is_absent(&e) => return Err(S3Error::no_such_key().into()),
            Err(e) => {
                log::error!("s3: open {} fail: {e}", path.display());
                return Err(S3Error::internal("the file could not be opened").into());
            }
        };
        let size = stored.size;
        let meta_bytes = std::fs::read(meta_path(&path)).unwrap_or_default();
        let object = match kind {
            Kind::Named => ObjectMeta::from_items(&fdfs_common::metadata::unpack(&meta_bytes)),
            Kind::Group => None,
        };
        let last_modified = match (&object, rn.kind) {
            (Some(o), _) => (o.written / 1_000_000) as i64,
            (None, FileKind::Normal | FileKind::Trunk) => i64::from(rn.payload.timestamp),
            (None, _) => stored.file.metadata().map(|m| m.mtime()).unwrap_or(0),
        };
        let etag = match &object {
            Some(o) => format!("\"{}\"", o.etag),
            None => etag_of(rn.payload.crc32, size as i64),
        };
        let req = ctx.req;
        // conditionals, in S3's order: a failed If-Match / If-Unmodified-Since is 412, a
        // matched If-None-Match / unmodified If-Modified-Since 304
        if let Some(m) = req.header("if-match") {
            if !etag_matches(m, &etag) {
                return Err(S3Error::precondition_failed().into());
            }
        } else if let Some(t) = req
            .header("if-unmodified-since")
            .and_then(http::parse_http_date)
        {
            if last_modified > t {
                return Err(S3Error::precondition_failed().into());
            }
        }
        let not_modified = match req.header("if-none-match") {
            Some(m) => etag_matches(m, &etag),
            None => req
                .header("if-modified-since")
                .and_then(http::parse_http_date)
                .is_some_and(|t| last_modified <= t),
        };
        let mut headers: Vec<(String, String)> = vec![
            ("Last-Modified".into(), http::http_date(last_modified)),
            ("ETag".into(), etag),
            ("Accept-Ranges".into(), "bytes".into()),
            (
                "x-rfdfs-file-id".into(),
                format!("{}/{name}", storage.group),
            ),
        ];
        if not_modified {
            return reply::empty(conn, ctx, 304, &as_refs(&headers));
        }
        let mut kept: Vec<(String, String)> = match &object {
            Some(o) => o.headers.clone(),
            None => Vec::new(),
        };
        if !kept.iter().any(|(h, _)| h == "content-type") {
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            kept.push((
                "content-type".into(),
                storage.cfg.http.content_type(&file_name).to_string(),
            ));
        }
        for (h, v) in kept {
            let param = format!("response-{h}");
            let v = ctx.param(&param).map(str::to_string).unwrap_or(v);
            if header_safe(v.as_bytes()) {
                headers.push((h, v));
            }
        }
        for h in [
            "content-disposition",
            "content-encoding",
            "content-language",
            "cache-control",
            "expires",
        ] {
            let already = headers.iter().any(|(k, _)| k == h);
            if let Some(v) = ctx.param(&format!("response-{h}")).filter(|_| !already) {
                if header_safe(v.as_bytes()) {
                    headers.push((h.to_string(), v.to_string()));
                }
            }
        }
        match &object {
            Some(o) => headers.extend(
                o.user
                    .iter()
                    .filter(|(_, v)| header_safe(v.as_bytes()))
                    .map(|(n, v)| (format!("x-amz-meta-{n}"), v.clone())),
            ),
            None => headers.extend(fastdfs_meta_headers(&meta_bytes)),
        }
        let (status, offset, len) = match http::parse_ranges(req.header("range"), size) {
            Ranges::Unsatisfiable => return Err(S3Error::invalid_range().into()),
            Ranges::Parts(parts) if parts.len() == 1 => {
                let (a, b) = parts[0];
                headers.push(("Content-Range".into(), format!("bytes {a}-{b}/{size}")));
                (206, a, b - a + 1)
            }
            // S3 answers several ranges with the whole object
            _ => (200, 0, size),
        };
        let mut head = reply::head(ctx, status, &as_refs(&headers));
        head.push_str(&format!("Content-Length: {len}\r\n\r\n"));
        zero_copy::send_with_header(
            conn.stream_mut(),
            head.as_bytes(),
            &stored.file,
            stored.start + offset,
            if head_only { 0 } else { len },
        )?;
        conn.stream_mut().flush()?;
        Ok(())
    }

    pub(super) fn delete_object(
        &self,
        conn: &mut Conn,
        ctx: &Ctx<'_>,
        kind: Kind,
        bucket: &str,
        key: &str,
    ) -> Done {
        self.delete_key(kind, bucket, key)?;
        reply::empty(conn, ctx, 204, &[])
    }

    /// DeleteObjects: each key of the document deleted, each answered.
    pub(super) fn delete_objects(
        &self,
        conn: &mut Conn,
        ctx: &Ctx<'_>,
        auth: Auth<'_>,
        kind: Kind,
        bucket: &str,
        body: &mut Body,
    ) -> Done {
        let doc = read_small(conn, ctx, auth.payload, body, MAX_DELETE_DOCUMENT)?;
        let doc = String::from_utf8(doc).map_err(|_| S3Error::malformed_xml())?;
        if !doc.contains("<Delete") {
            return Err(S3Error::malformed_xml().into());
        }
        let quiet = all_texts(&doc, "Quiet")
            .first()
            .is_some_and(|q| q == "true");
        let keys = all_texts(&doc, "Key");
        if keys.len() > 1000 {
            return Err(S3Error::malformed_xml().into());
        }
        let mut x = Xml::new("DeleteResult");
        for key in keys {
            match self.delete_key(kind, bucket, &key) {
                Ok(()) if quiet => {}
                Ok(()) => {
                    x.open("Deleted").elem("Key", &key).close("Deleted");
                }
                Err(e) => {
                    x.open("Error")
                        .elem("Key", &key)
                        .elem("Code", e.code)
                        .elem("Message", &e.message)
                        .close("Error");
                }
            }
        }
        reply::xml(conn, ctx, 200, &x.finish("DeleteResult"))
    }
}

/// Headers as [`reply::head`] takes them.
fn as_refs(h: &[(String, String)]) -> Vec<(&str, String)> {
    h.iter().map(|(k, v)| (k.as_str(), v.clone())).collect()
}
