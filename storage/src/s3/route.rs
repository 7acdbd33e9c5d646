//! One S3 request from its head to its answer: what it names (path-style or virtual-host
//! style), who signed it and what that key may do, and which request it is (the table in
//! `mod.rs`).

use super::multipart::Target;
use super::names::Kind;
use super::reply;
use super::request::{Ctx, Done, Failure};
use super::server::S3Server;
use fdfs_common::config::s3::Right;
use fdfs_common::http::{Body, Request};
use fdfs_common::s3::auth::{self, Auth};
use fdfs_common::s3::S3Error;
use fdfs_common::server::Conn;
use std::io;
use std::sync::atomic::Ordering;

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

/// The bucket a virtual-host style `Host` names: with `domain`, the labels before it
/// (`<bucket>.<domain>`); without, its first label when the host is a name (not an address)
/// and that label is a bucket served here.
fn host_bucket(
    host: Option<&str>,
    domain: Option<&str>,
    served: impl Fn(&str) -> bool,
) -> Option<String> {
    let host = host?;
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    if name.parse::<std::net::IpAddr>().is_ok() || name.starts_with('[') {
        return None;
    }
    let name = name.to_ascii_lowercase();
    if let Some(domain) = domain {
        return name
            .strip_suffix(domain)
            .and_then(|b| b.strip_suffix('.'))
            .filter(|b| !b.is_empty())
            .map(str::to_string);
    }
    let (first, _) = name.split_once('.')?;
    served(first).then(|| first.to_string())
}

impl S3Server {
    pub(super) fn respond(
        &self,
        conn: &mut Conn,
        req: &Request,
        body: &mut Body,
        keep: bool,
    ) -> io::Result<()> {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let (bucket, key) = match host_bucket(req.header("host"), self.cfg.domain.as_deref(), |b| {
            self.serves(b)
        }) {
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
        self.kind(bucket).is_some()
    }

    /// The kind of the bucket a request names (`kind`, as [`S3Server::kind`] found it), once
    /// the key's right in it is checked and it is found to be served here.
    fn bucket_for(
        &self,
        auth: &Auth<'_>,
        bucket: &str,
        write: bool,
        kind: Option<Kind>,
    ) -> Result<Kind, S3Error> {
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
        if bucket != self.storage.group && !self.storage.listing.ready() {
            // the keys are in the listing index, rebuilt from the binlog now
            return Err(S3Error::slow_down(
                "the listing index is being rebuilt from the binlog",
            ));
        }
        kind.ok_or_else(S3Error::no_such_bucket)
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
        // while the index is rebuilt a bucket of keys cannot be told from none: bucket_for
        // answers SlowDown then
        let known = bucket == self.storage.group || self.storage.listing.ready();
        let found = if known { self.kind(bucket) } else { None };
        if known
            && found.is_none()
            && bucket.len() <= fdfs_common::proto::GROUP_NAME_MAX
            && fdfs_common::proto::valid_name_chars(bucket)
        {
            if let Some(ip) = self.storage_of_group(bucket) {
                return self.proxy(conn, ctx.req, body, &ip);
            }
        }
        let write = !matches!(method, "GET" | "HEAD");
        let first = ctx.query.first().map(|(k, _)| k.as_str());
        let Some(key) = ctx.key.as_deref() else {
            if (method, first) == ("PUT", None) {
                return self.create_bucket(conn, ctx, auth, bucket, body);
            }
            let kind = self.bucket_for(&auth, bucket, write, found)?;
            return match (method, first) {
                ("HEAD", _) => reply::empty(conn, ctx, 200, &[]),
                ("DELETE", None) => self.delete_bucket(conn, ctx, kind, bucket),
                ("GET", Some("location")) => self.bucket_location(conn, ctx),
                ("GET", Some("versioning")) => self.bucket_versioning(conn, ctx),
                ("GET", Some("uploads")) => self.list_uploads(conn, ctx, bucket),
                ("GET", Some("lifecycle")) => self.get_lifecycle(conn, ctx, kind, bucket),
                ("PUT", Some("lifecycle")) => {
                    self.put_lifecycle(conn, ctx, auth, kind, bucket, body)
                }
                ("DELETE", Some("lifecycle")) => self.delete_lifecycle(conn, ctx, kind, bucket),
                ("GET", _) if ctx.has("versions") => self.list_versions(conn, ctx, kind, bucket),
                ("GET", _) if ctx.param("list-type") == Some("2") => {
                    self.list_objects(conn, ctx, kind, bucket, true)
                }
                ("GET", _) if unsupported_bucket_query(ctx).is_none() => {
                    self.list_objects(conn, ctx, kind, bucket, false)
                }
                ("POST", Some("delete")) => {
                    self.delete_objects(conn, ctx, auth, kind, bucket, body)
                }
                _ => Err(not_implemented(ctx).into()),
            };
        };
        let kind = self.bucket_for(&auth, bucket, write, found)?;
        if write && kind == Kind::Group && method != "DELETE" {
            return Err(S3Error::invalid_request(
                "the group's bucket holds its files under their FastDFS names: write to a \
                 bucket made by CreateBucket",
            )
            .into());
        }
        let target = Target { bucket, key };
        match (method, ctx.param("uploadId")) {
            ("POST", None) if ctx.has("uploads") => return self.create_upload(conn, ctx, &target),
            ("PUT", Some(id)) => return self.upload_part(conn, ctx, auth, &target, id, body),
            ("POST", Some(id)) => return self.complete_upload(conn, ctx, auth, &target, id, body),
            ("DELETE", Some(id)) => return self.abort_upload(conn, ctx, &target, id),
            ("GET", Some(id)) => return self.list_parts(conn, ctx, &target, id),
            _ => {}
        }
        if let Some(sub) = unsupported_object_query(ctx) {
            return Err(S3Error::not_implemented(format!("?{sub} on an object")).into());
        }
        match method {
            "GET" => self.get_object(conn, ctx, kind, bucket, key, false),
            "HEAD" => self.get_object(conn, ctx, kind, bucket, key, true),
            "DELETE" => self.delete_object(conn, ctx, kind, bucket, key),
            "PUT" if ctx.req.header("x-amz-copy-source").is_some() => {
                self.copy_object(conn, ctx, &auth, bucket, key)
            }
            "PUT" => self.put_object(conn, ctx, auth, bucket, key, body),
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
            host_bucket(Some("group1.s3.local:9000"), None, served),
            Some("group1".into())
        );
        assert_eq!(host_bucket(Some("127.0.0.5:9000"), None, served), None);
        assert_eq!(host_bucket(Some("s3.local"), None, served), None);
        assert_eq!(host_bucket(None, None, served), None);
        // with a domain, any bucket before it, served or not yet (CreateBucket)
        let d = Some("s3.example.com");
        assert_eq!(
            host_bucket(Some("New.Bucket.S3.example.com:9000"), d, served),
            Some("new.bucket".into())
        );
        assert_eq!(host_bucket(Some("s3.example.com:9000"), d, served), None);
        assert_eq!(host_bucket(Some("group1.other.com"), d, served), None);
    }
}
