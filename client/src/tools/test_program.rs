//! fdfs_test: upstream's walk through every client operation, with its exact output.

use super::{err_line, io_errno, load, prog};
use crate::Upload;
use crate::{anti_steal_token, Client, Content, FileId};
use fdfs_common::file_id::{ext_from_local_name, slave_name};
use fdfs_common::log::format_time;
use fdfs_common::metadata;
use std::io::Write;
use std::path::Path;

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
            Upload::File,
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
