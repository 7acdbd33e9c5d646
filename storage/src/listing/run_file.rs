//! The run file: every live file of the group in name order as of one binlog position, so that
//! a listing reads it from any name on without holding it in memory.
//!
//! Layout: `rfdfs-listing 1 <binlog index> <offset>\n`, the entry lines sorted by name
//! (`entry.rs`), then `end <lines> <crc32>\n`, the checksum of every byte before that line. A
//! file without its end line, or whose checksum or order is wrong, is damaged: the caller
//! rebuilds the index from the binlog. It is written whole (`RunFile::merged`: a temporary
//! file, fsync, rename), never changed in place; a reader keeps the file it opened, so a
//! listing under way goes on reading the run it started with while a new one takes the name.
//!
//! Memory: every [`STRIDE`]th name with its line's offset, about 8,000 names for a million
//! files; a read seeks to the last of them at or before where it starts and skips forward.

use super::bloom::Bloom;
use super::entry::Entry;
use crate::binlog::Position;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// One name in this many is kept in memory.
pub const STRIDE: u64 = 128;

const MAGIC: &str = "rfdfs-listing 1";

pub struct RunFile {
    /// `None`: no file (nothing listed)
    file: Option<Arc<File>>,
    /// the binlog position the file is complete up to
    pub position: Position,
    pub lines: u64,
    sparse: Vec<(String, u64)>,
    /// where the entry lines end (the end line's offset)
    data_end: u64,
    /// the names it holds, for lookups of names it surely does not
    names: Bloom,
}

impl RunFile {
    /// No file yet: nothing listed, the binlog to be read from its start.
    pub fn empty(path: &Path) -> RunFile {
        let _ = path;
        RunFile {
            file: None,
            position: (0, 0),
            lines: 0,
            sparse: Vec::new(),
            data_end: 0,
            names: Bloom::with_capacity(0),
        }
    }

    /// Read the file at `path`, checking it whole and showing `each` every entry on the way.
    /// `Ok(None)`: there is none.
    pub fn open(
        path: &Path,
        mut each: impl FnMut(&str, &Entry),
    ) -> Result<Option<RunFile>, String> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("open: {e}")),
        };
        // a line is longer than 40 bytes: room for every name the file can hold
        let size = file.metadata().map_err(|e| format!("stat: {e}"))?.len();
        let mut names = Bloom::with_capacity(size / 40);
        let file = Arc::new(file);
        let mut r = BufReader::with_capacity(64 << 10, At::new(&file, 0, u64::MAX));
        let mut line = String::new();
        let mut offset = 0u64;
        let mut crc = crc32fast::Hasher::new();
        r.read_line(&mut line).map_err(|e| e.to_string())?;
        let position = line
            .strip_prefix(MAGIC)
            .and_then(|rest| {
                let mut it = rest.split_whitespace().map(str::parse::<u64>);
                let index = u32::try_from(it.next()?.ok()?).ok()?;
                Some((index, it.next()?.ok()?))
            })
            .ok_or("no header")?;
        crc.update(line.as_bytes());
        offset += line.len() as u64;
        let mut sparse = Vec::new();
        let mut lines = 0u64;
        let mut last = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err("no end line".into());
            }
            if let Some(end) = line.strip_prefix("end ") {
                let mut it = end.split_whitespace();
                let n: u64 = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("bad end line")?;
                let sum: u32 = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("bad end line")?;
                if n != lines || sum != crc.finalize() {
                    return Err(format!("end line says {n} lines, checksum {sum}: mismatch"));
                }
                let mut rest = Vec::new();
                r.read_to_end(&mut rest).map_err(|e| e.to_string())?;
                if !rest.is_empty() {
                    return Err("bytes after the end line".into());
                }
                return Ok(Some(RunFile {
                    file: Some(file),
                    position,
                    lines,
                    sparse,
                    data_end: offset,
                    names,
                }));
            }
            let (name, entry) = Entry::parse(line.trim_end_matches('\n'))
                .ok_or_else(|| format!("line {} does not parse", lines + 2))?;
            each(name, &entry);
            names.insert(name);
            if name <= last.as_str() {
                return Err(format!("line {} is out of order", lines + 2));
            }
            if lines.is_multiple_of(STRIDE) {
                sparse.push((name.to_string(), offset));
            }
            last = name.to_string();
            crc.update(line.as_bytes());
            offset += line.len() as u64;
            lines += 1;
        }
    }

    /// A new run file at `path`, complete up to `position`: this one's entries with `changes`
    /// made (`None` takes a name out). The lines of this file that no change touches are
    /// copied as they are, not parsed and written again: a merge rewrites every line, and
    /// copying halved its time (`scripts/listing-upkeep.sh`, 1.3 million files).
    pub fn merged(
        &self,
        path: &Path,
        position: Position,
        changes: &std::collections::BTreeMap<String, Option<Entry>>,
    ) -> std::io::Result<RunFile> {
        let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "run file line");
        let mut w = RunWriter::create(path, position, self.lines + changes.len() as u64)?;
        let mut changes = changes.iter().peekable();
        let put = |w: &mut RunWriter, name: &str, e: &Option<Entry>| match e {
            Some(e) => w.push(name, e.line(name).as_bytes()),
            None => Ok(()),
        };
        if let (Some(file), Some(first)) = (&self.file, self.sparse.first()) {
            let mut r = BufReader::with_capacity(256 << 10, At::new(file, first.1, self.data_end));
            let mut line = Vec::with_capacity(256);
            loop {
                line.clear();
                if r.read_until(b'\n', &mut line)? == 0 {
                    break;
                }
                let tab = line.iter().position(|&b| b == b'\t').ok_or_else(bad)?;
                let name = std::str::from_utf8(&line[..tab]).map_err(|_| bad())?;
                // the changes before this name, and this name's own
                let mut replaced = false;
                while let Some((n, e)) = changes.next_if(|(n, _)| n.as_str() <= name) {
                    replaced |= n == name;
                    put(&mut w, n, e)?;
                }
                if !replaced {
                    w.push(name, &line)?;
                }
            }
        }
        for (n, e) in changes {
            put(&mut w, n, e)?;
        }
        w.finish(path, position)
    }

    /// The entries whose names come after `after` (all of them for `""`), in order.
    pub fn scan_from(&self, after: &str) -> std::io::Result<RunScan> {
        let i = self.sparse.partition_point(|(n, _)| n.as_str() <= after);
        let start = match i {
            0 => self.sparse.first().map(|s| s.1),
            i => Some(self.sparse[i - 1].1),
        };
        let reader = match (start, &self.file) {
            (Some(start), Some(f)) if self.lines > 0 => Some(BufReader::with_capacity(
                64 << 10,
                At::new(f, start, self.data_end),
            )),
            _ => None,
        };
        Ok(RunScan {
            reader,
            after: after.to_string(),
            line: String::new(),
        })
    }

    /// The entry for `name`, if the file lists it: the filter first, then one read of the
    /// [`STRIDE`] lines that would hold it.
    pub fn get(&self, name: &str) -> std::io::Result<Option<Entry>> {
        let Some(file) = &self.file else {
            return Ok(None);
        };
        if !self.names.may_hold(name) {
            return Ok(None);
        }
        let i = self.sparse.partition_point(|(n, _)| n.as_str() <= name);
        if i == 0 {
            return Ok(None);
        }
        let from = self.sparse[i - 1].1;
        let to = self.sparse.get(i).map_or(self.data_end, |s| s.1);
        let mut block = vec![0u8; (to - from) as usize];
        file.read_exact_at(&mut block, from)?;
        let text = std::str::from_utf8(&block)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        for line in text.lines() {
            let (n, e) = Entry::parse(line).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "a line does not parse")
            })?;
            match n.cmp(name) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => return Ok(Some(e)),
                std::cmp::Ordering::Greater => return Ok(None),
            }
        }
        Ok(None)
    }
}

/// A run file being written: a temporary file beside it, renamed into place when finished.
struct RunWriter {
    w: std::io::BufWriter<File>,
    tmp: std::path::PathBuf,
    crc: crc32fast::Hasher,
    offset: u64,
    lines: u64,
    sparse: Vec<(String, u64)>,
    names: Bloom,
}

impl RunWriter {
    fn create(path: &Path, position: Position, expected: u64) -> std::io::Result<RunWriter> {
        let tmp = path.with_extension("tmp");
        let mut w = std::io::BufWriter::with_capacity(256 << 10, File::create(&tmp)?);
        let mut crc = crc32fast::Hasher::new();
        let header = format!("{MAGIC} {} {}\n", position.0, position.1);
        w.write_all(header.as_bytes())?;
        crc.update(header.as_bytes());
        Ok(RunWriter {
            w,
            tmp,
            crc,
            offset: header.len() as u64,
            lines: 0,
            sparse: Vec::new(),
            names: Bloom::with_capacity(expected),
        })
    }

    /// The next entry line (with its line break), for `name`.
    fn push(&mut self, name: &str, line: &[u8]) -> std::io::Result<()> {
        self.names.insert(name);
        if self.lines.is_multiple_of(STRIDE) {
            self.sparse.push((name.to_string(), self.offset));
        }
        self.w.write_all(line)?;
        self.crc.update(line);
        self.offset += line.len() as u64;
        self.lines += 1;
        Ok(())
    }

    /// The end line, then the file synced and put at `path`.
    fn finish(mut self, path: &Path, position: Position) -> std::io::Result<RunFile> {
        let end = format!("end {} {}\n", self.lines, self.crc.clone().finalize());
        self.w.write_all(end.as_bytes())?;
        let file = self.w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&self.tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(RunFile {
            file: Some(Arc::new(File::open(path)?)),
            position,
            lines: self.lines,
            sparse: self.sparse,
            data_end: self.offset,
            names: self.names,
        })
    }
}

/// Reads a shared file from `pos` to `end` by positional reads (no shared file offset, so
/// listings side by side each read their own way).
struct At {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl At {
    fn new(file: &Arc<File>, pos: u64, end: u64) -> At {
        At {
            file: Arc::clone(file),
            pos,
            end,
        }
    }
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = (self.end - self.pos).min(buf.len() as u64) as usize;
        if room == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..room], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Entries of a run file from a name on.
pub struct RunScan {
    reader: Option<BufReader<At>>,
    after: String,
    line: String,
}

impl Iterator for RunScan {
    type Item = std::io::Result<(String, Entry)>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = self.reader.as_mut()?;
        loop {
            self.line.clear();
            match r.read_line(&mut self.line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(e)),
            }
            let Some((name, e)) = Entry::parse(self.line.trim_end_matches('\n')) else {
                return Some(Err(std::io::Error::other("run file line does not parse")));
            };
            if !self.after.is_empty() && name <= self.after.as_str() {
                continue;
            }
            self.after.clear();
            return Some(Ok((name.to_string(), e)));
        }
    }
}
