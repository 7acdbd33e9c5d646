//! LIST_FILES (245, rfdfs's own; client -> storage): a page of the files a storage's group
//! holds, or their counts, from the storage's listing index (docs/listing.md).
//!
//! Request: the group (16 bytes), the page size (8), `since` and `until` (8 each, unix seconds
//! of the files' create times, 0 = no bound), flags (1 byte; bit 0: counts only), then text,
//! three lines: the name prefix (`M00/00/`), the source (an IPv4 address or a server id; empty
//! = any) and the resume token (empty = from the start).
//!
//! Answer, text: `next <token>` (or `end`) then one line per file, `<file id> <size> <create
//! time> <crc32> <source> <expiry or ->`; with counts only, one line per store path
//! `M<xx> <files> <bytes>` and `total <files> <bytes>`. The same text is what `GET /list` and
//! `GET /stat` on the storage's HTTP port answer.

use super::GROUP_NAME_MAX;
use crate::codec::{DecodeError, DecodeResult, Message, Reader, Writer};

/// The most entries one page may ask for.
pub const MAX_PAGE: u64 = 10_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilesReq {
    pub group: String,
    pub limit: u64,
    pub since: i64,
    pub until: i64,
    pub counts_only: bool,
    pub prefix: String,
    pub source: String,
    pub token: String,
}

impl Message for ListFilesReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        out.put_i64(self.limit as i64);
        out.put_i64(self.since);
        out.put_i64(self.until);
        out.put_u8(u8::from(self.counts_only));
        out.extend_from_slice(
            format!("{}\n{}\n{}", self.prefix, self.source, self.token).as_bytes(),
        );
    }

    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let group = r.fixed_str(GROUP_NAME_MAX, "group_name")?;
        let limit = r.i64("limit")?;
        if !(1..=MAX_PAGE as i64).contains(&limit) {
            return Err(DecodeError::invalid(
                "limit",
                format!("{limit}, not 1 to {MAX_PAGE}"),
            ));
        }
        let since = r.i64("since")?;
        let until = r.i64("until")?;
        let flags = r.u8("flags")?;
        let text = std::str::from_utf8(r.rest())
            .map_err(|_| DecodeError::invalid("filters", "not UTF-8 text".to_string()))?;
        let mut lines = text.split('\n');
        let mut next = |field: &'static str| -> DecodeResult<String> {
            let v = lines.next().unwrap_or("");
            if v.len() > 256 {
                return Err(DecodeError::invalid(field, format!("{} bytes", v.len())));
            }
            Ok(v.to_string())
        };
        let (prefix, source, token) = (next("prefix")?, next("source")?, next("token")?);
        Ok(ListFilesReq {
            group,
            limit: limit as u64,
            since,
            until,
            counts_only: flags & 1 != 0,
            prefix,
            source,
            token,
        })
    }
}

/// One listed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    pub file_id: String,
    pub size: i64,
    pub create_time: i64,
    pub crc32: u32,
    /// an IPv4 address or a server id
    pub source: String,
    pub expires: Option<i64>,
}

impl ListedFile {
    pub fn line(&self) -> String {
        format!(
            "{} {} {} {} {} {}\n",
            self.file_id,
            self.size,
            self.create_time,
            self.crc32,
            self.source,
            self.expires
                .map(|e| e.to_string())
                .unwrap_or_else(|| "-".into())
        )
    }

    pub fn parse(line: &str) -> Option<ListedFile> {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() != 6 {
            return None;
        }
        Some(ListedFile {
            file_id: f[0].to_string(),
            size: f[1].parse().ok()?,
            create_time: f[2].parse().ok()?,
            crc32: f[3].parse().ok()?,
            source: f[4].to_string(),
            expires: match f[5] {
                "-" => None,
                e => Some(e.parse().ok()?),
            },
        })
    }
}

/// A page: the files and where to go on from (`None`: the listing is complete).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub next: Option<String>,
    pub files: Vec<ListedFile>,
}

impl ListPage {
    pub fn to_text(&self) -> String {
        let mut s = match &self.next {
            Some(t) => format!("next {t}\n"),
            None => "end\n".to_string(),
        };
        for f in &self.files {
            s += &f.line();
        }
        s
    }

    pub fn parse(text: &str) -> Result<ListPage, String> {
        let mut lines = text.lines();
        let next = match lines.next() {
            Some("end") => None,
            Some(l) => Some(
                l.strip_prefix("next ")
                    .ok_or_else(|| format!("first line \"{l}\" is not next/end"))?
                    .to_string(),
            ),
            None => return Err("empty answer".into()),
        };
        let files = lines
            .map(|l| ListedFile::parse(l).ok_or_else(|| format!("line \"{l}\" does not parse")))
            .collect::<Result<_, _>>()?;
        Ok(ListPage { next, files })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_and_a_page_read_back() {
        let req = ListFilesReq {
            group: "group1".into(),
            limit: 500,
            since: 10,
            until: 0,
            counts_only: false,
            prefix: "M00/00/".into(),
            source: "".into(),
            token: "M00/00/00/abc".into(),
        };
        assert_eq!(ListFilesReq::from_bytes(&req.to_bytes()).unwrap(), req);
        let mut bad = req.clone();
        bad.limit = 0;
        assert!(ListFilesReq::from_bytes(&bad.to_bytes()).is_err());

        let page = ListPage {
            next: Some("M00/00/01/x".into()),
            files: vec![ListedFile {
                file_id: "group1/M00/00/01/x".into(),
                size: 5,
                create_time: 1_700_000_000,
                crc32: 7,
                source: "10.0.0.1".into(),
                expires: Some(1_800_000_000),
            }],
        };
        assert_eq!(ListPage::parse(&page.to_text()).unwrap(), page);
    }
}
