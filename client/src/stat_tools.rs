//! fdfs_tracker_stat, fdfs_storage_stat and fdfs_volumn_stat ("volumn" is upstream's spelling):
//! upstream's options and output (docs/protocol/config-cli-http.md 4.10 to 4.12).

use crate::client::Client;
use crate::human::mb_to_human;
use fdfs_common::log::format_time;
use fdfs_common::proto::stats::VolumeStat;
use fdfs_common::proto::stats::{StorageClusterStatReq, TrackerClusterStatReq, VolumeStatReq};
use fdfs_common::proto::status;
use std::io::Write;

/// `print!` that ends quietly on a closed stdout, like the other tools.
macro_rules! out {
    ($($t:tt)*) => {
        if write!(std::io::stdout(), $($t)*).is_err() {
            std::process::exit(141)
        }
    };
}

/// getopt-style parsing of single-letter flags (combinable) and `-c <file>`.
fn parse(args: &[String], letters: &str) -> Result<(String, Vec<char>), ()> {
    let mut conf = "/etc/fdfs/client.conf".to_string();
    let mut flags = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        let Some(rest) = a.strip_prefix('-').filter(|r| !r.is_empty()) else {
            break;
        };
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            if c == 'c' {
                let attached: String = chars.by_ref().collect();
                conf = if attached.is_empty() {
                    i += 1;
                    args.get(i).cloned().ok_or(())?
                } else {
                    attached
                };
                break;
            }
            if !letters.contains(c) {
                eprintln!("{}: invalid option -- '{c}'", args[0]);
                return Err(());
            }
            flags.push(c);
        }
        i += 1;
    }
    Ok((conf, flags))
}

/// Parses the options, printing `usage` (with `{prog}` as the program name) for `-h` (exit 0)
/// or for a bad option (exit 1).
fn parse_or_usage(args: &[String], letters: &str, usage: &str) -> Result<(String, Vec<char>), i32> {
    let print_usage = || eprintln!("{}", usage.replace("{prog}", &args[0]));
    match parse(args, letters) {
        Ok((_, flags)) if flags.contains(&'h') => {
            print_usage();
            Err(0)
        }
        Ok(parsed) => Ok(parsed),
        Err(()) => {
            print_usage();
            Err(1)
        }
    }
}

fn load(conf: &str) -> Result<Client, i32> {
    crate::logging::init();
    let client = Client::from_conf(std::path::Path::new(conf)).map_err(|e| {
        log::error!("{}", e.msg);
        e.code
    })?;
    crate::logging::set_level(client.cfg.log_level);
    crate::logging::key_warnings(&client.cfg);
    Ok(client)
}

pub fn fdfs_tracker_stat(args: &[String]) -> i32 {
    let usage = "Usage: {prog} [-c config_filename=/etc/fdfs/client.conf]\n\t[-A] list ACTIVE trackers\n\t[-N] list None ACTIVE trackers\n\t[-L] list leader tracker\n\t[-F] list follower trackers\n\t[-d] show detail / more info\n\nFor example:\n\t{prog} -A\n\t{prog} -N\n";
    let (conf, flags) = match parse_or_usage(args, "hANLFd", usage) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let mut filter = TrackerClusterStatReq::default();
    for f in &flags {
        match f {
            'A' | 'N' => {
                filter.filter_by |= 1;
                filter.is_active = (*f == 'A') as u8;
            }
            'L' | 'F' => {
                filter.filter_by |= 2;
                filter.is_leader = (*f == 'L') as u8;
            }
            _ => {}
        }
    }
    let client = match load(&conf) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let detail = flags.contains(&'d');
    if let Ok(list) = client.tracker_cluster_stat(filter) {
        if !list.is_empty() {
            out!("\n");
            for t in &list {
                let [a, c, m] = t.connections;
                out!(
                    "{}, is_leader: {}, is_active: {}, connections {{alloc: {a}, current: {c}, max: {m}}}\n",
                    t.host, t.is_leader, t.is_active
                );
                if detail {
                    out!(
                        "  version: {}, up_time: {}",
                        t.version,
                        format_time(t.up_time)
                    );
                    if t.is_leader != 0 {
                        out!("\n\n");
                    } else {
                        out!(
                            ", last_heartbeat_time: {}\n\n",
                            format_time(t.last_heartbeat_time)
                        );
                    }
                }
            }
            out!("\ntracker server count: {}\n\n", list.len());
        }
    }
    0
}

pub fn fdfs_storage_stat(args: &[String]) -> i32 {
    let usage = "Usage: {prog} [-c config_filename=/etc/fdfs/client.conf]\n\t[-A] list ACTIVE storages\n\t[-N] list None ACTIVE storages\n\t[-d] show detail / more info\n\nWhen use_trunk_file is true, including options:\n\t[-T] list trunk servers / storages\n\t[-t] list None trunk servers / storages\n\nFor example:\n\t{prog} -A\n\t{prog} -N\n";
    let (conf, flags) = match parse_or_usage(args, "hANTtd", usage) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let mut filter = StorageClusterStatReq::default();
    for f in &flags {
        match f {
            'A' | 'N' => {
                filter.filter_by |= 2;
                filter.status_op = if *f == 'A' { b'=' } else { b'!' };
                filter.status = status::ACTIVE;
            }
            'T' | 't' => {
                filter.filter_by |= 1;
                filter.is_trunk_server = (*f == 'T') as u8;
            }
            _ => {}
        }
    }
    let client = match load(&conf) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let detail = flags.contains(&'d');
    if let Ok((use_ids, use_trunk, list)) = client.storage_cluster_stat(filter) {
        if !list.is_empty() {
            out!("\n");
            for s in &list {
                if use_ids {
                    out!("{} ", s.id);
                }
                out!("{} {}, ", s.host, status::name(s.status));
                if use_trunk {
                    out!("is_trunk_server: {}, ", s.is_trunk_server);
                }
                let [a, c, m] = s.connections;
                out!("connections {{alloc: {a}, current: {c}, max: {m}}}\n");
                if detail {
                    out!(
                        "  version: {}, up_time: {}, last_heartbeat_time: {}\n\n",
                        s.version,
                        format_time(s.up_time),
                        format_time(s.last_heartbeat_time)
                    );
                }
            }
            out!("\nstorage server count: {}\n\n", list.len());
        }
    }
    0
}

fn group_line(g: &VolumeStat, use_trunk: bool) {
    out!("{} disk_available: {}", g.group, g.is_disk_available);
    if use_trunk {
        out!(", trunk_available: {}", g.is_trunk_available);
    }
    let total = g.total_mb - g.reserved_mb;
    let util = if total > 0 {
        (total - g.avail_mb) as f64 / total as f64 * 100.0
    } else {
        0.0
    };
    out!(
        ", disk space {{total: {}, free: {}, reserved: {}, avail: {}, util: {util:.2}%}}",
        mb_to_human(g.total_mb),
        mb_to_human(g.free_mb),
        mb_to_human(g.reserved_mb),
        mb_to_human(g.avail_mb)
    );
    if use_trunk {
        let avail = g.avail_mb + g.trunk_free_mb;
        let ratio = if total > 0 {
            avail as f64 / total as f64 * 100.0
        } else {
            0.0
        };
        out!(
            ", trunk free space: {}, total available {{space: {}, ratio: {ratio:.2}%}}\n\n",
            mb_to_human(g.trunk_free_mb),
            mb_to_human(avail)
        );
    } else {
        out!("\n\n");
    }
}

pub fn fdfs_volumn_stat(args: &[String]) -> i32 {
    let usage = "Usage: {prog} [-c config_filename=/etc/fdfs/client.conf]\n\t[-A] list space available groups / volumns\n\t[-N | -F] list None space available groups / volumns\n\t[-D] list disk space available groups / volumns\n\t[-d] list None disk space available groups / volumns\n\nWhen use_trunk_file is true, including options:\n\t[-T] list trunk space available groups / volumns\n\t[-t] list None trunk space available groups / volumns\n\nNote: space available when disk space available or trunk space available\n\nFor example:\n\t{prog} -A\n\t{prog} -N\n";
    let (conf, flags) = match parse_or_usage(args, "hANFDdTt", usage) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let mut filter = VolumeStatReq::default();
    for f in &flags {
        match f {
            'A' | 'N' | 'F' => {
                filter.filter_by |= 4;
                filter.is_space_available = (*f == 'A') as u8;
            }
            'D' | 'd' => {
                filter.filter_by |= 1;
                filter.is_disk_available = (*f == 'D') as u8;
            }
            'T' | 't' => {
                filter.filter_by |= 2;
                filter.is_trunk_available = (*f == 'T') as u8;
            }
            _ => {}
        }
    }
    let client = match load(&conf) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Ok((use_trunk, groups)) = client.volume_stat(filter) {
        if groups.is_empty() {
            return 0;
        }
        out!("\n");
        let mut sum = VolumeStat::default();
        let mut available = 0;
        for g in &groups {
            sum.total_mb += g.total_mb;
            sum.free_mb += g.free_mb;
            sum.reserved_mb += g.reserved_mb;
            sum.avail_mb += g.avail_mb;
            sum.trunk_free_mb += g.trunk_free_mb;
            sum.is_disk_available |= g.is_disk_available;
            sum.is_trunk_available |= g.is_trunk_available;
            if g.is_disk_available != 0 || g.is_trunk_available != 0 {
                available += 1;
            }
            group_line(g, use_trunk);
        }
        if groups.len() <= 1 {
            out!("storage volumn / group count: {}\n\n", groups.len());
        } else {
            out!("{} VOLUMNS SUMMARY {}\n", "=".repeat(32), "=".repeat(32));
            group_line(&sum, use_trunk);
            out!(
                "volumn / group counts {{total: {}, available: {available}}}\n\n",
                groups.len()
            );
        }
    }
    0
}
