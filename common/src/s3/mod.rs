//! S3's side of the wire (issue 33): what an S3 endpoint over a group's files reads from and
//! writes to its clients. First, the request signatures (`sigv4.rs`); the endpoint itself is
//! not built yet.

pub mod sigv4;
