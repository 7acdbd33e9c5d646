//! The request patterns of the clients users run, served without protocol stalls: a header and a
//! body in separate writes with Nagle's algorithm on (libfdfsclient, fastdfs-client-java,
//! py3fdfs), bodies trickled in small writes, requests pipelined on one connection. Without an
//! immediate ACK such a client waits ~40 ms for the server's delayed ACK before each later
//! piece. Judged by the daemons' own latency histograms (first byte of a request to its answer),
//! not by wall time: at most one request in 20 may take longer than 25 ms. A stall delays every
//! request of its pattern; a machine busy with other tests (the suite runs its longest tests
//! beside the rest) delays a few, and did: 3 of 240 in one suite run.

use fdfs_client::personality::{download_request, Personality, WireClient};
use fdfs_common::codec::Message;
use fdfs_common::proto::client::GroupFileReq;
use fdfs_common::proto::cmd;
use fdfs_common::proto::storage::UploadReq;
use rfdfs_tests::raw;
use rfdfs_tests::{http_get, Cluster, ClusterOpts};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

const TRACKER_METRICS: u16 = 9111;
const STORAGE_METRICS: u16 = 9112;
/// The histogram bucket below the 40 ms of a delayed ACK.
const FAST: &str = "0.025";

fn cluster() -> Cluster {
    Cluster::start(ClusterOpts {
        tracker_extra: format!("metrics.server_port={TRACKER_METRICS}\n"),
        storage_extra: format!("metrics.server_port={STORAGE_METRICS}\n"),
        ..Default::default()
    })
}

fn metrics(host: &str, port: u16) -> String {
    let (status, _, body) = http_get(host, port, "/metrics");
    assert_eq!(status, 200);
    body
}

/// Per command of `daemon`: (command, requests, requests slower than `FAST`).
fn latencies(text: &str, daemon: &str) -> Vec<(String, u64, u64)> {
    let prefix = format!("fdfs_{daemon}_request_duration_seconds_bucket{{command=\"");
    // (command, all, within FAST)
    let mut counts: Vec<(String, u64, u64)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let (command, rest) = rest.split_once('"').unwrap();
        let value: u64 = rest.rsplit(' ').next().unwrap().parse().unwrap();
        if !counts.iter().any(|(c, ..)| c == command) {
            counts.push((command.to_string(), 0, 0));
        }
        let entry = counts.iter_mut().find(|(c, ..)| c == command).unwrap();
        if rest.contains("le=\"+Inf\"") {
            entry.1 = value;
        } else if rest.contains(&format!("le=\"{FAST}\"")) {
            entry.2 = value;
        }
    }
    counts
        .into_iter()
        .map(|(c, all, fast)| (c, all, all - fast))
        .collect()
}

/// Every request of `commands` counted at least `min` times on that daemon, at most one in 20
/// of them slow.
/// A request is counted just after its answer is sent, so the last ones may be counted a moment
/// after the client has its answer: the histograms are read until the counts are there. Only
/// the commands under test are judged: the fixture's own start-up queries (waiting for the
/// storage to be ACTIVE) are not a client pattern.
fn assert_no_stalls(host: &str, port: u16, daemon: &str, commands: &[(&str, u64)]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (text, seen) = loop {
        let text = metrics(host, port);
        let seen = latencies(&text, daemon);
        let counted = |command: &str| {
            seen.iter()
                .find(|(c, ..)| c == command)
                .map_or(0, |(_, n, _)| *n)
        };
        if commands.iter().all(|(c, min)| counted(c) >= *min) {
            break (text, seen);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{daemon} did not count {commands:?} within 10 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let slow: Vec<_> = seen
        .iter()
        .filter(|(c, all, slow)| *slow * 20 > *all && commands.iter().any(|(name, _)| name == c))
        .collect();
    assert!(
        slow.is_empty(),
        "{daemon} requests over {FAST} s (command, requests, slow): {slow:?}\n{text}"
    );
}

/// A connection as these clients open it: Nagle's algorithm left on.
fn nagle_connect(host: &str, port: u16) -> TcpStream {
    let s = raw::connect(host, port);
    s.set_nodelay(false).unwrap();
    s
}

#[test]
fn separate_header_and_body_writes_with_nagle_on() {
    let c = cluster();
    let timeout = Duration::from_secs(20);
    let content: Vec<u8> = (0..10240u32).map(|i| (i * 7 % 253) as u8).collect();
    // enough requests per connection that Linux leaves its initial quick-ACK mode
    const OPS: u64 = 40;
    let personalities = [
        Personality::Libfdfsclient,
        Personality::Java,
        Personality::Py3fdfs,
    ];
    for p in personalities {
        let mut client = WireClient::new(p, c.tracker_addr.clone(), timeout);
        for _ in 0..OPS {
            let id = client
                .upload(&content, "bin")
                .unwrap_or_else(|e| panic!("{}: upload: {e}", p.name()));
            let size = client
                .download(&id)
                .unwrap_or_else(|e| panic!("{}: download: {e}", p.name()));
            assert_eq!(size, content.len() as u64, "{}", p.name());
        }
    }
    let n = OPS * personalities.len() as u64;
    let storage = &c.storages[0].ip;
    assert_no_stalls(
        storage,
        STORAGE_METRICS,
        "storage",
        &[("UPLOAD_FILE", n), ("DOWNLOAD_FILE", n)],
    );
    assert_no_stalls(
        &c.tracker_addr.host,
        TRACKER_METRICS,
        "tracker",
        &[("QUERY_STORE_WITHOUT_GROUP_ONE", n), ("QUERY_FETCH_ONE", n)],
    );
}

#[test]
fn small_chunked_bodies() {
    let c = cluster();
    let storage = c.storage_addr(0);
    let mut s = nagle_connect(&storage.host, storage.port);
    let content: Vec<u8> = (0..32768u32).map(|i| (i * 13 % 251) as u8).collect();
    let mut body = UploadReq {
        store_path_index: 0,
        file_size: content.len() as i64,
        ext: "bin".into(),
    }
    .to_bytes();
    body.extend_from_slice(&content);
    let request = raw::frame(cmd::UPLOAD_FILE, 0, &body);
    let mut names = Vec::new();
    for _ in 0..10 {
        for piece in request.chunks(512) {
            s.write_all(piece).unwrap();
        }
        let (status, reply) = raw::read_response(&mut s).expect("upload answered");
        assert_eq!(status, 0);
        names.push(String::from_utf8_lossy(&reply[16..]).into_owned());
    }
    // the tracker: a QUERY_FETCH_ONE body in 8-byte pieces
    let mut t = nagle_connect(&c.tracker_addr.host, c.tracker_addr.port);
    for name in &names {
        let query = raw::frame(
            cmd::QUERY_FETCH_ONE,
            0,
            &GroupFileReq {
                group: "group1".into(),
                filename: name.clone(),
            }
            .to_bytes(),
        );
        for piece in query.chunks(8) {
            t.write_all(piece).unwrap();
        }
        let (status, _) = raw::read_response(&mut t).expect("query answered");
        assert_eq!(status, 0);
    }
    let client = c.client();
    for name in &names {
        let id = fdfs_client::FileId::parse(&format!("group1/{name}")).unwrap();
        assert_eq!(rfdfs_tests::read_back(&client, &id), content);
    }
    assert_no_stalls(
        &storage.host,
        STORAGE_METRICS,
        "storage",
        &[("UPLOAD_FILE", 10)],
    );
    assert_no_stalls(
        &c.tracker_addr.host,
        TRACKER_METRICS,
        "tracker",
        &[("QUERY_FETCH_ONE", 10)],
    );
}

#[test]
fn pipelined_requests() {
    let c = cluster();
    let client = c.client();
    let content = b"pipelined requests, one write, answered in order".to_vec();
    let id = rfdfs_tests::upload(&client, &content, "txt");
    const N: usize = 30;
    // the storage: downloads and active tests in one write
    let storage = c.storage_addr(0);
    let mut s = nagle_connect(&storage.host, storage.port);
    let download = download_request(&id);
    let active_test = raw::frame(cmd::ACTIVE_TEST, 0, &[]);
    s.write_all(&[download, active_test].concat().repeat(N))
        .unwrap();
    for _ in 0..N {
        assert_eq!(raw::read_response(&mut s), Some((0, content.clone())));
        assert_eq!(raw::read_response(&mut s), Some((0, Vec::new())));
    }
    // the tracker: store and fetch queries in one write
    let mut t = nagle_connect(&c.tracker_addr.host, c.tracker_addr.port);
    let fetch = raw::frame(
        cmd::QUERY_FETCH_ONE,
        0,
        &GroupFileReq {
            group: id.group.clone(),
            filename: id.name.clone(),
        }
        .to_bytes(),
    );
    let store = raw::frame(cmd::QUERY_STORE_WITHOUT_GROUP_ONE, 0, &[]);
    t.write_all(&[store, fetch].concat().repeat(N)).unwrap();
    for _ in 0..2 * N {
        let (status, _) = raw::read_response(&mut t).expect("query answered");
        assert_eq!(status, 0);
    }
    assert_no_stalls(
        &storage.host,
        STORAGE_METRICS,
        "storage",
        &[("DOWNLOAD_FILE", N as u64), ("ACTIVE_TEST", N as u64)],
    );
    assert_no_stalls(
        &c.tracker_addr.host,
        TRACKER_METRICS,
        "tracker",
        &[
            ("QUERY_STORE_WITHOUT_GROUP_ONE", N as u64),
            ("QUERY_FETCH_ONE", N as u64),
        ],
    );
}
