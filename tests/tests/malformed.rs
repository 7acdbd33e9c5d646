//! Hostile and broken input: the daemons answer with upstream's errno or close the connection,
//! never crash, never allocate what a length field asks for, never touch paths outside the store.

use fdfs_common::codec::Writer;
use fdfs_common::proto::{cmd, errno};
use rfdfs_tests::raw::{connect, exchange, frame, is_closed};
use rfdfs_tests::{Cluster, ClusterOpts};
use std::io::Write;

fn group16(g: &str) -> Vec<u8> {
    let mut v = Vec::new();
    v.put_fixed_str(g, 16);
    v
}

#[test]
fn tracker_survives_malformed_packets() {
    let c = Cluster::start(ClusterOpts::default());
    let (h, p) = (c.tracker_addr.host.as_str(), c.tracker_addr.port);

    // unknown command: EINVAL, connection kept
    let mut s = connect(h, p);
    assert_eq!(
        exchange(&mut s, &frame(250, 0, &[])).unwrap().0,
        errno::EINVAL
    );
    assert_eq!(
        exchange(&mut s, &frame(cmd::ACTIVE_TEST, 0, &[]))
            .unwrap()
            .0,
        0
    );
    // wrong body lengths
    assert_eq!(
        exchange(&mut s, &frame(cmd::ACTIVE_TEST, 0, b"x"))
            .unwrap()
            .0,
        errno::EINVAL
    );
    assert_eq!(
        exchange(
            &mut s,
            &frame(cmd::QUERY_STORE_WITH_GROUP_ONE, 0, b"group1")
        )
        .unwrap()
        .0,
        errno::EINVAL
    );
    assert_eq!(
        exchange(&mut s, &frame(cmd::QUERY_FETCH_ONE, 0, &group16("group1")))
            .unwrap()
            .0,
        errno::EINVAL
    );
    assert_eq!(
        exchange(&mut s, &frame(cmd::SERVER_LIST_STORAGE, 0, &[0u8; 40]))
            .unwrap()
            .0,
        errno::EINVAL
    );
    // the log says which command, which field and which peer
    let expected = format!(
        "client ip: 127.0.0.1, cmd: {} (QUERY_STORE_WITH_GROUP_ONE), malformed request: body too \
         short for field group_name",
        cmd::QUERY_STORE_WITH_GROUP_ONE
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !c.tracker.log().contains(&expected) {
        assert!(
            std::time::Instant::now() < deadline,
            "no \"{expected}\" in the tracker log:\n{}",
            c.tracker.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // storage-only commands without a join: EACCES
    for command in [
        cmd::STORAGE_BEAT,
        cmd::STORAGE_SYNC_NOTIFY,
        cmd::STORAGE_SYNC_DEST_QUERY,
        cmd::STORAGE_REPORT_DISK_USAGE,
    ] {
        assert_eq!(
            exchange(&mut s, &frame(command, 0, &[])).unwrap().0,
            errno::EACCES,
            "cmd {command}"
        );
    }
    // a garbage join
    assert_eq!(
        exchange(&mut s, &frame(cmd::STORAGE_JOIN, 0, &[7u8; 150]))
            .unwrap()
            .0,
        errno::EINVAL
    );
    // QUIT: no reply, closed
    s.write_all(&frame(cmd::QUIT, 0, &[])).unwrap();
    assert!(is_closed(&mut s));

    // an absurd length field is refused without allocating it: the connection is dropped
    let mut s = connect(h, p);
    let mut hdr = (i64::MAX).to_be_bytes().to_vec();
    hdr.extend_from_slice(&[cmd::QUERY_STORE_WITHOUT_GROUP_ONE, 0]);
    s.write_all(&hdr).unwrap();
    assert!(is_closed(&mut s));
    // a negative one too
    let mut s = connect(h, p);
    let mut hdr = (-5i64).to_be_bytes().to_vec();
    hdr.extend_from_slice(&[cmd::ACTIVE_TEST, 0]);
    s.write_all(&hdr).unwrap();
    assert!(is_closed(&mut s));
    // a body shorter than announced, then the peer goes away
    let mut s = connect(h, p);
    s.write_all(&[
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        16,
        cmd::QUERY_STORE_WITH_GROUP_ONE,
        0,
        b'g',
    ])
    .unwrap();
    drop(s);

    // a seeded stream of random frames
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..2000 {
        let mut s = connect(h, p);
        let command = (rnd() % 256) as u8;
        let len = (rnd() % 300) as usize;
        let body: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        let mut f = frame(command, (rnd() % 256) as u8, &body);
        if i % 7 == 0 {
            f.truncate(f.len().saturating_sub((rnd() % 12) as usize));
        }
        let _ = s.write_all(&f);
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    // still serving
    let client = c.client();
    assert_eq!(client.list_groups().unwrap().len(), 1);
    let id = rfdfs_tests::upload(&client, b"after the storm", "txt");
    assert_eq!(rfdfs_tests::read_back(&client, &id), b"after the storm");
}

/// Wait until `daemon`'s log holds `line`; fail naming it and showing the log.
fn wait_for_log(daemon: &rfdfs_tests::Daemon, line: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !daemon.log().contains(line) {
        assert!(
            std::time::Instant::now() < deadline,
            "no \"{line}\" in the log:\n{}",
            daemon.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn malformed_requests_are_logged_with_command_field_and_peer() {
    let c = Cluster::start(ClusterOpts::default());
    let (th, tp) = (c.tracker_addr.host.as_str(), c.tracker_addr.port);
    let st = &c.storages[0];
    // (daemon, command, body, the field the log must name)
    let cases: [(bool, u8, Vec<u8>, &str); 9] = [
        (
            true,
            cmd::QUERY_FETCH_ONE,
            [group16("group1"), b"M00/x".to_vec()].concat(),
            "invalid filename: ",
        ),
        (
            true,
            cmd::TRACKER_JOIN_LEADER,
            vec![0; 10],
            "body too short for field version",
        ),
        (
            true,
            cmd::TRACKER_NOTIFY_NEXT_LEADER,
            vec![b'1'; 60],
            "invalid leader_addr: 60 bytes",
        ),
        (
            true,
            cmd::STORAGE_GET_STATUS,
            group16("group1"),
            "invalid storage_addr: 0 bytes",
        ),
        (
            true,
            cmd::STORAGE_REPORT_IP_CHANGED,
            group16("group1"),
            "body too short for field old_ip_addr",
        ),
        (
            false,
            cmd::DELETE_FILE,
            b"grp".to_vec(),
            "body too short for field group_name",
        ),
        (
            false,
            cmd::SYNC_DELETE_FILE,
            vec![0; 3],
            "body too short for field timestamp",
        ),
        (
            false,
            cmd::FETCH_ONE_PATH_BINLOG,
            group16("group1"),
            "body too short for field store_path_index",
        ),
        // a streamed request: the name length is checked before anything else is read
        (
            false,
            cmd::SYNC_CREATE_FILE,
            vec![0; 36],
            "invalid filename_len: 0",
        ),
    ];
    for (to_tracker, command, body, field) in cases {
        // to the storage from its own address: some of these commands are for members only
        let (daemon, mut s, from) = if to_tracker {
            (&c.tracker, connect(th, tp), "127.0.0.1")
        } else {
            (
                &st.daemon,
                rfdfs_tests::raw::connect_from(&st.ip, &st.ip, st.port),
                st.ip.as_str(),
            )
        };
        let mut request = frame(command, 0, &body);
        if command == cmd::SYNC_CREATE_FILE {
            // content announced after the fixed part, never sent
            request[..8].copy_from_slice(&100i64.to_be_bytes());
        }
        s.write_all(&request).unwrap();
        let status = rfdfs_tests::raw::read_response(&mut s).unwrap().0;
        assert_eq!(status, errno::EINVAL, "cmd {command}");
        let name = fdfs_common::proto::commands::name(command).unwrap();
        wait_for_log(
            daemon,
            &format!("client ip: {from}, cmd: {command} ({name}), malformed request: {field}"),
        );
    }
}

#[test]
fn storage_refuses_bad_requests_and_paths() {
    let c = Cluster::start(ClusterOpts::default());
    let (h, p) = (c.storages[0].ip.clone(), c.storages[0].port);
    let client = c.client();
    let id = rfdfs_tests::upload(&client, b"0123456789", "txt");

    let download = |group: &str, name: &str| {
        let mut b = Vec::new();
        b.put_i64(0);
        b.put_i64(0);
        b.put_fixed_str(group, 16);
        b.put_bytes(name.as_bytes());
        frame(cmd::DOWNLOAD_FILE, 0, &b)
    };
    // unknown command: EINVAL and closed
    let mut s = connect(&h, p);
    assert_eq!(
        exchange(&mut s, &frame(250, 0, &[])).unwrap().0,
        errno::EINVAL
    );
    assert!(is_closed(&mut s));
    // wrong group: EINVAL and closed
    let mut s = connect(&h, p);
    assert_eq!(
        exchange(&mut s, &download("group9", &id.name)).unwrap().0,
        errno::EINVAL
    );
    assert!(is_closed(&mut s));
    // missing file: ENOENT, connection kept
    let mut s = connect(&h, p);
    let missing = format!("{}xx.txt", &id.name[..id.name.len() - 6]);
    assert_eq!(
        exchange(&mut s, &download("group1", &missing)).unwrap().0,
        errno::ENOENT
    );
    assert_eq!(
        exchange(&mut s, &frame(cmd::ACTIVE_TEST, 0, &[]))
            .unwrap()
            .0,
        0
    );

    // path traversal and bad store paths never reach the disk
    std::fs::write(c.storages[0].base.join("secret.txt"), b"secret").unwrap();
    for name in [
        "M00/00/00/../../../secret.txt",
        "M00/../../secret.txt",
        "M00/00/00/..",
        "M05/00/00/fwAAA2sEyyCAT2X8AAAAE2WoGAU042.txt",
        "M00/0a/00/fwAAA2sEyyCAT2X8AAAAE2WoGAU042.txt",
        "../../../../../../etc/passwd",
        "M00/00/00/a\0b",
        "short",
    ] {
        let mut s = connect(&h, p);
        let (st, body) = exchange(&mut s, &download("group1", name)).unwrap();
        assert_eq!(st, errno::EINVAL, "{name:?}");
        assert!(body.is_empty());
    }

    // upload: size mismatch, bad ext, bad store path: EINVAL and closed
    let upload = |idx: u8, size: i64, ext: &str, content: &[u8]| {
        let mut b = Vec::new();
        b.put_u8(idx);
        b.put_i64(size);
        b.put_fixed_str(ext, 6);
        b.put_bytes(content);
        frame(cmd::UPLOAD_FILE, 0, &b)
    };
    for (f, what) in [
        (upload(0, 99, "txt", b"abc"), "size mismatch"),
        (upload(0, 3, "t/x", b"abc"), "bad ext"),
        (upload(7, 3, "txt", b"abc"), "bad store path"),
        (frame(cmd::UPLOAD_FILE, 0, &[0u8; 5]), "short fixed part"),
    ] {
        let mut s = connect(&h, p);
        assert_eq!(exchange(&mut s, &f).unwrap().0, errno::EINVAL, "{what}");
        assert!(is_closed(&mut s), "{what}");
    }
    // a huge declared upload that never comes: the peer is cut off, no file is left behind
    let mut s = connect(&h, p);
    let mut b = Vec::new();
    b.put_u8(0);
    b.put_i64(1 << 40);
    b.put_fixed_str("bin", 6);
    let mut f = ((1i64 << 40) + 15).to_be_bytes().to_vec();
    f.extend_from_slice(&[cmd::UPLOAD_FILE, 0]);
    f.extend_from_slice(&b);
    f.extend_from_slice(&[1u8; 1000]);
    s.write_all(&f).unwrap();
    drop(s);
    // slave upload errors
    let slave = |prefix: &str, master: &str| {
        let mut b = Vec::new();
        b.put_i64(master.len() as i64);
        b.put_i64(1);
        b.put_fixed_str(prefix, 16);
        b.put_fixed_str("jpg", 6);
        b.put_bytes(master.as_bytes());
        b.put_u8(b'x');
        frame(cmd::UPLOAD_SLAVE_FILE, 0, &b)
    };
    let mut s = connect(&h, p);
    assert_eq!(
        exchange(&mut s, &slave("", &id.name)).unwrap().0,
        errno::EINVAL,
        "empty prefix"
    );
    let mut s = connect(&h, p);
    assert_eq!(
        exchange(&mut s, &slave("../x", &id.name)).unwrap().0,
        errno::EINVAL,
        "prefix with /"
    );
    let mut s = connect(&h, p);
    assert_eq!(
        exchange(&mut s, &slave("_s", &missing)).unwrap().0,
        errno::ENOENT,
        "missing master"
    );
    // metadata with a bad op flag
    let mut b = Vec::new();
    b.put_i64(id.name.len() as i64);
    b.put_i64(0);
    b.put_u8(b'Q');
    b.put_fixed_str("group1", 16);
    b.put_bytes(id.name.as_bytes());
    let mut s = connect(&h, p);
    assert_eq!(
        exchange(&mut s, &frame(cmd::SET_METADATA, 0, &b))
            .unwrap()
            .0,
        errno::EINVAL
    );

    // random garbage
    let mut seed: u64 = 42;
    for _ in 0..1000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let command = [
            11u8,
            12,
            13,
            14,
            15,
            21,
            22,
            23,
            24,
            34,
            36,
            38,
            111,
            (seed >> 56) as u8,
        ][(seed >> 40) as usize % 14];
        let len = (seed >> 20) as usize % 200;
        let body: Vec<u8> = (0..len).map(|i| (seed >> (i % 56)) as u8).collect();
        let mut s = connect(&h, p);
        let _ = s.write_all(&frame(command, 0, &body));
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    assert_eq!(rfdfs_tests::read_back(&client, &id), b"0123456789");
    // no temp file or stray file is left in the store
    let dir = c.storages[0].store_paths[0]
        .join("data")
        .join(&id.name[4..9]);
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    let temp = c.storages[0].store_paths[0].join("data/.rfdfs_tmp");
    assert_eq!(
        std::fs::read_dir(temp).unwrap().count(),
        0,
        "unfinished uploads left in the temp dir"
    );
    assert!(std::fs::read(c.storages[0].base.join("secret.txt")).unwrap() == b"secret");
}

#[test]
fn idle_connections_do_not_starve_new_clients() {
    let c = Cluster::start(ClusterOpts {
        tracker_extra: "work_threads=4\nmax_connections=300\n".into(),
        storage_extra: "work_threads=4\nmax_connections=300\n".into(),
        ..Default::default()
    });
    let client = c.client();
    let id = rfdfs_tests::upload(&client, b"served", "");
    let mut idle = Vec::new();
    for _ in 0..200 {
        // each completes one request and then idles, as pooled client connections do
        let mut s = connect(&c.tracker_addr.host, 22122);
        assert_eq!(
            exchange(&mut s, &frame(cmd::ACTIVE_TEST, 0, &[]))
                .unwrap()
                .0,
            0
        );
        idle.push(s);
        let mut s = connect(&c.storages[0].ip, 23000);
        assert_eq!(
            exchange(&mut s, &frame(cmd::ACTIVE_TEST, 0, &[]))
                .unwrap()
                .0,
            0
        );
        idle.push(s);
    }
    assert_eq!(rfdfs_tests::read_back(&client, &id), b"served");
    let id2 = rfdfs_tests::upload(&client, b"also", "");
    assert_eq!(rfdfs_tests::read_back(&client, &id2), b"also");
    // the idle ones still work
    for s in idle.iter_mut().take(10) {
        assert_eq!(exchange(s, &frame(cmd::ACTIVE_TEST, 0, &[])).unwrap().0, 0);
    }
}

#[test]
fn max_connections_and_network_timeout() {
    let c = Cluster::start(ClusterOpts {
        tracker_extra: "max_connections=20\nnetwork_timeout=2\n".into(),
        ..Default::default()
    });
    let (h, p) = (c.tracker_addr.host.clone(), c.tracker_addr.port);
    // a stalled packet is cut off after network_timeout
    let mut stalled = connect(&h, p);
    stalled
        .write_all(&[
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            16,
            cmd::QUERY_STORE_WITH_GROUP_ONE,
            0,
            b'g',
        ])
        .unwrap();
    let t0 = std::time::Instant::now();
    assert!(is_closed(&mut stalled));
    assert!(
        t0.elapsed() >= std::time::Duration::from_millis(1500),
        "closed too early: {:?}",
        t0.elapsed()
    );
    // a connection that never sends anything is closed too
    let mut silent = connect(&h, p);
    assert!(is_closed(&mut silent));
    // beyond max_connections new peers are refused, below it they are served
    let mut held = Vec::new();
    for _ in 0..19 {
        let mut s = connect(&h, p);
        assert_eq!(
            exchange(&mut s, &frame(cmd::ACTIVE_TEST, 0, &[]))
                .unwrap()
                .0,
            0
        );
        held.push(s);
    }
    let mut over = Vec::new();
    let mut refused = 0;
    for _ in 0..5 {
        let mut s = connect(&h, p);
        match exchange(&mut s, &frame(cmd::ACTIVE_TEST, 0, &[])) {
            Some((0, _)) => over.push(s),
            _ => refused += 1,
        }
    }
    assert!(
        refused >= 4,
        "max_connections not enforced: {refused} refused"
    );
    drop(held);
    drop(over);
    // and capacity comes back
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut s = connect(&h, p);
        if exchange(&mut s, &frame(cmd::ACTIVE_TEST, 0, &[])).is_some() {
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The command table (`fdfs_common::proto::commands`) and the daemons' dispatch agree: every
/// command the table says a daemon answers reaches one of its handlers (an empty body is
/// refused there, or answered), none is logged as an unknown command; a code the table does
/// not have is. Storage commands are sent from the storage's own address, which may send the
/// member-only ones.
#[test]
fn every_command_of_the_table_reaches_a_handler() {
    use fdfs_common::proto::commands::{self, ServedBy};
    use rfdfs_tests::raw::{connect_from, read_response};
    let c = Cluster::start(ClusterOpts::default());
    let storage_ip = c.storages[0].ip.clone();
    let daemons = [
        (
            ServedBy::Storage,
            storage_ip.clone(),
            storage_ip.clone(),
            23000,
        ),
        (
            ServedBy::Tracker,
            storage_ip.clone(),
            c.tracker_addr.host.clone(),
            c.tracker_addr.port,
        ),
    ];
    for (daemon, from, host, port) in daemons {
        let log = || match daemon {
            ServedBy::Tracker => c.tracker.log(),
            _ => c.storages[0].daemon.log(),
        };
        let mut sent = 0;
        for command in commands::served_by(daemon) {
            let mut s = connect_from(&from, &host, port);
            s.write_all(&frame(command.code, 0, &[])).unwrap();
            let _ = read_response(&mut s);
            sent += 1;
            assert!(
                !log().contains(&format!("unknown cmd: {}\n", command.code)),
                "{daemon:?} has no handler for {} ({})",
                command.name,
                command.code
            );
        }
        assert!(sent > 30, "{daemon:?}: only {sent} commands in the table");
        // a code outside the table is what the log line above is about
        let mut s = connect_from(&from, &host, port);
        s.write_all(&frame(250, 0, &[])).unwrap();
        let _ = read_response(&mut s);
        rfdfs_tests::wait_for(
            "the unknown command's log line",
            || log().contains("unknown cmd: 250\n").then_some(()),
            log,
        );
    }
}

/// A refusal of a request's contents is logged the one way every malformed request is (command,
/// field, peer), in both daemons: a body too short for UPLOAD_FILE's header, a tracker command
/// with a body where none belongs, a group name of the wrong length.
#[test]
fn refusals_name_the_field_in_the_log() {
    let c = Cluster::start(ClusterOpts::default());
    let ip = c.storages[0].ip.clone();
    let mut s = connect(&ip, 23000);
    assert_eq!(
        exchange(&mut s, &frame(cmd::UPLOAD_FILE, 0, b"short")).map(|r| r.0),
        Some(errno::EINVAL)
    );
    let (h, p) = (c.tracker_addr.host.as_str(), c.tracker_addr.port);
    let mut t = connect(h, p);
    for (command, body) in [
        (cmd::SERVER_GET_LEADER, &b"x"[..]),
        (cmd::SERVER_LIST_ONE_GROUP, &b"group1"[..]),
    ] {
        assert_eq!(
            exchange(&mut t, &frame(command, 0, body)).map(|r| r.0),
            Some(errno::EINVAL)
        );
    }
    let storage_log = c.storages[0].daemon.log();
    assert!(
        storage_log.contains("cmd: 11 (UPLOAD_FILE), malformed request: invalid body: 5 bytes"),
        "{storage_log}"
    );
    let tracker_log = c.tracker.log();
    for line in [
        "cmd: 95 (SERVER_GET_LEADER), malformed request: 1 unexpected trailing bytes",
        "cmd: 90 (SERVER_LIST_ONE_GROUP), malformed request: body too short for field group_name",
    ] {
        assert!(tracker_log.contains(line), "{line}\n{tracker_log}");
    }
}
