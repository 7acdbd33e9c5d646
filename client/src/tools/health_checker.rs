//! `fdfs_health_checker`: upstream 6.16's cluster health loop, with its argv, stdout report and
//! alert lines (logged on stderr and sent to syslog, a repeated alert at most every 5 minutes).

use super::startup::prog;
use crate::client::Client;
use fdfs_common::net::NetError;
use fdfs_common::proto::client::StorageStat;
use fdfs_common::proto::cluster::stat;
use fdfs_common::proto::status;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

const DEFAULT_CHECK_INTERVAL: u64 = 30;
const MIN_CHECK_INTERVAL: u64 = 10;
const DISK_SPACE_WARNING_PERCENT: i64 = 20;
const DISK_SPACE_CRITICAL_PERCENT: i64 = 10;
const HEARTBEAT_TIMEOUT: i64 = 60;
const ALERT_COOLDOWN: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Health {
    Ok,
    Warning,
    Critical,
}

/// One storage's health and why, as upstream judges it: not ACTIVE or no heartbeat for a
/// minute is critical; under 10% free critical, under 20% a warning; more than 10% of over 100
/// uploads failed a warning.
fn storage_health(s: &StorageStat, now: i64) -> (Health, String) {
    if s.status != status::ACTIVE {
        let why = format!("Storage server not active (status: {})", s.status);
        return (Health::Critical, why);
    }
    let delay = now - s.stat.counters[stat::LAST_HEART_BEAT_TIME];
    if delay > HEARTBEAT_TIMEOUT {
        return (
            Health::Critical,
            format!("No heartbeat for {delay} seconds"),
        );
    }
    if s.total_mb > 0 {
        let free = s.free_mb * 100 / s.total_mb;
        if free < DISK_SPACE_CRITICAL_PERCENT {
            return (
                Health::Critical,
                format!("Critical: Only {free}% disk space free"),
            );
        }
        if free < DISK_SPACE_WARNING_PERCENT {
            return (
                Health::Warning,
                format!("Warning: Only {free}% disk space free"),
            );
        }
    }
    let total = s.stat.counters[stat::TOTAL_UPLOAD_COUNT];
    if total > 100 {
        let failed = total - s.stat.counters[stat::TOTAL_UPLOAD_COUNT + 1];
        let rate = failed * 100 / total;
        if rate > 10 {
            return (
                Health::Warning,
                format!("High error rate: {rate}% upload failures"),
            );
        }
    }
    (Health::Ok, "OK".into())
}

#[derive(Default)]
struct ClusterHealth {
    groups: usize,
    healthy_groups: usize,
    storages: usize,
    healthy: usize,
    warning: usize,
    critical: usize,
    overall: Option<Health>,
}

/// Alerts go to the log and to syslog (facility daemon), the same text again only after
/// the cooldown.
#[derive(Default)]
struct Alerts {
    last: Option<(i64, String)>,
}

impl Alerts {
    fn send(&mut self, critical: bool, message: &str) {
        let now = fdfs_common::now();
        if let Some((at, last)) = &self.last {
            if last == message && now - at < ALERT_COOLDOWN {
                return;
            }
        }
        self.last = Some((now, message.to_string()));
        let level = if critical { "CRITICAL" } else { "WARNING" };
        if critical {
            log::error!("[ALERT] {level}: {message}");
        } else {
            log::warn!("[ALERT] {level}: {message}");
        }
        // <facility daemon (3) * 8 + severity (err 3, warning 4)>
        let priority = 3 * 8 + if critical { 3 } else { 4 };
        let line = format!(
            "<{priority}>fdfs_health_check[{}]: [FastDFS Health] {level}: {message}",
            std::process::id()
        );
        if let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() {
            let _ = sock.send_to(line.as_bytes(), "/dev/log");
        }
    }
}

/// One round over every group and storage; None (and no report) when the trackers cannot say.
fn check_cluster(client: &Client, alerts: &mut Alerts) -> Option<ClusterHealth> {
    let mut h = ClusterHealth {
        overall: Some(Health::Ok),
        ..Default::default()
    };
    let groups = match client.list_groups() {
        Ok(g) => g,
        Err(NetError::Io(_)) => {
            log::error!("Failed to connect to tracker server");
            alerts.send(true, "Cannot connect to tracker server");
            return None;
        }
        Err(e) => {
            log::error!("Failed to list groups, error code: {}", e.errno());
            alerts.send(true, "Failed to query cluster status");
            return None;
        }
    };
    h.groups = groups.len();
    let now = fdfs_common::now();
    for g in &groups {
        let storages = client.list_storages(&g.group, None).ok()?;
        h.storages += storages.len();
        let mut group_healthy = true;
        for s in &storages {
            let (health, why) = storage_health(s, now);
            let line = format!("Storage {}:{} - {why}", g.group, s.id);
            match health {
                Health::Ok => h.healthy += 1,
                Health::Warning => {
                    h.warning += 1;
                    log::warn!("{line}");
                    alerts.send(false, &line);
                }
                Health::Critical => {
                    h.critical += 1;
                    log::error!("{line}");
                    alerts.send(true, &line);
                }
            }
            group_healthy &= health == Health::Ok;
            h.overall = h.overall.max(Some(health));
        }
        h.healthy_groups += group_healthy as usize;
    }
    Some(h)
}

fn print_report(h: &ClusterHealth) {
    let overall = match h.overall {
        Some(Health::Ok) => "OK",
        Some(Health::Warning) => "WARNING",
        Some(Health::Critical) => "CRITICAL",
        None => "UNKNOWN",
    };
    println!("\n=== FastDFS Cluster Health Check ===");
    println!("Overall Status: {overall}");
    println!("Groups: {} total, {} healthy", h.groups, h.healthy_groups);
    println!(
        "Storage Servers: {} total, {} healthy, {} warning, {} critical",
        h.storages, h.healthy, h.warning, h.critical
    );
    println!(
        "Timestamp: {}",
        fdfs_common::log::format_local(fdfs_common::now(), "%a %b %e %H:%M:%S %Y")
    );
    println!("=====================================\n");
}

/// `fdfs_health_checker <config_file> [-d | --daemon] [-i <seconds>]`: checks the cluster every
/// interval until SIGINT or SIGTERM.
pub fn fdfs_health_checker(args: &[String]) -> i32 {
    println!("FastDFS Health Check Service\n============================\n");
    if args.len() < 2 {
        let p = prog(args);
        println!("Usage: {p} <config_file> [options]\nOptions:\n  -d or --daemon Run as daemon\n  -i <seconds> Check interval (default: {DEFAULT_CHECK_INTERVAL})\n\nFor example:\n  {p} /etc/fdfs/client.conf -i 60\n");
        return 1;
    }
    let mut daemon = false;
    let mut interval = DEFAULT_CHECK_INTERVAL;
    let mut rest = args[2..].iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "-d" | "--daemon" => daemon = true,
            "-i" => {
                if let Some(n) = rest.next() {
                    // upstream's atoi: anything unparsable is 0, then the minimum
                    interval = n.trim().parse().unwrap_or(0);
                    if interval < MIN_CHECK_INTERVAL {
                        println!(
                            "Check interval too small, using minimum: {MIN_CHECK_INTERVAL} seconds"
                        );
                        interval = MIN_CHECK_INTERVAL;
                    }
                }
            }
            _ => {}
        }
    }
    crate::logging::init();
    let client = match super::startup::load_monitoring_client(&args[1]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    println!("Check interval: {interval} seconds");
    println!("Mode: {}\n", if daemon { "daemon" } else { "foreground" });
    let _ = std::io::stdout().flush();
    let stop = super::startup::stop_flag();
    if daemon {
        if let Err(code) = super::startup::run_as_daemon() {
            return code;
        }
    }
    let mut alerts = Alerts::default();
    while !stop.load(Ordering::SeqCst) {
        if let Some(h) = check_cluster(&client, &mut alerts) {
            print_report(&h);
        }
        let _ = std::io::stdout().flush();
        for _ in 0..interval * 10 {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    println!("\nShutting down health check service...");
    println!("Health check service exited");
    0
}
