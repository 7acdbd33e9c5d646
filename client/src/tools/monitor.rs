//! fdfs_monitor: the cluster as the trackers see it, and its list/delete/set_trunk_server
//! actions.

use super::failure::err_line;
use super::startup::{load, prog};
use crate::client::Client;
use crate::human::{mb_to_human, seconds_to_human};
use fdfs_common::config::parse_host_port;
use fdfs_common::log::format_time;
use fdfs_common::proto::cluster::STAT_NAMES;
use fdfs_common::proto::{rw_mode, status};
use std::io::Write;

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
    // rfdfs's trackers also say what each storage advertises to clients (a C tracker refuses)
    let advertised = client.list_advertised(&g.group).unwrap_or_default();
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
        if let Some((_, rules)) = advertised.iter().find(|(id, _)| *id == s.id) {
            out += &format!("\t\tadvertised = {rules}\n");
        }
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
    // upstream names the address it connected to (a dual-address line's second one when the
    // first does not answer)
    if let Ok(c) = client.tracker() {
        client.release(c);
    }
    let first = &client.cfg.tracker_servers[0];
    let host = fdfs_common::net::host_in_use(first);
    let shown = fdfs_common::config::HostPort::new(host, first.port);
    println!("tracker server is {shown}\n");
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
