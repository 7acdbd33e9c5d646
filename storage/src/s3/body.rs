//! A request body as S3 sends it and the checks it must pass before anything it carries is
//! kept: its SHA-256 when signed (`x-amz-content-sha256`), its chunk signatures when streamed
//! (`aws-chunked`), `Content-MD5` and `x-amz-checksum-<algorithm>` (a header, or the trailer
//! of a streamed body) when sent. [`Checked`] reads the decoded body and [`Checked::finish`]
//! says whether it passed; the caller keeps what it read unnamed until then.

use super::request::Ctx;
use crate::storage::BodySource;
use base64::Engine;
use fdfs_common::http::{Body, BodyReader};
use fdfs_common::s3::auth::Payload;
use fdfs_common::s3::checksum::{md5_base64, Checksum, Md5};
use fdfs_common::s3::chunked::{chunk_error, ChunkError, Decoder};
use fdfs_common::s3::sigv4::hex;
use fdfs_common::s3::S3Error;
use fdfs_common::server::Conn;
use sha2::{Digest, Sha256};
use std::io::{self, Read};

enum Source<'a> {
    Plain(BodyReader<'a>),
    Chunked(Box<Decoder<BodyReader<'a>>>),
}

/// The decoded body of a request, checked as it is read.
pub(crate) struct Checked<'a> {
    source: Source<'a>,
    sha256: Option<(Sha256, String)>,
    md5: Md5,
    content_md5: Option<String>,
    /// the checksum header's name, the running value, and the value sent in a header (a
    /// trailer's comes at the end)
    checksum: Option<(String, Checksum, Option<String>)>,
    /// the decoded length announced (`x-amz-decoded-content-length`, or Content-Length)
    pub length: u64,
    pub read: u64,
    /// why a read failed (a check, the framing, the connection)
    pub failure: Option<S3Error>,
    peer: String,
}

fn bad(e: S3Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// The S3 error a read of the body failed with (a check, the framing, or the connection).
pub(crate) fn read_error(e: &io::Error) -> S3Error {
    if let Some(s3) = e.get_ref().and_then(|i| i.downcast_ref::<S3Error>()) {
        return s3.clone();
    }
    match chunk_error(e) {
        Some(ChunkError::Signature) => S3Error::signature_mismatch(),
        Some(ChunkError::Malformed(why)) => S3Error::invalid_request(why.clone()),
        None => S3Error::incomplete_body(),
    }
}

impl<'a> Checked<'a> {
    pub fn new(
        conn: &'a mut Conn,
        ctx: &Ctx<'_>,
        payload: Payload,
        body: &'a mut Body,
    ) -> Result<Checked<'a>, S3Error> {
        let raw_len = body.left();
        let chunked = payload.is_chunked();
        let length = if chunked {
            ctx.req
                .header("x-amz-decoded-content-length")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(S3Error::missing_content_length)?
        } else {
            raw_len
        };
        let sha256 = match &payload {
            Payload::Sha256(h) => Some((Sha256::new(), h.clone())),
            _ => None,
        };
        let checksum = ctx
            .req
            .headers
            .iter()
            .find_map(|(k, v)| Checksum::for_header(k).map(|c| (k.clone(), c, Some(v.clone()))))
            .or_else(|| {
                let trailer = ctx.req.header("x-amz-trailer")?.trim().to_ascii_lowercase();
                Checksum::for_header(&trailer).map(|c| (trailer, c, None))
            });
        let peer = conn.peer_ip();
        let reader = body.reader(conn);
        let source = match payload {
            Payload::StreamingSigned(signer) => {
                Source::Chunked(Box::new(Decoder::new(reader, Some(signer))))
            }
            Payload::StreamingUnsigned => Source::Chunked(Box::new(Decoder::new(reader, None))),
            _ => Source::Plain(reader),
        };
        Ok(Checked {
            source,
            sha256,
            md5: Md5::default(),
            content_md5: ctx.req.header("content-md5").map(|v| v.trim().to_string()),
            checksum,
            length,
            read: 0,
            failure: None,
            peer,
        })
    }

    /// After the whole body was read: whether every check passed; the body's MD5 (an
    /// object's ETag) when they did. Asked once.
    pub fn finish(&mut self) -> Result<[u8; 16], S3Error> {
        if self.read != self.length {
            return Err(S3Error::incomplete_body());
        }
        // a streamed body's last chunk and trailer come after its last byte of data
        if let Source::Chunked(d) = &mut self.source {
            let mut more = [0u8; 1];
            if !d.done() && d.read(&mut more).map_err(|e| read_error(&e))? > 0 {
                return Err(S3Error::invalid_request(
                    "the body is longer than x-amz-decoded-content-length",
                ));
            }
        }
        let trailers = match &self.source {
            Source::Chunked(d) if !d.done() => return Err(S3Error::incomplete_body()),
            Source::Chunked(d) => d.trailers.clone(),
            Source::Plain(_) => Vec::new(),
        };
        if let Some((h, want)) = self.sha256.take() {
            if hex(&h.finalize()) != want {
                return Err(S3Error::sha256_mismatch());
            }
        }
        let md5 = std::mem::take(&mut self.md5).finish();
        if let Some(want) = self.content_md5.take() {
            if want != md5_base64(&md5) {
                let valid = base64::engine::general_purpose::STANDARD
                    .decode(&want)
                    .is_ok_and(|b| b.len() == 16);
                return Err(if valid {
                    S3Error::bad_digest(
                        "The Content-MD5 you specified did not match what we received.",
                    )
                } else {
                    S3Error::invalid_argument("Content-MD5 is not the base64 of an MD5")
                });
            }
        }
        if let Some((name, sum, sent)) = self.checksum.take() {
            let want = sent
                .or_else(|| {
                    trailers
                        .iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| v.clone())
                })
                .ok_or_else(|| {
                    S3Error::invalid_request(format!("{name} was announced and not sent"))
                })?;
            if sum.finish_base64() != want {
                return Err(S3Error::bad_digest(format!(
                    "The {name} you specified did not match the calculated checksum."
                )));
            }
        }
        Ok(md5)
    }
}

impl Checked<'_> {
    fn read_checked(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.source {
            Source::Plain(r) => r.read(buf)?,
            Source::Chunked(d) => d.read(buf)?,
        };
        if n == 0 && self.read < self.length && !buf.is_empty() {
            return Err(bad(S3Error::incomplete_body()));
        }
        let data = &buf[..n];
        self.read += n as u64;
        if self.read > self.length {
            return Err(bad(S3Error::invalid_request(
                "the body is longer than x-amz-decoded-content-length",
            )));
        }
        if let Some((h, _)) = self.sha256.as_mut() {
            h.update(data);
        }
        self.md5.update(data);
        if let Some((_, c, _)) = self.checksum.as_mut() {
            c.update(data);
        }
        Ok(n)
    }
}

impl Read for Checked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_checked(buf).inspect_err(|e| {
            self.failure.get_or_insert_with(|| read_error(e));
        })
    }
}

impl BodySource for Checked<'_> {
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read(buf)
    }

    fn peer(&self) -> String {
        self.peer.clone()
    }
}

/// Read a small body whole (a request document), checked; `max` bytes at most.
pub(crate) fn read_small(
    conn: &mut Conn,
    ctx: &Ctx<'_>,
    payload: Payload,
    body: &mut Body,
    max: u64,
) -> Result<Vec<u8>, S3Error> {
    let mut c = Checked::new(conn, ctx, payload, body)?;
    if c.length > max {
        return Err(S3Error::invalid_request(format!(
            "the request document is over {max} bytes"
        )));
    }
    let mut out = Vec::with_capacity(c.length as usize);
    // a chunked body's trailer comes after its data: read on to its end
    c.read_to_end(&mut out).map_err(|e| read_error(&e))?;
    c.finish()?;
    Ok(out)
}
