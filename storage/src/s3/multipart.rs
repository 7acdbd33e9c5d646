//! Multipart uploads: CreateMultipartUpload, UploadPart, UploadPartCopy,
//! CompleteMultipartUpload, AbortMultipartUpload, ListParts and ListMultipartUploads.
//!
//! Parts are staged outside the binlog, on the member the upload is made to, in
//! `base_path/data/s3-uploads/<upload id>/`: `object` (the object's metadata as given at
//! creation, FastDFS-packed), and per part `<n>` (its bytes) and `<n>.md5`. Completion makes
//! one ordinary file of the parts named, in order (`put.rs`), with S3's multipart ETag (the
//! MD5 of the parts' MD5s, `-<parts>`), then removes the staging directory. Nothing a client
//! reads exists before the completion is answered; an upload never completed is removed by
//! AbortMultipartUpload. A client must send every request of one upload to the same storage
//! (clients do: one endpoint).

use super::body::{read_error, read_small, Checked};
use super::put::{ext_of, object_meta};
use super::reply;
use super::request::{Ctx, Done};
use super::server::S3Server;
use crate::storage::BodySource;
use fdfs_common::config::s3::Right;
use fdfs_common::http::Body;
use fdfs_common::s3::auth::Auth;
use fdfs_common::s3::checksum::{md5_hex, Md5};
use fdfs_common::s3::meta::ObjectMeta;
use fdfs_common::s3::sigv4::hex;
use fdfs_common::s3::xml::{all_texts, iso8601, Xml};
use fdfs_common::s3::S3Error;
use fdfs_common::server::Conn;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// The most parts an upload has, as S3 allows.
const MAX_PARTS: u32 = 10_000;
/// The largest CompleteMultipartUpload document read.
const MAX_COMPLETE_DOCUMENT: u64 = 4 << 20;

/// The object an upload request names.
pub(crate) struct Target<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
}

fn internal(what: &str, e: std::io::Error) -> S3Error {
    log::error!("s3: {what}: {e}");
    S3Error::internal(format!("{what}: see the storage's log"))
}

/// The parts of a staged upload, read in order as one body.
struct Parts {
    files: Vec<File>,
    at: usize,
}

impl BodySource for Parts {
    fn read_some(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(f) = self.files.get_mut(self.at) {
            let n = f.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.at += 1;
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the parts are shorter than they were",
        ))
    }
    fn peer(&self) -> String {
        "multipart".into()
    }
}

impl S3Server {
    fn uploads_dir(&self) -> PathBuf {
        self.storage.cfg.server.base_path.join("data/s3-uploads")
    }

    /// The staging directory of upload `id` of `t`, if it is one.
    fn upload_dir(&self, t: &Target<'_>, id: &str) -> Result<(PathBuf, ObjectMeta), S3Error> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(S3Error::no_such_upload());
        }
        let dir = self.uploads_dir().join(id);
        let packed = std::fs::read(dir.join("object")).map_err(|_| S3Error::no_such_upload())?;
        let m = ObjectMeta::from_items(&fdfs_common::metadata::unpack(&packed))
            .ok_or_else(S3Error::no_such_upload)?;
        if m.bucket != t.bucket || m.key != t.key {
            return Err(S3Error::no_such_upload());
        }
        Ok((dir, m))
    }

    fn writable(&self, auth: &Auth<'_>, bucket: &str) -> Result<(), S3Error> {
        if auth.credential.right_in(bucket) == Some(Right::ReadWrite) {
            Ok(())
        } else {
            Err(S3Error::access_denied("no right to write the bucket"))
        }
    }

    pub(super) fn create_upload(&self, conn: &mut Conn, ctx: &Ctx<'_>, t: &Target<'_>) -> Done {
        if t.key.len() > super::put::MAX_KEY {
            return Err(S3Error::invalid_argument("the key is over 1,024 bytes").into());
        }
        let m = object_meta(ctx, t.bucket, t.key);
        let items = m.to_items().map_err(S3Error::invalid_argument)?;
        let id = format!(
            "{:016x}{:08x}",
            fdfs_common::now_micros(),
            self.storage.store.random()
        );
        let dir = self.uploads_dir().join(&id);
        std::fs::create_dir_all(&dir)
            .and_then(|()| {
                crate::store::write_atomic(
                    &dir.join("object"),
                    &fdfs_common::metadata::pack(&items),
                )
            })
            .map_err(|e| internal("create the upload's directory", e))?;
        let mut x = Xml::new("InitiateMultipartUploadResult");
        x.elem("Bucket", t.bucket)
            .elem("Key", t.key)
            .elem("UploadId", &id);
        reply::xml(conn, ctx, 200, &x.finish("InitiateMultipartUploadResult"))
    }

    /// UploadPart, and UploadPartCopy (`x-amz-copy-source`).
    pub(super) fn upload_part(
        &self,
        conn: &mut Conn,
        ctx: &Ctx<'_>,
        auth: Auth<'_>,
        t: &Target<'_>,
        id: &str,
        body: &mut Body,
    ) -> Done {
        self.writable(&auth, t.bucket)?;
        let (dir, _) = self.upload_dir(t, id)?;
        let n: u32 = ctx
            .param("partNumber")
            .and_then(|p| p.parse().ok())
            .filter(|p| (1..=MAX_PARTS).contains(p))
            .ok_or_else(|| S3Error::invalid_argument("partNumber must be from 1 to 10,000"))?;
        let temp = dir.join(format!("{n}.{:x}", fdfs_common::now_micros()));
        let mut f = File::create(&temp).map_err(|e| internal("create a part", e))?;
        let copied = ctx.req.header("x-amz-copy-source").is_some();
        let md5 = if copied {
            let (mut src, _, _) = self.copy_source(ctx, &auth, true)?;
            copy_into(&mut src, &mut f).map_err(|e| internal("copy a part", e))?;
            std::mem::take(&mut src.md5).finish()
        } else {
            let mut src = Checked::new(conn, ctx, auth.payload, body)?;
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let k = src.read(&mut buf).map_err(|e| {
                    let _ = std::fs::remove_file(&temp);
                    read_error(&e)
                })?;
                if k == 0 {
                    break;
                }
                f.write_all(&buf[..k])
                    .map_err(|e| internal("write a part", e))?;
            }
            src.finish().inspect_err(|_| {
                let _ = std::fs::remove_file(&temp);
            })?
        };
        if self.storage.durable() {
            f.sync_data().map_err(|e| internal("sync a part", e))?;
        }
        let etag = md5_hex(&md5);
        std::fs::write(dir.join(format!("{n}.md5")), &etag)
            .and_then(|()| std::fs::rename(&temp, dir.join(n.to_string())))
            .map_err(|e| internal("keep a part", e))?;
        if copied {
            let mut x = Xml::new("CopyPartResult");
            x.elem("LastModified", iso8601(fdfs_common::now()))
                .elem("ETag", format!("\"{etag}\""));
            reply::xml(conn, ctx, 200, &x.finish("CopyPartResult"))
        } else {
            reply::empty(conn, ctx, 200, &[("ETag", format!("\"{etag}\""))])
        }
    }

    pub(super) fn complete_upload(
        &self,
        conn: &mut Conn,
        ctx: &Ctx<'_>,
        auth: Auth<'_>,
        t: &Target<'_>,
        id: &str,
        body: &mut Body,
    ) -> Done {
        self.writable(&auth, t.bucket)?;
        let (dir, mut m) = self.upload_dir(t, id)?;
        let doc = read_small(conn, ctx, auth.payload, body, MAX_COMPLETE_DOCUMENT)?;
        let doc = String::from_utf8(doc).map_err(|_| S3Error::malformed_xml())?;
        let numbers = all_texts(&doc, "PartNumber");
        let etags = all_texts(&doc, "ETag");
        if numbers.is_empty() || numbers.len() != etags.len() {
            return Err(S3Error::malformed_xml().into());
        }
        let mut files = Vec::new();
        let mut md5s = Md5::default();
        let mut len = 0u64;
        let mut last = 0u32;
        for (n, etag) in numbers.iter().zip(&etags) {
            let n: u32 = n.trim().parse().map_err(|_| S3Error::malformed_xml())?;
            if n <= last {
                return Err(S3Error::invalid_part_order().into());
            }
            last = n;
            let kept = std::fs::read_to_string(dir.join(format!("{n}.md5"))).unwrap_or_default();
            if kept.is_empty() || kept != etag.trim().trim_matches('"') {
                return Err(S3Error::invalid_part(format!(
                    "part {n} was not uploaded with ETag {etag}"
                ))
                .into());
            }
            let f = File::open(dir.join(n.to_string()))
                .map_err(|_| S3Error::invalid_part(format!("part {n} was not uploaded")))?;
            len += f.metadata().map(|md| md.len()).unwrap_or(0);
            let raw: Vec<u8> = (0..kept.len() / 2)
                .filter_map(|i| u8::from_str_radix(&kept[2 * i..2 * i + 2], 16).ok())
                .collect();
            md5s.update(&raw);
            files.push(f);
        }
        let etag = format!("{}-{}", hex(&md5s.finish()), files.len());
        m.written = fdfs_common::now_micros();
        m.etag = String::new();
        let mut parts = Parts { files, at: 0 };
        let returned = etag.clone();
        let (name, _) = self.store(
            &mut parts,
            len,
            ext_of(t.key),
            move |_| Ok(returned),
            |_| Some(S3Error::internal("the staged parts could not be read")),
            m,
        )?;
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            log::warn!("s3: remove {} fail: {e}", dir.display());
        }
        self.retire_older(t.bucket, t.key, &name);
        let mut x = Xml::new("CompleteMultipartUploadResult");
        x.elem("Location", format!("/{}/{}", t.bucket, t.key))
            .elem("Bucket", t.bucket)
            .elem("Key", t.key)
            .elem("ETag", format!("\"{etag}\""));
        reply::xml(conn, ctx, 200, &x.finish("CompleteMultipartUploadResult"))
    }

    pub(super) fn abort_upload(
        &self,
        conn: &mut Conn,
        ctx: &Ctx<'_>,
        t: &Target<'_>,
        id: &str,
    ) -> Done {
        let (dir, _) = self.upload_dir(t, id)?;
        std::fs::remove_dir_all(&dir).map_err(|e| internal("remove the upload", e))?;
        reply::empty(conn, ctx, 204, &[])
    }

    pub(super) fn list_parts(
        &self,
        conn: &mut Conn,
        ctx: &Ctx<'_>,
        t: &Target<'_>,
        id: &str,
    ) -> Done {
        let (dir, _) = self.upload_dir(t, id)?;
        let marker: u32 = ctx
            .param("part-number-marker")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let max: usize = ctx
            .param("max-parts")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1000)
            .min(1000);
        let mut parts: Vec<(u32, u64, i64)> = std::fs::read_dir(&dir)
            .map_err(|e| internal("read the upload", e))?
            .flatten()
            .filter_map(|e| {
                let n: u32 = e.file_name().to_str()?.parse().ok()?;
                let md = e.metadata().ok()?;
                Some((n, md.len(), md.mtime()))
            })
            .filter(|(n, _, _)| *n > marker)
            .collect();
        parts.sort();
        let truncated = parts.len() > max;
        parts.truncate(max);
        let mut x = Xml::new("ListPartsResult");
        x.elem("Bucket", t.bucket)
            .elem("Key", t.key)
            .elem("UploadId", id)
            .elem("PartNumberMarker", marker.to_string())
            .elem(
                "NextPartNumberMarker",
                parts.last().map_or(0, |p| p.0).to_string(),
            )
            .elem("MaxParts", max.to_string())
            .elem("IsTruncated", truncated.to_string())
            .elem("StorageClass", "STANDARD");
        for (n, size, mtime) in parts {
            let etag = std::fs::read_to_string(dir.join(format!("{n}.md5"))).unwrap_or_default();
            x.open("Part")
                .elem("PartNumber", n.to_string())
                .elem("LastModified", iso8601(mtime))
                .elem("ETag", format!("\"{etag}\""))
                .elem("Size", size.to_string())
                .close("Part");
        }
        reply::xml(conn, ctx, 200, &x.finish("ListPartsResult"))
    }

    pub(super) fn list_uploads(&self, conn: &mut Conn, ctx: &Ctx<'_>, bucket: &str) -> Done {
        let prefix = ctx.param("prefix").unwrap_or_default();
        let mut uploads: Vec<(String, String, i64)> = std::fs::read_dir(self.uploads_dir())
            .map(|d| d.flatten().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| {
                let id = e.file_name().to_str()?.to_string();
                let packed = std::fs::read(e.path().join("object")).ok()?;
                let m = ObjectMeta::from_items(&fdfs_common::metadata::unpack(&packed))?;
                let made = e.metadata().ok()?.mtime();
                (m.bucket == bucket && m.key.starts_with(prefix)).then_some((m.key, id, made))
            })
            .collect();
        uploads.sort();
        let max: usize = ctx
            .param("max-uploads")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1000)
            .min(1000);
        let truncated = uploads.len() > max;
        uploads.truncate(max);
        let mut x = Xml::new("ListMultipartUploadsResult");
        x.elem("Bucket", bucket)
            .elem("KeyMarker", "")
            .elem("UploadIdMarker", "")
            .elem("Prefix", prefix)
            .elem("MaxUploads", max.to_string())
            .elem("IsTruncated", truncated.to_string());
        if let Some((k, id, _)) = uploads.last().filter(|_| truncated) {
            x.elem("NextKeyMarker", k).elem("NextUploadIdMarker", id);
        }
        for (key, id, made) in uploads {
            x.open("Upload")
                .elem("Key", key)
                .elem("UploadId", id)
                .elem("StorageClass", "STANDARD")
                .elem("Initiated", iso8601(made))
                .close("Upload");
        }
        reply::xml(conn, ctx, 200, &x.finish("ListMultipartUploadsResult"))
    }
}

/// Copy all of `src` into `f`.
fn copy_into(src: &mut impl BodySource, f: &mut File) -> std::io::Result<()> {
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = src.read_some(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        f.write_all(&buf[..n])?;
    }
}
