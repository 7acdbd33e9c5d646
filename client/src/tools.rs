//! The `fdfs_*` tools: the same arguments, stdout and exit codes as upstream's
//! (config-cli-http.md section 4). Library errors are logged on stderr; what scripts parse
//! (file IDs, info blocks, failure lines and exit codes) matches upstream exactly.

use crate::human::{mb_to_human, seconds_to_human};
use crate::{anti_steal_token, progress, Client, Content, FileId};
use fdfs_common::config::parse_host_port;
use fdfs_common::file_id::{ext_from_local_name, slave_name, FileKind};
use fdfs_common::log::format_time;
use fdfs_common::metadata;
use fdfs_common::net::NetError;
use fdfs_common::proto::cluster::STAT_NAMES;
use fdfs_common::proto::errno::message as strerror;
use fdfs_common::proto::{rw_mode, status};
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
    eprintln!("[{}] ERROR - {msg}", format_time(fdfs_common::now()));
}

/// Load client.conf as the C tools do; on failure print their messages and return the code.
fn load(conf: &str) -> Result<Client, i32> {
    if !Path::new(conf).exists() {
        log_error(&format!("file {conf} not exist"));
        log_error(&format!("load conf file \"{conf}\" fail, ret code: 2"));
        return Err(2);
    }
    Client::from_conf(Path::new(conf)).map_err(|e| {
        log_error(&e.msg);
        e.code
    })
}

fn err_line(e: &NetError) -> (i32, String) {
    let n = e.errno();
    (n, format!("error no: {n}, error info: {}", strerror(n)))
}

fn io_errno(e: &std::io::Error) -> i32 {
    fdfs_common::proto::errno::of_io(e) as i32
}

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
            false,
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
            true,
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
pub fn rfdfs_http_url(args: &[String]) -> i32 {
    if args.len() < 3 {
        eprintln!(
            "Usage: {} <config_file> <file_id> [http://host:port]",
            prog(args)
        );
        return 1;
    }
    let client = match Client::from_conf(std::path::Path::new(&args[1])) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return e.code;
        }
    };
    let Ok(id) = FileId::parse(&args[2]) else {
        eprintln!("invalid file id: {}", args[2]);
        return 22;
    };
    let (base, with_group) = match args.get(3) {
        // a storage or an nginx `location /M00`: the short form
        Some(b) => (b.clone(), false),
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
    println!("{}", crate::http_url(&base, &id, with_group, token));
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

fn monitor_usage(prog: &str) {
    println!(
        "\nUsage:\n  {prog} <client_cfg_file> [-h <tracker_server>]\n  [list|delete|set_trunk_server <group_name> [storage_id]]\n\n\
         Note:\n  the tracker server format: host[:port], the tracker default port is 22122\n  \
         {prog} without parameter equals: {prog} /etc/fdfs/client.conf\n"
    );
}

fn rw_caption(m: u8) -> &'static str {
    match m {
        rw_mode::BOTH => "both (normal)",
        rw_mode::READ => "readonly",
        rw_mode::WRITE => "writeonly",
        _ => "none (disabled)",
    }
}

fn print_group(client: &Client, g: &fdfs_common::proto::client::GroupStat) {
    let avail = (g.free_mb - g.reserved_mb).max(0);
    println!("group name = {}", g.group);
    println!("disk total space     = {:>7}", mb_to_human(g.total_mb));
    println!("disk free space      = {:>7}", mb_to_human(g.free_mb));
    println!("disk reserved space  = {:>7}", mb_to_human(g.reserved_mb));
    println!("disk available space = {:>7}", mb_to_human(avail));
    if g.current_trunk_file_id >= 0 {
        println!("trunk free space = {:>7}", mb_to_human(g.trunk_free_mb));
    }
    println!("storage server count = {}", g.storage_count);
    println!("readable server count = {}", g.readable_server_count);
    println!("writable server count = {}", g.writable_server_count);
    println!("storage server port = {}", g.storage_port);
    println!("store path count = {}", g.store_path_count);
    println!("subdir count per path = {}", g.subdir_count_per_path);
    println!("current write server index = {}", g.current_write_server);
    let storages = client.list_storages(&g.group, None).unwrap_or_default();
    if g.current_trunk_file_id >= 0 {
        if let Some(t) = storages.iter().find(|s| s.if_trunk_server != 0) {
            println!(
                "current trunk server = {} ({})\ncurrent trunk file id = {}",
                t.id, t.ip, g.current_trunk_file_id
            );
        }
    }
    println!();
    for (k, s) in storages.iter().enumerate() {
        let idx = |name: &str| {
            STAT_NAMES
                .iter()
                .position(|n| *n == name)
                .expect("known stat name")
        };
        let c = |name: &str| s.stat.counters[idx(name)];
        let max_src = storages
            .iter()
            .filter(|p| p.id != s.id)
            .map(|p| p.stat.counters[idx("last_source_update")])
            .max()
            .unwrap_or(0);
        let synced = c("last_synced_timestamp");
        let delay = if max_src == 0 {
            String::new()
        } else if synced == 0 {
            "(never synced)".into()
        } else {
            format!("({} delay)", seconds_to_human(max_src - synced))
        };
        let avail = (s.free_mb - s.reserved_mb).max(0);
        let host = if s.ip.contains(':') {
            format!("[{}]", s.ip)
        } else {
            s.ip.clone()
        };
        let mut out = String::new();
        out += &format!(
            "\tStorage {}:\n\t\tid = {}\n\t\thost = {host}:{}  {}\n",
            k + 1,
            s.id,
            s.storage_port,
            status::name(s.status)
        );
        out += &format!(
            "\t\tread write mode = {}\n\t\tversion = {}\n",
            rw_caption(s.rw_mode),
            s.version
        );
        out += &format!("\t\tjoin time = {}\n", format_time(s.join_time));
        out += &format!(
            "\t\tup time = {}\n",
            if s.up_time != 0 {
                format_time(s.up_time)
            } else {
                String::new()
            }
        );
        out += &format!(
            "\t\tdisk total space     = {:>7}\n",
            mb_to_human(s.total_mb)
        );
        out += &format!("\t\tdisk free space      = {:>7}\n", mb_to_human(s.free_mb));
        out += &format!(
            "\t\tdisk reserved space  = {:>7}\n",
            mb_to_human(s.reserved_mb)
        );
        out += &format!("\t\tdisk available space = {:>7}\n", mb_to_human(avail));
        out += &format!(
            "\t\tupload priority = {}\n\t\tstore_path_count = {}\n",
            s.upload_priority, s.store_path_count
        );
        out += &format!(
            "\t\tsubdir_count_per_path = {}\n\t\tcurrent_write_path = {}\n",
            s.subdir_count_per_path, s.current_write_path
        );
        out += &format!(
            "\t\tsource storage id = {}\n\t\tif_trunk_server = {}\n",
            s.src_id, s.if_trunk_server
        );
        out += &format!(
            "\t\tconnection.alloc_count = {}\n\t\tconnection.current_count = {}\n\t\tconnection.max_count = {}\n",
            s.stat.connections[0], s.stat.connections[1], s.stat.connections[2]
        );
        for name in &STAT_NAMES[..38] {
            // upstream's spelling of this one key is part of its output
            let label = if *name == "total_download_bytes" {
                "stotal_download_bytes"
            } else {
                name
            };
            out += &format!("\t\t{label} = {}\n", c(name));
        }
        out += &format!(
            "\t\tlast_heart_beat_time = {}\n",
            format_time(c("last_heart_beat_time"))
        );
        out += &format!(
            "\t\tlast_source_update = {}\n",
            format_time(c("last_source_update"))
        );
        out += &format!(
            "\t\tlast_sync_update = {}\n",
            format_time(c("last_sync_update"))
        );
        out += &format!(
            "\t\tlast_synced_timestamp = {} {delay}\n",
            format_time(synced)
        );
        print!("{out}");
    }
}

pub fn fdfs_monitor(args: &[String]) -> i32 {
    let prog = prog(args);
    let mut conf = "/etc/fdfs/client.conf".to_string();
    let mut i = 1;
    if args.len() >= 2 {
        if args.len() == 2 && args[1] == "-h" {
            monitor_usage(&prog);
            return 0;
        }
        conf = args[1].clone();
        i = 2;
    }
    let mut tracker: Option<String> = None;
    let mut op = "list".to_string();
    if i < args.len() {
        if args[i].starts_with("-h") {
            if args[i].len() == 2 {
                i += 1;
                if i >= args.len() {
                    monitor_usage(&prog);
                    return 1;
                }
                tracker = Some(args[i].clone());
            } else {
                tracker = Some(args[i][2..].to_string());
            }
            i += 1;
        }
        if i < args.len() {
            op = args[i].clone();
            i += 1;
        }
    }
    let rest = &args[i.min(args.len())..];
    let mut client = match load(&conf) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(t) = &tracker {
        let hp = match parse_host_port(t, 22122) {
            Ok(hp) => hp,
            Err(_) => {
                println!("resolve ip address of tracker server: {t} fail!");
                return 2;
            }
        };
        if !client.cfg.tracker_servers.contains(&hp) {
            println!("tracker server: {hp} not exists!");
            return 2;
        }
        client.cfg.tracker_servers = vec![hp];
    }
    let count = client.cfg.tracker_servers.len();
    println!("tracker server count={count}, current server index=0\n");
    println!("tracker server is {}\n", client.cfg.tracker_servers[0]);
    match op.as_str() {
        "list" => {
            let groups = match client.list_groups() {
                Ok(g) => g,
                Err(e) => return e.errno(),
            };
            match rest.first() {
                None => {
                    println!("group count: {}", groups.len());
                    for (k, g) in groups.iter().enumerate() {
                        println!("\nGroup {}:", k + 1);
                        print_group(&client, g);
                    }
                }
                Some(name) => {
                    if let Some(g) = groups.iter().find(|g| g.group == *name) {
                        print_group(&client, g);
                    }
                }
            }
            0
        }
        "delete" => {
            let Some(group) = rest.first() else {
                monitor_usage(&prog);
                return 1;
            };
            match rest.get(1) {
                None => match client.delete_group(group) {
                    Ok(()) => println!("delete group: {group} success"),
                    Err(e) => println!("delete group: {group} fail, {}", err_line(&e).1),
                },
                Some(id) => match client.delete_storage(group, id) {
                    Ok(()) => println!("delete storage server {group}::{id} success"),
                    Err(e) => println!(
                        "delete storage server {group}::{id} fail, {}",
                        err_line(&e).1
                    ),
                },
            }
            0
        }
        "set_trunk_server" => {
            let Some(group) = rest.first() else {
                monitor_usage(&prog);
                return 1;
            };
            let id = rest.get(1).map(String::as_str).unwrap_or("");
            match client.set_trunk_server(group, id) {
                Ok(new) => {
                    println!("set trunk server {group}::{id} success, new trunk server: {new}")
                }
                Err(e) => println!("set trunk server {group}::{id} fail, {}", err_line(&e).1),
            }
            0
        }
        other => {
            println!("Invalid command {other}\n");
            monitor_usage(&prog);
            0
        }
    }
}

const TEST_BANNER: &str = "This is FastDFS client test program v6.16.1\n\nCopyright (C) 2008, Happy Fish / YuQing\n\nFastDFS may be copied only under the terms of the GNU General\nPublic License V3, which may be found in the FastDFS source kit.\nPlease visit the FastDFS Home Page http://www.fastken.com/ \nfor more detail.\n";

fn print_uploaded(client: &Client, id: &FileId) {
    println!("group_name={}, remote_filename={}", id.group, id.name);
    let info = fdfs_common::file_id::RemoteName::decode(&id.name).ok();
    let ip = info
        .as_ref()
        .and_then(|n| n.payload.source.ip_text())
        .unwrap_or_default();
    println!("source ip address: {ip}");
    let (ts, size, crc) = info
        .map(|n| {
            (
                n.payload.timestamp as i64,
                n.payload.file_size().unwrap_or(0),
                n.payload.crc32,
            )
        })
        .unwrap_or((0, 0, 0));
    println!("file timestamp={}", format_time(ts));
    println!("file size={size}");
    println!("file crc32={crc}");
    let mut url = format!("http://{ip}/{id}");
    if client.cfg.anti_steal_check_token {
        let now = fdfs_common::now();
        url += &format!(
            "?token={}&ts={now}",
            anti_steal_token(&id.to_string(), &client.cfg.anti_steal_secret_key, now)
        );
    }
    println!("example file url: {url}");
}

/// `fdfs_test`: upload (with metadata and a slave), download, getmeta, setmeta, query_servers,
/// delete; exits with the result of the final active test for the non-upload operations.
pub fn fdfs_test(args: &[String]) -> i32 {
    println!("{TEST_BANNER}");
    let prog = prog(args);
    if args.len() < 3 {
        println!("Usage: {prog} <config_file> <operation>\n\toperation: upload, download, getmeta, setmeta, delete and query_servers");
        return 1;
    }
    let client = match load(&args[1]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let op = args[2].as_str();
    if op == "upload" {
        if args.len() < 4 {
            println!(
                "Usage: {prog} <config_file> upload <local_filename> [FILE | BUFF | CALLBACK] "
            );
            return 22;
        }
        let mode = args.get(4).map(String::as_str).unwrap_or("FILE");
        let (mode_name, prefix) = match mode {
            "BUFF" => ("filebuff", "1024x1024"),
            "CALLBACK" => ("callback", "-small"),
            _ => ("filename", "_big"),
        };
        if let Ok(all) = client.query_store_all(None) {
            println!("tracker_query_storage_store_list_without_group: ");
            for (k, s) in all.servers.iter().enumerate() {
                println!(
                    "\tserver {}. group_name=, ip_addr={}, port={}",
                    k + 1,
                    s.ip,
                    s.port
                );
            }
            println!();
        }
        let store = match client.query_store(None) {
            Ok(s) => s,
            Err(e) => {
                let (n, l) = err_line(&e);
                println!("tracker_query_storage fail, {l}");
                return n;
            }
        };
        println!(
            "group_name={}, ip_addr={}, port={}",
            store.group, store.server.ip, store.server.port
        );
        let local = Path::new(&args[3]);
        let data = match std::fs::read(local) {
            Ok(d) => d,
            Err(e) => return io_errno(&e),
        };
        let ext = ext_from_local_name(&args[3]);
        let meta = metadata::parse_cli_list("ext_name=jpg,width=160,height=80,file_size=115120");
        let target = crate::Client::addr_of(&store.server);
        let r = client.upload(
            Content::Buffer(&data),
            &ext,
            false,
            Some((target.clone(), store.store_path_index)),
            None,
        );
        println!("storage_upload_by_{mode_name}");
        let id = match r.and_then(|id| {
            client
                .set_metadata_on(&target, &id, &meta, b'O')
                .map(|_| id)
        }) {
            Ok(id) => id,
            Err(e) => {
                let (n, l) = err_line(&e);
                println!("upload file fail, {l}");
                return n;
            }
        };
        print_uploaded(&client, &id);
        let r = client.upload_slave(&id, prefix, &ext, Content::Buffer(&data));
        println!("storage_upload_slave_by_{mode_name}");
        let slave =
            match r.and_then(|s| client.set_metadata_on(&target, &s, &meta, b'O').map(|_| s)) {
                Ok(s) => s,
                Err(e) => {
                    let (n, l) = err_line(&e);
                    println!("upload slave file fail, {l}");
                    return n;
                }
            };
        print_uploaded(&client, &slave);
        let expected = slave_name(&id.name, prefix, &ext);
        if expected != slave.name {
            println!(
                "slave_filename={expected}\nremote_filename={}\nnot equal!",
                slave.name
            );
        }
        return 0;
    }
    if !matches!(
        op,
        "download" | "getmeta" | "setmeta" | "query_servers" | "delete"
    ) {
        println!("invalid operation: {op}");
        return 22;
    }
    if args.len() < 5 {
        println!("Usage: {prog} <config_file> {op} <group_name> <remote_filename>");
        return 22;
    }
    let id = FileId {
        group: args[3].clone(),
        name: args[4].clone(),
    };
    if op == "query_servers" {
        return match client.query_fetch_all(&id) {
            Ok(list) => {
                println!("server list ({}):", list.len());
                for s in &list {
                    println!("\t{s}");
                }
                println!();
                0
            }
            Err(e) => {
                let (n, l) = err_line(&e);
                println!(
                    "tracker_query_storage_list fail, group_name={}, filename={}, {l}",
                    id.group, id.name
                );
                n
            }
        };
    }
    let addr = if matches!(op, "setmeta" | "delete") {
        client.query_update(&id)
    } else {
        client.query_fetch(&id)
    };
    let addr = match addr {
        Ok(a) => a,
        Err(e) => {
            let (n, l) = err_line(&e);
            println!(
                "tracker_query_storage_fetch fail, group_name={}, filename={}, {l}",
                id.group, id.name
            );
            return n;
        }
    };
    println!("storage={addr}");
    match op {
        "download" => {
            let local = match args.get(5) {
                Some(l) => l.clone(),
                None => id.name.rsplit('/').next().unwrap_or("").to_string(),
            };
            match client.download_from(&addr, &id, 0, 0, || std::fs::File::create(&local)) {
                Ok(n) => println!("download file success, file size={n}, file save to {local}"),
                Err(e) => println!("download file fail, {}", err_line(&e).1),
            }
        }
        "getmeta" => {
            let req = fdfs_common::proto::client::GroupFileReq {
                group: id.group.clone(),
                filename: id.name.clone(),
            };
            let r = client.storage_request(
                &addr,
                fdfs_common::proto::cmd::GET_METADATA,
                &fdfs_common::codec::Message::to_bytes(&req),
            );
            match r {
                Ok(b) => {
                    let items = metadata::unpack(&b);
                    println!("get meta data success, meta count={}", items.len());
                    for (n, v) in items {
                        println!(
                            "{}={}",
                            String::from_utf8_lossy(&n),
                            String::from_utf8_lossy(&v)
                        );
                    }
                }
                Err(e) => println!("getmeta fail, {}", err_line(&e).1),
            }
        }
        "setmeta" => {
            if args.len() < 7 {
                println!("Usage: {prog} <config_file> {op} <group_name> <remote_filename> <op_flag> <metadata_list>\n\top_flag: O for overwrite, M for merge\n\tmetadata_list: name1=value1,name2=value2,...");
                return 22;
            }
            let flag = args[5].as_bytes().first().copied().unwrap_or(b'O');
            match client.set_metadata_on(&addr, &id, &metadata::parse_cli_list(&args[6]), flag) {
                Ok(()) => println!("set meta data success"),
                Err(e) => println!("setmeta fail, {}", err_line(&e).1),
            }
        }
        _ => {
            let req = fdfs_common::proto::client::GroupFileReq {
                group: id.group.clone(),
                filename: id.name.clone(),
            };
            match client.storage_request(
                &addr,
                fdfs_common::proto::cmd::DELETE_FILE,
                &fdfs_common::codec::Message::to_bytes(&req),
            ) {
                Ok(_) => println!("delete file success"),
                Err(e) => println!("delete file fail, {}", err_line(&e).1),
            }
        }
    }
    let tracker = client.cfg.tracker_servers[0].clone();
    if let Err(e) = client.active_test(&tracker) {
        println!(
            "active_test to tracker server {tracker} fail, errno: {}",
            e.errno()
        );
        return e.errno();
    }
    if let Err(e) = client.active_test(&addr) {
        println!(
            "active_test to storage server {addr} fail, errno: {}",
            e.errno()
        );
        return e.errno();
    }
    let _ = std::io::stdout().flush();
    0
}

fn prog(args: &[String]) -> String {
    args.first().cloned().unwrap_or_default()
}
