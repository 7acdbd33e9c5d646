//! The client tools' stderr log, in upstream's line format `[YYYY-MM-DD HH:MM:SS] LEVEL - text`
//! (what libfastcommon prints for the C tools), through env_logger. The level is info until
//! client.conf is read, then its `log_level`; `RUST_LOG`, when set, overrides both.

use std::io::Write;

const OVERRIDE: &str = "RUST_LOG";

/// Install the logger (once; later calls do nothing).
pub fn init() {
    let mut b = env_logger::Builder::new();
    b.target(env_logger::Target::Stderr)
        .format(|buf, record| {
            writeln!(
                buf,
                "[{}] {} - {}",
                fdfs_common::log::format_time(fdfs_common::now()),
                level_name(record.level()),
                record.args()
            )
        })
        .filter_level(log::LevelFilter::Trace);
    let overridden = std::env::var_os(OVERRIDE).is_some();
    if overridden {
        b.parse_env(OVERRIDE);
    }
    if b.try_init().is_ok() && !overridden {
        log::set_max_level(log::LevelFilter::Info);
    }
}

/// client.conf's `log_level`, unless `RUST_LOG` decides.
pub fn set_level(level: log::LevelFilter) {
    if std::env::var_os(OVERRIDE).is_none() {
        log::set_max_level(level);
    }
}

/// Upstream's level words (syslog's: WARNING, not WARN).
fn level_name(l: log::Level) -> &'static str {
    match l {
        log::Level::Error => "ERROR",
        log::Level::Warn => "WARNING",
        log::Level::Info => "INFO",
        log::Level::Debug => "DEBUG",
        log::Level::Trace => "DEBUG",
    }
}

/// What client.conf's keys call for saying (ignored or unknown keys), at WARNING: shown unless
/// its `log_level` is above that.
pub fn key_warnings(cfg: &fdfs_common::config::ClientConfig) {
    cfg.key_warnings.iter().for_each(|w| log::warn!("{w}"));
}
