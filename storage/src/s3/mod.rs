//! The S3 endpoint on `s3.server_port` (issue 33): the group's files through the S3 API, from
//! the same bytes the FastDFS port, the HTTP port and the nginx module serve. Served by the
//! daemon's own thread pool like the HTTP port (the design card: no async runtime); every
//! request is signed (SigV4, `fdfs_common::s3::auth`) with a key of `s3.credentials_file`.
//!
//! The group is a bucket named as the group; its objects are its files under their names
//! (`M00/00/00/...`, the file ID without the group), listed from the listing index
//! (`crate::listing`). What a request asks, by method and what it names:
//!
//! | request | names | answered by |
//! |---|---|---|
//! | `GET /` | - | ListBuckets (`buckets.rs`) |
//! | `HEAD`, `GET ?location`, `GET ?versioning`, `PUT` | bucket | HeadBucket, GetBucketLocation, GetBucketVersioning, CreateBucket (`buckets.rs`) |
//! | `GET`, `GET ?list-type=2`, `GET ?versions` | bucket | ListObjects v1 and v2, ListObjectVersions (`list.rs`) |
//! | `POST ?delete` | bucket | DeleteObjects (`objects.rs`) |
//! | `GET`, `HEAD`, `DELETE` | bucket and key | GetObject, HeadObject, DeleteObject (`objects.rs`) |
//! | anything else | | 501 NotImplemented with S3's error document |
//!
//! Path-style (`/<bucket>/<key>`) and virtual-host style (`Host: <bucket>.<name>`) requests
//! are both understood. A bucket this storage does not serve (another group's) is answered
//! NoSuchBucket.

mod body;
mod buckets;
mod list;
mod objects;
mod reply;
mod request;

pub(crate) use request::{Ctx, Done, Failure};

use crate::storage::Storage;
use fdfs_common::config::s3::{Right, S3Config};
use fdfs_common::http::{self, Body, Request};
use fdfs_common::s3::auth::{self, Auth};
use fdfs_common::s3::S3Error;
use fdfs_common::server::{Conn, Flow, Handler};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub struct S3Server {
    pub storage: Arc<Storage>,
    pub cfg: S3Config,
    requests: AtomicU64,
}

impl S3Server {
    pub fn new(storage: Arc<Storage>, cfg: S3Config) -> S3Server {
        S3Server {
            storage,
            cfg,
            requests: AtomicU64::new(0),
        }
    }
}

impl Handler for S3Server {
    type Session = http::HttpSession;

    fn serve(&self, conn: &mut Conn, session: &mut http::HttpSession) -> Flow {
        http::serve_requests_with_bodies(conn, session, |conn, req, body, keep| {
            self.respond(conn, req, body, keep)
        })
    }
}

/// The bucket and key of a path-style request (`/<bucket>[/<key>]`).
fn path_style(path: &str) -> (Option<String>, Option<String>) {
    let rest = path.strip_prefix('/').unwrap_or(path);
    match rest.split_once('/') {
        _ if rest.is_empty() => (None, None),
        None => (Some(rest.to_string()), None),
        Some((b, "")) => (Some(b.to_string()), None),
        Some((b, k)) => (Some(b.to_string()), Some(k.to_string())),
    }
}

/// The bucket a virtual-host style `Host` names: its first label, when the host is a name
/// (not an address) and that label is a bucket served here.
fn host_bucket(host: Option<&str>, served: impl Fn(&str) -> bool) -> Option<String> {
    let host = host?;
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    if name.parse::<std::net::IpAddr>().is_ok() || name.starts_with('[') {
        return None;
    }
    let (first, _) = name.split_once('.')?;
    served(first).then(|| first.to_string())
}

impl S3Server {
    fn respond(
        &self,
        conn: &mut Conn,
        req: &Request,
        body: &mut Body,
        keep: bool,
    ) -> io::Result<()> {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let (bucket, key) = match host_bucket(req.header("host"), |b| self.serves(b)) {
            Some(b) => {
                let k = req.path.strip_prefix('/').unwrap_or(&req.path);
                (Some(b), (!k.is_empty()).then(|| k.to_string()))
            }
            None => path_style(&req.path),
        };
        let ctx = Ctx {
            req,
            query: req.query_pairs(),
            bucket,
            key,
            id: format!("{:016X}", (fdfs_common::now_micros() << 12) ^ n),
            // a body left unread by a refusal is drained (or the connection closed) by the loop
            keep,
        };
        match self.handle(conn, &ctx, body) {
            Ok(()) => Ok(()),
            Err(Failure::Io(e)) => Err(e),
            Err(Failure::S3(e)) => {
                if e.status >= 500 {
                    log::warn!(
                        "s3 client {}: {} {}: {e}",
                        conn.peer_ip(),
                        req.method,
                        ctx.resource()
                    );
                } else {
                    log::debug!(
                        "s3 client {}: {} {}: {e}",
                        conn.peer_ip(),
                        req.method,
                        ctx.resource()
                    );
                }
                reply::error(conn, &ctx, &e)
            }
        }
    }

    /// Whether this storage serves `bucket`.
    fn serves(&self, bucket: &str) -> bool {
        bucket == self.storage.group
    }

    /// The key's right in the bucket the request names, which must be served here.
    fn right(&self, auth: &Auth<'_>, bucket: &str, write: bool) -> Result<(), S3Error> {
        let right = auth.credential.right_in(bucket);
        let allowed = match right {
            Some(Right::ReadWrite) => true,
            Some(Right::ReadOnly) => !write,
            None => false,
        };
        if !allowed {
            return Err(S3Error::access_denied(format!(
                "access key {} may not {} bucket {bucket}",
                auth.credential.access_key,
                if write { "write to" } else { "read" }
            )));
        }
        if !self.serves(bucket) {
            return Err(S3Error::no_such_bucket());
        }
        Ok(())
    }

    fn handle(&self, conn: &mut Conn, ctx: &Ctx<'_>, body: &mut Body) -> Done {
        let auth = auth::authenticate(ctx.req, &self.cfg, fdfs_common::now())?;
        let method = ctx.req.method.as_str();
        let Some(bucket) = ctx.bucket.as_deref() else {
            return match method {
                "GET" => self.list_buckets(conn, ctx, &auth),
                _ => Err(S3Error::method_not_allowed().into()),
            };
        };
        let write = !matches!(method, "GET" | "HEAD");
        let Some(key) = ctx.key.as_deref() else {
            if method == "PUT" && ctx.query.is_empty() {
                return self.create_bucket(conn, ctx, &auth, bucket, body);
            }
            self.right(&auth, bucket, write)?;
            return match (method, ctx.query.first().map(|(k, _)| k.as_str())) {
                ("HEAD", _) => reply::empty(conn, ctx, 200, &[]),
                ("GET", Some("location")) => self.bucket_location(conn, ctx),
                ("GET", Some("versioning")) => self.bucket_versioning(conn, ctx),
                ("GET", _) if ctx.has("versions") => self.list_versions(conn, ctx, bucket),
                ("GET", _) if ctx.param("list-type") == Some("2") => {
                    self.list_objects(conn, ctx, bucket, true)
                }
                ("GET", _) if unsupported_bucket_query(ctx).is_none() => {
                    self.list_objects(conn, ctx, bucket, false)
                }
                ("POST", Some("delete")) => self.delete_objects(conn, ctx, auth, bucket, body),
                ("DELETE", None) => Err(S3Error::method_not_allowed().into()),
                _ => Err(not_implemented(ctx).into()),
            };
        };
        self.right(&auth, bucket, write)?;
        if let Some(sub) = unsupported_object_query(ctx) {
            return Err(S3Error::not_implemented(format!("?{sub} on an object")).into());
        }
        match method {
            "GET" => self.get_object(conn, ctx, key, false),
            "HEAD" => self.get_object(conn, ctx, key, true),
            "DELETE" => self.delete_object(conn, ctx, key),
            _ => Err(not_implemented(ctx).into()),
        }
    }
}

/// Query parameters of a bucket GET that ListObjects does not answer (a sub-resource), if any.
fn unsupported_bucket_query(ctx: &Ctx<'_>) -> Option<String> {
    const LIST_PARAMS: &[&str] = &[
        "prefix",
        "delimiter",
        "max-keys",
        "marker",
        "encoding-type",
        "list-type",
        "continuation-token",
        "start-after",
        "fetch-owner",
        "allow-unordered",
    ];
    ctx.query
        .iter()
        .find(|(k, _)| !LIST_PARAMS.contains(&k.as_str()) && !k.starts_with("x-"))
        .map(|(k, _)| k.clone())
}

/// Query parameters of an object request that name a sub-resource this endpoint lacks.
fn unsupported_object_query(ctx: &Ctx<'_>) -> Option<String> {
    const SUB: &[&str] = &[
        "acl",
        "tagging",
        "torrent",
        "retention",
        "legal-hold",
        "attributes",
        "restore",
        "select",
        "uploads",
        "uploadId",
        "partNumber",
        "versionId",
    ];
    ctx.query
        .iter()
        .find(|(k, v)| SUB.contains(&k.as_str()) && !(k == "versionId" && v == "null"))
        .map(|(k, _)| k.clone())
}

fn not_implemented(ctx: &Ctx<'_>) -> S3Error {
    let sub: Vec<&str> = ctx.query.iter().map(|(k, _)| k.as_str()).collect();
    S3Error::not_implemented(format!(
        "{} {}{}{} is not implemented by this endpoint",
        ctx.req.method,
        if ctx.key.is_some() {
            "object"
        } else {
            "bucket"
        },
        if sub.is_empty() { "" } else { " ?" },
        sub.join("&")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_keys_from_path_or_host() {
        assert_eq!(path_style("/"), (None, None));
        assert_eq!(path_style("/group1"), (Some("group1".into()), None));
        assert_eq!(path_style("/group1/"), (Some("group1".into()), None));
        assert_eq!(
            path_style("/group1/M00/00/00/a b.txt"),
            (Some("group1".into()), Some("M00/00/00/a b.txt".into()))
        );
        let served = |b: &str| b == "group1";
        assert_eq!(
            host_bucket(Some("group1.s3.local:9000"), served),
            Some("group1".into())
        );
        assert_eq!(host_bucket(Some("127.0.0.5:9000"), served), None);
        assert_eq!(host_bucket(Some("s3.local"), served), None);
        assert_eq!(host_bucket(None, served), None);
    }
}
