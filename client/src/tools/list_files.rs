//! `fdfs_list_files`: the files a group holds, from the listing index of one of its members
//! (rfdfs's own tool, so clap's conventions). The member is one the tracker lists ACTIVE for
//! the group, as every tool asks the tracker first; it must be an rfdfs storage (a C storage
//! does not answer LIST_FILES).

use crate::client::Client;
use fdfs_common::config::HostPort;
use fdfs_common::proto::listing::{ListFilesReq, ListPage, MAX_PAGE};
use fdfs_common::proto::status;
use std::io::Write;

#[derive(clap::Parser, Debug)]
#[command(
    name = "fdfs_list_files",
    version,
    about = "List the files of a group (one file ID a line), from a member's listing index",
    long_about = "List the files of a group, one whole file ID a line, in name order \
(store path, then directories, then name), which stays stable while files come and go: a \
file is never listed twice, and one that exists for the whole listing is always listed. The \
listing goes page by page; --token starts after the name a previous listing stopped at (the \
`next` token of LIST_FILES and GET /list). Create times (--since, --until) are unix seconds; \
the source is the storage IP or server id the file was uploaded to."
)]
struct ListArgs {
    /// client.conf (the trackers to ask for a member of the group)
    config_file: std::path::PathBuf,
    /// the group to list
    group: String,
    /// with size, create time, CRC32, source and expiry after each file ID
    #[arg(short = 'l')]
    long: bool,
    /// only names starting with this (M00/00/, M00/00/0A/)
    #[arg(long, default_value = "")]
    prefix: String,
    /// only files created at or after this unix time
    #[arg(long, default_value_t = 0)]
    since: i64,
    /// only files created before this unix time
    #[arg(long, default_value_t = 0)]
    until: i64,
    /// only files uploaded to this storage (an IP address or a server id)
    #[arg(long, default_value = "")]
    source: String,
    /// print at most this many files
    #[arg(long)]
    limit: Option<u64>,
    /// start after this name (a `next` token)
    #[arg(long, default_value = "")]
    token: String,
    /// print the number of files alone
    #[arg(long)]
    count: bool,
}

pub fn fdfs_list_files(args: &[String]) -> i32 {
    let (a, client) =
        match super::startup::clap_tool::<ListArgs>("fdfs_list_files", args, |a| &a.config_file) {
            Ok(started) => started,
            Err(code) => return code,
        };
    match list(&client, &a, &mut std::io::stdout().lock()) {
        Ok(()) => 0,
        // `fdfs_list_files ... | head`: stdout gone, quietly, as the other tools end
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            141
        }
        Err(e) => {
            eprintln!("fdfs_list_files: {e}");
            1
        }
    }
}

/// An ACTIVE member of the group, as the tracker lists them.
fn member(client: &Client, group: &str) -> Result<HostPort, Box<dyn std::error::Error>> {
    client
        .list_storages(group, None)?
        .into_iter()
        .find(|s| s.status == status::ACTIVE)
        .map(|s| HostPort::new(s.ip, s.storage_port as u16))
        .ok_or_else(|| format!("no ACTIVE storage in group {group}").into())
}

fn list(
    client: &Client,
    a: &ListArgs,
    out: &mut impl Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let addr = member(client, &a.group)?;
    let mut req = ListFilesReq {
        group: a.group.clone(),
        limit: MAX_PAGE,
        since: a.since,
        until: a.until,
        counts_only: false,
        prefix: a.prefix.clone(),
        source: a.source.clone(),
        token: a.token.clone(),
    };
    // the whole group counted: the index keeps the count, no page needs reading
    let unfiltered = a.prefix.is_empty()
        && a.since == 0
        && a.until == 0
        && a.source.is_empty()
        && a.token.is_empty()
        && a.limit.is_none();
    if a.count && unfiltered {
        req.counts_only = true;
        let text = client.list_files(&addr, &req)?;
        let total = text
            .lines()
            .find_map(|l| l.strip_prefix("total "))
            .and_then(|t| t.split(' ').next())
            .ok_or_else(|| format!("no total in the answer: {text}"))?;
        writeln!(out, "{total}")?;
        return Ok(());
    }
    let mut printed = 0u64;
    let mut counted = 0u64;
    loop {
        if let Some(limit) = a.limit {
            req.limit = (limit - printed).clamp(1, MAX_PAGE);
        }
        let text = client.list_files(&addr, &req)?;
        let page = ListPage::parse(&text)?;
        for f in &page.files {
            if a.count {
                counted += 1;
            } else if a.long {
                out.write_all(f.line().as_bytes())?;
            } else {
                writeln!(out, "{}", f.file_id)?;
            }
            printed += 1;
            if a.limit.is_some_and(|l| printed >= l) {
                break;
            }
        }
        match page.next {
            Some(t) if a.limit.is_none_or(|l| printed < l) => req.token = t,
            _ => break,
        }
    }
    if a.count {
        writeln!(out, "{counted}")?;
    }
    Ok(())
}
