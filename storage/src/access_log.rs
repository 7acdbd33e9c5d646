//! `storage_access.log` (`[access-log] enabled = true`): a header line when the file is new,
//! then one line per file request in upstream's format: when the request began, client IP,
//! action, file name without group, status (errno, 0 = OK), time used (ms, or us with
//! `time_precision = us`), request and response length. Rotated like the error log by the
//! `log_file_*` keys of `[access-log]` (else the global ones), always with a
//! `.YYYYMMDD_HHMMSS` suffix, the new file starting with the header line again.

use fdfs_common::codec::Message;
use fdfs_common::proto::client::GroupFileReq;
use fdfs_common::proto::cmd;
use fdfs_common::proto::storage::{DownloadReq, SetMetadataReq, TruncateReq};
use fdfs_common::sync::Mutex;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What one request's line says.
#[derive(Debug, Clone, Copy)]
pub struct AccessRecord<'a> {
    pub began: SystemTime,
    pub client_ip: &'a str,
    /// upstream's word for the command ([`action`])
    pub action: &'a str,
    pub filename: &'a str,
    pub status: u8,
    pub used: Duration,
    /// bytes received, header included
    pub req_len: i64,
    /// bytes sent
    pub resp_len: u64,
}

pub struct AccessLog {
    path: PathBuf,
    file: Mutex<File>,
    micros: bool,
}

/// The word upstream logs for a command, for the commands it logs (the command table's).
pub fn action(command: u8) -> Option<&'static str> {
    fdfs_common::proto::commands::find(command).and_then(|c| c.access_action)
}

/// The file a request whose body was read whole names (commands that stream their body name it
/// in what they read themselves, and uploads in their answer).
pub fn name_in_request(command: u8, body: &[u8]) -> Option<String> {
    match command {
        cmd::DOWNLOAD_FILE => DownloadReq::from_bytes(body).ok().map(|r| r.filename),
        cmd::DELETE_FILE | cmd::GET_METADATA | cmd::QUERY_FILE_INFO => {
            GroupFileReq::from_bytes(body).ok().map(|r| r.filename)
        }
        cmd::SET_METADATA => SetMetadataReq::from_bytes(body).ok().map(|r| r.filename),
        cmd::TRUNCATE_FILE => TruncateReq::from_bytes(body).ok().map(|r| r.filename),
        cmd::REGENERATE_APPENDER_FILENAME => Some(String::from_utf8_lossy(body).into_owned()),
        _ => None,
    }
}

impl AccessLog {
    /// Open (append to) `logs/storage_access.log` under `base`; a new file starts with the
    /// header line.
    pub fn open(base: &Path, micros: bool) -> io::Result<AccessLog> {
        let dir = base.join("logs");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("storage_access.log");
        let file = Self::open_file(&path, micros)?;
        Ok(AccessLog {
            path,
            file: Mutex::new(file),
            micros,
        })
    }

    fn open_file(path: &Path, micros: bool) -> io::Result<File> {
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        if file.metadata()?.len() == 0 {
            let unit = if micros { "us" } else { "ms" };
            writeln!(
                file,
                "{} client_ip action filename status time_used_{unit} req_len resp_len",
                stamp(SystemTime::now(), micros)
            )?;
        }
        Ok(file)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Set the file aside as `storage_access.log.YYYYMMDD_HHMMSS` and start a new one (upstream
    /// keeps writing to the old one when that name is taken).
    pub fn rotate(&self) {
        let mut file = self.file.lock();
        let rotated = fdfs_common::log::set_aside_name(&self.path, true);
        if rotated.exists() {
            log::warn!(
                "file: {} already exist, rotate file fail",
                rotated.display()
            );
            return;
        }
        if let Err(e) = std::fs::rename(&self.path, &rotated) {
            log::warn!("rotate {} fail: {e}", self.path.display());
            return;
        }
        match Self::open_file(&self.path, self.micros) {
            Ok(f) => *file = f,
            Err(e) => log::error!("open {} fail: {e}", self.path.display()),
        }
    }

    pub fn size(&self) -> u64 {
        self.file.lock().metadata().map_or(0, |m| m.len())
    }

    /// One request's line.
    pub fn write(&self, r: &AccessRecord) {
        let AccessRecord {
            began,
            client_ip,
            action,
            filename,
            status,
            used,
            req_len,
            resp_len,
        } = *r;
        let used = if self.micros {
            used.as_micros()
        } else {
            used.as_millis()
        };
        let line = format!(
            "{} {client_ip} {action} {filename} {status} {used} {req_len} {resp_len}\n",
            stamp(began, self.micros)
        );
        if let Err(e) = self.file.lock().write_all(line.as_bytes()) {
            log::error!("write storage_access.log fail: {e}");
        }
    }
}

/// `[YYYY-mm-dd HH:MM:SS.fff]`, or with microseconds unpadded as upstream prints them.
fn stamp(t: SystemTime, micros: bool) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = fdfs_common::log::format_time(d.as_secs() as i64);
    if micros {
        format!("[{secs}.{}]", d.subsec_micros())
    } else {
        format!("[{secs}.{:03}]", d.subsec_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_upstreams() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 84_413_000);
        assert!(stamp(t, false).ends_with(".084]"), "{}", stamp(t, false));
        // microseconds are not zero-padded (docs/protocol/config-cli-http.md 3.5)
        assert!(stamp(t, true).ends_with(".84413]"), "{}", stamp(t, true));
    }
}
