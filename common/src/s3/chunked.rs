//! The `aws-chunked` body encoding: what S3 clients send when they stream a body whose hash
//! they cannot give up front (`x-amz-content-sha256: STREAMING-...`).
//!
//! ```text
//! <size in hex>[;chunk-signature=<sig>]\r\n<size bytes>\r\n   ... repeated ...
//! 0[;chunk-signature=<sig>]\r\n[<trailer name>:<value>\r\n ...]\r\n
//! ```
//!
//! With a signed stream (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`) each chunk's
//! signature chains on the one before, starting from the request's own, so no chunk can be
//! changed, dropped or moved; the trailer (`x-amz-checksum-crc32` ... with
//! `x-amz-trailer-signature`) is signed the same way. [`Decoder`] gives the data and checks
//! every signature as the chunk's last byte passes; the caller keeps what it decodes unnamed
//! until the whole body has passed, so a failed check leaves nothing.

use super::sigv4::{hex, hmac, sha256_hex};
use sha2::{Digest, Sha256};
use std::io::{self, Read};

/// `x-amz-content-sha256` values of streamed bodies.
pub const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
pub const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/// Why a streamed body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkError {
    /// the framing is wrong (what was found)
    Malformed(String),
    /// a chunk's or the trailer's signature does not match
    Signature,
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChunkError::Malformed(why) => write!(f, "aws-chunked body: {why}"),
            ChunkError::Signature => {
                write!(f, "aws-chunked body: a chunk signature does not match")
            }
        }
    }
}

impl std::error::Error for ChunkError {}

/// The `ChunkError` an `io::Error` of [`Decoder::read`] carries, if it is one.
pub fn chunk_error(e: &io::Error) -> Option<&ChunkError> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<ChunkError>())
}

fn fail(e: ChunkError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// What checks a signed stream's chunks: the request's signing key, date and scope, and the
/// signature before.
pub struct ChunkSigner {
    pub key: [u8; 32],
    pub amz_date: String,
    pub scope: String,
    /// the request's signature, then each chunk's
    pub previous: String,
}

impl ChunkSigner {
    fn chunk(&mut self, data_sha256: &str, claimed: &str) -> bool {
        let to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{}\n{data_sha256}",
            self.amz_date,
            self.scope,
            self.previous,
            sha256_hex(b"")
        );
        self.check(&to_sign, claimed)
    }

    fn trailer(&mut self, trailer_text: &str, claimed: &str) -> bool {
        let to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            self.previous,
            sha256_hex(trailer_text.as_bytes())
        );
        self.check(&to_sign, claimed)
    }

    fn check(&mut self, to_sign: &str, claimed: &str) -> bool {
        let want = hex(&hmac(&self.key, to_sign.as_bytes()));
        let ok = want.len() == claimed.len()
            && want
                .bytes()
                .zip(claimed.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b.to_ascii_lowercase()))
                == 0;
        self.previous = want;
        ok
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// expecting a chunk's header line
    Header,
    /// inside a chunk's data
    Data,
    /// the data's closing CRLF
    DataEnd,
    /// the trailer lines after the last chunk
    Trailer,
    Done,
}

/// Longest header or trailer line accepted.
const MAX_LINE: usize = 4096;

/// The decoded data of an `aws-chunked` body read from `inner` (the body as sent, its length
/// already bounded by Content-Length).
pub struct Decoder<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    state: State,
    left_in_chunk: u64,
    signer: Option<ChunkSigner>,
    chunk_signature: String,
    chunk_hash: Sha256,
    /// the trailer's lines, names lower-cased (once the body has been read to its end)
    pub trailers: Vec<(String, String)>,
    /// the data bytes given so far
    pub decoded: u64,
}

impl<R: Read> Decoder<R> {
    /// A decoder checking chunk signatures with `signer` (`None`: an unsigned stream).
    pub fn new(inner: R, signer: Option<ChunkSigner>) -> Decoder<R> {
        Decoder {
            inner,
            buf: vec![0; 64 * 1024],
            pos: 0,
            end: 0,
            state: State::Header,
            left_in_chunk: 0,
            signer,
            chunk_signature: String::new(),
            chunk_hash: Sha256::new(),
            trailers: Vec::new(),
            decoded: 0,
        }
    }

    /// Whether the whole body has been read, its last chunk and trailer included.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        } else if self.pos > 0 && self.end == self.buf.len() {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        let n = self.inner.read(&mut self.buf[self.end..])?;
        if n == 0 {
            return Err(fail(ChunkError::Malformed("the body ends early".into())));
        }
        self.end += n;
        Ok(())
    }

    /// The next line, without its CRLF.
    fn line(&mut self) -> io::Result<String> {
        loop {
            let window = &self.buf[self.pos..self.end];
            if let Some(i) = window.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8(window[..i].to_vec())
                    .map_err(|_| fail(ChunkError::Malformed("a line is not UTF-8".into())))?;
                self.pos += i + 2;
                return Ok(line);
            }
            if window.len() > MAX_LINE {
                return Err(fail(ChunkError::Malformed("a line is too long".into())));
            }
            self.fill()?;
        }
    }

    fn header(&mut self) -> io::Result<()> {
        let line = self.line()?;
        let mut parts = line.split(';');
        let size_hex = parts.next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size_hex, 16)
            .map_err(|_| fail(ChunkError::Malformed(format!("chunk size {size_hex:?}"))))?;
        self.chunk_signature.clear();
        for ext in parts {
            if let Some(sig) = ext.trim().strip_prefix("chunk-signature=") {
                self.chunk_signature = sig.to_string();
            }
        }
        if self.signer.is_some() && self.chunk_signature.is_empty() {
            return Err(fail(ChunkError::Malformed(
                "a chunk of a signed stream has no chunk-signature".into(),
            )));
        }
        self.left_in_chunk = size;
        self.chunk_hash = Sha256::new();
        if size == 0 {
            self.verify_chunk()?;
            self.state = State::Trailer;
        } else {
            self.state = State::Data;
        }
        Ok(())
    }

    fn verify_chunk(&mut self) -> io::Result<()> {
        if let Some(s) = self.signer.as_mut() {
            let h = hex(&std::mem::take(&mut self.chunk_hash).finalize());
            if !s.chunk(&h, &self.chunk_signature) {
                return Err(fail(ChunkError::Signature));
            }
        }
        Ok(())
    }

    fn trailer(&mut self) -> io::Result<()> {
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| fail(ChunkError::Malformed(format!("trailer line {line:?}"))))?;
            self.trailers
                .push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        if let Some(s) = self.signer.as_mut() {
            let claimed = self
                .trailers
                .iter()
                .find(|(k, _)| k == "x-amz-trailer-signature")
                .map(|(_, v)| v.clone());
            let text: String = self
                .trailers
                .iter()
                .filter(|(k, _)| k != "x-amz-trailer-signature")
                .map(|(k, v)| format!("{k}:{v}\n"))
                .collect();
            if let Some(claimed) = claimed {
                if !s.trailer(&text, &claimed) {
                    return Err(fail(ChunkError::Signature));
                }
            } else if !text.is_empty() {
                return Err(fail(ChunkError::Malformed(
                    "a signed stream's trailer has no x-amz-trailer-signature".into(),
                )));
            }
        }
        // nothing may follow the body's end
        if self.pos < self.end {
            return Err(fail(ChunkError::Malformed(
                "bytes after the last chunk".into(),
            )));
        }
        self.state = State::Done;
        Ok(())
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.state {
                State::Done => return Ok(0),
                State::Header => self.header()?,
                State::Trailer => self.trailer()?,
                State::DataEnd => {
                    while self.end - self.pos < 2 {
                        self.fill()?;
                    }
                    if &self.buf[self.pos..self.pos + 2] != b"\r\n" {
                        return Err(fail(ChunkError::Malformed(
                            "a chunk does not end with CRLF".into(),
                        )));
                    }
                    self.pos += 2;
                    self.state = State::Header;
                }
                State::Data => {
                    if out.is_empty() {
                        return Ok(0);
                    }
                    if self.pos == self.end {
                        self.fill()?;
                    }
                    let n = (self.end - self.pos)
                        .min(out.len())
                        .min(self.left_in_chunk.min(usize::MAX as u64) as usize);
                    out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                    if self.signer.is_some() {
                        self.chunk_hash.update(&out[..n]);
                    }
                    self.pos += n;
                    self.left_in_chunk -= n as u64;
                    self.decoded += n as u64;
                    if self.left_in_chunk == 0 {
                        self.verify_chunk()?;
                        self.state = State::DataEnd;
                    }
                    return Ok(n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::sigv4::signing_key;

    type Trailers = Vec<(String, String)>;

    fn read_all(
        body: &[u8],
        signer: Option<ChunkSigner>,
    ) -> Result<(Vec<u8>, Trailers), io::Error> {
        // a reader giving a few bytes at a time, as a socket may
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(b.len()).min(7);
                b[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut d = Decoder::new(Trickle(body), signer);
        let mut out = Vec::new();
        d.read_to_end(&mut out)?;
        assert!(d.done());
        Ok((out, d.trailers))
    }

    #[test]
    fn unsigned_chunks_with_a_checksum_trailer() {
        let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
        let (data, trailers) = read_all(body, None).unwrap();
        assert_eq!(data, b"hello world");
        assert_eq!(
            trailers,
            vec![("x-amz-checksum-crc32".to_string(), "DUoRhQ==".to_string())]
        );
    }

    #[test]
    fn a_body_cut_short_or_badly_framed_is_refused() {
        assert!(read_all(b"5\r\nhel", None).is_err());
        assert!(read_all(b"5\r\nhelloXX0\r\n\r\n", None).is_err());
        assert!(read_all(b"zz\r\n", None).is_err());
        assert!(read_all(b"0\r\n\r\nmore", None).is_err());
    }

    /// AWS's example of a signed streamed PUT (the S3 documentation's "Signature Calculations
    /// for the Authorization Header: Transferring Payload in Multiple Chunks"): 65 KiB of 'a' in
    /// chunks of 64 KiB, 1 KiB and 0, their signatures as printed there.
    #[test]
    fn aws_example_of_a_signed_stream() {
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "20130524",
            "us-east-1",
            "s3",
        );
        let signer = || ChunkSigner {
            key,
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            previous: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
        };
        let sigs = [
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ];
        let mut body = Vec::new();
        for (len, sig) in [(65536usize, sigs[0]), (1024, sigs[1]), (0, sigs[2])] {
            body.extend_from_slice(format!("{len:x};chunk-signature={sig}\r\n").as_bytes());
            body.extend(std::iter::repeat_n(b'a', len));
            body.extend_from_slice(b"\r\n");
        }
        let (data, _) = read_all(&body, Some(signer())).unwrap();
        assert_eq!(data.len(), 66560);
        // one byte changed in the second chunk: refused at that chunk's end
        let mut bad = body.clone();
        let at = bad.len() - 200;
        bad[at] = b'b';
        let e = read_all(&bad, Some(signer())).unwrap_err();
        assert_eq!(chunk_error(&e), Some(&ChunkError::Signature));
    }
}
