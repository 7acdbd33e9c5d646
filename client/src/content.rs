//! Where an upload's, append's or modify's content comes from (a buffer or a file) and how it is
//! streamed after its header.

use crate::progress;
use std::fs::File;
use std::io::{self, Write};
use std::net::TcpStream;
use std::path::Path;

pub use fdfs_common::http::anti_steal_token;

/// Where an upload's content comes from.
pub enum Content<'a> {
    Buffer(&'a [u8]),
    File(&'a Path),
}

impl Content<'_> {
    pub(crate) fn len(&self) -> io::Result<u64> {
        match self {
            Content::Buffer(b) => Ok(b.len() as u64),
            Content::File(p) => Ok(std::fs::metadata(p)?.len()),
        }
    }

    /// Write the content after `head` (header and fixed fields go out in one write), telling
    /// `report` how far it is.
    pub(crate) fn send(
        &self,
        stream: &mut TcpStream,
        head: &[u8],
        report: Option<&mut progress::Report>,
    ) -> io::Result<()> {
        match self {
            Content::Buffer(b) => {
                if b.len() <= 64 * 1024 {
                    let mut v = Vec::with_capacity(head.len() + b.len());
                    v.extend_from_slice(head);
                    v.extend_from_slice(b);
                    stream.write_all(&v)
                } else {
                    stream.write_all(head)?;
                    stream.write_all(b)
                }
            }
            Content::File(p) => {
                let mut f = File::open(p)?;
                let total = f.metadata()?.len();
                stream.write_all(head)?;
                progress::copy(&mut f, stream, total, report).map(|_| ())
            }
        }
    }
}
