//! CopyObject, and the source of UploadPartCopy: an object (or a file of the group's bucket)
//! read from its file in place and stored again as a new file, as a PUT of the same bytes
//! would be. The new object keeps the source's metadata unless the request says
//! `x-amz-metadata-directive: REPLACE`.

use super::names::Kind;
use super::put::{ext_of, object_meta};
use super::reply;
use super::request::{Ctx, Done};
use super::server::S3Server;
use crate::storage::BodySource;
use crate::store::Store;
use fdfs_common::config::s3::Right;
use fdfs_common::file_id::LogicalName;
use fdfs_common::s3::auth::Auth;
use fdfs_common::s3::checksum::{md5_hex, Md5};
use fdfs_common::s3::meta::ObjectMeta;
use fdfs_common::s3::xml::{iso8601, Xml};
use fdfs_common::s3::S3Error;
use fdfs_common::server::Conn;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Bytes `start..end` of a stored file, their MD5 made on the way.
pub(super) struct FileSource {
    file: Arc<File>,
    pos: u64,
    end: u64,
    pub md5: Md5,
}

impl FileSource {
    pub fn len(&self) -> u64 {
        self.end - self.pos
    }
}

impl BodySource for FileSource {
    fn read_some(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = (buf.len() as u64).min(self.end - self.pos) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the source file is shorter than it was",
            ));
        }
        self.md5.update(&buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
    fn peer(&self) -> String {
        "copy".into()
    }
}

/// What an `x-amz-copy-source` names: `[/]<bucket>/<key>[?versionId=null]`, percent-encoded.
fn parse_source(v: &str) -> Option<(String, String)> {
    let v = v.split_once("?versionId=").map_or(v, |(p, _)| p);
    let decoded = fdfs_common::http::percent_decode(v.trim_start_matches('/'))?;
    let (b, k) = decoded.split_once('/')?;
    (!b.is_empty() && !k.is_empty()).then(|| (b.to_string(), k.to_string()))
}

impl S3Server {
    /// The copy source a request names (read right checked), as a source of its bytes
    /// (`x-amz-copy-source-range` when `ranged`), with its metadata when it is an object
    /// written through S3.
    pub(super) fn copy_source(
        &self,
        ctx: &Ctx<'_>,
        auth: &Auth<'_>,
        ranged: bool,
    ) -> Result<(FileSource, Option<ObjectMeta>, Vec<u8>), S3Error> {
        let header = ctx.req.header("x-amz-copy-source").unwrap_or_default();
        let (bucket, key) = parse_source(header)
            .ok_or_else(|| S3Error::invalid_argument("x-amz-copy-source is not <bucket>/<key>"))?;
        if auth.credential.right_in(&bucket).is_none() {
            return Err(S3Error::access_denied(format!(
                "access key {} may not read bucket {bucket}",
                auth.credential.access_key
            )));
        }
        let kind = self.kind(&bucket).ok_or_else(S3Error::no_such_bucket)?;
        let name = match kind {
            Kind::Group => key,
            Kind::Named => self
                .object_of(&bucket, &key)
                .ok_or_else(S3Error::no_such_key)?,
        };
        let st = &self.storage;
        let ln =
            LogicalName::parse(&name, st.store.paths.len()).map_err(|_| S3Error::no_such_key())?;
        if st.expired(&name) {
            return Err(S3Error::no_such_key());
        }
        let stored = st.store.open_stored(&ln, &name).map_err(|e| {
            if Store::is_absent(&e) {
                S3Error::no_such_key()
            } else {
                S3Error::internal(format!("open the copy source: {e}"))
            }
        })?;
        let (mut a, mut b) = (0u64, stored.size);
        if ranged {
            if let Some(r) = ctx.req.header("x-amz-copy-source-range") {
                let (x, y) = r
                    .trim()
                    .strip_prefix("bytes=")
                    .and_then(|r| r.split_once('-'))
                    .and_then(|(x, y)| Some((x.parse::<u64>().ok()?, y.parse::<u64>().ok()?)))
                    .filter(|(x, y)| x <= y && *y < stored.size)
                    .ok_or_else(S3Error::invalid_range)?;
                (a, b) = (x, y + 1);
            }
        }
        let meta_bytes =
            std::fs::read(crate::storage::meta_path(&st.store.local_path(&ln))).unwrap_or_default();
        let object = match kind {
            Kind::Named => ObjectMeta::from_items(&fdfs_common::metadata::unpack(&meta_bytes)),
            Kind::Group => None,
        };
        Ok((
            FileSource {
                file: Arc::clone(&stored.file),
                pos: stored.start + a,
                end: stored.start + b,
                md5: Md5::default(),
            },
            object,
            meta_bytes,
        ))
    }

    /// CopyObject into `bucket`/`key`.
    pub(super) fn copy_object(
        &self,
        conn: &mut Conn,
        ctx: &Ctx<'_>,
        auth: &Auth<'_>,
        bucket: &str,
        key: &str,
    ) -> Done {
        if auth.credential.right_in(bucket) != Some(Right::ReadWrite) {
            return Err(S3Error::access_denied("no right to write the bucket").into());
        }
        let (mut src, object, meta_bytes) = self.copy_source(ctx, auth, false)?;
        let replace = ctx
            .req
            .header("x-amz-metadata-directive")
            .is_some_and(|d| d.eq_ignore_ascii_case("REPLACE"));
        let mut m = object_meta(ctx, bucket, key);
        if !replace {
            match object {
                Some(o) => {
                    m.headers = o.headers;
                    m.user = o.user;
                }
                // a file of the group's bucket: its FastDFS metadata as user metadata
                None => {
                    m.headers.clear();
                    m.user = fdfs_common::metadata::unpack(&meta_bytes)
                        .into_iter()
                        .map(|(n, v)| {
                            (
                                String::from_utf8_lossy(&n).into_owned(),
                                String::from_utf8_lossy(&v).into_owned(),
                            )
                        })
                        .filter(|(n, _)| !n.starts_with(fdfs_common::s3::meta::RESERVED_PREFIX))
                        .collect();
                }
            }
        }
        let written = m.written;
        let len = src.len();
        let (name, etag) = self.store(
            &mut src,
            len,
            ext_of(key),
            |s| Ok(md5_hex(&std::mem::take(&mut s.md5).finish())),
            |_| Some(S3Error::internal("the copy source could not be read")),
            m,
        )?;
        self.retire_older(bucket, key, &name);
        let mut x = Xml::new("CopyObjectResult");
        x.elem("LastModified", iso8601((written / 1_000_000) as i64))
            .elem("ETag", format!("\"{etag}\""));
        reply::xml(conn, ctx, 200, &x.finish("CopyObjectResult"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources() {
        assert_eq!(
            parse_source("/photos/a%20b/c.txt"),
            Some(("photos".into(), "a b/c.txt".into()))
        );
        assert_eq!(
            parse_source("photos/k?versionId=null"),
            Some(("photos".into(), "k".into()))
        );
        assert_eq!(parse_source("photos"), None);
    }
}
