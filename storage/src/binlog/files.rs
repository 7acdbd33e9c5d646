//! The binlog's files in `data/sync/`: `binlog.NNN` and their `.gz` copies, `binlog_index.dat`
//! (read back even when lost, garbled or stale: the files on disk decide), and a torn last line
//! cut off at open.

use super::record::{parse_line, Record};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

pub const INDEX_FILE: &str = "binlog_index.dat";

pub fn binlog_name(index: u32) -> String {
    format!("binlog.{index:03}")
}

/// A binlog file opened for lines written at known offsets (not `O_APPEND`, so a failed write
/// can be written over).
pub(super) fn open_for_lines(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// A crash of an older writer can leave a partial last line; cut it so that new lines start
/// at a line start and every reader sees whole records. Reads backwards from the end only as
/// far as the last line break (a binlog file can be 1 GiB).
pub(super) fn repair_torn_tail(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let Ok(f) = OpenOptions::new().read(true).write(true).open(path) else {
        return Ok(());
    };
    let len = f.metadata()?.len();
    let mut end = len;
    let mut buf = vec![0u8; 4096];
    let keep = loop {
        if end == 0 {
            break 0;
        }
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.read_exact_at(chunk, start)?;
        if end == len && chunk.last() == Some(&b'\n') {
            return Ok(());
        }
        if let Some(p) = chunk.iter().rposition(|&c| c == b'\n') {
            break start + p as u64 + 1;
        }
        end = start;
    };
    if keep == len {
        return Ok(());
    }
    log::warn!(
        "binlog {} ends with a partial line of {} bytes; cut it",
        path.display(),
        len - keep
    );
    f.set_len(keep)
}

/// `binlog_index.dat` as read at startup: the file being written, the first one not compressed,
/// and what was wrong with the index, if anything.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct IndexRead {
    pub(super) current: u32,
    pub(super) compress: u32,
    pub(super) problem: Option<String>,
}

/// Read the index, checked against the binlog files there are. A lost or garbled index, or
/// one older than the files (restored from a backup), must not send the writer back to
/// `binlog.000`: lines would go where no peer reads, and peers whose marks are in a later file
/// would wait for ever. The newest binlog file there is is the one being written.
pub(super) fn read_index(dir: &Path) -> IndexRead {
    let newest = binlog_files(dir).last().copied();
    let recorded = match crate::state_file::read_kv(&dir.join(INDEX_FILE)) {
        Ok(kv) => {
            let n = |k: &str| kv.get(k).and_then(|v| v.parse::<u32>().ok());
            match (n("current_write"), n("current_compress")) {
                (Some(w), Some(c)) => Ok((w, c)),
                _ => Err(format!("{INDEX_FILE} is garbled")),
            }
        }
        // upstream's older plain-number index
        Err(_) => match std::fs::read_to_string(dir.join("binlog.index")) {
            Ok(t) => t
                .trim()
                .parse()
                .map(|w| (w, 0))
                .map_err(|_| "binlog.index is garbled".to_string()),
            Err(_) if newest.is_none() => Ok((0, 0)), // a new storage
            Err(_) => Err(format!("{INDEX_FILE} is lost")),
        },
    };
    match (recorded, newest) {
        (Ok((w, c)), Some(n)) if n > w => IndexRead {
            current: n,
            compress: c.min(n),
            problem: Some(format!(
                "{INDEX_FILE} says binlog.{w:03} is written, but binlog.{n:03} exists"
            )),
        },
        (Ok((w, c)), _) => IndexRead {
            current: w,
            compress: c,
            problem: None,
        },
        (Err(why), newest) => {
            let current = newest.unwrap_or(0);
            let compress = (0..current)
                .take_while(|&i| gz_name(dir, i).exists() && !dir.join(binlog_name(i)).exists())
                .count() as u32;
            IndexRead {
                current,
                compress,
                problem: Some(why),
            }
        }
    }
}

/// The indexes of the binlog files in `dir` (plain or gzip'ed), in order.
pub fn binlog_files(dir: &Path) -> Vec<u32> {
    let mut found: Vec<u32> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let rest = name.strip_prefix("binlog.")?;
                    let digits = rest.strip_suffix(".gz").unwrap_or(rest);
                    (digits.len() >= 3 && digits.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| digits.parse().ok())?
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort_unstable();
    found.dedup();
    found
}

/// `binlog.NNN.gz`: a binlog file `compress_binlog` compressed.
pub fn gz_name(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("{}.gz", binlog_name(index)))
}

/// The records of the last `window` bytes of the binlog file being written (whole lines only),
/// oldest first: what the daemon was doing when it stopped.
pub fn tail_records(sync_dir: &Path, window: u64) -> Vec<Record> {
    use std::io::{Read, Seek, SeekFrom};
    let index = read_index(sync_dir).current;
    let Ok(mut f) = std::fs::File::open(sync_dir.join(binlog_name(index))) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(window);
    let mut text = String::new();
    if f.seek(SeekFrom::Start(from)).is_err() || f.read_to_string(&mut text).is_err() {
        return Vec::new();
    }
    let whole = if from == 0 {
        &text[..]
    } else {
        text.split_once('\n').map_or("", |(_, rest)| rest)
    };
    whole.lines().filter_map(parse_line).collect()
}
