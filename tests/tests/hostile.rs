//! Hostile input and access control: a seeded stream of thousands of malformed packets (the
//! kind that killed upstream's tracker after 641), `allow_hosts` on every port, and clients
//! that send one byte a second.

use fdfs_client::Upload;
use fdfs_common::net;
use fdfs_common::proto::cmd;
use rfdfs_tests::raw::{connect, exchange, frame};
use rfdfs_tests::{Cluster, ClusterOpts, Rng};
use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

/// One malformed packet of the seeded stream.
fn hostile_packet(r: &mut Rng) -> Vec<u8> {
    match r.below(6) {
        // random bytes, any length
        0 => {
            let n = r.below(64) as usize;
            r.bytes(n)
        }
        // a header announcing an absurd or negative length, then a little
        1 => {
            let mut p = Vec::new();
            let len: i64 = match r.below(3) {
                0 => -(r.below(1 << 40) as i64) - 1,
                1 => i64::MAX - r.below(1000) as i64,
                _ => (1 << 40) + r.below(1 << 30) as i64,
            };
            p.extend_from_slice(&len.to_be_bytes());
            p.push(r.below(256) as u8);
            p.push(0);
            let n = r.below(32) as usize;
            p.extend(r.bytes(n));
            p
        }
        // every command code with an empty body
        2 => frame(r.below(256) as u8, 0, &[]),
        // every command code with a short random body
        3 => {
            let n = r.below(40) as usize;
            let body = r.bytes(n);
            frame(r.below(256) as u8, r.below(256) as u8, &body)
        }
        // a truncated frame: header says more than follows
        4 => {
            let n = 20 + r.below(300) as usize;
            let mut f = frame(r.below(256) as u8, 0, &r.bytes(n));
            f.truncate(10 + r.below(n as u64) as usize);
            f
        }
        // a plausible command with a body of the wrong size
        _ => {
            let code = [
                cmd::QUERY_STORE_WITHOUT_GROUP_ONE,
                cmd::QUERY_FETCH_ONE,
                cmd::SERVER_LIST_STORAGE,
                cmd::STORAGE_JOIN,
                cmd::STORAGE_BEAT,
                cmd::UPLOAD_FILE,
                cmd::DOWNLOAD_FILE,
                cmd::DELETE_FILE,
                cmd::SET_METADATA,
                cmd::APPEND_FILE,
                cmd::QUERY_FILE_INFO,
                cmd::TRACKER_GET_ONE_SYS_FILE,
                cmd::STORAGE_FETCH_STORAGE_IDS,
            ][r.below(13) as usize];
            let n = r.below(200) as usize;
            frame(code, 0, &r.bytes(n))
        }
    }
}

/// Throw `count` packets of the seeded stream at `host:port`, a few per connection, reading
/// whatever comes back; then the daemon must still answer ACTIVE_TEST.
fn storm(host: &str, port: u16, seed: u64, count: usize) {
    let mut r = Rng(seed);
    let mut sent = 0;
    while sent < count {
        let Ok(mut s) = TcpStream::connect((host, port)) else {
            panic!("{host}:{port} refused a connection after {sent} hostile packets");
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        for _ in 0..1 + r.below(4) {
            let p = hostile_packet(&mut r);
            sent += 1;
            if s.write_all(&p).is_err() {
                break;
            }
        }
        // end of input: the daemon answers what it can, then must close, not wait
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut rest = Vec::new();
        if let Err(e) = s.read_to_end(&mut rest) {
            assert!(
                e.kind() == std::io::ErrorKind::ConnectionReset,
                "{host}:{port} kept a finished hostile connection open: {e}"
            );
        }
    }
    let mut s = connect(host, port);
    assert_eq!(
        exchange(&mut s, &frame(cmd::ACTIVE_TEST, 0, &[])).map(|r| r.0),
        Some(0),
        "{host}:{port} does not serve after {count} hostile packets"
    );
}

#[test]
fn thousands_of_malformed_packets_leave_both_daemons_serving() {
    let mut c = Cluster::start(ClusterOpts {
        tracker_extra: "network_timeout=2\n".into(),
        storage_extra: "network_timeout=2\n".into(),
        ..Default::default()
    });
    let id = c
        .client()
        .upload(
            fdfs_client::Content::Buffer(b"survivor"),
            "txt",
            Upload::File,
            None,
            None,
        )
        .unwrap();
    let (th, tp) = (c.tracker_addr.host.clone(), c.tracker_addr.port);
    let (sh, sp) = (c.storages[0].ip.clone(), c.storages[0].port);
    let t = std::thread::spawn(move || storm(&th, tp, 0x5eed_0001, 20_000));
    storm(&sh, sp, 0x5eed_0002, 20_000);
    t.join().unwrap();
    assert!(c.tracker.alive() && c.storages[0].daemon.alive());
    assert_eq!(rfdfs_tests::read_back(&c.client(), &id), b"survivor");
    assert!(
        c.tracker.log().contains("client ip"),
        "refusals are logged with a reason"
    );
}

/// A connection to `host:port` from the local address `from`.
fn connect_from(from: &str, host: &str, port: u16) -> Option<TcpStream> {
    let bind: IpAddr = from.parse().unwrap();
    net::connect(
        host,
        port,
        Some(bind),
        Duration::from_secs(2),
        Duration::from_secs(5),
    )
    .ok()
}

/// Whether the daemon answers ACTIVE_TEST on a connection from `from`.
fn served_from(from: &str, host: &str, port: u16) -> bool {
    connect_from(from, host, port).is_some_and(|mut s| {
        exchange(&mut s, &frame(cmd::ACTIVE_TEST, 0, &[])).map(|r| r.0) == Some(0)
    })
}

/// Whether an HTTP port answers a request from `from` at all.
fn http_served_from(from: &str, host: &str, port: u16) -> bool {
    connect_from(from, host, port).is_some_and(|mut s| {
        let mut b = [0u8; 12];
        s.write_all(b"GET /M00/00/00/x HTTP/1.1\r\nHost: x\r\n\r\n")
            .is_ok()
            && matches!(s.read(&mut b), Ok(n) if n > 0)
    })
}

#[test]
fn allow_hosts_is_enforced_on_every_port() {
    let net = rfdfs_tests::unique_net();
    let (a, b) = net;
    // the cluster's own addresses, the test process's default source (127.0.0.1) and one
    // client address are allowed; ranges and CIDR as upstream writes them
    let allow = format!(
        "allow_hosts=127.{a}.{b}.[2-20]\nallow_hosts=127.0.0.1\nallow_hosts=127.{a}.{b}.40/32\n"
    );
    let c = Cluster::start(ClusterOpts {
        net: Some(net),
        tracker_extra: format!("{allow}http.redirect_port=8080\n"),
        storage_extra: format!("{allow}http.server_port=8888\n"),
        ..Default::default()
    });
    let ok = format!("127.{a}.{b}.40");
    let other = format!("127.{a}.{b}.41");
    let (th, tp) = (c.tracker_addr.host.clone(), c.tracker_addr.port);
    let (sh, sp) = (c.storages[0].ip.clone(), c.storages[0].port);
    assert!(
        served_from(&ok, &th, tp),
        "allowed client refused by the tracker"
    );
    assert!(
        served_from(&ok, &sh, sp),
        "allowed client refused by the storage"
    );
    assert!(
        !served_from(&other, &th, tp),
        "tracker served a host outside allow_hosts"
    );
    assert!(
        !served_from(&other, &sh, sp),
        "storage served a host outside allow_hosts"
    );
    assert!(http_served_from(&ok, &sh, 8888));
    assert!(
        !http_served_from(&other, &sh, 8888),
        "storage http ignores allow_hosts"
    );
    assert!(http_served_from(&ok, &th, 8080));
    assert!(
        !http_served_from(&other, &th, 8080),
        "tracker http ignores allow_hosts"
    );
    assert!(c.tracker.log().contains("is not allowed to access"));
}

#[test]
fn one_byte_a_second_clients_are_cut_off_without_starving_others() {
    let c = Cluster::start(ClusterOpts {
        storage_extra: "network_timeout=3\nwork_threads=2\n".into(),
        ..Default::default()
    });
    let (sh, sp) = (c.storages[0].ip.clone(), c.storages[0].port);
    // eight clients dribble an upload header one byte a second
    let slow: Vec<_> = (0..8)
        .map(|_| {
            let (h, p) = (sh.clone(), sp);
            std::thread::spawn(move || {
                let mut s = TcpStream::connect((h.as_str(), p)).unwrap();
                let f = frame(cmd::UPLOAD_FILE, 0, &[0u8; 64]);
                let t0 = Instant::now();
                for b in f {
                    if s.write_all(&[b]).is_err() {
                        return (t0.elapsed(), true);
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    // a closed connection shows on the next read
                    s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
                    let mut x = [0u8; 1];
                    if matches!(s.read(&mut x), Ok(0)) {
                        return (t0.elapsed(), true);
                    }
                    if t0.elapsed() > Duration::from_secs(40) {
                        break;
                    }
                }
                (t0.elapsed(), false)
            })
        })
        .collect();
    // meanwhile ordinary clients are served, again and again
    std::thread::sleep(Duration::from_millis(500));
    let client = c.client();
    for k in 0..20 {
        let data = format!("while slow clients dribble {k}").into_bytes();
        let id = client
            .upload(
                fdfs_client::Content::Buffer(&data),
                "txt",
                Upload::File,
                None,
                None,
            )
            .unwrap();
        assert_eq!(rfdfs_tests::read_back(&client, &id), data);
    }
    for h in slow {
        let (_, cut) = h.join().unwrap();
        assert!(cut, "a one-byte-a-second client was never cut off");
    }
}
