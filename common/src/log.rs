//! File logger in upstream's line format: `[YYYY-MM-DD HH:MM:SS] LEVEL - message`, local time.
//!
//! Until the daemon opens `base_path/logs/<name>.log` lines go to stderr, so configuration
//! errors found at startup reach the terminal. The file is set aside as `<name>.log.YYYYMMDD`
//! (`.YYYYMMDD_HHMMSS` with size rotation) and reopened on SIGHUP, daily and by size, and old
//! ones are compressed and deleted, as upstream's `log_file_*` keys say ([`Rotation`]).

use crate::sync::Mutex;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
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
    format_local(ts, "%Y-%m-%d %H:%M:%S")
}

/// Local time in `format` (chrono's strftime), the epoch's where the local time does not exist.
pub fn format_local(ts: i64, format: &str) -> String {
    use chrono::{Local, TimeZone};
    match Local.timestamp_opt(ts, 0) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            t.format(format).to_string()
        }
        chrono::LocalResult::None => format_local(0, format),
    }
}

/// When a job run at local time `base` (HH:MM) and every `interval` seconds after it runs next,
/// after `now`: upstream's scheduler lines runs up on the time base, not on the start time.
pub fn next_scheduled(now: i64, base: (u8, u8), interval: u64) -> i64 {
    let interval = interval.max(1) as i64;
    let today_base = match seconds_from_local_midnight(now) {
        Some(since_midnight) => {
            now - since_midnight + i64::from(base.0) * 3600 + i64::from(base.1) * 60
        }
        None => now,
    };
    today_base + (now - today_base).div_euclid(interval) * interval + interval
}

/// Seconds since local midnight at `ts` (None where the local time does not exist).
pub fn seconds_from_local_midnight(ts: i64) -> Option<i64> {
    use chrono::{Local, TimeZone, Timelike};
    match Local.timestamp_opt(ts, 0) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            Some(i64::from(t.num_seconds_from_midnight()))
        }
        chrono::LocalResult::None => None,
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

/// Point stdout and stderr at `f`, so that stray output of the daemon lands in its log.
pub fn redirect_std_streams(f: &File) {
    use std::os::fd::AsRawFd;
    let _ = nix::unistd::dup2(f.as_raw_fd(), 1);
    let _ = nix::unistd::dup2(f.as_raw_fd(), 2);
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

/// The name a log file is set aside under now: `<name>.YYYYMMDD`, with `_HHMMSS` when
/// `with_time`.
pub fn set_aside_name(path: &Path, with_time: bool) -> PathBuf {
    let format = if with_time { "%Y%m%d_%H%M%S" } else { "%Y%m%d" };
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}", chrono::Local::now().format(format)));
    PathBuf::from(name)
}

/// Rename the current file to `<name>.YYYYMMDD` (with `_HHMMSS` when `with_time`) and start a
/// new one; stdout and stderr follow it.
pub fn rotate(with_time: bool) {
    let mut t = logger().target.lock();
    let Some(path) = t.path.clone() else { return };
    let rotated = set_aside_name(&path, with_time);
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
            redirect_std_streams(&f);
            t.file = Some(f);
        }
    }
}

fn current_size() -> u64 {
    let t = logger().target.lock();
    t.file
        .as_ref()
        .and_then(|f| f.metadata().ok())
        .map_or(0, |m| m.len())
}

/// Files set aside from the log file `path`: `<name>.<digits and _>[.gz]` beside it.
fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix(&prefix).is_some_and(|rest| {
                let stamp = rest.strip_suffix(".gz").unwrap_or(rest);
                stamp.len() >= 8 && stamp.chars().all(|c| c.is_ascii_digit() || c == '_')
            })
        })
        .map(|e| e.path())
        .collect()
}

fn older_than(p: &Path, days: i64) -> bool {
    let age = std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    age.is_some_and(|a| a.as_secs() as i64 >= days * 86400)
}

/// Upstream's `log_file_*` keys, applied by the daemon's main loop: daily rotation at
/// `log_file_rotate_time`, rotation by size, SIGHUP rotation (only with daily rotation on, as
/// upstream), deletion of rotated files older than `log_file_keep_days` at
/// `log_file_delete_old_time` (and once at startup), and gzip of rotated files older than
/// `log_file_compress_days_before` days.
pub struct Rotation {
    cfg: crate::config::LogConfig,
    file: Box<dyn LogFile>,
    last_daily: Option<chrono::NaiveDate>,
    /// the day whose cleanup is done (none yet: the first tick cleans up, at startup)
    last_cleanup: Option<chrono::NaiveDate>,
}

/// A log file [`Rotation`] looks after.
pub trait LogFile: Send {
    /// where it is written
    fn path(&self) -> Option<PathBuf>;
    /// set the current file aside (`.YYYYMMDD`, or `.YYYYMMDD_HHMMSS` with `with_time`) and
    /// start a new one
    fn rotate(&self, with_time: bool);
    /// bytes in the current file
    fn size(&self) -> u64;
}

/// The daemon's own log (trackerd.log / storaged.log).
struct ErrorLog;

impl LogFile for ErrorLog {
    fn path(&self) -> Option<PathBuf> {
        logger().target.lock().path.clone()
    }
    fn rotate(&self, with_time: bool) {
        rotate(with_time)
    }
    fn size(&self) -> u64 {
        current_size()
    }
}

impl Rotation {
    /// For the daemon's own log.
    pub fn new(cfg: &crate::config::LogConfig) -> Rotation {
        Self::of(cfg, Box::new(ErrorLog))
    }

    /// For another log file (the storage's access log).
    pub fn of(cfg: &crate::config::LogConfig, file: Box<dyn LogFile>) -> Rotation {
        let now = chrono::Local::now();
        let today = now.date_naive();
        let past = |at: (u8, u8)| hour_minute(&now) >= at;
        Rotation {
            cfg: cfg.clone(),
            file,
            last_daily: past(cfg.rotate_time).then_some(today),
            last_cleanup: None,
        }
    }

    pub fn on_hup(&mut self) {
        if self.cfg.rotate_everyday {
            self.file.rotate(self.cfg.rotate_on_size > 0);
            self.compress();
        }
    }

    /// Called about every 100 ms.
    pub fn tick(&mut self) {
        let now = chrono::Local::now();
        let today = now.date_naive();
        let hm = hour_minute(&now);
        let with_time = self.cfg.rotate_on_size > 0;
        if self.cfg.rotate_everyday && hm >= self.cfg.rotate_time && self.last_daily != Some(today)
        {
            self.last_daily = Some(today);
            self.file.rotate(with_time);
            self.compress();
        }
        if with_time && self.file.size() >= self.cfg.rotate_on_size as u64 {
            self.file.rotate(true);
            self.compress();
        }
        // today's cleanup counts as done once its time has passed; before that, the startup
        // cleanup stands for yesterday's
        let done_for = if hm >= self.cfg.delete_old_time {
            today
        } else {
            today.pred_opt().unwrap_or(today)
        };
        if self.last_cleanup.is_none_or(|d| d < done_for) {
            self.last_cleanup = Some(done_for);
            self.delete_old();
            self.compress();
        }
    }

    fn delete_old(&self) {
        let rotating = self.cfg.rotate_everyday || self.cfg.rotate_on_size > 0;
        if self.cfg.keep_days <= 0 || !rotating {
            return;
        }
        let Some(path) = self.file.path() else {
            return;
        };
        for f in rotated_files(&path) {
            if older_than(&f, self.cfg.keep_days) {
                match std::fs::remove_file(&f) {
                    Ok(()) => log::info!("delete old log file: {}", f.display()),
                    Err(e) => log::warn!("delete old log file {} fail: {e}", f.display()),
                }
            }
        }
    }

    /// gzip, in the background, rotated files old enough and not compressed yet.
    fn compress(&self) {
        if !self.cfg.compress_old {
            return;
        }
        let Some(path) = self.file.path() else {
            return;
        };
        let days = self.cfg.compress_days_before.max(0);
        let due: Vec<PathBuf> = rotated_files(&path)
            .into_iter()
            .filter(|f| f.extension().is_none_or(|e| e != "gz") && older_than(f, days))
            .collect();
        if due.is_empty() {
            return;
        }
        let _ = std::thread::Builder::new()
            .name("log-gzip".into())
            .spawn(move || {
                for f in due {
                    match std::process::Command::new("gzip")
                        .arg("-f")
                        .arg(&f)
                        .status()
                    {
                        Ok(s) if s.success() => {}
                        Ok(s) => log::warn!("gzip {} fail: {s}", f.display()),
                        Err(e) => log::warn!("gzip {} fail: {e}", f.display()),
                    }
                }
            });
    }
}

fn hour_minute(t: &chrono::DateTime<chrono::Local>) -> (u8, u8) {
    use chrono::Timelike;
    (t.hour() as u8, t.minute() as u8)
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

#[cfg(test)]
mod tests {
    #[test]
    fn next_scheduled_lines_up_on_the_time_base() {
        let now = 1_795_476_841;
        for interval in [1, 7, 600, 3600, 86400, 200_000] {
            let next = super::next_scheduled(now, (3, 0), interval);
            assert!(next > now && next - now <= interval as i64, "{interval}");
            // the run after it is one interval later (when the interval divides a day, as
            // upstream's time bases assume)
            if 86400 % interval != 0 {
                continue;
            }
            assert_eq!(
                super::next_scheduled(next, (3, 0), interval),
                next + interval as i64
            );
        }
    }
}
