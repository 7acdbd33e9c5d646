//! One file of the listing index as it is kept: its logical name (`M00/00/00/...`) and what the
//! name alone does not say — the present size of an appender file, an expiry, and the S3 name
//! of an object written through S3 — with the line it is written as in the run file,
//! `<name>\t<size or ->\t<expiry or ->[\t<S3 name or ->]`. The S3 name is
//! `<written>:<etag>:<bucket>/<key>`, the key with `%`, tab, CR and LF as `%25`, `%09`, `%0D`, `%0A`;
//! a line of three fields (written before S3 names were kept) has none.

pub use fdfs_common::s3::meta::S3Name;

/// What the index keeps beside a name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// the size when the name does not carry it (appender files), else `None`
    pub size: Option<u64>,
    /// unix time after which the file is expired (`fdfs-expires` metadata), if any
    pub expires: Option<i64>,
    /// the bucket and key of an object written through S3 (its metadata's)
    pub s3: Option<Box<S3Name>>,
}

/// What the index reads from a file's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub expires: Option<i64>,
    pub s3: Option<Box<S3Name>>,
}

fn field<T: std::str::FromStr>(s: &str) -> Result<Option<T>, ()> {
    if s == "-" {
        Ok(None)
    } else {
        s.parse().map(Some).map_err(drop)
    }
}

fn dash<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// What a run-file line cannot hold in a key: its field and line separators.
const LINE_CHARS: &[char] = &['\t', '\r', '\n'];

fn s3_field(s3: &Option<Box<S3Name>>) -> String {
    match s3 {
        Some(n) => format!(
            "{}:{}:{}/{}",
            n.written,
            n.etag,
            n.bucket,
            fdfs_common::http::percent_escape(&n.key, LINE_CHARS)
        ),
        None => "-".into(),
    }
}

fn parse_s3(s: &str) -> Result<Option<Box<S3Name>>, ()> {
    if s == "-" {
        return Ok(None);
    }
    let (written, rest) = s.split_once(':').ok_or(())?;
    let (etag, rest) = rest.split_once(':').ok_or(())?;
    let (bucket, key) = rest.split_once('/').ok_or(())?;
    Ok(Some(Box::new(S3Name {
        bucket: bucket.to_string(),
        key: fdfs_common::http::percent_unescape(key).ok_or(())?,
        written: written.parse().map_err(drop)?,
        etag: etag.to_string(),
    })))
}

impl Entry {
    /// The run file's line for `name` (with its line break).
    pub fn line(&self, name: &str) -> String {
        match &self.s3 {
            None => format!("{name}\t{}\t{}\n", dash(self.size), dash(self.expires)),
            s3 => format!(
                "{name}\t{}\t{}\t{}\n",
                dash(self.size),
                dash(self.expires),
                s3_field(s3)
            ),
        }
    }

    /// A run file's line (without its line break): the name and the entry.
    pub fn parse(line: &str) -> Option<(&str, Entry)> {
        let mut it = line.split('\t');
        let name = it.next().filter(|n| !n.is_empty())?;
        let size = field(it.next()?).ok()?;
        let expires = field(it.next()?).ok()?;
        let s3 = match it.next() {
            Some(f) => parse_s3(f).ok()?,
            None => None,
        };
        if it.next().is_some() {
            return None;
        }
        Some((name, Entry { size, expires, s3 }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_reads_back() {
        let e = Entry {
            size: Some(12),
            expires: None,
            s3: None,
        };
        let line = e.line("M00/00/01/abc.txt");
        assert_eq!(line, "M00/00/01/abc.txt\t12\t-\n");
        assert_eq!(
            Entry::parse(line.trim_end()),
            Some(("M00/00/01/abc.txt", e))
        );
        assert_eq!(Entry::parse("x\t1"), None);
        assert_eq!(Entry::parse("x\tone\t-"), None);
    }

    #[test]
    fn an_s3_name_reads_back_whatever_its_key_holds() {
        let e = Entry {
            size: None,
            expires: Some(5),
            s3: Some(Box::new(S3Name {
                bucket: "photos".into(),
                key: "a\tb\nc%09 d/é".into(),
                written: 17,
                etag: "d41d8cd98f00b204e9800998ecf8427e".into(),
            })),
        };
        let line = e.line("M00/00/01/abc.txt");
        assert_eq!(line.matches('\n').count(), 1);
        assert_eq!(line.matches('\t').count(), 3);
        assert_eq!(
            Entry::parse(line.trim_end_matches('\n')),
            Some(("M00/00/01/abc.txt", e))
        );
        assert_eq!(Entry::parse("x\t-\t-\tnotanumber:b/k"), None);
    }
}
