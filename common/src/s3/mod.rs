//! S3's side of the wire (issue 33): what the storage's S3 endpoint (`storage/src/s3/`) reads
//! from and writes to its clients: request signatures (`sigv4.rs`), the `aws-chunked` body
//! encoding (`chunked.rs`), the XML documents (`xml.rs`) and the errors (`error.rs`).

pub mod auth;
pub mod checksum;
pub mod chunked;
pub mod error;
pub mod meta;
pub mod sigv4;
pub mod xml;

pub use error::S3Error;
