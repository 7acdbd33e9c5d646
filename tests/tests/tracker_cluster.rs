//! Several trackers: one leader elected and agreed on, failover when it dies, rejoin.

use fdfs_client::Content;
use fdfs_client::Upload;
use fdfs_common::config::HostPort;
use fdfs_common::proto::cmd;
use rfdfs_tests::raw::{exchange, frame};
use rfdfs_tests::{leader_of, run_tool, Cluster, ClusterOpts};
use std::time::{Duration, Instant};

/// Wait until every given tracker names the same leader (other than `not`); returns it.
fn agreed_leader(trackers: &[HostPort], not: Option<&str>, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let views: Vec<_> = trackers.iter().map(leader_of).collect();
        if let Some(Some(first)) = views.first() {
            if Some(first.as_str()) != not && views.iter().all(|v| v.as_ref() == Some(first)) {
                return first.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "trackers do not agree on a leader: {views:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The cluster as `fdfs_monitor` run against tracker `t` alone prints it: groups, members,
/// their addresses, states and group settings (counters and times differ between trackers).
fn monitor_view(c: &Cluster, t: &HostPort) -> String {
    let conf = c.dir.path().join(format!("client-{}.conf", t.host));
    std::fs::write(&conf, format!("connect_timeout=2\ntracker_server={t}\n")).unwrap();
    let (code, out, err) = run_tool("fdfs_monitor", &[conf.to_str().unwrap(), "list"]);
    assert_eq!(code, 0, "fdfs_monitor against {t}: {err}");
    let keep = [
        "group count",
        "group name",
        "storage server count",
        "readable server count",
        "writable server count",
        "storage server port",
        "store path count",
        "subdir count per path",
        "Storage ",
        "id =",
        "host =",
        "read write mode",
        "version =",
    ];
    out.lines()
        .filter(|l| keep.iter().any(|k| l.trim_start().starts_with(k)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn leader_election_failover_and_rejoin() {
    let mut c = Cluster::start(ClusterOpts {
        trackers: 3,
        storages: 4,
        groups: 2,
        ..Default::default()
    });
    let all = c.tracker_addrs();
    let leader = agreed_leader(&all, None, Duration::from_secs(30));
    // the storages' group view comes from the leader: replication works through it
    let client = std::sync::Arc::new(c.client());
    let id = rfdfs_tests::upload(&client, b"before failover", "txt");
    assert_eq!(rfdfs_tests::read_back(&client, &id), b"before failover");
    // store_lookup=0 (the default) spreads uploads over both groups, whichever tracker answers
    let mut groups = std::collections::BTreeSet::new();
    for _ in 0..6 {
        groups.insert(rfdfs_tests::upload(&client, b"spread", "txt").group);
    }
    assert_eq!(groups.len(), 2, "{groups:?}");

    // uploads keep going while the leader is killed
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (client, stop) = (std::sync::Arc::clone(&client), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut results = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client.upload(Content::Buffer(b"during"), "txt", Upload::File, None, None);
                results.push((Instant::now(), r.is_ok(), format!("{:?}", r.err())));
                std::thread::sleep(Duration::from_millis(20));
            }
            results
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let killed_at = Instant::now();
    let killed = c.kill9_tracker(&leader);
    let survivors: Vec<HostPort> = all.iter().filter(|t| **t != killed).cloned().collect();
    let new_leader = agreed_leader(&survivors, Some(&leader), Duration::from_secs(30));
    assert_ne!(new_leader, leader);
    let elected_after = killed_at.elapsed();
    // a few more uploads after the election, then stop the load
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let results = load.join().unwrap();
    assert!(results.iter().filter(|r| r.1).count() > 10);
    // failures, if any, fall in one stretch around the kill: once an upload has succeeded after
    // the survivors agreed on the new leader, none fails again (no fixed time window: a loaded
    // machine may take longer to move every storage over)
    let elected_at = killed_at + elected_after;
    let recovered = results
        .iter()
        .position(|r| r.0 > elected_at && r.1)
        .expect("an upload succeeds after the election");
    let late_failures: Vec<_> = results[recovered..]
        .iter()
        .filter(|r| !r.1)
        .map(|r| (r.0 - killed_at, &r.2))
        .collect();
    assert!(
        late_failures.is_empty(),
        "uploads failed again after the failover ({elected_after:?}): {late_failures:?}"
    );

    // the killed tracker comes back, follows the new leader and knows the same cluster
    let (conf, base) = if killed == c.tracker_addr {
        (c.tracker.conf.clone(), c.tracker.base.clone())
    } else {
        let k = c.more_trackers.iter().position(|t| t.1 == killed).unwrap();
        (
            c.more_trackers[k].0.conf.clone(),
            c.more_trackers[k].0.base.clone(),
        )
    };
    let revived = rfdfs_tests::Daemon::start("fdfs_trackerd", &conf, &base);
    rfdfs_tests::wait_port(&killed.host, killed.port, "tracker");
    assert_eq!(
        agreed_leader(&all, None, Duration::from_secs(30)),
        new_leader
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let views: Vec<_> = all.iter().map(|t| monitor_view(&c, t)).collect();
        let agree = views.windows(2).all(|w| w[0] == w[1]);
        let active = views[0].matches("  ACTIVE").count();
        if agree && active == 4 {
            assert!(views[0].contains("group count: 2"), "{}", views[0]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "trackers disagree:\n{}",
            views.join("\n-----\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(revived);
}

/// (storage id, status) of group1 as tracker `t` lists it.
fn group1_members(t: &HostPort) -> Vec<(String, u8)> {
    let mut body = b"group1".to_vec();
    body.resize(16, 0);
    let mut s = rfdfs_tests::raw::connect(&t.host, t.port);
    match exchange(&mut s, &frame(cmd::SERVER_LIST_STORAGE, 0, &body)) {
        Some((0, b)) => fdfs_common::proto::client::decode_storage_stats(&b)
            .unwrap()
            .into_iter()
            .map(|s| (s.id, s.status))
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn a_tracker_that_lost_its_data_learns_the_cluster_from_a_peer() {
    use fdfs_common::proto::{errno, status};
    let mut c = Cluster::start(ClusterOpts {
        trackers: 2,
        storages: 2,
        ..Default::default()
    });
    let all = c.tracker_addrs();
    agreed_leader(&all, None, Duration::from_secs(30));
    // storage 1 goes away: only the trackers' data files remember it now
    assert_eq!(c.storages[1].daemon.stop(), Some(0));
    let gone = c.storages[1].ip.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !all.iter().all(|t| {
        group1_members(t)
            .iter()
            .any(|m| m.0 == gone && m.1 == status::OFFLINE)
    }) {
        assert!(Instant::now() < deadline, "storage 1 never OFFLINE");
        std::thread::sleep(Duration::from_millis(50));
    }

    // the second tracker restarts with an empty data directory
    let (t, addr) = &mut c.more_trackers[0];
    assert_eq!(t.stop(), Some(0));
    std::fs::remove_dir_all(t.base.join("data")).unwrap();
    let (conf, base) = (t.conf.clone(), t.base.clone());
    *t = rfdfs_tests::Daemon::start("fdfs_trackerd", &conf, &base);
    rfdfs_tests::wait_port(&addr.host, addr.port, "tracker");
    let addr = addr.clone();
    // an empty tracker has nothing to give
    let mut raw = rfdfs_tests::raw::connect(&addr.host, addr.port);
    let r = exchange(&mut raw, &frame(cmd::TRACKER_GET_SYS_FILES_START, 0, &[]));
    if r.as_ref().map(|r| r.0) != Some(0) {
        assert_eq!(r.map(|r| r.0), Some(errno::ENOENT));
    }
    // storage 0's JOIN makes it copy the first tracker's files: it knows storage 1 as well
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = group1_members(&addr);
        if m.iter().any(|m| m.0 == gone) && m.iter().any(|m| m.0 == c.storages[0].ip) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restarted tracker never learned the group: {m:?}\n{}",
            c.more_trackers[0].0.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        c.more_trackers[0]
            .0
            .log()
            .contains("copied the system data files from tracker"),
        "{}",
        c.more_trackers[0].0.log()
    );
    // the files are served in pieces with their size; a bad index is refused
    let mut raw = rfdfs_tests::raw::connect(&addr.host, addr.port);
    let (st, _) = exchange(&mut raw, &frame(cmd::TRACKER_GET_SYS_FILES_START, 0, &[])).unwrap();
    assert_eq!(st, 0);
    let mut req = vec![1u8];
    req.extend_from_slice(&0i64.to_be_bytes());
    let (st, b) = exchange(&mut raw, &frame(cmd::TRACKER_GET_ONE_SYS_FILE, 0, &req)).unwrap();
    assert_eq!(st, 0);
    let size = i64::from_be_bytes(b[..8].try_into().unwrap()) as usize;
    assert_eq!(size, b.len() - 8);
    assert!(String::from_utf8_lossy(&b[8..]).contains(&format!("ip_addr={gone}")));
    req[0] = 7;
    let (st, _) = exchange(&mut raw, &frame(cmd::TRACKER_GET_ONE_SYS_FILE, 0, &req)).unwrap();
    assert_eq!(st, errno::EINVAL);
    let (st, _) = exchange(&mut raw, &frame(cmd::TRACKER_GET_SYS_FILES_END, 0, &[])).unwrap();
    assert_eq!(st, 0);
}
