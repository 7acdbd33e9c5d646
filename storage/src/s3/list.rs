//! ListObjects (v1 and v2) and ListObjectVersions over the listing index (`crate::listing`):
//! the group's files in name order, which is S3's key order for FastDFS names (ASCII), or a
//! bucket's keys in byte order from the index's map of S3 names.
//!
//! A delimiter rolls the keys beneath each common prefix into one entry; the walk then jumps
//! past that prefix instead of reading every key beneath it. A page ends after `max-keys`
//! entries (keys and common prefixes, at most 1,000); v2's continuation token is where the
//! next page starts, base64 of the last key or prefix given (a prefix marked so the next walk
//! starts past every key beneath it). Expired files are not listed: GET answers them
//! NoSuchKey.

use super::names::Kind;
use super::reply;
use super::request::{Ctx, Done};
use super::server::S3Server;
use crate::listing::entry::Entry;
use crate::listing::index::size_of;
use base64::Engine;
use fdfs_common::config::expire_rule::file_expiry;
use fdfs_common::file_id::RemoteName;
use fdfs_common::s3::sigv4::uri_encode;
use fdfs_common::s3::xml::{iso8601, Xml};
use fdfs_common::s3::S3Error;
use fdfs_common::server::Conn;

/// S3's most keys a page.
const MAX_KEYS: usize = 1000;

/// A walk resumed past every key beneath `prefix`.
fn past(prefix: &str) -> String {
    format!("{prefix}{}", char::MAX)
}

/// One object as listed.
pub(super) struct Listed {
    pub key: String,
    pub size: i64,
    pub created: i64,
    pub etag: String,
}

/// What a file's ETag is through S3: its CRC32 and size (quoted). Not an MD5, so that clients
/// that compare an ETag with the MD5 of what they read do not take it for one.
pub(super) fn etag_of(crc32: u32, size: i64) -> String {
    format!("\"{crc32:08x}-{size:x}\"")
}

impl Listed {
    fn of(name: &str, e: &Entry) -> Option<Listed> {
        let rn = RemoteName::decode(name).ok()?;
        let size = size_of(name, e);
        Some(Listed {
            key: name.to_string(),
            size,
            created: i64::from(rn.payload.timestamp),
            etag: etag_of(rn.payload.crc32, size),
        })
    }
}

/// A page of a listing.
#[derive(Default)]
pub(super) struct Page {
    pub contents: Vec<Listed>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    /// where the next page starts (the last key, or `past` the last prefix)
    pub resume: Option<String>,
    /// the last key or prefix given, as S3 names it (v1's `NextMarker`)
    pub last: Option<String>,
}

/// What a listing request asks, shared by ListObjects and ListObjectVersions.
struct Params<'c> {
    prefix: &'c str,
    delimiter: &'c str,
    max: usize,
    /// `encoding-type=url`
    url: bool,
}

impl<'c> Params<'c> {
    fn of(ctx: &'c Ctx<'_>) -> Result<Params<'c>, S3Error> {
        Ok(Params {
            prefix: ctx.param("prefix").unwrap_or_default(),
            delimiter: ctx.param("delimiter").unwrap_or_default(),
            max: max_keys(ctx)?,
            url: encoding(ctx)?,
        })
    }

    /// `s` as the answer gives it.
    fn enc(&self, s: &str) -> String {
        if self.url {
            uri_encode(s, true)
        } else {
            s.to_string()
        }
    }

    /// Where a v1 marker (or key marker) resumes: past a common prefix's keys when it is one.
    fn after_marker(&self, marker: &str) -> String {
        if !self.delimiter.is_empty() && marker.ends_with(self.delimiter) {
            past(marker)
        } else {
            marker.to_string()
        }
    }

    /// The elements every listing answer has after its own: the delimiter, the encoding, and
    /// whether it is truncated.
    fn common(&self, x: &mut Xml, truncated: bool) {
        if !self.delimiter.is_empty() {
            x.elem("Delimiter", self.enc(self.delimiter));
        }
        if self.url {
            x.elem("EncodingType", "url");
        }
        x.elem("IsTruncated", truncated.to_string());
    }

    fn prefixes(&self, x: &mut Xml, page: &Page) {
        for p in &page.prefixes {
            x.open("CommonPrefixes")
                .elem("Prefix", self.enc(p))
                .close("CommonPrefixes");
        }
    }
}

impl Page {
    /// Take the next key (`Some(resume)`: a common prefix was taken, go on from there), or
    /// say the page is full (`Err(())`).
    fn take(
        &mut self,
        key: &str,
        prefix: &str,
        delimiter: &str,
        max: usize,
        listed: impl FnOnce() -> Listed,
    ) -> Result<Option<String>, ()> {
        if self.contents.len() + self.prefixes.len() >= max {
            self.truncated = true;
            return Err(());
        }
        let rolled = (!delimiter.is_empty())
            .then(|| key[prefix.len()..].find(delimiter))
            .flatten();
        if let Some(i) = rolled {
            let cp = key[..prefix.len() + i + delimiter.len()].to_string();
            self.resume = Some(past(&cp));
            self.last = Some(cp.clone());
            self.prefixes.push(cp);
            return Ok(self.resume.clone());
        }
        self.resume = Some(key.to_string());
        self.last = Some(key.to_string());
        self.contents.push(listed());
        Ok(None)
    }
}

impl S3Server {
    /// Up to `max` keys and common prefixes of `bucket` after `after` whose keys start with
    /// `prefix`.
    pub(super) fn walk(
        &self,
        kind: Kind,
        bucket: &str,
        prefix: &str,
        delimiter: &str,
        after: &str,
        max: usize,
    ) -> Result<Page, S3Error> {
        match kind {
            Kind::Group => self.walk_group(prefix, delimiter, after, max),
            Kind::Named => Ok(self.walk_keys(bucket, prefix, delimiter, after, max)),
        }
    }

    /// [`S3Server::walk`] over a bucket of keys.
    fn walk_keys(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: &str,
        after: &str,
        max: usize,
    ) -> Page {
        let st = &self.storage;
        st.listing.catch_up(st.binlog.visible_end());
        let index = st.listing.index.read();
        let mut page = Page::default();
        let Some(keys) = index.keys().get(bucket) else {
            return page;
        };
        let rules = &st.cfg.expire_rules;
        let now = fdfs_common::now();
        let mut from = if prefix > after {
            prefix.to_string()
        } else {
            after.to_string()
        };
        let mut inclusive = prefix > after;
        'walk: loop {
            let lower = if inclusive {
                std::ops::Bound::Included(from.as_str())
            } else {
                std::ops::Bound::Excluded(from.as_str())
            };
            for (key, files) in keys.range::<str, _>((lower, std::ops::Bound::Unbounded)) {
                if !key.starts_with(prefix) {
                    break 'walk;
                }
                let Some(((written, name), file)) = files.iter().next_back() else {
                    continue;
                };
                if key.is_empty() {
                    continue;
                }
                let Ok(rn) = RemoteName::decode(name) else {
                    continue;
                };
                let created = i64::from(rn.payload.timestamp);
                if file_expiry(file.expires, rules, name, created).is_some_and(|t| t <= now) {
                    continue;
                }
                let listed = || Listed {
                    key: key.clone(),
                    size: rn.payload.file_size().unwrap_or(0),
                    created: (*written / 1_000_000) as i64,
                    etag: format!("\"{}\"", file.etag),
                };
                match page.take(key, prefix, delimiter, max, listed) {
                    Err(()) => break 'walk,
                    Ok(Some(resume)) => {
                        from = resume;
                        inclusive = false;
                        continue 'walk;
                    }
                    Ok(None) => {}
                }
            }
            break;
        }
        if !page.truncated {
            page.resume = None;
        }
        page
    }

    /// [`S3Server::walk`] over the group's files.
    fn walk_group(
        &self,
        prefix: &str,
        delimiter: &str,
        after: &str,
        max: usize,
    ) -> Result<Page, S3Error> {
        let listing = &self.storage.listing;
        if !listing.ready() {
            return Err(S3Error::slow_down(
                "the listing index is being rebuilt from the binlog",
            ));
        }
        listing.catch_up(self.storage.binlog.visible_end());
        let index = listing.index.read();
        let rules = &self.storage.cfg.expire_rules;
        let now = fdfs_common::now();
        let mut page = Page::default();
        let mut after = after.to_string();
        loop {
            let mut jump = None;
            index
                .scan(&after, prefix, |name, e| {
                    let Some(l) = Listed::of(name, e) else {
                        return true;
                    };
                    if file_expiry(e.expires, rules, name, l.created).is_some_and(|t| t <= now) {
                        return true;
                    }
                    match page.take(name, prefix, delimiter, max, || l) {
                        Err(()) => false,
                        Ok(Some(resume)) => {
                            jump = Some(resume);
                            false
                        }
                        Ok(None) => true,
                    }
                })
                .map_err(|e| S3Error::internal(format!("read the listing index: {e}")))?;
            match jump {
                Some(j) => after = j,
                None => break,
            }
        }
        if !page.truncated {
            page.resume = None;
        }
        Ok(page)
    }

    /// ListObjects (`v2`: ListObjectsV2).
    pub(super) fn list_objects(
        &self,
        conn: &mut Conn,
        ctx: &Ctx<'_>,
        kind: Kind,
        bucket: &str,
        v2: bool,
    ) -> Done {
        let p = Params::of(ctx)?;
        let after = match (v2, ctx.param("continuation-token")) {
            (true, Some(t)) => decode_token(t)?,
            (true, None) => ctx.param("start-after").unwrap_or_default().to_string(),
            (false, _) => p.after_marker(ctx.param("marker").unwrap_or_default()),
        };
        let page = self.walk(kind, bucket, p.prefix, p.delimiter, &after, p.max)?;
        let mut x = Xml::new("ListBucketResult");
        x.elem("Name", bucket).elem("Prefix", p.enc(p.prefix));
        if v2 {
            x.elem(
                "KeyCount",
                (page.contents.len() + page.prefixes.len()).to_string(),
            );
            if let Some(t) = ctx.param("continuation-token") {
                x.elem("ContinuationToken", t);
            }
            if let Some(s) = ctx.param("start-after") {
                x.elem("StartAfter", p.enc(s));
            }
        } else {
            x.elem("Marker", p.enc(ctx.param("marker").unwrap_or_default()));
        }
        x.elem("MaxKeys", p.max.to_string());
        p.common(&mut x, page.truncated);
        if page.truncated {
            if v2 {
                if let Some(r) = &page.resume {
                    x.elem("NextContinuationToken", encode_token(r));
                }
            } else if let Some(l) = &page.last {
                x.elem("NextMarker", p.enc(l));
            }
        }
        for l in &page.contents {
            x.open("Contents")
                .elem("Key", p.enc(&l.key))
                .elem("LastModified", iso8601(l.created))
                .elem("ETag", &l.etag)
                .elem("Size", l.size.to_string())
                .elem("StorageClass", "STANDARD");
            if !v2 || ctx.param("fetch-owner") == Some("true") {
                x.open("Owner")
                    .elem("ID", &self.storage.group)
                    .elem("DisplayName", &self.storage.group)
                    .close("Owner");
            }
            x.close("Contents");
        }
        p.prefixes(&mut x, &page);
        reply::xml(conn, ctx, 200, &x.finish("ListBucketResult"))
    }

    /// ListObjectVersions: the bucket is not versioned, so every object is its one `null`
    /// version.
    pub(super) fn list_versions(
        &self,
        conn: &mut Conn,
        ctx: &Ctx<'_>,
        kind: Kind,
        bucket: &str,
    ) -> Done {
        let p = Params::of(ctx)?;
        let marker = ctx.param("key-marker").unwrap_or_default();
        let page = self.walk(
            kind,
            bucket,
            p.prefix,
            p.delimiter,
            &p.after_marker(marker),
            p.max,
        )?;
        let mut x = Xml::new("ListVersionsResult");
        x.elem("Name", bucket)
            .elem("Prefix", p.enc(p.prefix))
            .elem("KeyMarker", p.enc(marker))
            .elem(
                "VersionIdMarker",
                ctx.param("version-id-marker").unwrap_or_default(),
            )
            .elem("MaxKeys", p.max.to_string());
        p.common(&mut x, page.truncated);
        if let Some(l) = page.last.as_ref().filter(|_| page.truncated) {
            x.elem("NextKeyMarker", p.enc(l))
                .elem("NextVersionIdMarker", "null");
        }
        for l in &page.contents {
            x.open("Version")
                .elem("Key", p.enc(&l.key))
                .elem("VersionId", "null")
                .elem("IsLatest", "true")
                .elem("LastModified", iso8601(l.created))
                .elem("ETag", &l.etag)
                .elem("Size", l.size.to_string())
                .elem("StorageClass", "STANDARD")
                .close("Version");
        }
        p.prefixes(&mut x, &page);
        reply::xml(conn, ctx, 200, &x.finish("ListVersionsResult"))
    }
}

fn max_keys(ctx: &Ctx<'_>) -> Result<usize, S3Error> {
    match ctx.param("max-keys") {
        None => Ok(MAX_KEYS),
        Some(v) => v
            .parse::<usize>()
            .map(|n| n.min(MAX_KEYS))
            .map_err(|_| S3Error::invalid_argument(format!("max-keys {v:?} is not a number"))),
    }
}

fn encoding(ctx: &Ctx<'_>) -> Result<bool, S3Error> {
    match ctx.param("encoding-type") {
        None => Ok(false),
        Some("url") => Ok(true),
        Some(other) => Err(S3Error::invalid_argument(format!(
            "encoding-type {other:?}: only url is known"
        ))),
    }
}

fn encode_token(resume: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(resume.as_bytes())
}

fn decode_token(token: &str) -> Result<String, S3Error> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            S3Error::invalid_argument("the continuation token is not one this endpoint gave")
        })
}
