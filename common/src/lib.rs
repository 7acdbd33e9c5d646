//! fdfs-common: what the rfdfs tracker, storage and client share.
//!
//! The wire codec and every message type (`proto`), config files in libfastcommon's ini dialect
//! (`config`), file IDs (`file_id`), metadata packing, the blocking thread-pool server loop
//! (`server`), the daemon command line (`daemon`) and the log format (`log`). It holds no
//! tracker or storage policy: those live in their own crates.

#![forbid(unsafe_code)]

pub mod codec;
pub mod config;
pub mod daemon;
pub mod durable;
pub mod file_id;
pub mod http;
pub mod log;
pub mod metadata;
pub mod metrics;
pub mod metrics_endpoint;
pub mod net;
pub mod proto;
pub mod refusal;
pub mod resolver;
pub mod s3;
pub mod server;
pub mod sync;
pub mod trunk;

/// Microseconds since the epoch (multipart boundaries, as upstream's module makes them).
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Unix time in seconds.
pub fn now() -> i64 {
    log::now()
}

/// Hex text (spaces allowed) to bytes, for the unit tests' upstream captures.
#[cfg(test)]
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
