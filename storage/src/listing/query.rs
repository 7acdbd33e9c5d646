//! A listing request answered from the index: the filters (prefix, create time, source), the
//! page, the counts. LIST_FILES and `GET /list`, `GET /stat` (storage/src/http.rs) both come
//! here with a [`ListFilesReq`].

use super::entry::Entry;
use super::index::size_of;
use crate::storage::Storage;
use fdfs_common::config::expire_rule::{file_expiry, ExpireRule};
use fdfs_common::file_id::RemoteName;
use fdfs_common::proto::errno;
use fdfs_common::proto::listing::{ListFilesReq, ListPage, ListedFile};
use fdfs_common::refusal::Refusal;

/// Names examined per page at most, so that a filter matching little still answers quickly
/// (the page then holds fewer files than asked, and a token to go on).
const EXAMINE_PER_PAGE: usize = 200_000;

/// The listed form of an index entry (`None`: a name that does not decode, never listed): its
/// expiry its own metadata's, else the `expire_rule` lines'.
fn listed(group: &str, name: &str, e: &Entry, rules: &[ExpireRule]) -> Option<ListedFile> {
    let rn = RemoteName::decode(name).ok()?;
    let created = i64::from(rn.payload.timestamp);
    Some(ListedFile {
        file_id: format!("{group}/{name}"),
        size: size_of(name, e),
        create_time: created,
        crc32: rn.payload.crc32,
        source: rn.payload.source.text(),
        expires: file_expiry(e.expires, rules, name, created),
    })
}

impl Storage {
    /// LIST_FILES: the page (or the counts) `req` asks for, as text.
    pub fn list_files(&self, req: &ListFilesReq) -> Result<String, Refusal> {
        self.check_group(&req.group)?;
        let listing = &self.listing;
        if !listing.ready() {
            // rebuilding from the binlog: a listing now would miss files
            return Err(Refusal::done(errno::EBUSY));
        }
        listing.catch_up(self.binlog.visible_end());
        let index = listing.index.read();
        if req.counts_only {
            let mut text = String::new();
            let (mut files, mut bytes) = (0, 0);
            for (path, c) in index.counts() {
                text += &format!("M{path:02X} {} {}\n", c.files, c.bytes);
                files += c.files;
                bytes += c.bytes;
            }
            return Ok(text + &format!("total {files} {bytes}\n"));
        }
        let mut files = Vec::new();
        let next = index
            .page(
                &req.token,
                &req.prefix,
                req.limit as usize,
                EXAMINE_PER_PAGE,
                |name, e| {
                    let Some(f) = listed(&self.group, name, e, &self.cfg.expire_rules) else {
                        return false;
                    };
                    let keep = (req.since == 0 || f.create_time >= req.since)
                        && (req.until == 0 || f.create_time < req.until)
                        && (req.source.is_empty() || f.source == req.source);
                    if keep {
                        files.push(f);
                    }
                    keep
                },
            )
            .map_err(|e| {
                log::error!("read listing index fail: {e}");
                Refusal::done(errno::EIO)
            })?
            .next;
        Ok(ListPage { next, files }.to_text())
    }
}
