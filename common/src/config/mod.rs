//! Typed views of tracker.conf, storage.conf and client.conf, with upstream's code defaults
//! (not the sample values) for absent keys and its validation rules
//! (docs/protocol/config-cli-http.md 2). One file per config file (`tracker`, `storage`,
//! `client`, `http`, `storage_ids`), the ini dialect in `ini`, the key tables in `keys`, and
//! what several of them share: `address`, `server` (every daemon's settings) and
//! `reserved_space`.

pub mod address;
mod client;
pub mod expire_rule;
pub mod http;
pub mod ini;
pub mod keys;
pub mod reserved_space;
pub mod s3;
pub mod server;
pub mod storage;
pub mod storage_ids;
mod tracker;

pub use address::{parse_host_port, split_bind_addr, AddressFamily, HostPort};
pub use client::ClientConfig;
pub use http::{HttpConfig, MimeTypes};
pub use ini::{ConfigError, IniFile};
pub use reserved_space::ReservedSpace;
pub use s3::S3Config;
pub use server::{parse_log_level, LogConfig, ServerConfig};
pub use storage::StorageConfig;
pub use tracker::TrackerConfig;
