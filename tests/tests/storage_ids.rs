//! Server ids: `use_storage_id = true` with `id_type_in_filename = id`
//! (docs/protocol/cluster-protocol.md 7).

use fdfs_client::FileId;
use fdfs_common::config::HostPort;
use fdfs_common::file_id::{RemoteName, Source};
use fdfs_common::proto::status;
use rfdfs_tests::{run_tool, storage_conf_text, Cluster, ClusterOpts, Daemon};
use std::time::{Duration, Instant};

/// Wait until `id` can be read from the storage at `addr` (replication is asynchronous).
fn wait_readable(c: &Cluster, addr: &HostPort, id: &FileId, want: &[u8]) {
    let client = c.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut got = Vec::new();
        if client
            .download_from(addr, id, 0, 0, || Ok(&mut got))
            .is_ok()
            && got == want
        {
            return;
        }
        assert!(Instant::now() < deadline, "{id} never readable on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn source_of(id: &FileId) -> Source {
    RemoteName::decode(&id.name).unwrap().payload.source
}

#[test]
fn ids_in_file_ids_and_identity_kept_across_an_address_change() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        storage_ids: true,
        ..Default::default()
    });
    let client = c.client();

    // the tracker knows the storages by id, at their addresses
    let listed = client.list_storages("group1", None).unwrap();
    let mut ids: Vec<(String, String)> = listed
        .iter()
        .map(|s| (s.id.clone(), s.ip.clone()))
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![
            ("100001".to_string(), c.storages[0].ip.clone()),
            ("100002".to_string(), c.storages[1].ip.clone()),
        ]
    );
    let (code, out, _) = c.tool("fdfs_monitor", &["list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("id = 100001") && out.contains("id = 100002"),
        "{out}"
    );

    // file IDs carry the uploading storage's id, and every file reaches both members
    let mut files = Vec::new();
    for k in 0..20 {
        let data = format!("file {k} with ids").into_bytes();
        let id = rfdfs_tests::upload(&client, &data, "txt");
        match source_of(&id) {
            Source::Id(n) => assert!(n == 100001 || n == 100002, "{id}: {n}"),
            other => panic!("{id} carries {other:?}, not a server id"),
        }
        files.push((id, data));
    }
    let from_first: Vec<_> = files
        .iter()
        .filter(|(id, _)| source_of(id) == Source::Id(100001))
        .cloned()
        .collect();
    assert!(
        !from_first.is_empty(),
        "round robin never chose storage 100001"
    );
    for (id, data) in &files {
        for i in 0..2 {
            wait_readable(&c, &c.storage_addr(i), id, data);
        }
    }
    let info = client.file_info(&files[0].0, 0).unwrap();
    assert!(info.source_id == 100001 || info.source_id == 100002);
    // marks are named by the peer's id, as upstream names them with ids
    for (i, peer) in [(0, "100002"), (1, "100001")] {
        let mark = c.storages[i].base.join(format!("data/sync/{peer}.mark"));
        assert!(mark.exists(), "{} missing", mark.display());
    }

    // storage 100001 comes back on a new address with its id pinned in storage.conf
    let old_ip = c.storages[0].ip.clone();
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    let new_ip = format!("127.{}.{}.60", c.net.0, c.net.1);
    let conf = c.storages[0].daemon.conf.clone();
    let text = std::fs::read_to_string(&conf).unwrap().replace(
        &format!("bind_addr={old_ip}"),
        &format!("bind_addr={new_ip}"),
    ) + "server_id=100001\n";
    std::fs::write(&conf, text).unwrap();
    let base = c.storages[0].base.clone();
    c.storages[0].daemon = Daemon::start("fdfs_storaged", &conf, &base);
    c.storages[0].ip = new_ip.clone();
    rfdfs_tests::wait_port(&new_ip, 23000, "storage");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = client.list_storages("group1", Some("100001")).unwrap();
        if s[0].ip == new_ip && s[0].status == status::ACTIVE {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "100001 not ACTIVE at {new_ip}: {:?}\n{}",
            s[0],
            c.storages[0].daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(client.list_storages("group1", None).unwrap().len(), 2);

    // its old files are served, and the tracker sends clients to the new address
    for (id, data) in &from_first {
        let servers = client.query_fetch_all(id).unwrap();
        assert!(servers.contains(&c.storage_addr(0)), "{id}: {servers:?}");
        assert!(
            servers.iter().all(|s| s.host != old_ip),
            "{id}: {servers:?}"
        );
        wait_readable(&c, &c.storage_addr(0), id, data);
        assert_eq!(&client.download_to_vec(id, 0, 0).unwrap(), data);
    }
    // new uploads from it still carry its id and replicate both ways
    let mut seen_first = false;
    for k in 0..10 {
        let data = format!("after the move {k}").into_bytes();
        let id = rfdfs_tests::upload(&client, &data, "txt");
        seen_first |= source_of(&id) == Source::Id(100001);
        for i in 0..2 {
            wait_readable(&c, &c.storage_addr(i), &id, &data);
        }
    }
    assert!(seen_first, "the moved storage took no uploads");
}

#[test]
fn an_unlisted_storage_is_refused() {
    let c = Cluster::start(ClusterOpts {
        storages: 1,
        storage_ids: true,
        ..Default::default()
    });
    // no id is listed at this address: the storage cannot learn its id and stops
    let base = c.dir.path().join("unlisted");
    let store = base.join("store0");
    std::fs::create_dir_all(&store).unwrap();
    let conf = base.join("storage.conf");
    let ip = format!("127.{}.{}.70", c.net.0, c.net.1);
    std::fs::write(
        &conf,
        storage_conf_text(&ip, 23000, &base, &[store], 4, &c.tracker_addrs(), ""),
    )
    .unwrap();
    let mut d = Daemon::start("fdfs_storaged", &conf, &base);
    let deadline = Instant::now() + Duration::from_secs(30);
    while d.alive() {
        assert!(Instant::now() < deadline, "storage with no id kept running");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.log().contains("server id"), "{}", d.log());
    assert_eq!(c.client().list_storages("group1", None).unwrap().len(), 1);
}

/// Start a storage at `127.a.b.<last>` whose storage.conf has no `group_name` line.
fn start_without_group_name(c: &Cluster, tag: &str, last: u8, extra: &str) -> Daemon {
    let base = c.dir.path().join(tag);
    let store = base.join("store0");
    std::fs::create_dir_all(&store).unwrap();
    let conf = base.join("storage.conf");
    let ip = format!("127.{}.{}.{last}", c.net.0, c.net.1);
    let text = storage_conf_text(&ip, 23000, &base, &[store], 4, &c.tracker_addrs(), extra)
        .replace("group_name=group1\n", "");
    std::fs::write(&conf, text).unwrap();
    Daemon::start("fdfs_storaged", &conf, &base)
}

/// Wait until `d` has stopped by itself; its log.
fn log_after_exit(mut d: Daemon, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    while d.alive() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    d.log()
}

/// storage.conf without `group_name` (upstream's behaviour with storage ids): the storage asks
/// the tracker, which answers with the group storage_ids.conf lists it in; with `group_name`
/// present but empty it refuses to start.
#[test]
fn a_storage_without_group_name_asks_the_tracker() {
    let c = Cluster::start(ClusterOpts {
        storages: 1,
        groups: 2,
        storage_ids: true,
        ..Default::default()
    });
    c.wait_active(1);
    // spare 1 (127.a.b.11) is listed in group2
    let d = start_without_group_name(&c, "nameless", 11, "");
    let client = c.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client
        .list_storages("group2", None)
        .is_ok_and(|l| l.iter().any(|s| s.status == status::ACTIVE))
    {
        assert!(
            Instant::now() < deadline,
            "the storage never joined group2: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.log().contains("tracker server"), "{}", d.log());

    let empty = start_without_group_name(&c, "empty-name", 12, "group_name=\n");
    let log = log_after_exit(empty, "an empty group_name was accepted");
    assert!(log.contains("group_name"), "{log}");
}

/// Without storage ids on the tracker nobody can say the group: the storage stops and says why.
#[test]
fn no_group_name_and_no_storage_ids_is_refused_with_the_reason() {
    let c = Cluster::start(ClusterOpts::default());
    let d = start_without_group_name(&c, "nameless", 40, "");
    let log = log_after_exit(d, "a storage without a group kept running");
    assert!(log.contains("does not use storage ids"), "{log}");
}

/// client.conf's id keys: `use_storage_id` + `storage_ids_filename` (or the same from the
/// trackers with `load_fdfs_parameters_from_tracker`) let `fdfs_file_info` resolve an id-named
/// file locally, as upstream's; a storage listed with two IPs is retried on the other one when
/// the address the tracker gave does not answer, first on the one that answered last with
/// `connect_first_by = last-connected`.
#[test]
fn client_conf_id_table_resolves_names_and_retries_dual_ip_storages() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 1,
        storage_ids: true,
        ..Default::default()
    });
    // storage 0 moves to an inner (10/8) address, listed beside an outer one nothing listens
    // on (upstream wants the two of different classes, and orders the inner first): the
    // tracker hands a client on loopback (outer) the outer, dead one
    let (a, b) = c.net;
    let live = format!("10.{a}.{b}.10");
    let dead = format!("127.{a}.{b}.60");
    let _lo = rfdfs_tests::loopback::LoopbackAddress::add(&live);
    let ids_file = c.dir.path().join("storage_ids.conf");
    let text = std::fs::read_to_string(&ids_file).unwrap().replace(
        &format!("100001 group1 127.{a}.{b}.10\n"),
        &format!("100001 group1 {dead},{live}\n"),
    );
    std::fs::write(&ids_file, text).unwrap();
    c.tracker.stop();
    c.tracker = Daemon::start(
        "fdfs_trackerd",
        &c.tracker.conf.clone(),
        &c.tracker.base.clone(),
    );
    rfdfs_tests::wait_port(&c.tracker_addr.host.clone(), 22122, "tracker");
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    c.edit_storage_conf(0, |text| {
        text.replace(
            &format!("bind_addr=127.{a}.{b}.10"),
            &format!("bind_addr={live}"),
        )
    });
    c.storages[0].ip = live.clone();
    c.start_storage(0);
    c.wait_active(1);

    let base = std::fs::read_to_string(&c.client_conf).unwrap();
    let conf = |name: &str, extra: &str| {
        let p = c.dir.path().join(name);
        std::fs::write(&p, format!("{base}\n{extra}\n")).unwrap();
        p.to_str().unwrap().to_string()
    };
    let plain = conf("plain.conf", "");
    let by_tracker = conf(
        "ids.conf",
        &format!(
            "use_storage_id=true\nstorage_ids_filename={}\n",
            ids_file.display()
        ),
    );
    let by_last = conf(
        "last.conf",
        &format!(
            "use_storage_id=true\nstorage_ids_filename={}\nconnect_first_by=last-connected\n",
            ids_file.display()
        ),
    );
    let from_tracker = conf("params.conf", "load_fdfs_parameters_from_tracker=true\n");
    let unreachable = format!("connect to server {dead}:23000 fail");

    // without the table the tool has only the tracker's address, which does not answer
    let local = c.dir.path().join("up.txt");
    std::fs::write(&local, b"dual").unwrap();
    let local = local.to_str().unwrap();
    let (code, _, err) = run_tool("fdfs_upload_file", &[&plain, local]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(&unreachable), "{err}");
    // with it, the other address is tried
    let (code, out, err) = run_tool("fdfs_upload_file", &[&by_tracker, local]);
    assert_eq!(code, 0, "{err}");
    let id = out.trim().to_string();

    // fdfs_test connects to the storage four times: each tries the tracker's address first,
    // unless the last one that answered is tried first
    let (code, out, err) = run_tool("fdfs_test", &[&by_tracker, "upload", local]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.matches(&unreachable).count() >= 4, "{err}");
    let (code, out, err) = run_tool("fdfs_test", &[&by_last, "upload", local]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(err.matches(&unreachable).count(), 1, "{err}");

    // an id-named file resolved in the table (upstream: the id's first address, the inner
    // one), not asked
    let info = |conf: &str| {
        let (code, out, err) = run_tool("fdfs_file_info", &[conf, &id]);
        assert_eq!(code, 0, "{err}");
        out
    };
    for conf in [&by_tracker, &from_tracker] {
        let out = info(conf);
        assert!(out.starts_with("GET FROM SERVER: false\n"), "{out}");
        assert!(
            out.contains(&format!("source ip address: {live}\n")),
            "{out}"
        );
        assert!(out.contains("file size: 4\n"), "{out}");
    }
    // without the table the storage is asked, on the address the tracker gives
    let (_, out, err) = run_tool("fdfs_file_info", &[&plain, &id]);
    assert!(
        out.is_empty() && err.contains("query file info fail"),
        "{out}{err}"
    );
    assert!(err.contains(&unreachable), "{err}");
}
