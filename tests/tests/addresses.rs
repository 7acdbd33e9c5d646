//! Addresses that move (issue 31): dual-address `tracker_server` lines, host names whose
//! addresses change, and more to come.

use fdfs_common::config::HostPort;
use rfdfs_tests::forwarder::Forwarder;
use rfdfs_tests::hosts_file::HostName;
use rfdfs_tests::loopback::LoopbackAddress;
use rfdfs_tests::netns::SecondNetwork;
use rfdfs_tests::partition::{Link, Partition};
use rfdfs_tests::{run_tool, wait_port, Cluster, ClusterOpts, Daemon};
use std::time::Duration;

/// A `tracker_server` line with two addresses of one tracker, `inner,outer:port` (upstream
/// 6.00's form; upstream refuses two addresses of the same class): the tools and the storage
/// reach the tracker through the second address when the first does not answer, and the
/// tracker finds itself in the storages' list by its second address. The dead first address is
/// a 10/8 address put on the loopback interface for the test (nothing listens there: refused
/// at once, and no packet leaves the machine).
#[test]
fn a_tracker_reached_through_the_second_address_of_its_line() {
    let mut c = Cluster::start(ClusterOpts::default());
    let live = c.tracker_addr.clone();
    let dead = format!("10.{}.{}.250", c.net.0, c.net.1);
    let _lo = LoopbackAddress::add(&dead);
    let dual = format!("tracker_server={dead},{}:{}", live.host, live.port);

    // the storage: its only tracker line is the dual one
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    c.edit_storage_conf(0, |text| {
        let text = text.replace(&format!("tracker_server={live}"), &dual);
        assert!(text.contains(&dual), "{text}");
        text
    });
    c.start_storage(0);
    c.wait_active_for(1, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", c.storages[0].daemon.log()));

    // a client.conf with only the dual line: upload, download, info
    let client_conf = c.dir.path().join("client-dual.conf");
    std::fs::write(
        &client_conf,
        format!("connect_timeout=2\nnetwork_timeout=30\n{dual}\n"),
    )
    .unwrap();
    let conf = client_conf.to_str().unwrap();
    let id = upload_text(&c, conf, "through the second address");
    let back = c.dir.path().join("back.txt");
    let (code, out, err) = run_tool("fdfs_download_file", &[conf, &id, back.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read(&back).unwrap(), b"through the second address");
    // the tracker kept the storages' dual entry and knows itself by its second address
    // fdfs_monitor names the address it reached, as upstream's does
    let (code, out, _) = run_tool("fdfs_monitor", &[conf]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("tracker server is {live}\n")),
        "{out}"
    );
    assert!(out.contains("ACTIVE"), "{out}");
}

/// A tracker named in `/etc/hosts` moves to another address (a pod restarted): the storage,
/// which keeps running, finds it again under its name and is ACTIVE there, and the tools reach
/// it through the same client.conf, old files included.
#[test]
fn a_tracker_named_in_the_hosts_file_is_found_again_after_it_moves() {
    let mut c = Cluster::start(ClusterOpts::default());
    let old = c.tracker_addr.host.clone();
    let name = HostName::add(&format!("rfdfs-tracker-{}-{}.test", c.net.0, c.net.1), &old);
    let named = format!("tracker_server={}:22122", name.name);

    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    let tracker_line = format!("tracker_server={}", c.tracker_addr);
    // only a failure makes it ask again within the test's time
    c.edit_storage_conf(0, |text| {
        text.replace(&tracker_line, &named) + "dns_refresh_interval=3600\n"
    });
    c.start_storage(0);
    c.wait_active(1);
    let client_conf = c.dir.path().join("client-named.conf");
    std::fs::write(
        &client_conf,
        format!("connect_timeout=2\nnetwork_timeout=30\n{named}\n"),
    )
    .unwrap();
    let conf = client_conf.to_str().unwrap();
    let before = upload_text(&c, conf, "before the move");

    // the tracker comes back on another address, with its data; the name follows it
    let new = format!("127.{}.{}.72", c.net.0, c.net.1);
    assert_eq!(c.tracker.stop(), Some(0));
    let tconf = c.tracker.conf.clone();
    let text = std::fs::read_to_string(&tconf)
        .unwrap()
        .replace(&format!("bind_addr={old}"), &format!("bind_addr={new}"));
    std::fs::write(&tconf, text).unwrap();
    name.point_at(&new);
    c.tracker = Daemon::start("fdfs_trackerd", &tconf, &c.tracker.base.clone());
    wait_port(&new, 22122, "tracker");
    c.tracker_addr = HostPort::new(new.clone(), 22122);

    c.wait_active_for(1, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", c.storages[0].daemon.log()));
    assert!(
        c.storages[0]
            .daemon
            .log()
            .contains(&format!("host {} moved from {old} to {new}", name.name)),
        "{}",
        c.storages[0].daemon.log()
    );
    let after = upload_text(&c, conf, "after the move");
    for (id, text) in [(before, "before the move"), (after, "after the move")] {
        let back = c.dir.path().join("back.txt");
        let (code, out, err) = run_tool("fdfs_download_file", &[conf, &id, back.to_str().unwrap()]);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(std::fs::read_to_string(&back).unwrap(), text);
    }
}

/// Upload `text` with `fdfs_upload_file` and the client.conf `conf`; its file ID.
fn upload_text(c: &Cluster, conf: &str, text: &str) -> String {
    let local = c.dir.path().join("upload.txt");
    std::fs::write(&local, text).unwrap();
    let (code, id, err) = run_tool("fdfs_upload_file", &[conf, local.to_str().unwrap()]);
    assert_eq!(code, 0, "{id}{err}");
    id.trim().to_string()
}

/// With storage ids, storage_ids.conf names its storages by host name; a storage restarted
/// on another address (its name moved with it) is the same member: the tracker finds its id
/// under the new address, both members keep their mark files as they were, it goes ONLINE to
/// ACTIVE on its first beats with no INIT or initial sync, and files flow both ways after.
#[test]
fn a_storage_with_an_id_keeps_its_marks_when_its_address_changes() {
    use fdfs_common::proto::status;
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        storage_ids: true,
        ..Default::default()
    });
    // storage_ids.conf names both members by host names, and the tracker reads it again
    let names: Vec<HostName> = (0..2)
        .map(|i| {
            HostName::add(
                &format!("rfdfs-storage{i}-{}-{}.test", c.net.0, c.net.1),
                &c.storages[i].ip,
            )
        })
        .collect();
    let ids_file = c.dir.path().join("storage_ids.conf");
    let mut text = std::fs::read_to_string(&ids_file).unwrap();
    for (i, n) in names.iter().enumerate() {
        text = text.replace(
            &format!(" {}\n", c.storages[i].ip),
            &format!(" {}\n", n.name),
        );
    }
    std::fs::write(&ids_file, text).unwrap();
    assert_eq!(c.tracker.stop(), Some(0));
    c.tracker = Daemon::start(
        "fdfs_trackerd",
        &c.tracker.conf.clone(),
        &c.tracker.base.clone(),
    );
    c.wait_active(2);

    let client = c.client();
    let mut files = Vec::new();
    for k in 0..10 {
        let data = format!("file {k} before the move").into_bytes();
        files.push((rfdfs_tests::upload(&client, &data, "txt"), data));
    }
    rfdfs_tests::wait_converged(&c, &[0, 1], Duration::from_secs(30));
    let sync_dirs = [0, 1].map(|i| c.storages[i].base.join("data/sync"));
    let marks = |i: usize| mark_files(&sync_dirs[i]);

    // storage 0 comes back on another address; its name follows it
    let old_ip = c.storages[0].ip.clone();
    let new_ip = format!("127.{}.{}.73", c.net.0, c.net.1);
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    let marks_before = [marks(0), marks(1)];
    assert!(
        marks_before[1].contains_key("100001.mark") && marks_before[0].contains_key("100002.mark"),
        "{marks_before:?}"
    );
    c.edit_storage_conf(0, |text| {
        text.replace(
            &format!("bind_addr={old_ip}"),
            &format!("bind_addr={new_ip}"),
        )
    });
    names[0].point_at(&new_ip);
    c.storages[0].ip = new_ip.clone();
    let peer_log_before = c.storages[1].daemon.log().len();
    let started = std::time::Instant::now();
    c.start_storage(0);

    // every status the tracker gives it on the way back: ONLINE then ACTIVE, nothing new-born
    let mut seen = Vec::new();
    let active_after = rfdfs_tests::wait_for(
        "storage 100001 ACTIVE at its new address",
        || {
            let list = client.list_storages("group1", None).ok()?;
            let me = list.iter().find(|s| s.id == "100001")?;
            if me.ip != new_ip {
                return None;
            }
            if seen.last() != Some(&me.status) {
                seen.push(me.status);
            }
            (me.status == status::ACTIVE).then(|| started.elapsed())
        },
        || c.storages[0].daemon.log() + &c.tracker.log(),
    );
    assert!(
        seen.iter()
            .all(|s| matches!(*s, status::ONLINE | status::ACTIVE | status::OFFLINE)),
        "statuses on the way back: {seen:?}"
    );
    eprintln!("ACTIVE {active_after:?} after the start at the new address, statuses {seen:?}");
    // the same mark files, carried on from where they were (a peer still catching up on the
    // last lines may have moved forward, never back)
    for (i, before) in marks_before.iter().enumerate() {
        let now = marks(i);
        assert_eq!(
            now.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>()
        );
        for (name, was) in before {
            assert!(
                carries_on(was, &now[name]),
                "{name}: {was} became {}",
                now[name]
            );
        }
    }
    let peer_log = c.storages[1].daemon.log()[peer_log_before..].to_string();
    assert!(!peer_log.contains("initial sync"), "{peer_log}");

    for (id, data) in &files {
        assert_eq!(&client.download_to_vec(id, 0, 0).unwrap(), data);
    }
    for k in 0..10 {
        let data = format!("file {k} after the move").into_bytes();
        rfdfs_tests::upload(&client, &data, "txt");
    }
    let after = rfdfs_tests::wait_converged(&c, &[0, 1], Duration::from_secs(30));
    assert!(after.len() >= 20, "{after:?}");
    assert!(
        c.storages[0]
            .daemon
            .log()
            .contains(&format!("my ip={new_ip}, my id=100001")),
        "{}",
        c.storages[0].daemon.log()
    );
}

/// The mark files of a storage's `data/sync`, by name.
fn mark_files(dir: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".mark"))
        .map(|n| (n.clone(), std::fs::read_to_string(dir.join(&n)).unwrap()))
        .collect()
}

/// Whether the mark `now` carries on from `was`: the same binlog and sync-old state, positions
/// not behind.
fn carries_on(was: &str, now: &str) -> bool {
    let fields = |text: &str| -> std::collections::BTreeMap<String, i64> {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim().parse().unwrap_or(-1)))
            .collect()
    };
    let (was, now) = (fields(was), fields(now));
    was.iter().all(|(k, v)| match k.as_str() {
        "binlog_offset" | "scan_row_count" | "sync_row_count" => now.get(k) >= Some(v),
        _ => now.get(k) == Some(v),
    })
}

/// A storage behind a port forwarder (as `docker run -p 24000:23000` or a NAT): with
/// `advertise_address` naming the forwarder, the tracker hands clients the forwarder, and our
/// tools, py3fdfs and the tracker's HTTP redirect reach the storage only through it (the
/// clients' own address is refused at the bound one), while its group peer and the tracker keep
/// using the bound address; `fdfs_monitor` shows both.
#[test]
fn a_storage_behind_a_port_forwarder_is_used_through_it() {
    let net = rfdfs_tests::unique_net();
    let fwd_ip = format!("127.{}.{}.80", net.0, net.1);
    // uploads go to storage 0 (highest upload priority), downloads to the file's source
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        net: Some(net),
        tracker_extra: "store_server=2\ndownload_server=1\nhttp.redirect_port=28080\n".into(),
        ..Default::default()
    });
    let bound = c.storages[0].ip.clone();
    let forwarder = Forwarder::start(&format!("{fwd_ip}:24000"), &format!("{bound}:23000"));
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    c.edit_storage_conf(0, |text| {
        format!("{text}upload_priority=1\nadvertise_address = {fwd_ip}:24000\n")
    });
    c.start_storage(0);
    c.wait_active(2);
    // clients connect from 127.0.0.1: refused at the bound address from now on
    let _cut = Partition::new(&["127.0.0.1"], &[&bound], Link::Refused);

    let client = c.client();
    let store = client.query_store(None).unwrap();
    assert_eq!(
        (store.server.ip.as_str(), store.server.port),
        (fwd_ip.as_str(), 24000)
    );

    let conf = c.client_conf.to_str().unwrap().to_string();
    let id = upload_text(&c, &conf, "through the forwarder");
    assert!(forwarder.carried() > 0);
    let back = c.dir.path().join("back.txt");
    let (code, out, err) = run_tool("fdfs_download_file", &[&conf, &id, back.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read_to_string(&back).unwrap(),
        "through the forwarder"
    );
    let fetch = client
        .query_fetch(&fdfs_client::FileId::parse(&id).unwrap())
        .unwrap();
    assert_eq!((fetch.host.as_str(), fetch.port), (fwd_ip.as_str(), 24000));

    let (ok, out) = rfdfs_tests::py3fdfs::check(&c.tracker_addr.host, 22122);
    assert!(ok, "py3fdfs through the forwarder:\n{out}");

    // the tracker's HTTP redirect names the advertised host
    let (_, path) = id.split_once('/').unwrap();
    let (status, head, _) =
        rfdfs_tests::http_get(&c.tracker_addr.host, 28080, &format!("/group1/{path}"));
    assert_eq!(status, 302, "{head}");
    assert!(
        head.contains(&format!("Location: http://{fwd_ip}:")),
        "{head}"
    );

    // the peer syncs from and to the bound address
    rfdfs_tests::wait_converged(&c, &[0, 1], Duration::from_secs(30));
    assert!(c.storages[1]
        .daemon
        .log()
        .contains(&format!("sync thread to storage {bound}:23000 started")));
    let (code, out, _) = run_tool("fdfs_monitor", &[&conf]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("host = {bound}:23000")), "{out}");
    assert!(
        out.contains(&format!("advertised = * {fwd_ip}:24000")),
        "{out}"
    );
}

/// A client on a second network (a namespace joined by a veth pair, which cannot reach the
/// daemons' loopback addresses) reaches the tracker through a NAT-like forwarder; the storage
/// advertises the forwarder in front of it to that network only (`network => host:port`).
/// The client there uploads and downloads through it, while a client on this network is
/// handed the bound address, its own view.
#[test]
fn a_client_on_a_second_network_gets_the_address_of_its_view() {
    let net = rfdfs_tests::unique_net();
    let mut c = Cluster::start(ClusterOpts {
        net: Some(net),
        ..Default::default()
    });
    let second = SecondNetwork::new(net);
    let gateway = second.host_ip.clone();
    let bound = c.storages[0].ip.clone();
    // the second network reaches both daemons at the gateway, as through a NAT
    let _tracker_nat = Forwarder::start(&format!("{gateway}:22122"), &c.tracker_addr.to_string());
    let storage_nat = Forwarder::start(&format!("{gateway}:23000"), &format!("{bound}:23000"));
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    c.edit_storage_conf(0, |text| {
        format!("{text}advertise_address = {gateway}/32 => {gateway}\n")
    });
    c.start_storage(0);
    c.wait_active(1);

    // this network's view: the bound address
    let store = c.client().query_store(None).unwrap();
    assert_eq!(
        (store.server.ip.as_str(), store.server.port),
        (bound.as_str(), 23000)
    );

    // the second network's view: the gateway
    let conf = c.dir.path().join("client-second.conf");
    std::fs::write(
        &conf,
        format!("connect_timeout=2\nnetwork_timeout=30\ntracker_server={gateway}:22122\n"),
    )
    .unwrap();
    let conf = conf.to_str().unwrap();
    let local = c.dir.path().join("second.txt");
    std::fs::write(&local, "from the second network").unwrap();
    let out = second.run(
        &rfdfs_tests::bin("fdfs_upload_file"),
        &[conf, local.to_str().unwrap()],
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success(),
        "{id}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let back = c.dir.path().join("second-back.txt");
    let out = second.run(
        &rfdfs_tests::bin("fdfs_download_file"),
        &[conf, &id, back.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&back).unwrap(),
        "from the second network"
    );
    assert!(storage_nat.carried() >= 2, "{}", storage_nat.carried());
}
