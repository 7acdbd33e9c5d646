//! One file of the listing index as it is kept: its logical name (`M00/00/00/...`) and what the
//! name alone does not say — the present size of an appender file, and an expiry — with the
//! line it is written as in the run file, `<name>\t<size or ->\t<expiry or ->`.

/// What the index keeps beside a name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entry {
    /// the size when the name does not carry it (appender files), else `None`
    pub size: Option<u64>,
    /// unix time after which the file is expired (`fdfs-expires` metadata), if any
    pub expires: Option<i64>,
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

impl Entry {
    /// The run file's line for `name` (with its line break).
    pub fn line(&self, name: &str) -> String {
        format!("{name}\t{}\t{}\n", dash(self.size), dash(self.expires))
    }

    /// A run file's line (without its line break): the name and the entry.
    pub fn parse(line: &str) -> Option<(&str, Entry)> {
        let mut it = line.split('\t');
        let name = it.next().filter(|n| !n.is_empty())?;
        let size = field(it.next()?).ok()?;
        let expires = field(it.next()?).ok()?;
        if it.next().is_some() {
            return None;
        }
        Some((name, Entry { size, expires }))
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
}
