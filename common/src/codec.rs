//! The one place where packet bytes are sliced.
//!
//! Every message decodes through a [`Reader`] whose `take` fails instead of panicking when the
//! body is short, and encodes through the `put_*` helpers of [`Writer`]. A decode error names the
//! field that was missing or malformed so that a daemon can log exactly why it dropped a peer.

use std::fmt;

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The body ended before `field` was complete.
    Short { field: &'static str },
    /// The body had bytes left after the last field.
    Trailing { len: usize },
    /// A field was present but its value is not acceptable.
    Invalid { field: &'static str, why: String },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Short { field } => write!(f, "body too short for field {field}"),
            DecodeError::Trailing { len } => write!(f, "{len} unexpected trailing bytes"),
            DecodeError::Invalid { field, why } => write!(f, "invalid {field}: {why}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    pub fn invalid(field: &'static str, why: impl Into<String>) -> Self {
        DecodeError::Invalid {
            field,
            why: why.into(),
        }
    }
}

pub type DecodeResult<T> = Result<T, DecodeError>;

/// A cursor over a received body.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn take(&mut self, n: usize, field: &'static str) -> DecodeResult<&'a [u8]> {
        if self.remaining() < n {
            return Err(DecodeError::Short { field });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn u8(&mut self, field: &'static str) -> DecodeResult<u8> {
        Ok(self.take(1, field)?[0])
    }

    pub fn i32(&mut self, field: &'static str) -> DecodeResult<i32> {
        let b = self.take(4, field)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i64(&mut self, field: &'static str) -> DecodeResult<i64> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// A fixed-width, NUL-padded text field: the bytes up to the first NUL (or all of them).
    pub fn fixed_str(&mut self, n: usize, field: &'static str) -> DecodeResult<String> {
        Ok(text_until_nul(self.take(n, field)?))
    }

    /// All bytes that are left.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// Fails when anything is left: a message decoded from a whole body must use all of it.
    pub fn finish(&self) -> DecodeResult<()> {
        match self.remaining() {
            0 => Ok(()),
            len => Err(DecodeError::Trailing { len }),
        }
    }
}

/// Text of a NUL-padded field; invalid UTF-8 is replaced rather than rejected because names are
/// compared byte-wise by upstream and never contain such bytes in practice.
pub fn text_until_nul(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Encoding helpers on a byte vector.
pub trait Writer {
    fn put_u8(&mut self, v: u8);
    fn put_i32(&mut self, v: i32);
    fn put_i64(&mut self, v: i64);
    /// Text padded with NULs to exactly `n` bytes (truncated if longer).
    fn put_fixed_str(&mut self, s: &str, n: usize);
    fn put_bytes(&mut self, b: &[u8]);
}

impl Writer for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_fixed_str(&mut self, s: &str, n: usize) {
        let b = s.as_bytes();
        let k = b.len().min(n);
        self.extend_from_slice(&b[..k]);
        self.resize(self.len() + (n - k), 0);
    }
    fn put_bytes(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

/// A message that is a whole packet body.
pub trait Message: Sized {
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self>;

    fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// Decode a whole body: trailing bytes are an error.
    fn from_bytes(b: &[u8]) -> DecodeResult<Self> {
        let mut r = Reader::new(b);
        let m = Self::decode(&mut r)?;
        r.finish()?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_the_field() {
        let mut r = Reader::new(&[0, 1, 2]);
        assert_eq!(
            r.i64("file_size"),
            Err(DecodeError::Short { field: "file_size" })
        );
    }

    #[test]
    fn fixed_str_roundtrip() {
        let mut v = Vec::new();
        v.put_fixed_str("group1", 16);
        assert_eq!(v.len(), 16);
        let mut r = Reader::new(&v);
        assert_eq!(r.fixed_str(16, "g").unwrap(), "group1");
        let mut full = Vec::new();
        full.put_fixed_str("abcdefghijklmnopq", 16);
        assert_eq!(&full, b"abcdefghijklmnop");
    }
}
