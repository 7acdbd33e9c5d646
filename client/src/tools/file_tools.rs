//! The file tools: upload, append, download, delete, file info, regenerate a name, CRC32, and
//! rfdfs_http_url.

use super::failure::{err_line, io_errno, log_error};
use super::startup::{load, prog};
use crate::storage_requests::Upload;
use crate::{progress, Client, Content, FileId};
use fdfs_common::config::parse_host_port;
use fdfs_common::file_id::{ext_from_local_name, FileKind};
use fdfs_common::log::format_time;
use fdfs_common::net::NetError;
use fdfs_common::proto::errno::message as strerror;
use std::io::Write;
use std::path::Path;

/// How a file tool reports: its usage line, and where and how a failure is printed.
struct ToolSpec {
    min_args: usize,
    usage: &'static str,
    usage_on_stderr: bool,
    /// `upload file` in `upload file fail, error no: ...`
    fail_what: String,
    fail_on_stdout: bool,
    /// fdfs_download_file exits 0 whatever happened to the transfer
    exit_zero_on_fail: bool,
    /// the argument naming the file whose transfer a watching person sees progress of
    progress_arg: Option<usize>,
}

/// The shape the file tools share: usage, config, the operation, upstream's failure line.
/// `op` returns what to print on success.
fn run_file_tool(
    args: &[String],
    spec: ToolSpec,
    op: impl FnOnce(&Client) -> Result<Option<String>, NetError>,
) -> i32 {
    if args.len() < spec.min_args {
        let text = spec.usage.replace("{prog}", &prog(args));
        if spec.usage_on_stderr {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
        return 1;
    }
    let client = match load(&args[1]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let watched = spec.progress_arg.and_then(|i| args.get(i));
    if let Some(report) =
        watched.and_then(|f| progress::on_terminal(&format!("{} {f}", spec.fail_what)))
    {
        client.report_progress(report);
    }
    match op(&client) {
        Ok(out) => {
            if let Some(line) = out {
                println!("{line}");
            }
            0
        }
        Err(e) => {
            let (n, l) = err_line(&e);
            let line = format!("{} fail, {l}", spec.fail_what);
            if spec.fail_on_stdout {
                println!("{line}");
            } else {
                eprintln!("{line}");
            }
            if spec.exit_zero_on_fail {
                0
            } else {
                n
            }
        }
    }
}

/// A local file the tool will send, checked before anything goes on the wire.
fn local_file(path: &str) -> Result<&Path, NetError> {
    let p = Path::new(path);
    std::fs::metadata(p).map_err(NetError::Io)?;
    Ok(p)
}

pub fn fdfs_upload_file(args: &[String]) -> i32 {
    let spec = ToolSpec {
        min_args: 3,
        usage: "Usage: {prog} <config_file> <local_filename> [storage_ip:port] [store_path_index]",
        usage_on_stderr: false,
        fail_what: "upload file".into(),
        fail_on_stdout: false,
        exit_zero_on_fail: false,
        progress_arg: Some(2),
    };
    run_file_tool(args, spec, |client| {
        let local = local_file(&args[2])?;
        let target = match args.get(3) {
            Some(addr) => {
                let hp = parse_host_port(addr, 23000).map_err(|m| {
                    log_error(&m);
                    NetError::Status(22)
                })?;
                let idx = args
                    .get(4)
                    .map(|s| fdfs_common::config::ini::atoi(s))
                    .unwrap_or(-1);
                Some((hp, if idx < 0 { 0xFF } else { idx.min(255) as u8 }))
            }
            None => None,
        };
        let id = client.upload(
            Content::File(local),
            &ext_from_local_name(&args[2]),
            Upload::File,
            target,
            None,
        )?;
        Ok(Some(id.to_string()))
    })
}

pub fn fdfs_upload_appender(args: &[String]) -> i32 {
    let spec = ToolSpec {
        min_args: 3,
        usage: "Usage: {prog} <config_file> <local_filename>",
        usage_on_stderr: false,
        fail_what: "upload file".into(),
        fail_on_stdout: false,
        exit_zero_on_fail: false,
        progress_arg: Some(2),
    };
    run_file_tool(args, spec, |client| {
        let local = local_file(&args[2])?;
        let id = client.upload(
            Content::File(local),
            &ext_from_local_name(&args[2]),
            Upload::Appender,
            None,
            None,
        )?;
        Ok(Some(id.to_string()))
    })
}

pub fn fdfs_download_file(args: &[String]) -> i32 {
    let spec = ToolSpec {
        min_args: 3,
        usage: "Usage: {prog} <config_file> <file_id> [local_filename] [<download_offset> <download_bytes>]",
        usage_on_stderr: false,
        fail_what: "download file".into(),
        fail_on_stdout: true,
        exit_zero_on_fail: true,
        progress_arg: Some(2),
    };
    run_file_tool(args, spec, |client| {
        let file_id = &args[2];
        let local = args
            .get(3)
            .cloned()
            .unwrap_or_else(|| file_id.rsplit('/').next().unwrap_or(file_id).to_string());
        // offset and length count only when both are given
        let (offset, count) = if args.len() >= 6 {
            (
                args[4].trim().parse::<i64>().unwrap_or(0),
                args[5].trim().parse::<i64>().unwrap_or(0),
            )
        } else {
            (0, 0)
        };
        let id = FileId::parse(file_id)?;
        client.download_to(&id, offset, count, || std::fs::File::create(&local))?;
        Ok(None)
    })
}

pub fn fdfs_delete_file(args: &[String]) -> i32 {
    let spec = ToolSpec {
        min_args: 3,
        usage: "Usage: {prog} <config_file> <file_id>",
        usage_on_stderr: false,
        fail_what: "delete file".into(),
        fail_on_stdout: true,
        exit_zero_on_fail: false,
        progress_arg: None,
    };
    run_file_tool(args, spec, |client| {
        client.delete(&FileId::parse(&args[2])?).map(|_| None)
    })
}

pub fn fdfs_append_file(args: &[String]) -> i32 {
    let spec = ToolSpec {
        min_args: 4,
        usage: "Usage: {prog} <config_file> <appender_file_id> <local_filename>",
        usage_on_stderr: false,
        fail_what: "append file".into(),
        fail_on_stdout: true,
        exit_zero_on_fail: false,
        progress_arg: Some(3),
    };
    run_file_tool(args, spec, |client| {
        let local = local_file(&args[3])?;
        client
            .append(&FileId::parse(&args[2])?, Content::File(local))
            .map(|_| None)
    })
}

pub fn fdfs_regenerate_filename(args: &[String]) -> i32 {
    let what = format!(
        "regenerate file {}",
        args.get(2).map(String::as_str).unwrap_or("")
    );
    let spec = ToolSpec {
        min_args: 3,
        usage: "regenerate filename for the appender file.\nNOTE: the regenerated file will be a normal file!\nUsage: {prog} <config_file> <appender_file_id>",
        usage_on_stderr: true,
        fail_what: what,
        fail_on_stdout: false,
        exit_zero_on_fail: false,
        progress_arg: None,
    };
    run_file_tool(args, spec, |client| {
        let id = client.regenerate_appender_filename(&FileId::parse(&args[2])?)?;
        Ok(Some(id.to_string()))
    })
}

/// `rfdfs_http_url <client.conf> <file_id> [base_url]`: the HTTP URL of a file, with the
/// anti-steal token when client.conf (through http.conf) enables it. Without a base URL the
/// first tracker's HTTP port (`http.tracker_server_port`, default 80) is used with the
/// `/<group>/M00/..` form, which the tracker redirects to a storage holding the file; with one,
/// the `/M00/..` form that storages and an nginx `location /M00` serve.
/// rfdfs_http_url's command line (rfdfs's own tool, so clap's conventions).
#[derive(clap::Parser, Debug)]
#[command(
    name = "rfdfs_http_url",
    version,
    about = "Print the HTTP URL of a file, with its anti-steal token when client.conf enables them"
)]
struct HttpUrlArgs {
    /// client.conf (trackers, http.tracker_server_port, the anti-steal key)
    config_file: std::path::PathBuf,
    /// group/M00/..., as the upload tools print it
    file_id: String,
    /// a storage's or nginx's base URL (`location /M00` form); default: the first tracker's
    /// HTTP port, with the group in the path
    base_url: Option<String>,
}

pub fn rfdfs_http_url(args: &[String]) -> i32 {
    let a = match crate::command_line::parse_command_line::<HttpUrlArgs>(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    crate::logging::init();
    let client = match Client::from_conf(&a.config_file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return e.code;
        }
    };
    let Ok(id) = FileId::parse(&a.file_id) else {
        eprintln!("invalid file id: {}", a.file_id);
        return 22;
    };
    let (base, with_group) = match a.base_url {
        // a storage or an nginx `location /M00`: the short form
        Some(b) => (b, false),
        None => {
            let Some(t) = client.cfg.tracker_servers.first() else {
                return 22;
            };
            (
                format!("http://{}:{}", t.host, client.cfg.http_tracker_server_port),
                true,
            )
        }
    };
    let token = client.cfg.anti_steal_check_token.then(|| {
        (
            client.cfg.anti_steal_secret_key.as_str(),
            fdfs_common::now(),
        )
    });
    println!(
        "{}",
        crate::command_line::http_url(&base, &id, with_group, token)
    );
    0
}

pub fn fdfs_crc32(args: &[String]) -> i32 {
    if args.len() < 2 {
        println!("Usage: {} <filename>", prog(args));
        return 1;
    }
    match std::fs::File::open(&args[1]) {
        Ok(mut f) => {
            let mut h = crc32fast::Hasher::new();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                match std::io::Read::read(&mut f, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => h.update(&buf[..n]),
                    Err(e) => {
                        let n = io_errno(&e);
                        println!(
                            "read file {} fail, errno: {n}, error info: {}",
                            args[1],
                            strerror(n)
                        );
                        return n;
                    }
                }
            }
            println!("{:x}", h.finalize());
            0
        }
        Err(e) => {
            let n = io_errno(&e);
            println!(
                "file: fdfs_crc32.c, line: 43, open file {} fail, errno: {n}, error info: {}",
                args[1],
                strerror(n)
            );
            n
        }
    }
}

fn kind_text(k: FileKind) -> &'static str {
    match k {
        FileKind::Normal | FileKind::Trunk => "normal",
        FileKind::Appender => "appender",
        FileKind::Slave => "slave",
    }
}

pub fn fdfs_file_info(args: &[String]) -> i32 {
    let usage = || {
        eprintln!(
            "Usage: {} [options] <config_file> <file_id>\n  options: \n    -s: keep silence, when this file not exist, do not log error on storage server\n    -n: do NOT calculate CRC32 for appender file or slave file\n",
            prog(args)
        );
    };
    let mut flags = 0u8;
    let mut pos = Vec::new();
    let mut opts_done = false;
    for a in args.iter().skip(1) {
        if !opts_done && a.starts_with('-') && a.len() > 1 {
            for c in a[1..].chars() {
                match c {
                    's' => flags |= 2,
                    'n' => flags |= 1,
                    other => {
                        eprintln!("{}: invalid option -- '{other}'", prog(args));
                        usage();
                        return 1;
                    }
                }
            }
        } else {
            opts_done = true;
            pos.push(a.clone());
        }
    }
    if pos.len() < 2 {
        usage();
        return 1;
    }
    let client = match load(&pos[0]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match FileId::parse(&pos[1]).and_then(|id| client.file_info(&id, flags)) {
        Ok(info) => {
            println!("GET FROM SERVER: {}\n", info.from_server);
            println!("file type: {}", kind_text(info.kind));
            println!("source storage id: {}", info.source_id);
            println!("source ip address: {}", info.source_ip);
            println!(
                "file create timestamp: {}",
                format_time(info.create_timestamp)
            );
            println!("file size: {}", info.file_size);
            if !(flags & 1 != 0 && info.crc32 == 0) {
                println!("file crc32: {} (0x{:08x})", info.crc32 as i32, info.crc32);
            }
            println!();
            0
        }
        Err(e) => {
            let (_, l) = err_line(&e);
            eprintln!("query file info fail, {l}");
            0
        }
    }
}
