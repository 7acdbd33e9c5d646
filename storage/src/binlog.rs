//! The binlog in `base_path/data/sync/` (sync-and-storage-layout.md section 2): one
//! `<timestamp> <op> <name>[ <args>]\n` line per change, upper-case ops for changes that
//! started here. Lines are written whole with one `write` on an `O_APPEND` descriptor, so a
//! crash can never leave a torn line in the middle of the file.

use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const INDEX_FILE: &str = "binlog_index.dat";
pub const ROTATE_SIZE: u64 = 1 << 30;

pub mod op {
    pub const CREATE: char = 'C';
    pub const DELETE: char = 'D';
    pub const UPDATE: char = 'U';
    pub const APPEND: char = 'A';
    pub const MODIFY: char = 'M';
    pub const TRUNCATE: char = 'T';
    pub const LINK: char = 'L';
    pub const RENAME: char = 'R';
}

struct Current {
    index: u32,
    file: Arc<File>,
    size: u64,
    compress_index: u32,
    /// lines written so far
    written: u64,
}

pub struct Binlog {
    dir: PathBuf,
    cur: Mutex<Current>,
    /// lines known to be on disk; one fdatasync covers every line written before it
    synced: Mutex<u64>,
}

pub fn binlog_name(index: u32) -> String {
    format!("binlog.{index:03}")
}

impl Binlog {
    pub fn open(sync_dir: &Path) -> std::io::Result<Binlog> {
        std::fs::create_dir_all(sync_dir)?;
        let (index, compress_index) = read_index(sync_dir);
        let path = sync_dir.join(binlog_name(index));
        repair_torn_tail(&path)?;
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        let b = Binlog {
            dir: sync_dir.to_path_buf(),
            cur: Mutex::new(Current {
                index,
                file: Arc::new(file),
                size,
                compress_index,
                written: 0,
            }),
            synced: Mutex::new(0),
        };
        b.write_index(index, compress_index)?;
        Ok(b)
    }

    fn write_index(&self, index: u32, compress: u32) -> std::io::Result<()> {
        crate::store::write_atomic(
            &self.dir.join(INDEX_FILE),
            format!("current_write={index}\ncurrent_compress={compress}\n").as_bytes(),
        )
    }

    /// Append one record and return once it is on disk. `args` is the rest after the name
    /// (`"3 5"`, a second name, or empty). Concurrent writers share one fdatasync.
    pub fn write(&self, timestamp: i64, op: char, name: &str, args: &str) {
        let seq = self.append(timestamp, op, name, args);
        self.sync_to(seq);
    }

    fn sync_to(&self, seq: u64) {
        let mut synced = self.synced.lock();
        if *synced >= seq {
            return;
        }
        let (file, target) = {
            let cur = self.cur.lock();
            (Arc::clone(&cur.file), cur.written)
        };
        if let Err(e) = file.sync_data() {
            log::error!("fsync binlog fail: {e}");
            return;
        }
        *synced = target;
    }

    fn append(&self, timestamp: i64, op: char, name: &str, args: &str) -> u64 {
        let line = if args.is_empty() {
            format!("{timestamp} {op} {name}\n")
        } else {
            format!("{timestamp} {op} {name} {args}\n")
        };
        let mut cur = self.cur.lock();
        if let Err(e) = (&*cur.file).write_all(line.as_bytes()) {
            log::error!("write binlog fail: {e}");
            return cur.written;
        }
        cur.size += line.len() as u64;
        cur.written += 1;
        if cur.size >= ROTATE_SIZE {
            let next = cur.index + 1;
            let path = self.dir.join(binlog_name(next));
            let _ = std::fs::remove_file(&path);
            match OpenOptions::new().create(true).append(true).open(&path) {
                Ok(f) => {
                    let _ = cur.file.sync_all();
                    cur.file = Arc::new(f);
                    cur.index = next;
                    cur.size = 0;
                    let c = cur.compress_index;
                    if let Err(e) = self.write_index(next, c) {
                        log::error!("write binlog index fail: {e}");
                    }
                }
                Err(e) => log::error!("open binlog {} fail: {e}", path.display()),
            }
        }
        cur.written
    }

    /// Make what was written durable.
    pub fn sync(&self) {
        let cur = self.cur.lock();
        let _ = cur.file.sync_data();
    }

    /// Whether no change was ever recorded here (nothing to copy to a new group member).
    pub fn is_empty(&self) -> bool {
        let cur = self.cur.lock();
        cur.index == 0 && cur.size == 0
    }

    pub fn current_index(&self) -> u32 {
        self.cur.lock().index
    }
}

/// A crash of an older writer can leave a partial last line; cut it so that new lines start
/// at a line start and every reader sees whole records.
fn repair_torn_tail(path: &Path) -> std::io::Result<()> {
    let Ok(data) = std::fs::read(path) else {
        return Ok(());
    };
    if data.is_empty() || data.ends_with(b"\n") {
        return Ok(());
    }
    let keep = data
        .iter()
        .rposition(|&c| c == b'\n')
        .map(|p| p + 1)
        .unwrap_or(0);
    log::warn!(
        "binlog {} ends with a partial line of {} bytes; cut it",
        path.display(),
        data.len() - keep
    );
    OpenOptions::new()
        .write(true)
        .open(path)?
        .set_len(keep as u64)
}

fn read_index(dir: &Path) -> (u32, u32) {
    if let Ok(kv) = crate::store::read_kv(&dir.join(INDEX_FILE)) {
        let n = |k: &str| kv.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        return (n("current_write"), n("current_compress"));
    }
    // legacy plain-number index
    if let Ok(t) = std::fs::read_to_string(dir.join("binlog.index")) {
        return (t.trim().parse().unwrap_or(0), 0);
    }
    (0, 0)
}

/// One parsed binlog record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub timestamp: i64,
    pub op: char,
    pub name: String,
    pub args: String,
}

/// Parse a line (without its newline). Upstream's malformed `L  <target>` / `l ` lines and
/// anything else that does not parse give `None`: skipped, never fatal.
pub fn parse_line(line: &str) -> Option<Record> {
    if line.len() >= 256 {
        return None;
    }
    let mut it = line.splitn(3, ' ');
    let ts = it.next()?.parse().ok()?;
    let op = it.next()?.chars().next()?;
    let rest = it.next()?;
    let (name, args) = match rest.split_once(' ') {
        Some((n, a)) => (n, a),
        None => (rest, ""),
    };
    if name.is_empty() {
        return None;
    }
    Some(Record {
        timestamp: ts,
        op,
        name: name.to_string(),
        args: args.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_records() {
        let r = parse_line("1795476250 A M01/00/01/x.log 3 5").unwrap();
        assert_eq!(
            (r.op, r.name.as_str(), r.args.as_str()),
            ('A', "M01/00/01/x.log", "3 5")
        );
        assert!(parse_line("1795476250 L  M01/00/01/x.bin").is_none());
        assert!(parse_line("1795476250 l ").is_none());
        assert!(parse_line("garbage").is_none());
    }
}
