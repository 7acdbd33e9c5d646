//! File logger in upstream's line format: `[YYYY-MM-DD HH:MM:SS] LEVEL - message`, local time.
//!
//! Until the daemon opens `base_path/logs/<name>.log` lines go to stderr, so configuration
//! errors found at startup reach the terminal. SIGHUP renames the file to `<name>.log.YYYYMMDD`
//! and reopens it, which is what logrotate-style setups and upstream's operators expect.

use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

struct Target {
    path: Option<PathBuf>,
    file: Option<File>,
}

pub struct FdfsLogger {
    level: Mutex<log::LevelFilter>,
    target: Mutex<Target>,
}

fn logger() -> &'static FdfsLogger {
    static L: OnceLock<FdfsLogger> = OnceLock::new();
    L.get_or_init(|| FdfsLogger {
        level: Mutex::new(log::LevelFilter::Info),
        target: Mutex::new(Target {
            path: None,
            file: None,
        }),
    })
}

/// Local time as upstream prints it everywhere (`%Y-%m-%d %H:%M:%S`).
pub fn format_time(ts: i64) -> String {
    use chrono::{Local, TimeZone};
    match Local.timestamp_opt(ts, 0) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.format("%Y-%m-%d %H:%M:%S").to_string()
        }
        chrono::LocalResult::None => "1970-01-01 00:00:00".into(),
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Install the logger (idempotent); lines go to stderr until [`open_file`].
pub fn init(level: log::LevelFilter) {
    let l = logger();
    *l.level.lock() = level;
    let _ = log::set_logger(l);
    log::set_max_level(level);
}

/// Send lines to `path` from now on (created, appended).
pub fn open_file(path: PathBuf) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let f = OpenOptions::new().create(true).append(true).open(&path)?;
    let mut t = logger().target.lock();
    t.file = Some(f);
    t.path = Some(path);
    Ok(())
}

/// The file lines currently go to, for redirecting stdout/stderr into it.
pub fn log_file() -> Option<File> {
    logger()
        .target
        .lock()
        .file
        .as_ref()
        .and_then(|f| f.try_clone().ok())
}

/// Local time as `YYYYMMDDhhmmss`, the suffix upstream gives files it sets aside.
pub fn local_time_suffix() -> String {
    chrono::Local::now().format("%Y%m%d%H%M%S").to_string()
}

/// Rename the current file to `<name>.YYYYMMDD` and start a new one (SIGHUP, daily rotation).
pub fn rotate() {
    let mut t = logger().target.lock();
    let Some(path) = t.path.clone() else { return };
    let suffix = chrono::Local::now().format("%Y%m%d").to_string();
    let mut rotated = path.clone().into_os_string();
    rotated.push(format!(".{suffix}"));
    let rotated = PathBuf::from(rotated);
    if rotated.exists() {
        drop(t);
        log::warn!(
            "file: {} already exist, rotate file fail",
            rotated.display()
        );
        return;
    }
    if std::fs::rename(&path, &rotated).is_ok() {
        if let Ok(f) = OpenOptions::new().create(true).append(true).open(&path) {
            t.file = Some(f);
        }
    }
}

/// Write one line with an upstream level word that `log` has no level for (CRIT).
pub fn line(level: &str, msg: &str) {
    let text = format!("[{}] {level} - {msg}\n", format_time(now()));
    let mut t = logger().target.lock();
    match t.file.as_mut() {
        Some(f) => {
            let _ = f.write_all(text.as_bytes());
        }
        None => {
            let _ = std::io::stderr().write_all(text.as_bytes());
        }
    }
}

impl log::Log for FdfsLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= *self.level.lock()
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let level = match r.level() {
            log::Level::Error => "ERROR",
            log::Level::Warn => "WARNING",
            log::Level::Info => "INFO",
            log::Level::Debug | log::Level::Trace => "DEBUG",
        };
        line(level, &r.args().to_string());
    }

    fn flush(&self) {}
}
