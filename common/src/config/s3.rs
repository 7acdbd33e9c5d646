//! `s3.*` keys of storage.conf (rfdfs's own) and the credentials file `s3.credentials_file`
//! names.
//!
//! The credentials file holds one key a line, `#` starting a comment:
//!
//! ```text
//! <access key> <secret key> [<bucket>:rw|ro ...]
//! ```
//!
//! A key with no bucket named may read and write every bucket; one with buckets named may do
//! only what its rights say in those. A line that does not read so stops the storage with the
//! file, the line and what is wrong, as a bad key of storage.conf does.

use super::ini::{ConfigError, IniFile};
use std::path::{Path, PathBuf};

/// What a key may do in one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    ReadOnly,
    ReadWrite,
}

/// One line of the credentials file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key: String,
    pub secret_key: String,
    /// empty: every bucket, read-write
    pub buckets: Vec<(String, Right)>,
}

impl Credential {
    /// What this key may do in `bucket` (`None`: nothing).
    pub fn right_in(&self, bucket: &str) -> Option<Right> {
        if self.buckets.is_empty() {
            return Some(Right::ReadWrite);
        }
        self.buckets
            .iter()
            .find(|(b, _)| b == bucket)
            .map(|(_, r)| *r)
    }
}

/// The S3 endpoint's settings.
#[derive(Debug, Clone, Default)]
pub struct S3Config {
    /// `s3.server_port`: 0 (or absent) = no S3 endpoint
    pub server_port: u16,
    /// `s3.credentials_file`, relative to storage.conf's directory
    pub credentials_file: Option<PathBuf>,
    /// `s3.domain`: the endpoint's DNS name for virtual-host style requests
    /// (`<bucket>.<domain>`); without it, a host's first label is taken for a bucket only when
    /// that bucket exists
    pub domain: Option<String>,
    pub credentials: Vec<Credential>,
}

impl S3Config {
    pub fn enabled(&self) -> bool {
        self.server_port != 0
    }

    pub fn from_ini(ini: &IniFile) -> Result<S3Config, ConfigError> {
        let port_item = ini.get("s3.server_port");
        let server_port = match port_item {
            None => 0,
            Some(i) => i.value.trim().parse::<u16>().map_err(|_| {
                ini.error(
                    Some(i),
                    "s3.server_port",
                    format!("{} is invalid: a port from 0 to 65535", i.value),
                )
            })?,
        };
        let file_item = ini.get("s3.credentials_file");
        let mut cfg = S3Config {
            server_port,
            domain: ini
                .string("s3.domain")
                .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|d| !d.is_empty()),
            ..S3Config::default()
        };
        if let Some(i) = file_item.filter(|i| !i.value.is_empty()) {
            let dir = Path::new(&i.file).parent().unwrap_or(Path::new("."));
            let path = dir.join(&i.value);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ini.error(
                    Some(i),
                    "s3.credentials_file",
                    format!("read {} fail: {e}", path.display()),
                )
            })?;
            cfg.credentials = parse_credentials(&path.display().to_string(), &text)?;
            cfg.credentials_file = Some(path);
        }
        if cfg.enabled() && cfg.credentials.is_empty() {
            return Err(ini.error(
                file_item.or(port_item),
                "s3.credentials_file",
                "must name a file with at least one key when s3.server_port is set \
                 (every S3 request is signed)"
                    .into(),
            ));
        }
        Ok(cfg)
    }

    /// The credential of `access_key`.
    pub fn credential(&self, access_key: &str) -> Option<&Credential> {
        self.credentials.iter().find(|c| c.access_key == access_key)
    }
}

/// The credentials file's lines; `file` names it in errors.
pub fn parse_credentials(file: &str, text: &str) -> Result<Vec<Credential>, ConfigError> {
    let err = |line: usize, key: &str, msg: String| ConfigError {
        file: file.to_string(),
        line,
        key: key.to_string(),
        msg,
        code: 22,
    };
    let mut out: Vec<Credential> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let access_key = words.next().unwrap_or_default().to_string();
        let Some(secret_key) = words.next().map(str::to_string) else {
            return Err(err(
                n + 1,
                &access_key,
                "no secret key: <access key> <secret key> [<bucket>:rw|ro ...]".into(),
            ));
        };
        let mut buckets = Vec::new();
        for w in words {
            let right = match w.rsplit_once(':') {
                Some((b, "rw")) if !b.is_empty() => (b.to_string(), Right::ReadWrite),
                Some((b, "ro")) if !b.is_empty() => (b.to_string(), Right::ReadOnly),
                _ => {
                    return Err(err(
                        n + 1,
                        &access_key,
                        format!("{w:?} is not <bucket>:rw or <bucket>:ro"),
                    ))
                }
            };
            buckets.push(right);
        }
        if out.iter().any(|c| c.access_key == access_key) {
            return Err(err(n + 1, &access_key, "named twice".into()));
        }
        out.push(Credential {
            access_key,
            secret_key,
            buckets,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_give_keys_and_rights() {
        let text = "# admins\nAK1 SK1\n\nAK2 SK2 photos:rw group1:ro  # a reader\n";
        let c = parse_credentials("creds", text).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].right_in("anything"), Some(Right::ReadWrite));
        assert_eq!(c[1].right_in("photos"), Some(Right::ReadWrite));
        assert_eq!(c[1].right_in("group1"), Some(Right::ReadOnly));
        assert_eq!(c[1].right_in("group2"), None);
    }

    #[test]
    fn a_port_needs_keys_and_a_bad_port_is_named() {
        let ini = IniFile::parse_str("/etc/fdfs/storage.conf", "s3.server_port = 9000\n").unwrap();
        let e = S3Config::from_ini(&ini).unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("s3.credentials_file", 1), "{e}");
        let ini =
            IniFile::parse_str("/etc/fdfs/storage.conf", "\ns3.server_port = 99999\n").unwrap();
        let e = S3Config::from_ini(&ini).unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("s3.server_port", 2), "{e}");
        let ini = IniFile::parse_str("/etc/fdfs/storage.conf", "port = 23000\n").unwrap();
        assert!(!S3Config::from_ini(&ini).unwrap().enabled());
    }

    #[test]
    fn a_bad_line_names_file_line_and_key() {
        let e = parse_credentials("/etc/fdfs/s3.keys", "AK1 SK1\nAK2\n").unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.line, e.key.as_str()),
            ("/etc/fdfs/s3.keys", 2, "AK2")
        );
        let e = parse_credentials("f", "AK1 SK1 photos:rx\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.msg.contains("photos:rx"), "{}", e.msg);
        let e = parse_credentials("f", "AK1 SK1\nAK1 SK2\n").unwrap_err();
        assert_eq!(e.line, 2);
    }
}
