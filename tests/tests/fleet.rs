//! A fleet of simulated storages (`rfdfs_bench fleet`) against three real trackers: every
//! simulated storage becomes ACTIVE on all three, and when the leader is killed every storage
//! follows the new one.

use rfdfs_tests::{bin, Cluster, ClusterOpts};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const GROUPS: usize = 40;
const PER_GROUP: usize = 5;

#[test]
fn a_fleet_is_active_on_every_tracker_and_follows_a_new_leader() {
    let mut c = Cluster::start(ClusterOpts {
        trackers: 3,
        storages: 0,
        ..Default::default()
    });
    let trackers: Vec<String> = c.tracker_addrs().iter().map(|t| t.to_string()).collect();
    let n = GROUPS * PER_GROUP;
    // the storages take 127.a.b.20 upwards: inside the test's own /24, clear of the trackers
    let first = format!("127.{}.{}.20", c.net.0, c.net.1);
    let mut fleet = Command::new(bin("rfdfs_bench"))
        .args(["fleet", "--trackers", &trackers.join(",")])
        .args(["--groups", &GROUPS.to_string()])
        .args(["--per-group", &PER_GROUP.to_string()])
        .args([
            "--seconds",
            "60",
            "--beat-interval",
            "1",
            "--queries-per-second",
            "20",
        ])
        .args(["--threads", "8", "--first-address", &first, "--late-joiner"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rfdfs_bench fleet");
    let (tx, rx) = mpsc::channel();
    let stdout = fleet.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut out = Vec::new();
    // "joined: 200/200 ACTIVE on every tracker 3.1 s after the start, following <leader>"
    let leader = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(90))
            .unwrap_or_else(|_| panic!("the fleet never joined:\n{}", out.join("\n")));
        out.push(line.clone());
        if let Some(rest) = line.strip_prefix("joined: ") {
            assert!(rest.starts_with(&format!("{n}/{n} ACTIVE")), "{line}");
            break rest.rsplit("following ").next().unwrap().to_string();
        }
    };
    assert!(trackers.contains(&leader), "the storages follow {leader}");
    c.kill9_tracker(&leader);
    out.extend(rx.iter());
    let status = fleet.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut fleet.stderr.take().unwrap(), &mut stderr).unwrap();
    let text = out.join("\n");
    let context = format!("{text}\nstderr:\n{stderr}");
    // every storage moved to one surviving tracker, after the old leader stopped answering
    let failover = out
        .iter()
        .find(|l| l.starts_with("failover: "))
        .unwrap_or_else(|| panic!("no failover line:\n{context}"));
    assert!(
        failover.starts_with(&format!("failover: {leader} stopped answering")),
        "{context}"
    );
    let new_leader = failover
        .split("; ")
        .nth(1)
        .and_then(|s| s.split(" followed by ").next())
        .unwrap();
    assert!(
        new_leader != leader && trackers.iter().any(|t| t == new_leader),
        "{context}"
    );
    assert!(
        failover.contains(&format!("followed by {n}/{n} storages")),
        "{context}"
    );
    assert!(
        text.contains("late joiner: ") && text.contains("ACTIVE on every tracker"),
        "{context}"
    );
    assert_eq!(
        out.last().map(|l| l.split(',').next().unwrap_or("")),
        Some(format!("fleet: {n}/{n} storages ACTIVE on every tracker").as_str()),
        "{context}"
    );
    assert!(status.success(), "{context}");
    // the survivors agree: they name the leader the storages follow
    for t in c.tracker_addrs().iter().filter(|t| t.to_string() != leader) {
        assert_eq!(
            rfdfs_tests::leader_of(t).as_deref(),
            Some(new_leader),
            "{t}"
        );
    }
}

#[test]
fn fleet_help_names_its_options() {
    let out = Command::new(bin("rfdfs_bench"))
        .args(["fleet", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--trackers",
        "--groups",
        "--per-group",
        "--seconds",
        "--beat-interval",
        "--queries-per-second",
    ] {
        assert!(help.contains(option), "{option} missing:\n{help}");
    }
}
