//! Reading the binlog from a position on, line by line, across rotated files (brought back from
//! their `.gz` copies when needed), up to the end the writer has made visible.

use super::files::binlog_name;
use super::record::{parse_line, Position, Record};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Reads records from `binlog.NNN` files, following them across rotation.
pub struct BinlogReader {
    dir: PathBuf,
    pub index: u32,
    pub offset: u64,
    file: Option<File>,
    buf: Vec<u8>,
}

pub enum Next {
    /// a record and the byte length of its line
    Record(Record, u64),
    /// a complete line that does not parse (skipped, length given)
    Invalid(String, u64),
    /// nothing more for now
    Eof,
}

impl BinlogReader {
    pub fn new(dir: &Path, index: u32, offset: u64) -> BinlogReader {
        BinlogReader {
            dir: dir.to_path_buf(),
            index,
            offset,
            file: None,
            buf: Vec::new(),
        }
    }

    /// Where the reader stands.
    pub fn position(&self) -> Position {
        (self.index, self.offset)
    }

    /// If `offset` is not at a line start (an inherited upstream mark), move to the next one.
    pub fn align_to_line_start(&mut self) {
        if self.offset == 0 {
            return;
        }
        let Ok(mut f) = File::open(self.dir.join(binlog_name(self.index))) else {
            return;
        };
        let mut prev = [0u8; 1];
        if f.seek(SeekFrom::Start(self.offset - 1)).is_ok()
            && f.read_exact(&mut prev).is_ok()
            && prev[0] != b'\n'
        {
            let mut rest = Vec::new();
            let _ = f.read_to_end(&mut rest);
            match rest.iter().position(|&c| c == b'\n') {
                Some(p) => {
                    log::warn!(
                        "mark offset {} of binlog.{:03} is not at a line start; skip {} bytes",
                        self.offset,
                        self.index,
                        p + 1
                    );
                    self.offset += p as u64 + 1;
                }
                None => self.offset += rest.len() as u64,
            }
        }
    }

    /// The next record, reading no further than `limit` (the binlog's visible end).
    pub fn next(&mut self, limit: (u32, u64)) -> std::io::Result<Next> {
        let current_write_index = limit.0;
        loop {
            if self.file.is_none() {
                let path = self.dir.join(binlog_name(self.index));
                if !path.exists() {
                    unzip_binlog(&path);
                }
                match File::open(&path) {
                    Ok(f) => self.file = Some(f),
                    Err(e)
                        if e.kind() == std::io::ErrorKind::NotFound
                            && self.index < current_write_index =>
                    {
                        // found at startup (binlog_repair), where the loss is made good
                        log::error!(
                            "binlog.{:03} is missing: its lines cannot be sent",
                            self.index
                        );
                        self.index += 1;
                        self.offset = 0;
                        continue;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Next::Eof),
                    Err(e) => return Err(e),
                }
            }
            if self.index == limit.0 && self.offset >= limit.1 {
                return Ok(Next::Eof);
            }
            let f = self.file.as_mut().expect("opened");
            f.seek(SeekFrom::Start(self.offset))?;
            self.buf.clear();
            let mut chunk = [0u8; 512];
            loop {
                let n = f.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                self.buf.extend_from_slice(&chunk[..n]);
                if self.buf.contains(&b'\n') {
                    break;
                }
            }
            if self.index == limit.0 {
                self.buf.truncate((limit.1 - self.offset) as usize);
            }
            if let Some(p) = self.buf.iter().position(|&c| c == b'\n') {
                let line = String::from_utf8_lossy(&self.buf[..p]).into_owned();
                let len = p as u64 + 1;
                return Ok(match parse_line(&line) {
                    Some(r) => Next::Record(r, len),
                    None => Next::Invalid(line, len),
                });
            }
            // no complete line: the end of this file
            if self.index < current_write_index {
                if !self.buf.is_empty() {
                    log::warn!(
                        "binlog.{:03} ends without a newline; {} bytes skipped",
                        self.index,
                        self.buf.len()
                    );
                }
                self.index += 1;
                self.offset = 0;
                self.file = None;
                continue;
            }
            return Ok(Next::Eof);
        }
    }
}

/// Upstream gzips old binlog files (`compress_binlog`); bring one back when a reader needs it.
fn unzip_binlog(path: &Path) {
    let mut gz = path.as_os_str().to_owned();
    gz.push(".gz");
    let gz = PathBuf::from(gz);
    if !gz.exists() {
        return;
    }
    let tmp = path.with_extension("unzip.tmp");
    let ok = File::create(&tmp)
        .ok()
        .and_then(|out| {
            std::process::Command::new("gzip")
                .arg("-dc")
                .arg(&gz)
                .stdout(out)
                .status()
                .ok()
        })
        .is_some_and(|st| st.success());
    if ok && std::fs::rename(&tmp, path).is_ok() {
        log::info!("binlog {} uncompressed for reading", gz.display());
    } else {
        let _ = std::fs::remove_file(&tmp);
        log::error!("uncompress {} fail", gz.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_crosses_files_and_reads_gzipped_ones() {
        let dir = std::env::temp_dir().join(format!("rfdfs-reader-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("binlog.000"), "1 C M00/00/00/a\n").unwrap();
        std::fs::write(dir.join("binlog.001"), "2 C M00/00/00/b\n").unwrap();
        let gz = std::process::Command::new("gzip")
            .arg(dir.join("binlog.001"))
            .status()
            .unwrap();
        assert!(gz.success() && !dir.join("binlog.001").exists());
        std::fs::write(dir.join("binlog.002"), "3 D M00/00/00/a\n4 C M00/0").unwrap();
        let mut r = BinlogReader::new(&dir, 0, 0);
        let mut names = Vec::new();
        let limit = (2, std::fs::metadata(dir.join("binlog.002")).unwrap().len());
        while let Next::Record(rec, len) = r.next(limit).unwrap() {
            names.push(format!("{}{}", rec.op, rec.name));
            r.offset += len;
        }
        // the partial last line of the current file is not a record yet
        assert_eq!(names, ["CM00/00/00/a", "CM00/00/00/b", "DM00/00/00/a"]);
        std::fs::remove_dir_all(&dir).ok();
    }
}
