//! Failures as the C tools report them: the `error no: N, error info: ...` text, the errno of an
//! I/O error, and the stderr log line.

use fdfs_common::net::NetError;
use fdfs_common::proto::errno::message as strerror;

pub(super) fn log_error(msg: &str) {
    log::error!("{msg}");
}

pub(super) fn err_line(e: &NetError) -> (i32, String) {
    let n = e.errno();
    (n, format!("error no: {n}, error info: {}", strerror(n)))
}

pub(super) fn io_errno(e: &std::io::Error) -> i32 {
    fdfs_common::proto::errno::of_io(e) as i32
}
