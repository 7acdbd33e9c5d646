//! The libfastcommon ini dialect (docs/protocol/config-cli-http.md section 1): `key = value` split
//! at the first `=`, `#` comments, `[section]`s, `#include` resolved against the top-level file's
//! directory, repeated keys kept in file order. Every item remembers its file and line so that a
//! bad value can be reported precisely.

use crate::sync::Mutex;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// A config error that names the file, line and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub key: String,
    pub msg: String,
    /// errno-style code the daemons exit with (2 missing, 22 invalid, ...).
    pub code: i32,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "conf file \"{}\", line {}, item \"{}\": {}",
                self.file, self.line, self.key, self.msg
            )
        } else if !self.key.is_empty() {
            write!(
                f,
                "conf file \"{}\", item \"{}\": {}",
                self.file, self.key, self.msg
            )
        } else {
            write!(f, "conf file \"{}\": {}", self.file, self.msg)
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone)]
pub struct Item {
    pub key: String,
    pub value: String,
    pub file: String,
    pub line: usize,
}

#[derive(Debug, Default)]
pub struct IniFile {
    pub path: String,
    global: Vec<Item>,
    sections: BTreeMap<String, Vec<Item>>,
    used: Mutex<HashSet<String>>,
}

const MAX_INCLUDE_DEPTH: usize = 16;

impl IniFile {
    pub fn load(path: &Path) -> Result<IniFile, ConfigError> {
        let mut ini = IniFile {
            path: path.display().to_string(),
            ..Default::default()
        };
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        ini.read_file(path, &base_dir, 0)?;
        Ok(ini)
    }

    pub fn parse_str(name: &str, text: &str) -> Result<IniFile, ConfigError> {
        let mut ini = IniFile {
            path: name.to_string(),
            ..Default::default()
        };
        ini.read_text(name, text, Path::new("."), 0)?;
        Ok(ini)
    }

    fn read_file(&mut self, path: &Path, base_dir: &Path, depth: usize) -> Result<(), ConfigError> {
        let text = std::fs::read(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: 0,
            key: String::new(),
            msg: format!("file {} not exist or can't be read: {e}", path.display()),
            code: e.raw_os_error().unwrap_or(2),
        })?;
        let text = String::from_utf8_lossy(&text).into_owned();
        self.read_text(&path.display().to_string(), &text, base_dir, depth)
    }

    fn read_text(
        &mut self,
        file: &str,
        text: &str,
        base_dir: &Path,
        depth: usize,
    ) -> Result<(), ConfigError> {
        let mut section: Option<String> = None;
        for (n, raw) in text.split('\n').enumerate() {
            let line = raw.trim_matches(|c| c == ' ' || c == '\t' || c == '\r' || c == '\n');
            if line.is_empty() {
                continue;
            }
            if let Some(target) = include_target(line) {
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(ConfigError {
                        file: file.into(),
                        line: n + 1,
                        key: "#include".into(),
                        msg: "include nesting too deep".into(),
                        code: 22,
                    });
                }
                let target = target.strip_prefix("file://").unwrap_or(target);
                let p = if Path::new(target).is_absolute() {
                    PathBuf::from(target)
                } else {
                    base_dir.join(target)
                };
                if !p.exists() {
                    return Err(ConfigError {
                        file: file.into(),
                        line: n + 1,
                        key: "#include".into(),
                        msg: format!("include file \"{target}\" not exists, line: \"{line}\""),
                        code: 2,
                    });
                }
                self.read_file(&p, base_dir, depth + 1)?;
                // included keys land in the global section, and so does what follows
                section = None;
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            if line.starts_with('[') && line.ends_with(']') {
                let name = line[1..line.len() - 1].trim();
                section = (!name.is_empty()).then(|| name.to_string());
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let item = Item {
                key: k.trim().to_string(),
                value: v.trim().to_string(),
                file: file.to_string(),
                line: n + 1,
            };
            match &section {
                None => self.global.push(item),
                Some(s) => self.sections.entry(s.clone()).or_default().push(item),
            }
        }
        Ok(())
    }

    /// Last occurrence of a key in the global section (single-valued keys: last wins).
    pub fn get(&self, key: &str) -> Option<&Item> {
        self.used.lock().insert(key.to_string());
        self.peek(key)
    }

    /// Last occurrence of a key in the global section, without counting it as read.
    pub fn peek(&self, key: &str) -> Option<&Item> {
        self.global.iter().rev().find(|i| i.key == key)
    }

    /// Whether the config's reader asked for `key` (global section).
    pub fn was_read(&self, key: &str) -> bool {
        self.used.lock().contains(key)
    }

    /// Items of the global section, in file order.
    pub fn global_items(&self) -> &[Item] {
        &self.global
    }

    /// Every occurrence of a multi-valued key, in file order.
    pub fn get_all(&self, key: &str) -> Vec<&Item> {
        self.used.lock().insert(key.to_string());
        self.global.iter().filter(|i| i.key == key).collect()
    }

    /// A key in a section, falling back to the global value (`[error-log]` overrides).
    pub fn get_in_section(&self, section: &str, key: &str) -> Option<&Item> {
        self.sections
            .get(section)
            .and_then(|s| s.iter().rev().find(|i| i.key == key))
            .or_else(|| self.get(key))
    }

    /// Items of a section, in file order.
    pub fn section(&self, name: &str) -> Option<&[Item]> {
        self.sections.get(name).map(Vec::as_slice)
    }

    pub fn section_names(&self) -> impl Iterator<Item = &String> {
        self.sections.keys()
    }

    pub fn error(&self, item: Option<&Item>, key: &str, msg: String) -> ConfigError {
        match item {
            Some(i) => ConfigError {
                file: i.file.clone(),
                line: i.line,
                key: key.into(),
                msg,
                code: 22,
            },
            None => ConfigError {
                file: self.path.clone(),
                line: 0,
                key: key.into(),
                msg,
                code: 2,
            },
        }
    }

    // ---- typed getters -------------------------------------------------------------------

    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key).map(|i| i.value.clone())
    }

    pub fn string_or(&self, key: &str, default: &str) -> String {
        self.string(key).unwrap_or_else(|| default.to_string())
    }

    /// C `atoi`: optional sign and leading digits, trailing garbage ignored, else 0.
    pub fn int(&self, key: &str) -> Option<i64> {
        self.get(key).map(|i| atoi(&i.value))
    }

    /// Integer where values <= 0 mean "use the default".
    pub fn positive_or(&self, key: &str, default: i64) -> i64 {
        match self.int(key) {
            Some(v) if v > 0 => v,
            _ => default,
        }
    }

    /// Integer that must be > 0 when present.
    pub fn positive_required_or(&self, key: &str, default: i64) -> Result<i64, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(i) => {
                let v = atoi(&i.value);
                if v <= 0 {
                    Err(self.error(Some(i), key, format!("is invalid, value: {v} <= 0!")))
                } else {
                    Ok(v)
                }
            }
        }
    }

    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        self.get(key)
            .map(|i| parse_bool(&i.value))
            .unwrap_or(default)
    }

    pub fn bool_in_section_or(&self, section: &str, key: &str, default: bool) -> bool {
        self.get_in_section(section, key)
            .map(|i| parse_bool(&i.value))
            .unwrap_or(default)
    }

    /// Byte size read through the generic getter: a bad unit falls back to the default.
    pub fn bytes_lenient_or(&self, key: &str, default: i64) -> i64 {
        match self.get(key) {
            Some(i) => parse_bytes(&i.value).unwrap_or_else(|| {
                log::warn!(
                    "conf file \"{}\", line {}, item \"{key}\": unkown byte unit: {}",
                    i.file,
                    i.line,
                    i.value
                );
                default
            }),
            None => default,
        }
    }

    /// Byte size parsed strictly: a bad value is fatal.
    pub fn bytes_strict_or(&self, key: &str, default: i64) -> Result<i64, ConfigError> {
        match self.get(key) {
            Some(i) if !i.value.is_empty() => parse_bytes(&i.value)
                .ok_or_else(|| self.error(Some(i), key, format!("invalid byte size: {}", i.value))),
            _ => Ok(default),
        }
    }

    /// Time of day `H:M[:S]`.
    pub fn time_of_day_or(&self, key: &str, default: (u8, u8)) -> Result<(u8, u8), ConfigError> {
        match self.get(key) {
            Some(i) if !i.value.is_empty() => parse_time_of_day(&i.value).ok_or_else(|| {
                self.error(
                    Some(i),
                    key,
                    format!("'s value \"{}\" is not an valid time", i.value),
                )
            }),
            _ => Ok(default),
        }
    }
}

fn include_target(line: &str) -> Option<&str> {
    // compared as bytes: a line may hold any UTF-8, and slicing it at 8 could split a character
    let b = line.as_bytes();
    if b.len() > 9 && b[..8].eq_ignore_ascii_case(b"#include") && (b[8] == b' ' || b[8] == b'\t') {
        let t = line[9..].trim();
        return (!t.is_empty()).then_some(t);
    }
    None
}

pub fn atoi(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for c in digits.bytes() {
        if !c.is_ascii_digit() {
            break;
        }
        v = v.saturating_mul(10).saturating_add((c - b'0') as i64);
    }
    if neg {
        -v
    } else {
        v
    }
}

pub fn parse_bool(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l == "true" || l == "yes" || l == "on" || s == "1"
}

/// `256KB`, `1 MB`, `2m`, `20G`, plain bytes; powers of 1024; `MiB` style is invalid.
pub fn parse_bytes(s: &str) -> Option<i64> {
    let s = s.trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if digits_end == 0 {
        return None;
    }
    let n: i64 = s[..digits_end].parse().ok()?;
    let unit = s[digits_end..].trim();
    let mult: i64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" => 1 << 10,
        "M" | "MB" => 1 << 20,
        "G" | "GB" => 1 << 30,
        "T" | "TB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

pub fn parse_time_of_day(s: &str) -> Option<(u8, u8)> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return None;
    }
    let num = |p: &str, max: u8| -> Option<u8> {
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let v: u8 = p.parse().ok()?;
        (v <= max).then_some(v)
    };
    let h = num(parts[0], 23)?;
    let m = num(parts[1], 59)?;
    if parts.len() == 3 {
        num(parts[2], 59)?;
    }
    Some((h, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_rules() {
        let ini = IniFile::parse_str(
            "t.conf",
            "  base_path = /a  \r\nport=1\nport = 2\nnoequals\nv = a=b\n[error-log]\nlog_file_keep_days = 3\n",
        )
        .unwrap();
        assert_eq!(ini.string("base_path").unwrap(), "/a");
        assert_eq!(ini.int("port"), Some(2));
        assert_eq!(ini.string("v").unwrap(), "a=b");
        assert!(ini.get("log_file_keep_days").is_none());
        assert_eq!(
            ini.get_in_section("error-log", "log_file_keep_days")
                .unwrap()
                .value,
            "3"
        );
        assert_eq!(ini.get("port").unwrap().line, 3);
    }

    #[test]
    fn values() {
        assert_eq!(parse_bytes("256KB"), Some(262144));
        assert_eq!(parse_bytes("1 MB"), Some(1 << 20));
        assert_eq!(parse_bytes("2m"), Some(2 << 20));
        assert_eq!(parse_bytes("64MiB"), None);
        assert!(parse_bool("On") && parse_bool("1") && !parse_bool("y"));
        assert_eq!(atoi("12abc"), 12);
        assert_eq!(atoi("abc"), 0);
        assert_eq!(parse_time_of_day("2:5"), Some((2, 5)));
        assert_eq!(parse_time_of_day("0200"), None);
        assert_eq!(parse_time_of_day("25:00"), None);
    }

    #[test]
    fn include_is_relative_to_top_dir() {
        let dir = std::env::temp_dir().join(format!("rfdfs-ini-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("http.conf"), "http.x = 1\n").unwrap();
        std::fs::write(dir.join("sub/inner.conf"), "#include http.conf\ny=2\n").unwrap();
        std::fs::write(dir.join("top.conf"), "[s]\n#INCLUDE sub/inner.conf\nz=3\n").unwrap();
        let ini = IniFile::load(&dir.join("top.conf")).unwrap();
        assert_eq!(ini.string("http.x").unwrap(), "1");
        assert_eq!(ini.string("y").unwrap(), "2");
        assert_eq!(ini.string("z").unwrap(), "3");
        std::fs::write(dir.join("bad.conf"), "#include nope.conf\n").unwrap();
        assert_eq!(IniFile::load(&dir.join("bad.conf")).unwrap_err().code, 2);
        std::fs::remove_dir_all(&dir).ok();
    }
}
