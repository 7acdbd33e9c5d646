//! How every tool starts: client.conf loaded as the C tools load it, the log level set, the
//! program name; and the monitoring programs' daemon mode and stop flag.

use super::failure::log_error;
use crate::client::Client;
use std::io::Write;
use std::path::Path;

/// Load client.conf as the C tools do; on failure log their messages and return the code.
/// From here on the log follows the file's `log_level`.
pub(super) fn load(conf: &str) -> Result<Client, i32> {
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

/// rfdfs's own tools (clap) start alike: the command line, the log, client.conf; on failure
/// the reason on stderr after the tool's name, and exit code 2.
pub(super) fn clap_tool<A: clap::Parser>(
    tool: &str,
    args: &[String],
    conf: impl Fn(&A) -> &Path,
) -> Result<(A, Client), i32> {
    let a = crate::command_line::parse_command_line::<A>(args)?;
    crate::logging::init();
    match Client::from_conf(conf(&a)) {
        Ok(c) => Ok((a, c)),
        Err(e) => {
            eprintln!("{tool}: {e}");
            Err(2)
        }
    }
}

/// Upstream's monitoring programs start alike: client.conf loaded, then what they report.
pub(super) fn load_monitoring_client(conf: &str) -> Result<Client, i32> {
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
pub(super) fn run_as_daemon() -> Result<(), i32> {
    nix::unistd::daemon(false, false).map_err(|e| {
        log::error!("run as daemon fail: {e}");
        e as i32
    })
}

/// A flag SIGINT and SIGTERM raise, for the monitoring programs' loops.
pub(super) fn stop_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, std::sync::Arc::clone(&stop));
    }
    stop
}

pub(super) fn prog(args: &[String]) -> String {
    args.first().cloned().unwrap_or_default()
}
