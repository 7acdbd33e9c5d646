//! `rfdfs_bench fleet`: many simulated storage servers against real trackers.
//!
//! Each simulated storage has its own loopback address (`127.x.y.z`, bound before connecting,
//! as a storage's `client_bind` does) and speaks the storage-to-tracker protocol a 6.16.1
//! storage speaks (docs/protocol/cluster-protocol.md 1.2-1.3): GET_MY_IP and PARAMETER_REQ at its
//! start, one reporter connection per tracker with JOIN, the initial-sync handshake (SYNC_DEST_REQ
//! on the first tracker, SYNC_NOTIFY on every one), then BEAT with its statistics block and
//! CHANGELOG_REQ every beat interval, SYNC_REPORT when it has peers, REPORT_DISK_USAGE every stat
//! report interval, and the trunk server's FETCH_TRUNK_FID / REPORT_TRUNK_FREE once a tracker names
//! it trunk server. A member that was given a sync source is carried through the source's part as
//! well: at the source's next beat it asks SYNC_SRC_REQ and reports the new member SYNCING, then
//! OFFLINE, to every tracker (the status machine of 3.2-3.3), after which the new member's next
//! beat makes it ACTIVE.
//!
//! A few worker threads serve all storages from a timer queue, so tens of thousands of
//! reporter connections cost the simulator a file descriptor each and no thread. Clients
//! issue QUERY_STORE / QUERY_FETCH at the given rate on persistent connections, round robin
//! over the trackers. The trackers' own lists (SERVER_LIST_STORAGE) tell when every storage
//! is ACTIVE on every tracker; the leader the storages follow comes from their change lists.

mod args;
mod observe;
mod proc_stat;
mod shared;
mod sim;

pub use args::FleetArgs;
use observe::{clients, count_active, late_joiner_active};
use proc_stat::{proc_sample, ProcSample};
use shared::{ms_since, Layout, Samples, Shared};
use sim::worker;

use fdfs_common::config::{parse_host_port, HostPort};
use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::latency::percentile_ms as pct;

/// Run the fleet; prints its findings and returns the exit code (0 when every storage was
/// ACTIVE on every answering tracker at the end).
pub fn run(args: FleetArgs) -> i32 {
    let trackers: Result<Vec<HostPort>, String> = args
        .trackers
        .iter()
        .map(|t| parse_host_port(t, 22122))
        .collect();
    let trackers = match trackers {
        Ok(t) if !t.is_empty() => t,
        Ok(_) => {
            eprintln!("fleet: no tracker given");
            return 2;
        }
        Err(e) => {
            eprintln!("fleet: {e}");
            return 2;
        }
    };
    if args.groups == 0 || args.per_group == 0 || args.threads == 0 {
        eprintln!("fleet: --groups, --per-group and --threads must be at least 1");
        return 2;
    }
    crate::logging::init();
    raise_fd_limit();
    let fleet_n = args.groups * args.per_group;
    let n = fleet_n + args.late_joiner as usize;
    let layout = Layout {
        per_group: args.per_group,
        first: u32::from(args.first_address),
        fleet_n,
    };
    let shared = Arc::new(Shared {
        trackers,
        layout,
        n,
        t0: Instant::now(),
        stop: AtomicBool::new(false),
        pending_sources: Mutex::new(HashMap::new()),
        leader: (0..n).map(|_| AtomicU64::new(0)).collect(),
        first_failure: args.trackers.iter().map(|_| AtomicU64::new(0)).collect(),
        changelog_after_beat: AtomicBool::new(false),
        beat_bytes: AtomicU64::new(0),
        beat_count: AtomicU64::new(0),
        late_go: AtomicBool::new(false),
        args: args.clone(),
    });
    println!(
        "fleet: {} trackers, {fleet_n} storages in {} groups from {}, beat every {} s, disk usage every {} s, {} queries/s",
        shared.trackers.len(),
        args.groups,
        args.first_address,
        args.beat_interval,
        args.stat_report_interval,
        args.queries_per_second
    );
    let late = args.late_joiner.then_some(fleet_n);
    let workers: Vec<_> = (0..args.threads)
        .map(|w| {
            let s = Arc::clone(&shared);
            let threads = args.threads;
            std::thread::spawn(move || worker(s, w, threads, late))
        })
        .collect();
    let client = {
        let s = Arc::clone(&shared);
        std::thread::spawn(move || clients(s))
    };
    let fleet_ips: Vec<String> = (0..fleet_n)
        .map(|i| shared.layout.ip(i).to_string())
        .collect();
    let end = shared.t0 + Duration::from_secs_f64(args.seconds);
    // joins: the trackers' lists, polled, until every storage is ACTIVE on every tracker
    let mut steady_from: Option<u64> = None;
    let mut steady_proc: Vec<Option<ProcSample>> = Vec::new();
    let mut steady_beats = 0u64;
    while Instant::now() < end && steady_from.is_none() {
        let (active, _, _) = count_active(&shared, &fleet_ips);
        if active == fleet_n {
            let at = ms_since(shared.t0);
            steady_from = Some(at);
            println!(
                "joined: {fleet_n}/{fleet_n} ACTIVE on every tracker {:.1} s after the start, following {}",
                at as f64 / 1000.0,
                shared.followed(fleet_n)
            );
            steady_proc = args.tracker_pids.iter().map(|&p| proc_sample(p)).collect();
            steady_beats = shared.beat_count.load(Ordering::Relaxed);
        } else {
            std::thread::sleep(
                Duration::from_secs(1).min(end.saturating_duration_since(Instant::now())),
            );
        }
    }
    let mut late_line = None;
    if let (Some(i), Some(_)) = (late, steady_from) {
        let began = Instant::now();
        shared.late_go.store(true, Ordering::Relaxed);
        while Instant::now() < end {
            if late_joiner_active(&shared, i) {
                late_line = Some(format!(
                    "late joiner: {} in group1 ACTIVE on every tracker {:.2} s after it started",
                    shared.layout.ip(i),
                    began.elapsed().as_secs_f64()
                ));
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if late_line.is_none() {
            late_line = Some("late joiner: not ACTIVE on every tracker by the end".into());
        }
    }
    if let Some(now) = end.checked_duration_since(Instant::now()) {
        std::thread::sleep(now);
    }
    let steady_secs = steady_from.map(|f| (ms_since(shared.t0) - f) as f64 / 1000.0);
    let end_proc: Vec<Option<ProcSample>> =
        args.tracker_pids.iter().map(|&p| proc_sample(p)).collect();
    let end_beats = shared.beat_count.load(Ordering::Relaxed);
    let (active, answered, not_active) = count_active(&shared, &fleet_ips);
    shared.stop.store(true, Ordering::Relaxed);
    let mut beats = Samples::default();
    for w in workers {
        if let Ok(s) = w.join() {
            beats.0.extend(s.0);
        }
    }
    let (store, fetch, query_errors) = client.join().unwrap_or_default();
    let from = steady_from.unwrap_or(0);
    let beats = beats.since(from);
    let (store, fetch, query_errors) = (
        store.since(from),
        fetch.since(from),
        query_errors.since(from).len(),
    );
    let mut queries: Vec<u64> = store.iter().chain(fetch.iter()).copied().collect();
    queries.sort_unstable();
    let count = shared.beat_count.load(Ordering::Relaxed).max(1);
    println!(
        "beats{}: {}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} bytes per beat (BEAT{} with both headers)",
        if steady_from.is_some() { " once all joined" } else { "" },
        beats.len(),
        pct(&beats, 0.5),
        pct(&beats, 0.99),
        pct(&beats, 1.0),
        shared.beat_bytes.load(Ordering::Relaxed) / count,
        if shared.changelog_after_beat.load(Ordering::Relaxed) { " and CHANGELOG_REQ" } else { "" },
    );
    if args.queries_per_second > 0 {
        println!(
            "queries: QUERY_STORE {} p50 {:.2} ms p99 {:.2} ms, QUERY_FETCH {} p50 {:.2} ms p99 {:.2} ms, {query_errors} failed{}",
            store.len(),
            pct(&store, 0.5),
            pct(&store, 0.99),
            fetch.len(),
            pct(&fetch, 0.5),
            pct(&fetch, 0.99),
            if steady_from.is_some() { " once all joined" } else { "" },
        );
    }
    if let Some(secs) = steady_secs {
        let per_tracker_beats = (end_beats - steady_beats) as f64 / shared.trackers.len() as f64;
        for (k, &pid) in args.tracker_pids.iter().enumerate() {
            if let (Some(Some(a)), Some(Some(b))) = (steady_proc.get(k), end_proc.get(k)) {
                let cpu = b.cpu_s - a.cpu_s;
                println!(
                    "tracker pid {pid}: CPU {:.2} s/min ({:.1} us per beat), RSS {:.1} MiB, {} threads, disk writes {:.0} KiB/min",
                    cpu * 60.0 / secs,
                    if per_tracker_beats > 0.0 { cpu * 1e6 / per_tracker_beats } else { 0.0 },
                    b.rss as f64 / (1 << 20) as f64,
                    b.threads,
                    (b.write_bytes - a.write_bytes) as f64 / 1024.0 * 60.0 / secs,
                );
            }
        }
    }
    if let Some(l) = late_line {
        println!("{l}");
    }
    leader_lines(&shared, fleet_n);
    let silent: Vec<String> = shared
        .trackers
        .iter()
        .zip(&answered)
        .filter(|(_, a)| !**a)
        .map(|(t, _)| t.to_string())
        .collect();
    if !silent.is_empty() {
        println!(
            "trackers: {}/{} answered at the end ({} did not)",
            answered.iter().filter(|a| **a).count(),
            answered.len(),
            silent.join(", ")
        );
    }
    for line in not_active {
        println!("not ACTIVE on {line}");
    }
    println!(
        "fleet: {active}/{fleet_n} storages ACTIVE on every tracker, beat p99 {:.2} ms, query p99 {:.2} ms",
        pct(&beats, 0.99),
        pct(&queries, 0.99)
    );
    if active == fleet_n {
        0
    } else {
        1
    }
}

/// Which leader the storages follow, and how long the move to a new one took when the
/// tracker they followed stopped answering.
fn leader_lines(shared: &Shared, fleet_n: usize) {
    let counts = shared.leader_counts(fleet_n);
    let mut v: Vec<usize> = (0..counts.len()).filter(|&k| counts[k].0 > 0).collect();
    v.sort_by_key(|&k| Reverse(counts[k].0));
    let top = v[0];
    let (followers, last_ms) = counts[top];
    println!(
        "leader: {} followed by {followers}/{fleet_n} storages{}",
        shared.leader_name(top),
        v[1..]
            .iter()
            .map(|&k| format!(", {} by {}", shared.leader_name(k), counts[k].0))
            .collect::<String>()
    );
    // a tracker other than the one followed now that failed: the failover
    for (t, f) in shared.first_failure.iter().enumerate() {
        let failed_ms = f.load(Ordering::Relaxed);
        if failed_ms == 0 || t + 1 == top || top == 0 || last_ms < failed_ms {
            continue;
        }
        println!(
            "failover: {} stopped answering at +{:.1} s; {} followed by {followers}/{fleet_n} storages at +{:.1} s ({:.1} s)",
            shared.trackers[t],
            failed_ms as f64 / 1000.0,
            shared.leader_name(top),
            last_ms as f64 / 1000.0,
            (last_ms - failed_ms) as f64 / 1000.0
        );
    }
}

/// Tens of thousands of reporter connections need more descriptors than a shell's 1024.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}
