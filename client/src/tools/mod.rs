//! The `fdfs_*` tools: the same arguments, stdout and exit codes as upstream's
//! (docs/protocol/config-cli-http.md section 4). Library errors are logged on stderr; what scripts
//! parse (file IDs, info blocks, failure lines and exit codes) matches upstream exactly.
//!
//! Three families: the file tools (`file_tools`), `fdfs_monitor` (`monitor`) and `fdfs_test`
//! (`test_program`); the cluster statistics tools are in `stat_tools`.

use crate::Client;
use fdfs_common::net::NetError;
use fdfs_common::proto::errno::message as strerror;
use std::io::Write;
use std::path::Path;

/// `println!` that ends the process quietly when stdout is gone (`tool | head`), as the C tools
/// die of SIGPIPE, instead of panicking.
macro_rules! println {
    ($($t:tt)*) => {
        if writeln!(std::io::stdout(), $($t)*).is_err() {
            std::process::exit(141)
        }
    };
}

/// `print!` with the same rule.
macro_rules! print {
    ($($t:tt)*) => {
        if write!(std::io::stdout(), $($t)*).is_err() {
            std::process::exit(141)
        }
    };
}

fn log_error(msg: &str) {
    log::error!("{msg}");
}

/// Load client.conf as the C tools do; on failure log their messages and return the code.
/// From here on the log follows the file's `log_level`.
fn load(conf: &str) -> Result<Client, i32> {
    crate::logging::init();
    if !Path::new(conf).exists() {
        log_error(&format!("file {conf} not exist"));
        log_error(&format!("load conf file \"{conf}\" fail, ret code: 2"));
        return Err(2);
    }
    let client = Client::from_conf(Path::new(conf)).map_err(|e| {
        log_error(&e.msg);
        e.code
    })?;
    crate::logging::set_level(client.cfg.log_level);
    crate::logging::key_warnings(&client.cfg);
    Ok(client)
}

/// Upstream's monitoring programs start alike: client.conf loaded, then what they report.
fn load_monitoring_client(conf: &str) -> Result<Client, i32> {
    match Client::from_conf(Path::new(conf)) {
        Ok(c) => {
            println!("FastDFS client initialized successfully");
            println!("Tracker server count: {}", c.cfg.tracker_servers.len());
            Ok(c)
        }
        Err(e) => {
            log::error!("{}", e.msg);
            println!("ERROR: Failed to initialize FastDFS client");
            Err(e.code)
        }
    }
}

/// `-d`: detach from the terminal as upstream's monitoring programs do; Err holds the exit code.
fn run_as_daemon() -> Result<(), i32> {
    nix::unistd::daemon(false, false).map_err(|e| {
        log::error!("run as daemon fail: {e}");
        e as i32
    })
}

/// A flag SIGINT and SIGTERM raise, for the monitoring programs' loops.
fn stop_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, std::sync::Arc::clone(&stop));
    }
    stop
}

fn err_line(e: &NetError) -> (i32, String) {
    let n = e.errno();
    (n, format!("error no: {n}, error info: {}", strerror(n)))
}

fn io_errno(e: &std::io::Error) -> i32 {
    fdfs_common::proto::errno::of_io(e) as i32
}

pub mod admin;
mod exporter;
mod file_tools;
mod health_checker;
mod monitor;
mod test_program;

pub use exporter::fdfs_exporter;
pub use file_tools::{
    fdfs_append_file, fdfs_crc32, fdfs_delete_file, fdfs_download_file, fdfs_file_info,
    fdfs_regenerate_filename, fdfs_upload_appender, fdfs_upload_file, rfdfs_http_url,
};
pub use health_checker::fdfs_health_checker;
pub use monitor::fdfs_monitor;
pub use test_program::{fdfs_appender_test, fdfs_appender_test1, fdfs_test, fdfs_test1};

fn prog(args: &[String]) -> String {
    args.first().cloned().unwrap_or_default()
}
