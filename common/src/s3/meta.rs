//! What an object written through S3 keeps in its FastDFS metadata (the `-m` file beside it,
//! replicated as any metadata, C storages included): its bucket and key, when it was written,
//! its MD5 (the ETag), the headers S3 gives back, and its user metadata under the names the
//! client chose (`x-amz-meta-author` is `author`). FastDFS clients see the same metadata.
//!
//! | FastDFS metadata | what |
//! |---|---|
//! | `s3-bucket` | the bucket |
//! | `s3-key`, `s3-key.2` ... | the key, in pieces of at most 256 bytes (a metadata value's most), `%`, 0x01 and 0x02 escaped as `%25`, `%01`, `%02` (0x01 and 0x02 separate metadata records) |
//! | `s3-written` | when it was written, microseconds: of two files with one key, the later written is the object |
//! | `s3-etag` | the MD5 of its bytes, hex (or a multipart upload's ETag) |
//! | `s3-content-type`, `s3-content-encoding`, `s3-content-disposition`, `s3-content-language`, `s3-cache-control`, `s3-expires` | those headers as they were sent |
//! | `fdfs-expires`, `s3-expiry-rule` | the expiry a bucket's lifecycle rule gave it (the rule's ID), read by every member as any `fdfs-expires` |
//! | `s3-lifecycle.1` ... | on a bucket's file: its lifecycle rules, `<id>\t<Enabled or Disabled>\t<days or @unix time>\t<prefix>` |
//! | any other name | user metadata (`x-amz-meta-<name>`) |
//!
//! A bucket is a zero-byte file whose key is empty (no S3 key is): it exists while that file
//! does, on every member.

use crate::metadata::{MetaItem, VALUE_MAX};

pub const BUCKET: &str = "s3-bucket";
pub const KEY: &str = "s3-key";
pub const WRITTEN: &str = "s3-written";
pub const ETAG: &str = "s3-etag";
pub const EXPIRY_RULE: &str = "s3-expiry-rule";
pub const EXPIRES: &str = "fdfs-expires";
pub const LIFECYCLE: &str = "s3-lifecycle";
/// Headers kept and given back, with the metadata name each is kept under.
pub const HEADERS: &[(&str, &str)] = &[
    ("content-type", "s3-content-type"),
    ("content-encoding", "s3-content-encoding"),
    ("content-disposition", "s3-content-disposition"),
    ("content-language", "s3-content-language"),
    ("cache-control", "s3-cache-control"),
    ("expires", "s3-expires"),
];
/// The prefix of every name this module uses: a user metadata name may not start with it.
pub const RESERVED_PREFIX: &str = "s3-";
/// Most pieces a key is kept in (1,024 bytes escaped thrice over, in 256-byte pieces).
const MAX_PIECES: usize = 12;

/// Where an object is in S3's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Name {
    pub bucket: String,
    /// empty: the bucket itself
    pub key: String,
    /// microseconds since the epoch
    pub written: u64,
    /// the ETag's inside (an MD5 in hex, or a multipart upload's `<hex>-<parts>`)
    pub etag: String,
}

/// Everything an object keeps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectMeta {
    pub bucket: String,
    pub key: String,
    pub written: u64,
    pub etag: String,
    /// (lower-case header name, value)
    pub headers: Vec<(String, String)>,
    /// (name, value), names lower-case
    pub user: Vec<(String, String)>,
    /// the expiry a lifecycle rule gave it (unix time, the rule's ID)
    pub expiry: Option<(i64, String)>,
    /// a bucket's lifecycle rules, as kept
    pub lifecycle: Vec<String>,
}

/// 0x01 and 0x02 separate metadata records and fields: a key keeps them escaped.
const RECORD_CHARS: &[char] = &['\u{1}', '\u{2}'];

fn escape(key: &str) -> String {
    crate::http::percent_escape(key, RECORD_CHARS)
}

fn unescape(s: &str) -> String {
    crate::http::percent_unescape(s).unwrap_or_else(|| s.to_string())
}

fn piece_name(i: usize) -> String {
    if i == 0 {
        KEY.to_string()
    } else {
        format!("{KEY}.{}", i + 1)
    }
}

/// `s` in pieces of at most `max` bytes, cut between characters.
fn pieces(s: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out.push(rest);
    out
}

impl ObjectMeta {
    /// The metadata items to write; `Err` names what cannot be kept.
    pub fn to_items(&self) -> Result<Vec<MetaItem>, String> {
        let mut items: Vec<MetaItem> = vec![
            (BUCKET.into(), self.bucket.clone().into_bytes()),
            (WRITTEN.into(), self.written.to_string().into_bytes()),
        ];
        if !self.etag.is_empty() {
            items.push((ETAG.into(), self.etag.clone().into_bytes()));
        }
        let escaped = escape(&self.key);
        let parts = pieces(&escaped, VALUE_MAX);
        if parts.len() > MAX_PIECES {
            return Err("the key is too long".into());
        }
        for (i, p) in parts.iter().enumerate() {
            items.push((piece_name(i).into_bytes(), p.as_bytes().to_vec()));
        }
        for (h, v) in &self.headers {
            let Some((_, name)) = HEADERS.iter().find(|(n, _)| n == h) else {
                continue;
            };
            if v.len() > VALUE_MAX {
                return Err(format!("{h} is over {VALUE_MAX} bytes"));
            }
            items.push(((*name).into(), v.clone().into_bytes()));
        }
        if let Some((at, rule)) = &self.expiry {
            if self.user.iter().all(|(n, _)| n != EXPIRES) {
                items.push((EXPIRES.into(), at.to_string().into_bytes()));
                items.push((EXPIRY_RULE.into(), rule.clone().into_bytes()));
            }
        }
        for (i, rule) in self.lifecycle.iter().enumerate() {
            if rule.len() > VALUE_MAX {
                return Err(format!(
                    "lifecycle rule {} is over {VALUE_MAX} bytes",
                    i + 1
                ));
            }
            items.push((
                format!("{LIFECYCLE}.{}", i + 1).into_bytes(),
                rule.clone().into_bytes(),
            ));
        }
        for (n, v) in &self.user {
            if n.starts_with(RESERVED_PREFIX) || n == EXPIRES && v.parse::<i64>().is_err() {
                return Err(format!("x-amz-meta-{n}: the name is reserved"));
            }
            if n.len() > crate::metadata::NAME_MAX || v.len() > VALUE_MAX {
                return Err(format!(
                    "x-amz-meta-{n}: FastDFS metadata names are at most {} bytes and values \
                     at most {VALUE_MAX}",
                    crate::metadata::NAME_MAX
                ));
            }
            if n.bytes().chain(v.bytes()).any(|b| b == 1 || b == 2) {
                return Err(format!("x-amz-meta-{n}: control characters 1 and 2"));
            }
            items.push((n.clone().into_bytes(), v.clone().into_bytes()));
        }
        Ok(items)
    }

    /// What `items` say of an object written through S3 (`None`: not one).
    pub fn from_items(items: &[MetaItem]) -> Option<ObjectMeta> {
        let name = name_of(items)?;
        let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        let mut m = ObjectMeta {
            bucket: name.bucket,
            key: name.key,
            written: name.written,
            ..ObjectMeta::default()
        };
        let rule = items
            .iter()
            .find(|(n, _)| n.as_slice() == EXPIRY_RULE.as_bytes())
            .map(|(_, v)| text(v));
        let mut lifecycle: Vec<(u32, String)> = Vec::new();
        for (n, v) in items {
            let n = String::from_utf8_lossy(n);
            if n == ETAG {
                m.etag = text(v);
            } else if let Some(i) = n.strip_prefix(LIFECYCLE).and_then(|r| r.strip_prefix('.')) {
                lifecycle.push((i.parse().unwrap_or(0), text(v)));
            } else if n == EXPIRES && rule.is_some() {
                if let Ok(at) = text(v).trim().parse() {
                    m.expiry = Some((at, rule.clone().unwrap_or_default()));
                }
            } else if let Some((h, _)) = HEADERS.iter().find(|(_, k)| *k == n) {
                m.headers.push((h.to_string(), text(v)));
            } else if !n.starts_with(RESERVED_PREFIX) {
                m.user.push((n.into_owned(), text(v)));
            }
        }
        lifecycle.sort();
        m.lifecycle = lifecycle.into_iter().map(|(_, r)| r).collect();
        Some(m)
    }
}

/// The bucket, key and write time `items` name, if they are an S3 object's.
pub fn name_of(items: &[MetaItem]) -> Option<S3Name> {
    let get = |name: &str| {
        items
            .iter()
            .find(|(n, _)| n.as_slice() == name.as_bytes())
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let bucket = get(BUCKET)?;
    let mut escaped = get(KEY)?;
    for i in 1..MAX_PIECES {
        match get(&piece_name(i)) {
            Some(p) => escaped.push_str(&p),
            None => break,
        }
    }
    Some(S3Name {
        bucket,
        key: unescape(&escaped),
        written: get(WRITTEN).and_then(|w| w.parse().ok()).unwrap_or(0),
        etag: get(ETAG).unwrap_or_default(),
    })
}

/// Whether `name` can be a bucket: S3's rules (3 to 63 of `a-z 0-9 . -`, starting and ending
/// with a letter or digit, not an IPv4 address).
pub fn valid_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{pack, unpack};

    #[test]
    fn an_object_reads_back_through_packed_metadata() {
        let long_key = format!("dir é/{}%\u{1}end", "x".repeat(900));
        let m = ObjectMeta {
            bucket: "photos".into(),
            key: long_key.clone(),
            written: 1_765_000_000_123_456,
            etag: "d41d8cd98f00b204e9800998ecf8427e".into(),
            headers: vec![("content-type".into(), "image/png".into())],
            user: vec![("author".into(), "me".into())],
            expiry: Some((1_800_000_000, "old-logs".into())),
            lifecycle: vec!["r1\tEnabled\t30\tlogs/".into()],
        };
        let items = m.to_items().unwrap();
        let back = ObjectMeta::from_items(&unpack(&pack(&items))).unwrap();
        assert_eq!(back.key, long_key);
        assert_eq!(back, m);
        assert_eq!(name_of(&items).unwrap().written, m.written);
        let mut bad = m.clone();
        bad.user = vec![("s3-key".into(), "x".into())];
        assert!(bad.to_items().is_err());
        assert!(ObjectMeta::from_items(&[(b"author".to_vec(), b"x".to_vec())]).is_none());
    }

    #[test]
    fn bucket_names() {
        for ok in ["photos", "my.bucket-1", "abc"] {
            assert!(valid_bucket_name(ok), "{ok}");
        }
        for bad in ["ab", "Photos", "-abc", "a..b", "192.168.1.1", "under_score"] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }
}
