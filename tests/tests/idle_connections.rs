//! Connections cost no thread while idle, and descriptors are the only limit: daemons started
//! under systemd's default soft RLIMIT_NOFILE of 1024 with `max_connections = 4096` hold 3000
//! idle pooled connections each, a new client is served beside them, and the thread count stays
//! bounded by the configuration. A daemon that runs out of descriptors refuses the connection
//! it cannot take, says so in its log, and serves again once descriptors are free; one whose
//! hard limit is below what `max_connections` needs names both numbers at startup.

use fdfs_client::Content;
use fdfs_client::Upload;
use fdfs_common::proto::cmd;
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use rfdfs_tests::{raw, Cluster, ClusterOpts, Daemon};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const IDLE: usize = 3000;
const WORK_THREADS: u64 = 4;
const ACCEPT_THREADS: u64 = 1;

/// This test process holds thousands of sockets: raise its own soft limit to the hard one.
fn raise_own_nofile(needed: u64) {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(
        hard >= needed,
        "this test needs {needed} open files and the hard limit is {hard}: raise it (ulimit -Hn)"
    );
    if soft < needed {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
}

/// Open `n` connections to `host:port`, each answering one ACTIVE_TEST (as a pool's health
/// check does), then left idle.
fn idle_connections(host: &str, port: u16, n: usize) -> Vec<TcpStream> {
    let active_test = raw::frame(cmd::ACTIVE_TEST, 0, &[]);
    (0..n)
        .map(|i| {
            let mut s = raw::connect(host, port);
            assert_eq!(
                raw::exchange(&mut s, &active_test),
                Some((0, Vec::new())),
                "idle connection {i} to {host}:{port} was not served"
            );
            s
        })
        .collect()
}

fn assert_still_served(conns: &mut [TcpStream], what: &str) {
    let active_test = raw::frame(cmd::ACTIVE_TEST, 0, &[]);
    for (i, s) in conns.iter_mut().enumerate() {
        assert_eq!(
            raw::exchange(s, &active_test),
            Some((0, Vec::new())),
            "{what}: idle connection {i} was dropped"
        );
    }
}

fn assert_threads_bounded(d: &Daemon, what: &str) {
    let threads = d.threads();
    let bound = WORK_THREADS + ACCEPT_THREADS + 32;
    assert!(
        threads < bound,
        "{what} runs {threads} threads with {IDLE} idle connections (bound {bound})"
    );
}

#[test]
fn thousands_of_idle_connections_under_a_1024_soft_limit() {
    raise_own_nofile(2 * IDLE as u64 + 512);
    let settings = format!(
        "max_connections=4096\nwork_threads={WORK_THREADS}\naccept_threads={ACCEPT_THREADS}\n"
    );
    let c = Cluster::start(ClusterOpts {
        tracker_extra: settings.clone(),
        storage_extra: settings,
        nofile: Some((1024, None)),
        ..Default::default()
    });
    let storage = c.storage_addr(0);
    for (d, what) in [(&c.tracker, "tracker"), (&c.storages[0].daemon, "storage")] {
        assert!(
            d.nofile_soft() >= 4096,
            "{what} kept a soft open files limit of {}",
            d.nofile_soft()
        );
    }
    let mut at_tracker = idle_connections(&c.tracker_addr.host, c.tracker_addr.port, IDLE);
    let mut at_storage = idle_connections(&storage.host, storage.port, IDLE);
    assert_threads_bounded(&c.tracker, "tracker");
    assert_threads_bounded(&c.storages[0].daemon, "storage");
    // a new client beside them: fresh connections to both daemons
    let client = c.client();
    let content = b"served beside 6000 idle connections".to_vec();
    let id = client
        .upload(Content::Buffer(&content), "txt", Upload::File, None, None)
        .expect("a new client's upload");
    assert_eq!(rfdfs_tests::read_back(&client, &id), content);
    assert_still_served(&mut at_tracker, "tracker");
    assert_still_served(&mut at_storage, "storage");
    assert_threads_bounded(&c.tracker, "tracker");
    assert_threads_bounded(&c.storages[0].daemon, "storage");
}

#[test]
fn out_of_descriptors_refuses_then_recovers() {
    raise_own_nofile(2048);
    let c = Cluster::start(ClusterOpts {
        storage_extra: "max_connections=4096\n".into(),
        ..Default::default()
    });
    let storage = c.storage_addr(0);
    let daemon = &c.storages[0].daemon;
    // the limit lowered under the running daemon, as root could not be kept from raising it
    let pid = daemon.pid().unwrap().to_string();
    let lowered = std::process::Command::new("prlimit")
        .args(["--pid", &pid, "--nofile=256:256"])
        .status();
    assert!(
        lowered.is_ok_and(|s| s.success()),
        "prlimit (util-linux) could not lower the storage's open files limit"
    );
    // fill the storage's descriptor table with idle connections until one is refused
    let active_test = raw::frame(cmd::ACTIVE_TEST, 0, &[]);
    let mut held = Vec::new();
    let refused = loop {
        assert!(held.len() < 512, "256 descriptors and still accepting");
        let mut s = raw::connect(&storage.host, storage.port);
        if raw::exchange(&mut s, &active_test) != Some((0, Vec::new())) {
            break s;
        }
        held.push(s);
    };
    drop(refused);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !daemon.log().contains("connection from") {
        assert!(
            Instant::now() < deadline,
            "the refusal was not logged:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        daemon.log().contains("Too many open files"),
        "{}",
        daemon.log()
    );
    // those already connected are still served
    assert_still_served(&mut held[..10], "storage");
    // free some descriptors: accepting resumes
    held.truncate(held.len() - 20);
    let client = c.client();
    let content = b"accepting again".to_vec();
    // the storage frees a descriptor when it sees its peer gone, a moment after the close
    let deadline = Instant::now() + Duration::from_secs(20);
    let id = loop {
        match client.upload(Content::Buffer(&content), "txt", Upload::File, None, None) {
            Ok(id) => break id,
            Err(e) if Instant::now() < deadline => {
                eprintln!("upload with descriptors freed: {e}; again");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("no upload once descriptors are free: {e}"),
        }
    };
    assert_eq!(rfdfs_tests::read_back(&client, &id), content);
    assert_still_served(&mut held, "storage");
}

#[test]
fn a_hard_limit_below_max_connections_is_named_at_startup() {
    // 4096 connections and 256 more descriptors for files wanted, 512 allowed
    let c = Cluster::start(ClusterOpts {
        storage_extra: "max_connections=4096\n".into(),
        nofile: Some((512, Some(512))),
        ..Default::default()
    });
    let daemon = &c.storages[0].daemon;
    let warned = daemon.log().contains(
        "max open files is 512 (the hard limit), below the 4352 that max_connections needs",
    );
    // a root allowed to raise hard limits (CAP_SYS_RESOURCE) raises it instead
    assert!(
        warned || daemon.nofile_soft() >= 4352,
        "neither a warning nor a raised limit ({}):\n{}",
        daemon.nofile_soft(),
        daemon.log()
    );
}
