//! The bucket requests: ListBuckets, CreateBucket, DeleteBucket, GetBucketLocation and
//! GetBucketVersioning (HeadBucket is an empty 200 in `mod.rs`). The group is a bucket as long
//! as the group exists. A bucket of keys is made by CreateBucket in the group of the storage
//! asked: a zero-byte file whose metadata names the bucket and no key
//! (`fdfs_common::s3::meta`), so every member of the group knows it as it knows any file;
//! DeleteBucket deletes that file once the bucket holds nothing. No bucket is versioned, and
//! every one is in the region clients default to (an empty location constraint, which they
//! read as `us-east-1`).

use super::body::read_small;
use super::names::Kind;
use super::reply;
use super::request::{Ctx, Done};
use super::server::S3Server;
use crate::storage::BodySource;
use fdfs_common::config::s3::Right;
use fdfs_common::http::Body;
use fdfs_common::s3::auth::Auth;
use fdfs_common::s3::checksum::{md5_hex, Md5};
use fdfs_common::s3::meta::{valid_bucket_name, ObjectMeta};
use fdfs_common::s3::xml::{iso8601, Xml};
use fdfs_common::s3::S3Error;
use fdfs_common::server::Conn;
use std::os::unix::fs::MetadataExt;

/// The largest CreateBucketConfiguration document read.
const MAX_CONFIGURATION: u64 = 64 << 10;

/// A body of no bytes (a bucket's file).
struct Nothing;

impl BodySource for Nothing {
    fn read_some(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Ok(0)
    }
    fn peer(&self) -> String {
        String::new()
    }
}

impl S3Server {
    /// When the group's bucket came to be: when this member's first store path was made.
    fn created(&self) -> i64 {
        self.storage
            .store
            .paths
            .first()
            .and_then(|p| std::fs::metadata(p.join("data")).ok())
            .map(|m| m.mtime())
            .unwrap_or(0)
    }

    pub(super) fn list_buckets(&self, conn: &mut Conn, ctx: &Ctx<'_>, auth: &Auth<'_>) -> Done {
        let mut x = Xml::new("ListAllMyBucketsResult");
        x.open("Owner")
            .elem("ID", &auth.credential.access_key)
            .elem("DisplayName", &auth.credential.access_key)
            .close("Owner")
            .open("Buckets");
        let mut buckets = vec![(self.storage.group.clone(), self.created())];
        buckets.extend(
            self.named_buckets()
                .into_iter()
                .map(|(b, made)| (b, (made / 1_000_000) as i64)),
        );
        buckets.sort();
        for (name, made) in buckets {
            if auth.credential.right_in(&name).is_some() {
                x.open("Bucket")
                    .elem("Name", &name)
                    .elem("CreationDate", iso8601(made))
                    .close("Bucket");
            }
        }
        x.close("Buckets");
        reply::xml(conn, ctx, 200, &x.finish("ListAllMyBucketsResult"))
    }

    /// CreateBucket: a bucket of keys in this group.
    pub(super) fn create_bucket(
        &self,
        conn: &mut Conn,
        ctx: &Ctx<'_>,
        auth: Auth<'_>,
        bucket: &str,
        body: &mut Body,
    ) -> Done {
        if auth.credential.right_in(bucket) != Some(Right::ReadWrite) {
            return Err(S3Error::access_denied(format!(
                "access key {} may not create bucket {bucket}",
                auth.credential.access_key
            ))
            .into());
        }
        if !valid_bucket_name(bucket) {
            return Err(S3Error::invalid_bucket_name(bucket).into());
        }
        // the configuration (a location constraint) is read and checked, and means nothing
        // here: every bucket is where its group is
        read_small(conn, ctx, auth.payload, body, MAX_CONFIGURATION)?;
        if self.kind(bucket).is_some() {
            return Err(S3Error::bucket_already_owned().into());
        }
        let m = ObjectMeta {
            bucket: bucket.to_string(),
            key: String::new(),
            written: fdfs_common::now_micros(),
            ..ObjectMeta::default()
        };
        self.store(
            &mut Nothing,
            0,
            "",
            |_| Ok(md5_hex(&Md5::default().finish())),
            |_| None,
            m,
        )?;
        log::info!(
            "s3: bucket {bucket} created by {}",
            auth.credential.access_key
        );
        reply::empty(conn, ctx, 200, &[("Location", format!("/{bucket}"))])
    }

    /// DeleteBucket: a bucket of keys that holds nothing.
    pub(super) fn delete_bucket(
        &self,
        conn: &mut Conn,
        ctx: &Ctx<'_>,
        kind: Kind,
        bucket: &str,
    ) -> Done {
        if kind == Kind::Group {
            return Err(S3Error::invalid_request(
                "the group's own bucket is there as long as the group is",
            )
            .into());
        }
        if self.holds_objects(bucket) {
            return Err(S3Error::bucket_not_empty().into());
        }
        for name in self.files_of(bucket, "") {
            self.delete_key_file(&name)?;
        }
        log::info!("s3: bucket {bucket} deleted");
        reply::empty(conn, ctx, 204, &[])
    }

    pub(super) fn bucket_location(&self, conn: &mut Conn, ctx: &Ctx<'_>) -> Done {
        let x = Xml::new("LocationConstraint");
        reply::xml(conn, ctx, 200, &x.finish("LocationConstraint"))
    }

    pub(super) fn bucket_versioning(&self, conn: &mut Conn, ctx: &Ctx<'_>) -> Done {
        let x = Xml::new("VersioningConfiguration");
        reply::xml(conn, ctx, 200, &x.finish("VersioningConfiguration"))
    }
}
