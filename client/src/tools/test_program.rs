//! Upstream's test programs, with their exact output: `fdfs_test` / `fdfs_test1` walk through
//! every client operation, `fdfs_appender_test` / `fdfs_appender_test1` through an appender
//! file's life (upload, truncate, append, modify).

use super::failure::{err_line, io_errno};
use super::startup::{load, prog};
use crate::storage_requests::Upload;
use crate::{anti_steal_token, Client, Content, FileId};
use fdfs_common::codec::Message;
use fdfs_common::file_id::{ext_from_local_name, slave_name};
use fdfs_common::log::format_time;
use fdfs_common::metadata;
use fdfs_common::net::{NetError, NetResult};
use fdfs_common::proto::client::GroupFileReq;
use fdfs_common::proto::client::StoreReply;
use fdfs_common::proto::cmd;
use std::io::Write;
use std::path::Path;

const TEST_BANNER: &str = "This is FastDFS client test program v6.16.1\n\nCopyright (C) 2008, Happy Fish / YuQing\n\nFastDFS may be copied only under the terms of the GNU General\nPublic License V3, which may be found in the FastDFS source kit.\nPlease visit the FastDFS Home Page http://www.fastken.com/ \nfor more detail.\n";

/// upstream's `fdfs_get_file_info` block (the CRC line only where its programs print it);
/// a failed query prints the empty record.
fn print_file_info(client: &Client, id: &FileId, with_crc: bool) {
    let info = client.file_info(id, 0).ok();
    let info = info.as_ref();
    println!(
        "source ip address: {}",
        info.map(|i| i.source_ip.as_str()).unwrap_or("")
    );
    println!(
        "file timestamp={}",
        format_time(info.map(|i| i.create_timestamp).unwrap_or(0))
    );
    println!("file size={}", info.map(|i| i.file_size).unwrap_or(0));
    if with_crc {
        println!("file crc32={}", info.map(|i| i.crc32).unwrap_or(0));
    }
}

/// The two spellings of upstream's test program: `fdfs_test` passes a group and a remote file
/// name, `fdfs_test1` one file ID; their output differs in small ways kept here.
#[derive(Clone, Copy, PartialEq)]
enum Style {
    Names,
    FileIds,
}

/// The block printed after an upload: the file's info (asked from the storage for slaves, as
/// upstream's `fdfs_get_file_info`) and an example URL on the storage's address.
fn print_uploaded(client: &Client, storage_ip: &str, id: &FileId, label: &str) {
    print_file_info(client, id, true);
    println!("{label}: {}", test_url(client, storage_ip, id));
}

/// `fdfs_test`: upload (with metadata and a slave), download, getmeta, setmeta, query_servers,
/// delete; exits with the result of the final active tests.
pub fn fdfs_test(args: &[String]) -> i32 {
    test_program(args, Style::Names)
}

/// `fdfs_test1`: the same walk with file IDs.
pub fn fdfs_test1(args: &[String]) -> i32 {
    test_program(args, Style::FileIds)
}

/// What every test program does first: the banner, the usage when too few arguments are given,
/// and client.conf.
fn start(args: &[String], usage_args: &str) -> Result<Client, i32> {
    println!("{TEST_BANNER}");
    if args.len() < 3 {
        println!("Usage: {} <config_file> {usage_args}", prog(args));
        return Err(1);
    }
    load(&args[1])
}

fn test_program(args: &[String], style: Style) -> i32 {
    let prog = prog(args);
    let usage =
        "<operation>\n\toperation: upload, download, getmeta, setmeta, delete and query_servers";
    let client = match start(args, usage) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let op = args[2].as_str();
    let storage = if op == "upload" {
        if args.len() < 4 {
            println!(
                "Usage: {prog} <config_file> upload <local_filename> [FILE | BUFF | CALLBACK] "
            );
            return 22;
        }
        match test_upload(&client, &args[3], args.get(4).map(String::as_str), style) {
            Ok(addr) => addr,
            Err(code) => return code,
        }
    } else if matches!(
        op,
        "download" | "getmeta" | "setmeta" | "query_servers" | "delete"
    ) {
        match test_file_operation(&client, args, style) {
            Ok(addr) => addr,
            Err(code) => return code,
        }
    } else {
        println!("invalid operation: {op}");
        return 22;
    };
    // as upstream, only the storage's answer decides the exit code
    let tracker = client.cfg.tracker_servers[0].clone();
    if let Err(e) = client.active_test(&tracker) {
        println!(
            "active_test to tracker server {tracker} fail, errno: {}",
            e.errno()
        );
    }
    let result = match client.active_test(&storage) {
        Ok(()) => 0,
        Err(e) => {
            println!(
                "active_test to storage server {storage} fail, errno: {}",
                e.errno()
            );
            e.errno()
        }
    };
    let _ = std::io::stdout().flush();
    result
}

/// The test programs' metadata, set on every file they upload.
const TEST_METADATA: &str = "ext_name=jpg,width=160,height=80,file_size=115120";

/// Upload to the storage the tracker chose, then set the test metadata (upstream's client
/// library makes the same two requests for an upload with metadata).
fn upload_with_test_metadata(
    client: &Client,
    store: &StoreReply,
    data: &[u8],
    ext: &str,
    kind: Upload,
) -> NetResult<FileId> {
    let target = Client::addr_of(&store.server);
    let meta = metadata::parse_cli_list(TEST_METADATA);
    let id = client.upload(
        Content::Buffer(data),
        ext,
        kind,
        Some((target.clone(), store.store_path_index)),
        None,
    )?;
    client.set_metadata_on(&target, &id, &meta, b'O')?;
    Ok(id)
}

/// How upstream's test programs call their three upload modes (the bytes sent are the same).
fn upload_mode(arg: Option<&str>) -> &'static str {
    match arg {
        Some("BUFF") => "filebuff",
        Some("CALLBACK") => "callback",
        _ => "filename",
    }
}

/// Print `line` before the call for `fdfs_test1`, after it for `fdfs_test`, as upstream does.
fn announced<T>(style: Style, line: &str, call: impl FnOnce() -> T) -> T {
    if style == Style::FileIds {
        println!("{line}");
    }
    let r = call();
    if style == Style::Names {
        println!("{line}");
    }
    r
}

fn test_upload(
    client: &Client,
    local_name: &str,
    mode_arg: Option<&str>,
    style: Style,
) -> Result<fdfs_common::config::HostPort, i32> {
    let mode = upload_mode(mode_arg);
    let prefix = match (mode, style) {
        ("filebuff", _) => "1024x1024",
        ("callback", Style::Names) => "-small",
        ("callback", Style::FileIds) => "_small",
        _ => "_big",
    };
    let listed = match style {
        Style::Names => client.query_store_all(None).map(|all| ("without", "", all)),
        Style::FileIds => client
            .query_store_all(Some("group1"))
            .map(|all| ("with", "group1", all)),
    };
    if let Ok((with, group, all)) = listed {
        println!("tracker_query_storage_store_list_{with}_group: ");
        for (k, s) in all.servers.iter().enumerate() {
            println!(
                "\tserver {}. group_name={group}, ip_addr={}, port={}",
                k + 1,
                s.ip,
                s.port
            );
        }
        println!();
    }
    let store = client.query_store(None).map_err(|e| {
        let (n, l) = err_line(&e);
        println!("tracker_query_storage fail, {l}");
        n
    })?;
    println!(
        "group_name={}, ip_addr={}, port={}",
        store.group, store.server.ip, store.server.port
    );
    let data = std::fs::read(Path::new(local_name)).map_err(|e| io_errno(&e))?;
    let ext = ext_from_local_name(local_name);
    let meta = metadata::parse_cli_list(TEST_METADATA);
    let target = crate::client::Client::addr_of(&store.server);
    let fail = |what: &str, e: NetError| {
        let (n, l) = err_line(&e);
        println!("{what} fail, {l}");
        n
    };
    let id = announced(style, &format!("storage_upload_by_{mode}"), || {
        upload_with_test_metadata(client, &store, &data, &ext, Upload::File)
    })
    .map_err(|e| fail("upload file", e))?;
    if style == Style::Names {
        println!("group_name={}, remote_filename={}", id.group, id.name);
    }
    print_uploaded(client, &store.server.ip, &id, "example file url");
    let slave = announced(style, &format!("storage_upload_slave_by_{mode}"), || {
        client
            .upload_slave(&id, prefix, &ext, Content::Buffer(&data))
            .and_then(|s| client.set_metadata_on(&target, &s, &meta, b'O').map(|_| s))
    })
    .map_err(|e| fail("upload slave file", e))?;
    if style == Style::Names {
        println!("group_name={}, remote_filename={}", slave.group, slave.name);
    }
    print_uploaded(client, &store.server.ip, &slave, "example file url");
    let expected = FileId {
        group: id.group.clone(),
        name: slave_name(&id.name, prefix, &ext),
    };
    if expected != slave {
        match style {
            Style::Names => println!(
                "slave_filename={}\nremote_filename={}\nnot equal!",
                expected.name, slave.name
            ),
            Style::FileIds => println!("slave_file_id={expected}\nfile_id={slave}\nnot equal!"),
        }
    }
    Ok(target)
}

/// download, getmeta, setmeta, query_servers and delete on one file; the storage asked, for
/// the active test that follows, or the exit code where upstream's program ends here.
fn test_file_operation(
    client: &Client,
    args: &[String],
    style: Style,
) -> Result<fdfs_common::config::HostPort, i32> {
    let prog = prog(args);
    let op = args[2].as_str();
    let (id, rest, file_words) = match style {
        Style::Names if args.len() >= 5 => (
            FileId {
                group: args[3].clone(),
                name: args[4].clone(),
            },
            &args[5..],
            "<group_name> <remote_filename>",
        ),
        Style::FileIds if args.len() >= 4 => {
            let id = FileId::parse(&args[3]).unwrap_or_else(|_| FileId {
                group: String::new(),
                name: args[3].clone(),
            });
            (id, &args[4..], "<file_id>")
        }
        _ => {
            let words = match style {
                Style::Names => "<group_name> <remote_filename>",
                Style::FileIds => "<file_id>",
            };
            println!("Usage: {prog} <config_file> {op} {words}");
            return Err(22);
        }
    };
    let which = match style {
        Style::Names => format!("group_name={}, filename={}", id.group, id.name),
        Style::FileIds => format!("file_id={id}"),
    };
    if op == "query_servers" {
        return match client.query_fetch_all(&id) {
            Ok(list) => {
                println!("server list ({}):", list.len());
                for s in &list {
                    println!("\t{s}");
                }
                println!();
                Err(0)
            }
            Err(e) => {
                let (n, l) = err_line(&e);
                let call = match style {
                    Style::Names => "tracker_query_storage_list",
                    Style::FileIds => "tracker_query_storage_list1",
                };
                println!("{call} fail, {which}, {l}");
                Err(n)
            }
        };
    }
    // upstream's fdfs_test asks for the update server where it changes the file; fdfs_test1
    // asks for a fetch server for every operation
    let addr = if style == Style::Names && matches!(op, "setmeta" | "delete") {
        client.query_update(&id)
    } else {
        client.query_fetch(&id)
    };
    let addr = addr.map_err(|e| {
        let (n, l) = err_line(&e);
        println!("tracker_query_storage_fetch fail, {which}, {l}");
        n
    })?;
    println!("storage={addr}");
    let request = GroupFileReq {
        group: id.group.clone(),
        filename: id.name.clone(),
    };
    match op {
        "download" => {
            let local = match rest.first() {
                Some(l) => l.clone(),
                None => id.name.rsplit('/').next().unwrap_or("").to_string(),
            };
            match client.download_from(&addr, &id, 0, 0, || std::fs::File::create(&local)) {
                Ok(n) => println!("download file success, file size={n}, file save to {local}"),
                Err(e) => println!("download file fail, {}", err_line(&e).1),
            }
        }
        "getmeta" => match client.storage_request(&addr, cmd::GET_METADATA, &request.to_bytes()) {
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
        },
        "setmeta" => {
            if rest.len() < 2 {
                println!("Usage: {prog} <config_file> {op} {file_words} <op_flag> <metadata_list>\n\top_flag: O for overwrite, M for merge\n\tmetadata_list: name1=value1,name2=value2,...");
                return Err(22);
            }
            let flag = rest[0].as_bytes().first().copied().unwrap_or(b'O');
            match client.set_metadata_on(&addr, &id, &metadata::parse_cli_list(&rest[1]), flag) {
                Ok(()) => println!("set meta data success"),
                Err(e) => println!("setmeta fail, {}", err_line(&e).1),
            }
        }
        _ => match client.storage_request(&addr, cmd::DELETE_FILE, &request.to_bytes()) {
            Ok(_) => println!("delete file success"),
            Err(e) => println!("delete file fail, {}", err_line(&e).1),
        },
    }
    Ok(addr)
}

/// `fdfs_appender_test`: upload an appender file, truncate it to half, append and modify the
/// local file's content, printing the file's info after each step.
pub fn fdfs_appender_test(args: &[String]) -> i32 {
    appender_test_program(args, Style::Names)
}

/// `fdfs_appender_test1`: the same with file IDs, truncating to 0.
pub fn fdfs_appender_test1(args: &[String]) -> i32 {
    appender_test_program(args, Style::FileIds)
}

fn appender_test_program(args: &[String], style: Style) -> i32 {
    let client = match start(args, "<local_filename> [FILE | BUFF | CALLBACK]") {
        Ok(c) => c,
        Err(code) => return code,
    };
    let local_name = &args[2];
    let mode = upload_mode(args.get(3).map(String::as_str));
    // fdfs_appender_test1 names its calls with a "1", but for the FILE mode's append and modify
    let call = |what: &str, whole_file_too: bool| match style {
        Style::FileIds if mode != "filename" || whole_file_too => format!("{what}_by_{mode}1"),
        _ => format!("{what}_by_{mode}"),
    };
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
    let data = std::fs::read(Path::new(local_name)).map_err(|e| io_errno(&e) as u8);
    let file_size = data.as_ref().map(|d| d.len() as i64).unwrap_or(0);
    let ext = ext_from_local_name(local_name);
    let uploaded = data
        .as_ref()
        .map_err(|&n| NetError::Status(n))
        .and_then(|d| upload_with_test_metadata(&client, &store, d, &ext, Upload::Appender));
    println!("{}", call("storage_upload_appender", true));
    let id = match uploaded {
        Ok(id) => id,
        Err(e) => {
            let (n, l) = err_line(&e);
            println!("upload file fail, {l}");
            return n;
        }
    };
    // upstream's URL here carries the tracker's address, not the storage's
    let tracker_ip = client.cfg.tracker_servers[0].host.clone();
    let url = test_url(&client, &tracker_ip, &id);
    match style {
        Style::Names => println!("group_name={}, remote_filename={}", id.group, id.name),
        Style::FileIds => println!("fild_id={id}"),
    }
    print_file_info(&client, &id, true);
    println!("file url: {url}");
    let truncated_size = match style {
        Style::Names => file_size / 2,
        Style::FileIds => 0,
    };
    if client.truncate(&id, truncated_size).is_err() {
        // upstream prints the result of the upload here, which succeeded
        println!("truncate file fail, error no: 0, error info: Success");
        return 0;
    }
    let size_check = |expected: i64| {
        let got = client.file_info(&id, 0).map(|i| i.file_size).unwrap_or(0);
        if got != expected {
            match style {
                Style::Names => eprintln!("file size: {got} != {expected}!!!"),
                Style::FileIds => eprint!("file size: {got} != {expected}!!!"),
            }
        }
    };
    print_file_info(&client, &id, true);
    println!("file url: {url}");
    size_check(truncated_size);
    let content: &[u8] = data.as_deref().unwrap_or(&[]);
    let appended = client.append(&id, Content::Buffer(content));
    println!("{}", call("storage_append", false));
    if let Err(e) = appended {
        let (n, l) = err_line(&e);
        println!("append file fail, {l}");
        return n;
    }
    println!("append file successfully.");
    print_file_info(&client, &id, false);
    let after_append = truncated_size + file_size;
    size_check(after_append);
    let offset = match style {
        Style::Names => client.file_info(&id, 0).map(|i| i.file_size).unwrap_or(0),
        Style::FileIds => file_size,
    };
    let modified = client.modify(&id, offset, Content::Buffer(content));
    println!("{}", call("storage_modify", false));
    if let Err(e) = modified {
        let (n, l) = err_line(&e);
        println!("modify file fail, {l}");
        return n;
    }
    println!("modify file successfully.");
    print_file_info(&client, &id, false);
    size_check(offset + file_size);
    0
}

fn test_url(client: &Client, ip: &str, id: &FileId) -> String {
    let mut url = format!("http://{ip}/{id}");
    if client.cfg.anti_steal_check_token {
        let now = fdfs_common::now();
        url += &format!(
            "?token={}&ts={now}",
            anti_steal_token(&id.to_string(), &client.cfg.anti_steal_secret_key, now)
        );
    }
    url
}
