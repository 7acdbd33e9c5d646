//! The `fdfs_*` tools: the same arguments, stdout and exit codes as upstream's
//! (docs/protocol/config-cli-http.md section 4). Library errors are logged on stderr; what scripts
//! parse (file IDs, info blocks, failure lines and exit codes) matches upstream exactly.
//!
//! Three families: the file tools (`file_tools`), `fdfs_monitor` (`monitor`) and `fdfs_test`
//! (`test_program`); the cluster statistics tools are in `stat_tools`.

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

pub mod admin;
mod exporter;
mod failure;
mod file_tools;
mod health_checker;
pub mod list_files;
mod monitor;
mod startup;
mod test_program;

pub use exporter::fdfs_exporter;
pub use file_tools::{
    fdfs_append_file, fdfs_crc32, fdfs_delete_file, fdfs_download_file, fdfs_file_info,
    fdfs_regenerate_filename, fdfs_upload_appender, fdfs_upload_file, rfdfs_http_url,
};
pub use health_checker::fdfs_health_checker;
pub use monitor::fdfs_monitor;
pub use test_program::{fdfs_appender_test, fdfs_appender_test1, fdfs_test, fdfs_test1};
