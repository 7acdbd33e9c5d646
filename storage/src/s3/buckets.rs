//! The bucket requests: ListBuckets, CreateBucket, GetBucketLocation and GetBucketVersioning
//! (HeadBucket is an empty 200 in `mod.rs`). A group is a bucket: it exists as long as the
//! group does, is never versioned, and sits in the region clients default to (an empty
//! location constraint, which they read as `us-east-1`).

use super::{reply, Ctx, Done, S3Server};
use fdfs_common::http::Body;
use fdfs_common::s3::auth::Auth;
use fdfs_common::s3::xml::{iso8601, Xml};
use fdfs_common::s3::S3Error;
use fdfs_common::server::Conn;
use std::os::unix::fs::MetadataExt;

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
        let group = &self.storage.group;
        if auth.credential.right_in(group).is_some() {
            x.open("Bucket")
                .elem("Name", group)
                .elem("CreationDate", iso8601(self.created()))
                .close("Bucket");
        }
        x.close("Buckets");
        reply::xml(conn, ctx, 200, &x.finish("ListAllMyBucketsResult"))
    }

    /// CreateBucket: the group's own bucket exists already; named buckets are not built yet.
    pub(super) fn create_bucket(
        &self,
        _conn: &mut Conn,
        _ctx: &Ctx<'_>,
        auth: &Auth<'_>,
        bucket: &str,
        _body: &mut Body,
    ) -> Done {
        if self.serves(bucket) && auth.credential.right_in(bucket).is_some() {
            return Err(S3Error::bucket_already_owned().into());
        }
        Err(S3Error::not_implemented(
            "CreateBucket: buckets other than the group's own are not built yet",
        )
        .into())
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
