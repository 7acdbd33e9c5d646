//! Writing through S3: PutObject, CopyObject, a bucket's creation and a multipart upload's
//! completion all end in [`S3Server::store`], which makes an ordinary FastDFS file of what the
//! client sent: received unnamed into its final directory as an upload is, every check of the
//! body passed before it is named (one create line in the binlog, replicated to C storages
//! unchanged), then its metadata written (`fdfs_common::s3::meta`: bucket, key, ETag, headers,
//! user metadata) and the two acknowledged as `write_ack_copies` says, as any upload and
//! set_metadata are. The object is then noted in this member's listing index, so the next
//! request here finds it under its key; the other members list it when the file and its
//! metadata have reached them (at once when `write_ack_copies` counts them).
//!
//! An overwrite is a new file, then the delete of the older files of that key. Until the
//! delete is done, or where two writes of one key met on two members, the index takes the
//! later written file as the object. S3 objects are plain files, never trunk slots.

use super::body::Checked;
use super::reply;
use super::request::{Ctx, Done};
use super::server::S3Server;
use crate::listing::entry::{Entry, S3Name};
use crate::storage::BodySource;
use crate::store::NameParts;
use fdfs_common::http::Body;
use fdfs_common::proto::cluster::stat;
use fdfs_common::proto::{errno, valid_name_chars};
use fdfs_common::refusal::Refusal;
use fdfs_common::s3::auth::Auth;
use fdfs_common::s3::checksum::md5_hex;
use fdfs_common::s3::meta::{self, ObjectMeta};
use fdfs_common::s3::S3Error;
use fdfs_common::server::Conn;

/// S3's longest key, in bytes.
pub(super) const MAX_KEY: usize = 1024;

/// The extension a key gives its file (that of its last path part, when FastDFS can carry it),
/// so that the HTTP port and nginx serve it with the right content type.
pub(super) fn ext_of(key: &str) -> &str {
    let last = key.rsplit('/').next().unwrap_or(key);
    match last.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty() && (1..=6).contains(&ext.len()) && valid_name_chars(ext) =>
        {
            ext
        }
        _ => "",
    }
}

fn refused(r: Refusal, what: &str) -> S3Error {
    match r.status {
        errno::ENOSPC => S3Error::insufficient_storage(),
        code => S3Error::slow_down(format!(
            "{what} was refused (errno {code}): see the storage's log"
        )),
    }
}

/// The metadata an S3 request gives its object: the headers S3 keeps, and `x-amz-meta-*`.
pub(super) fn object_meta(ctx: &Ctx<'_>, bucket: &str, key: &str) -> ObjectMeta {
    let mut m = ObjectMeta {
        bucket: bucket.to_string(),
        key: key.to_string(),
        written: fdfs_common::now_micros(),
        ..ObjectMeta::default()
    };
    for (h, _) in meta::HEADERS {
        let Some(v) = ctx.req.header(h) else {
            continue;
        };
        // aws-chunked is how the body came, not what it is
        let v = if *h == "content-encoding" {
            v.split(',')
                .map(str::trim)
                .filter(|e| !e.eq_ignore_ascii_case("aws-chunked") && !e.is_empty())
                .collect::<Vec<_>>()
                .join(",")
        } else {
            v.to_string()
        };
        if !v.is_empty() {
            m.headers.push((h.to_string(), v));
        }
    }
    for (h, v) in &ctx.req.headers {
        if let Some(name) = h.strip_prefix("x-amz-meta-") {
            m.user.push((name.to_string(), v.clone()));
        }
    }
    m
}

impl S3Server {
    /// Store `len` bytes read from `src` as a new file with the metadata `m`: `finish` says,
    /// once they are all read, whether they passed every check and gives their ETag;
    /// `failure` why a read failed. The new file's name, and the object's ETag.
    pub(super) fn store<S: BodySource>(
        &self,
        src: &mut S,
        len: u64,
        ext: &str,
        finish: impl FnOnce(&mut S) -> Result<String, S3Error>,
        failure: impl Fn(&S) -> Option<S3Error>,
        mut m: ObjectMeta,
    ) -> Result<(String, String), S3Error> {
        let st = &self.storage;
        let size = len as i64;
        let count = |ok: bool| {
            st.count(
                stat::TOTAL_UPLOAD_COUNT,
                ok,
                Some((stat::TOTAL_UPLOAD_BYTES, size)),
            )
        };
        // metadata FastDFS cannot keep is refused before the body is taken
        m.to_items().map_err(S3Error::invalid_argument)?;
        let reserved = st.params.read().reserved;
        let path_index = st
            .store
            .choose_path(0xFF, reserved)
            .ok_or_else(S3Error::insufficient_storage)?;
        if let Err(code) = st.enough_members().and_then(|()| st.recordable()) {
            count(false);
            return Err(refused(Refusal::done(code), "the write"));
        }
        if !st.reserved_ok(path_index, size) {
            count(false);
            return Err(S3Error::insufficient_storage());
        }
        let source = st.source();
        let x7 = st.store.format_ext(ext);
        let subdir = st.subdir_for_upload(&source, size);
        let dir = st.store.subdir_path(path_index, subdir);
        let received = st.receive_new_file(src, path_index, &dir, len);
        let (new, crc) = received.map_err(|r| {
            count(false);
            match (r.status, failure(src)) {
                (0, Some(e)) => e,
                (0, None) => S3Error::incomplete_body(),
                _ => refused(r, "the write"),
            }
        })?;
        // nothing is named before every check of the body passed: dropped, the unnamed file
        // is gone
        m.etag = finish(src).inspect_err(|_| count(false))?;
        if !m.key.is_empty() {
            let rules = self.lifecycle_rules(&m.bucket);
            m.expiry = super::lifecycle::expiry_for(&rules, &m.key, m.written);
        }
        let items = m.to_items().map_err(|why| {
            count(false);
            S3Error::invalid_argument(why)
        })?;
        let mtime = new.mtime();
        let parts = NameParts {
            path_index,
            subdir,
            source: &source,
            timestamp: mtime as u32,
            size,
            appender: false,
            crc32: crc,
            x7: &x7,
        };
        let name = st.commit_new_file(&new, &parts).map_err(|r| {
            count(false);
            refused(r, "the write")
        })?;
        drop(new);
        let path = st.store.data_dir(path_index).join(&name[4..]);
        let packed = fdfs_common::metadata::pack(&items);
        if let Err(code) = st.write_metadata(&name, &path, &packed, false) {
            count(false);
            let _ = st.remove_stored(&name, fdfs_common::now());
            return Err(refused(Refusal::done(code), "the metadata's write"));
        }
        st.await_copies(crate::copies::Undo::Created(vec![name.clone()]))
            .map_err(|r| {
                count(false);
                refused(r, "the write (too few copies)")
            })?;
        count(true);
        let entry = Entry {
            size: None,
            expires: crate::expiry::expires_in_items(&items),
            s3: Some(Box::new(S3Name {
                bucket: m.bucket.clone(),
                key: m.key.clone(),
                written: m.written,
                etag: m.etag.clone(),
            })),
        };
        if let Err(e) = st.listing.note(&name, Some(entry)) {
            log::warn!("s3: note {name} in the listing index fail: {e}");
        }
        Ok((name, m.etag))
    }

    /// After `written` was stored as `bucket`/`key`: the files of that key it made older
    /// are deleted, after the answer (`retire.rs`).
    pub(super) fn retire_older(&self, bucket: &str, key: &str, written: &str) {
        self.retire.retire(&self.storage, bucket, key, written);
    }

    /// PutObject into a bucket of keys.
    pub(super) fn put_object(
        &self,
        conn: &mut Conn,
        ctx: &Ctx<'_>,
        auth: Auth<'_>,
        bucket: &str,
        key: &str,
        body: &mut Body,
    ) -> Done {
        if key.len() > MAX_KEY {
            return Err(S3Error::invalid_argument("the key is over 1,024 bytes").into());
        }
        let m = object_meta(ctx, bucket, key);
        let mut src = Checked::new(conn, ctx, auth.payload, body)?;
        let len = src.length;
        let (name, etag) = self.store(
            &mut src,
            len,
            ext_of(key),
            |s| s.finish().map(|md5| md5_hex(&md5)),
            |s| s.failure.clone(),
            m,
        )?;
        drop(src);
        self.retire_older(bucket, key, &name);
        reply::empty(
            conn,
            ctx,
            200,
            &[
                ("ETag", format!("\"{etag}\"")),
                ("x-rfdfs-file-id", format!("{}/{name}", self.storage.group)),
            ],
        )
    }

    /// The metadata of `name` if it is an object written through S3.
    pub(super) fn object_meta_of(&self, name: &str) -> Option<ObjectMeta> {
        let ln =
            fdfs_common::file_id::LogicalName::parse(name, self.storage.store.paths.len()).ok()?;
        let bytes = std::fs::read(crate::storage::meta_path(
            &self.storage.store.local_path(&ln),
        ))
        .ok()?;
        ObjectMeta::from_items(&fdfs_common::metadata::unpack(&bytes))
    }
}
