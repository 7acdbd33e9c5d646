//! A binlog line as a value: `<timestamp> <op> <name>[ <args>]`, the op letters (upper case for
//! a change that started here, lower case for a copy), and reading the lines of a binlog file.

use std::fs::File;
use std::io::BufRead;
use std::path::Path;

/// A place in the binlog: (file index, byte offset), ordered as the lines are.
pub type Position = (u32, u64);

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

/// Call `f` with each record of binlog file `path`, reading it line by line.
pub fn for_each_record(path: &Path, mut f: impl FnMut(Record)) -> std::io::Result<()> {
    for_each_line(path, |l| {
        if let Some(r) = parse_line(l) {
            f(r);
        }
    })
}

/// Call `f` with each line of binlog file `path` (without its line break; lines that are not
/// text are passed over).
pub fn for_each_line(path: &Path, mut f: impl FnMut(&str)) -> std::io::Result<()> {
    let mut reader = std::io::BufReader::with_capacity(64 << 10, File::open(path)?);
    let mut line = Vec::with_capacity(256);
    while reader.read_until(b'\n', &mut line)? > 0 {
        if let Ok(l) = std::str::from_utf8(&line) {
            f(l.trim_end_matches(['\n', '\r']));
        }
        line.clear();
    }
    Ok(())
}

/// One parsed binlog record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub timestamp: i64,
    pub op: char,
    pub name: String,
    pub args: String,
}

impl Record {
    /// The two numbers of an append, modify or truncate line (`offset length`, `old new`).
    pub fn arg_pair<T: std::str::FromStr>(&self) -> Option<(T, T)> {
        let mut nums = self.args.split(' ').filter_map(|v| v.parse::<T>().ok());
        Some((nums.next()?, nums.next()?))
    }
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
