//! `fdfs_exporter`: upstream 6.16's Prometheus exporter, serving `fastdfs_*` gauges read from a
//! tracker (SERVER_TRACKER_CLUSTER_STAT, SERVER_LIST_ALL_GROUPS, SERVER_LIST_STORAGE) on
//! `GET /metrics`, with its options, `exporter.conf` keys and optional HTTP basic auth.
//!
//! Where upstream repeats a family's `# HELP` / `# TYPE` lines for every group and interleaves
//! the groups' families (which Prometheus refuses as a second TYPE line once there are two
//! groups), each family is written once with all its samples; with one group the output is
//! upstream's byte for byte.

use super::startup::prog;
use crate::client::Client;
use base64::Engine;
use fdfs_common::config::IniFile;
use fdfs_common::proto::client::{GroupStat, StorageStat};
use fdfs_common::proto::cluster::stat;
use fdfs_common::proto::stats::{TrackerClusterStat, TrackerClusterStatReq};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_PORT: u16 = 9898;
const DEFAULT_CLIENT_CONF: &str = "/etc/fdfs/client.conf";

/// What the options and `exporter.conf` ask for.
struct Settings {
    bind_addr: Option<String>,
    port: u16,
    daemon: bool,
    client_conf: String,
    /// base64 of `user:password` with `[auth] method = basic`
    basic_auth: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind_addr: None,
            port: DEFAULT_PORT,
            daemon: false,
            client_conf: DEFAULT_CLIENT_CONF.into(),
            basic_auth: None,
        }
    }
}

fn usage(p: &str) {
    println!("\nUsage: {p} [options]\n\nOptions:\n  --bind_addr or -B: bind local ip address, such as 127.0.0.1\n  --config_file or -c: specify exporter config filename\n  --fdfs_client_cfg or -f: specify FastDFS client config filename, default is {DEFAULT_CLIENT_CONF}\n  --daemon or -d: run as daemon\n  --help or -h: show help\n  --port or -P: specify listen port, default is {DEFAULT_PORT}\n\nFor example:\n  {p} -f /etc/fdfs/client.conf -d\n  {p} --bind_addr 127.0.0.1 --daemon\n");
}

/// getopt_long over upstream's options: `(letter, argument)` pairs, or None after printing the
/// usage for an unknown option or a missing argument.
fn parse_options(args: &[String]) -> Option<Vec<(char, String)>> {
    const WITH_ARG: &str = "BcfP";
    let long = |name: &str| match name {
        "bind_addr" => Some('B'),
        "config_file" => Some('c'),
        "fdfs_client_cfg" => Some('f'),
        "daemon" => Some('d'),
        "port" => Some('P'),
        _ => None,
    };
    let mut out = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        let (letter, inline) = if let Some(l) = a.strip_prefix("--") {
            let (name, value) = match l.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (l, None),
            };
            (long(name)?, value)
        } else if let Some(s) = a.strip_prefix('-').filter(|s| !s.is_empty()) {
            let c = s.chars().next()?;
            if !"BcdfhP".contains(c) {
                return None;
            }
            let rest = &s[c.len_utf8()..];
            (c, (!rest.is_empty()).then(|| rest.to_string()))
        } else {
            continue;
        };
        let value = if WITH_ARG.contains(letter) {
            match inline {
                Some(v) => v,
                None => {
                    let v = args.get(i)?.clone();
                    i += 1;
                    v
                }
            }
        } else {
            String::new()
        };
        out.push((letter, value));
    }
    Some(out)
}

/// `exporter.conf`: bind_addr, port, daemon, fdfs_client_cfg and the `[auth]` section.
fn load_exporter_conf(path: &str, s: &mut Settings) -> Result<(), i32> {
    let ini = IniFile::load(Path::new(path)).map_err(|e| {
        log::error!("load conf file \"{path}\" fail, ret code: {}", e.code);
        e.code
    })?;
    if let Some(a) = ini.string("bind_addr").filter(|a| !a.is_empty()) {
        s.bind_addr = Some(a);
    }
    let port = ini.int("port").unwrap_or(i64::from(DEFAULT_PORT));
    s.port = u16::try_from(port).ok().filter(|&p| p > 0).ok_or_else(|| {
        log::error!("invalid port number: {port}");
        22
    })?;
    s.daemon = ini.bool_or("daemon", false);
    if let Some(c) = ini.string("fdfs_client_cfg") {
        if c.is_empty() {
            log::error!("empty FDFS client config filename!");
            return Err(22);
        }
        s.client_conf = c;
    }
    let value = |key: &str| {
        ini.get_in_section("auth", key)
            .map(|i| i.value.clone())
            .unwrap_or_default()
    };
    let method = value("method");
    if method.is_empty() || method.eq_ignore_ascii_case("none") {
        return Ok(());
    }
    if !method.eq_ignore_ascii_case("basic") {
        log::error!("unkown auth method: {method}!");
        return Err(22);
    }
    let (user, password) = (value("username"), value("password"));
    if user.is_empty() {
        log::error!("username not exist or username is empty !");
        return Err(22);
    }
    if password.is_empty() {
        log::error!("password not exist or password is empty !");
        return Err(22);
    }
    let pair = format!("{user}:{password}");
    if pair.len() >= 128 {
        log::error!("username and password are too long, exceed 128!");
        return Err(75);
    }
    s.basic_auth = Some(base64::engine::general_purpose::STANDARD.encode(pair));
    Ok(())
}

/// The exposition: families in the order of their first sample, each described once and with
/// all its samples together.
#[derive(Default)]
struct Exposition {
    /// (name, help, sample lines)
    families: Vec<(String, String, String)>,
    index: HashMap<String, usize>,
}

impl Exposition {
    fn gauge(&mut self, family: &str, labels: &str, value: impl std::fmt::Display, help: &str) {
        let name = format!("fastdfs_{family}");
        let k = *self.index.entry(name.clone()).or_insert_with(|| {
            self.families
                .push((name.clone(), help.to_string(), String::new()));
            self.families.len() - 1
        });
        let lines = &mut self.families[k].2;
        if labels.is_empty() {
            *lines += &format!("{name} {value}\n");
        } else {
            *lines += &format!("{name}{{{labels}}} {value}\n");
        }
    }

    fn text(&self) -> String {
        self.families
            .iter()
            .map(|(name, help, lines)| {
                format!("# HELP {name} {help}\n# TYPE {name} gauge\n{lines}")
            })
            .collect()
    }

    fn tracker(&mut self, t: &TrackerClusterStat) {
        let l = format!("host=\"{}\"", t.host);
        self.gauge("tracker_is_leader", &l, t.is_leader, "Is leader");
        self.gauge("tracker_is_active", &l, t.is_active, "Is active");
        let [alloc, current, max] = t.connections;
        self.gauge(
            "tracker_connections_alloc",
            &l,
            alloc,
            "Alloc connection count",
        );
        self.gauge(
            "tracker_connections_current",
            &l,
            current,
            "Current connection count",
        );
        self.gauge(
            "tracker_connections_max",
            &l,
            max,
            "Maximum connection count",
        );
    }

    fn group(&mut self, g: &GroupStat) {
        let l = format!("group=\"{}\"", g.group);
        self.gauge("group_total_mb", &l, g.total_mb, "Disk total space in MB");
        self.gauge("group_free_mb", &l, g.free_mb, "Disk free space in MB");
        self.gauge(
            "group_reserved_mb",
            &l,
            g.reserved_mb,
            "Disk reserved space in MB",
        );
        let available = (g.free_mb - g.reserved_mb).max(0);
        self.gauge(
            "group_available_mb",
            &l,
            available,
            "Disk available space in MB",
        );
        if g.current_trunk_file_id >= 0 {
            self.gauge(
                "group_trunk_free_mb",
                &l,
                g.trunk_free_mb,
                "Trunk free space in MB",
            );
        }
        let servers = [
            (
                "group_storage_count",
                g.storage_count,
                "Number of storage servers in group",
            ),
            (
                "group_readable_server_count",
                g.readable_server_count,
                "Number of readable storage servers",
            ),
            (
                "group_writable_server_count",
                g.writable_server_count,
                "Number of writable storage servers",
            ),
        ];
        for (family, v, help) in servers {
            self.gauge(family, &l, v, help);
        }
    }

    /// One storage; `newest_elsewhere` is the latest source update of the other members, what
    /// its sync delay is measured against.
    fn storage(&mut self, group: &str, s: &StorageStat, newest_elsewhere: i64, now: i64) {
        let l = format!(
            "group=\"{group}\",storage_id=\"{}\",ip=\"{}\",status=\"{}\"",
            s.id, s.ip, s.status
        );
        let c = &s.stat.counters;
        self.gauge("storage_total_mb", &l, s.total_mb, "Disk total space in MB");
        self.gauge("storage_free_mb", &l, s.free_mb, "Disk free space in MB");
        self.gauge(
            "storage_reserved_mb",
            &l,
            s.reserved_mb,
            "Disk reserved space in MB",
        );
        let available = (s.free_mb - s.reserved_mb).max(0);
        self.gauge(
            "storage_available_mb",
            &l,
            available,
            "Disk available space in MB",
        );
        let operations = [
            (
                "upload",
                stat::TOTAL_UPLOAD_COUNT,
                Some(stat::TOTAL_UPLOAD_BYTES),
                "uploaded",
            ),
            (
                "download",
                stat::TOTAL_DOWNLOAD_COUNT,
                Some(stat::TOTAL_DOWNLOAD_BYTES),
                "downloaded",
            ),
            ("delete", stat::TOTAL_DELETE_COUNT, None, ""),
            ("append", stat::TOTAL_APPEND_COUNT, None, ""),
            ("modify", stat::TOTAL_MODIFY_COUNT, None, ""),
        ];
        for (op, total, bytes, past) in operations {
            self.gauge(
                &format!("storage_{op}_total"),
                &l,
                c[total],
                &format!("Total {op} operations"),
            );
            let help = format!("Successful {op} operations");
            self.gauge(&format!("storage_{op}_success"), &l, c[total + 1], &help);
            if let Some(b) = bytes {
                let help = format!("Total {past} bytes");
                self.gauge(&format!("storage_{op}_bytes_total"), &l, c[b], &help);
            }
        }
        let [alloc, current, max] = s.stat.connections;
        self.gauge(
            "storage_connections_alloc",
            &l,
            alloc,
            "Alloc connection count",
        );
        self.gauge(
            "storage_connections_current",
            &l,
            current,
            "Current connection count",
        );
        self.gauge(
            "storage_connections_max",
            &l,
            max,
            "Maximum connection count",
        );
        let heartbeat = c[stat::LAST_HEART_BEAT_TIME];
        self.gauge(
            "storage_last_heartbeat",
            &l,
            heartbeat,
            "Last heartbeat timestamp",
        );
        let delay = now - heartbeat;
        self.gauge(
            "storage_heartbeat_delay_seconds",
            &l,
            delay,
            "Seconds since last heartbeat",
        );
        let synced = c[stat::LAST_SYNCED_TIMESTAMP];
        self.gauge(
            "storage_last_synced_timestamp",
            &l,
            synced,
            "Last synced timestamp",
        );
        // -1: never synced while the others have written something
        let sync_delay = match (newest_elsewhere, synced) {
            (0, _) => 0,
            (_, t) if t > 0 => (newest_elsewhere - t).max(0),
            _ => -1,
        };
        self.gauge(
            "storage_synced_delay_seconds",
            &l,
            sync_delay,
            "Synced delay seconds",
        );
        let sync_in = c[stat::TOTAL_SYNC_IN_BYTES];
        self.gauge(
            "storage_sync_in_bytes_total",
            &l,
            sync_in,
            "Total sync in bytes",
        );
        let sync_out = c[stat::TOTAL_SYNC_OUT_BYTES];
        self.gauge(
            "storage_sync_out_bytes_total",
            &l,
            sync_out,
            "Total sync out bytes",
        );
    }
}

/// Everything one scrape shows, or why a tracker query failed.
fn collect(client: &Client) -> Result<String, String> {
    let mut e = Exposition::default();
    let trackers = client
        .tracker_cluster_stat(TrackerClusterStatReq::default())
        .map_err(|e| format!("tracker cluster stat fail: {e}"))?;
    trackers.iter().for_each(|t| e.tracker(t));
    let now = fdfs_common::now();
    let groups = client
        .list_groups()
        .map_err(|e| format!("list groups fail: {e}"))?;
    for g in groups {
        e.group(&g);
        let storages = client
            .list_storages(&g.group, None)
            .map_err(|e| format!("list storages of {} fail: {e}", g.group))?;
        for (k, s) in storages.iter().enumerate() {
            let newest_elsewhere = storages
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != k)
                .map(|(_, o)| o.stat.counters[stat::LAST_SOURCE_UPDATE])
                .fold(0, i64::max);
            e.storage(&g.group, s, newest_elsewhere, now);
        }
    }
    Ok(e.text())
}

fn answer(stream: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
}

/// One request per connection, as upstream's exporter serves them.
fn serve(mut stream: TcpStream, client: &Client, basic_auth: Option<&str>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while request.len() < 4095 && !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf[..4095 - request.len()]) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    if request.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(&request);
    if !text.starts_with("GET /metrics") {
        return answer(&mut stream, "404 Not Found", "Not Found");
    }
    if let Some(expected) = basic_auth {
        let given = text.split("\r\n").skip(1).find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("Authorization")
                .then(|| value.trim_start())
        });
        let ok = given.is_some_and(|v| {
            v.len() > 6 && v[..6].eq_ignore_ascii_case("Basic ") && &v[6..] == expected
        });
        if !ok {
            return answer(&mut stream, "401 Unauthorized", "Unauthorized");
        }
    }
    match collect(client) {
        Ok(body) => answer(&mut stream, "200 OK", &body),
        Err(why) => {
            log::error!("collect metrics fail, {why}");
            answer(
                &mut stream,
                "500 Internal Server Error",
                "Internal Server Error",
            )
        }
    }
}

/// `fdfs_exporter [-c exporter.conf] [-f client.conf] [-B addr] [-P port] [-d] [-h]`.
pub fn fdfs_exporter(args: &[String]) -> i32 {
    crate::logging::init();
    let p = prog(args);
    let Some(options) = parse_options(args) else {
        usage(&p);
        return 22;
    };
    let mut s = Settings::default();
    // the config file first, then the other options over it
    if let Some((_, conf)) = options.iter().find(|(o, _)| *o == 'c') {
        if conf.is_empty() {
            println!("ERROR: empty config filename!");
            return 22;
        }
        if let Err(code) = load_exporter_conf(conf, &mut s) {
            return code;
        }
    }
    for (o, v) in &options {
        match o {
            'B' => s.bind_addr = Some(v.clone()),
            'd' => s.daemon = true,
            'f' => s.client_conf = v.clone(),
            'h' => {
                usage(&p);
                return 0;
            }
            'P' => match v.trim().parse::<u16>() {
                Ok(port) if port > 0 => s.port = port,
                _ => {
                    println!("invalid port number: {v}");
                    return 22;
                }
            },
            _ => {}
        }
    }
    println!("FastDFS Prometheus Exporter\n===========================\n");
    let client = match super::startup::load_monitoring_client(&s.client_conf) {
        Ok(c) => Arc::new(c),
        Err(code) => return code,
    };
    println!("Mode: {}", if s.daemon { "daemon" } else { "foreground" });
    println!(
        "Auth method: {}",
        if s.basic_auth.is_some() {
            "basic"
        } else {
            "none"
        }
    );
    if s.daemon {
        if let Err(code) = super::startup::run_as_daemon() {
            return code;
        }
    }
    let bind = s.bind_addr.clone().unwrap_or_default();
    let host = if bind.is_empty() {
        "0.0.0.0"
    } else {
        bind.as_str()
    };
    let listener = match TcpListener::bind((host, s.port)) {
        Ok(l) => l,
        Err(e) => {
            log::error!(
                "bind port {} fail, errno: {}, error info: {e}",
                s.port,
                e.raw_os_error().unwrap_or(0)
            );
            return 1;
        }
    };
    if bind.is_empty() {
        println!("Listening on port {}", s.port);
        println!("Metrics endpoint: http://localhost:{}/metrics\n", s.port);
    } else {
        println!("Listening on {bind}:{}", s.port);
        println!("Metrics endpoint: http://{bind}:{}/metrics\n", s.port);
    }
    let _ = std::io::stdout().flush();
    let stop = super::startup::stop_flag();
    // a slow or idle scraper holds its own thread, never the listener
    let _ = listener.set_nonblocking(true);
    let auth = Arc::new(s.basic_auth);
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let (client, auth) = (Arc::clone(&client), Arc::clone(&auth));
                let _ = std::thread::Builder::new()
                    .name("scrape".into())
                    .spawn(move || serve(stream, &client, auth.as_deref()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    println!("\nShutting down prometheus exporter service...");
    println!("Prometheus exporter service exited.\n");
    0
}
