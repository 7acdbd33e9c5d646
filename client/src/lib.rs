//! fdfs-client: a FastDFS client library and the `fdfs_*` command-line tools.
//!
//! [`Client`] takes a `client.conf`, picks trackers round robin and fails over to the next one
//! when a tracker cannot be reached, optionally pools connections, and offers every client
//! operation (upload, download, delete, metadata, appender operations, file info, cluster
//! listings). The tools in `tools` are thin front ends that keep upstream's arguments, output
//! and exit codes.
//!
//! The library: `client` (config, trackers, connections), `tracker_requests`,
//! `storage_requests`, `file_id`, `content`; `personality` reproduces the ecosystem's clients
//! on the wire. The programs: `tools` (upstream's), `stat_tools`, `bench` and `fleet`
//! (`rfdfs_bench`), with `command_line`, `human`, `logging` and `progress` beside them.

#![forbid(unsafe_code)]

pub mod bench;
pub mod bench_run;
pub mod client;
pub mod command_line;
pub mod content;
pub mod daemon_cpu;
pub mod file_id;
pub mod fleet;
pub mod human;
pub mod latency;
pub mod logging;
pub mod personality;
pub mod progress;
pub mod s3_bench;
pub mod stat_tools;
pub mod storage_requests;
pub mod tools;
pub mod tracker_requests;

pub use client::{Client, Conn};
pub use command_line::http_url;
pub use content::Content;
pub use fdfs_common::http::anti_steal_token;
pub use file_id::{FileId, FileInfo};
pub use storage_requests::Upload;
