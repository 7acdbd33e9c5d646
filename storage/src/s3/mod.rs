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
//! are both understood. A request for another group's bucket is passed on to a storage of that
//! group (`proxy.rs`); a bucket of keys is served by the storages of its group only.

mod body;
mod buckets;
mod copy;
mod key_files;
mod lifecycle;
mod list;
mod multipart;
mod names;
mod objects;
mod proxy;
mod put;
mod reply;
mod request;
mod retire;
mod route;
mod server;

pub use server::S3Server;
