//! Several groups: `store_lookup` 0/1/2, reserved space per group, and several store paths
//! (docs/protocol/cluster-protocol.md section 5).
//!
//! The groups keep their store paths on two file systems with very different free space (two
//! tmpfs the tests mount), so that "most free space" and "reserved space reached" are real
//! conditions the storages measure, not settings.

use fdfs_client::Upload;
use fdfs_client::{Client, Content};
use fdfs_common::net::NetError;
use fdfs_common::proto::errno;
use rfdfs_tests::{Cluster, ClusterOpts, Tmpfs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn free_mb(p: &Path) -> i64 {
    let s = nix::sys::statvfs::statvfs(p).expect("statvfs");
    (s.blocks_available() as u128 * s.fragment_size() as u128 / (1 << 20)) as i64
}

/// Two file systems of the test's own whose free space differs by 1.75 GiB: the host's own
/// disk fill stays out of the tests (a tmpfs takes memory only for what is written on it).
struct FileSystems {
    small: Tmpfs,
    big: Tmpfs,
}

impl FileSystems {
    fn find() -> FileSystems {
        FileSystems {
            small: Tmpfs::new("groups-small", 256),
            big: Tmpfs::new("groups-big", 2048),
        }
    }
}

/// Two groups of `per_group` storages: group1 on the small file system, group2 on the big one.
fn two_groups(fs: &FileSystems, trackers: usize, per_group: usize, tracker_extra: &str) -> Cluster {
    let c = Cluster::start(ClusterOpts {
        trackers,
        storages: 2 * per_group,
        groups: 2,
        group_store_roots: vec![
            ("group1".into(), fs.small.dir.clone()),
            ("group2".into(), fs.big.dir.clone()),
        ],
        tracker_extra: tracker_extra.into(),
        ..Default::default()
    });
    wait_space_known(&c.client());
    c
}

/// Until both groups have reported their disk space to every tracker (policies depend on it).
fn wait_space_known(client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let trackers = client.cfg.tracker_servers.len();
    loop {
        // the client asks the trackers in turn: a round of answers covers each of them
        let known = (0..trackers).all(|_| {
            let groups = client.list_groups().unwrap_or_default();
            groups.len() == 2 && groups.iter().all(|g| g.total_mb > 0)
        });
        if known {
            return;
        }
        let groups = client.list_groups().unwrap_or_default();
        assert!(Instant::now() < deadline, "no disk figures: {groups:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Upload `n` small files without naming a group; the group each went to.
fn upload_groups(client: &Client, n: usize) -> Vec<String> {
    (0..n)
        .map(|k| {
            client
                .upload(
                    Content::Buffer(format!("f{k}").as_bytes()),
                    "txt",
                    Upload::File,
                    None,
                    None,
                )
                .unwrap()
                .group
        })
        .collect()
}

#[test]
fn store_lookup_round_robin_named_group_and_most_free_space() {
    let fs = FileSystems::find();

    // 0: round robin over the groups; 3 trackers, each with its own turn, 2 storages a group
    let c = two_groups(&fs, 3, 2, "store_lookup=0\n");
    let got = upload_groups(&c.client(), 12);
    let in_group1 = got.iter().filter(|g| *g == "group1").count();
    assert!((4..=8).contains(&in_group1), "not spread: {got:?}");
    // each tracker alternates: the client takes the trackers in turn
    for t in 0..3 {
        let seen: Vec<_> = got.iter().skip(t).step_by(3).collect();
        assert!(
            seen.windows(2).all(|w| w[0] != w[1]),
            "tracker {t}: {seen:?}"
        );
    }
    drop(c);

    // 1: always the configured group, unless the client names one
    let c = two_groups(&fs, 3, 2, "store_lookup=1\nstore_group=group1\n");
    let client = c.client();
    assert!(upload_groups(&client, 6).iter().all(|g| g == "group1"));
    let named = client
        .upload(
            Content::Buffer(b"x"),
            "txt",
            Upload::File,
            None,
            Some("group2"),
        )
        .unwrap();
    assert_eq!(named.group, "group2");
    drop(c);

    // 2: the group with the most free space
    let c = two_groups(&fs, 3, 2, "store_lookup=2\n");
    let groups = c.client().list_groups().unwrap();
    let best = groups
        .iter()
        .max_by_key(|g| g.free_mb)
        .unwrap()
        .group
        .clone();
    assert_eq!(best, "group2", "{groups:?}");
    assert!(upload_groups(&c.client(), 6).iter().all(|g| *g == best));
}

#[test]
fn reserved_space_skips_a_full_group_and_all_full_is_enospc() {
    let fs = FileSystems::find();
    // between the two groups' free space: group1 is full, group2 is not
    let reserved = (free_mb(&fs.small.dir) + free_mb(&fs.big.dir)) / 2;
    let c = two_groups(&fs, 1, 1, &format!("reserved_storage_space={reserved}MB\n"));
    let client = c.client();
    assert!(upload_groups(&client, 6).iter().all(|g| g == "group2"));
    match client.upload(
        Content::Buffer(b"x"),
        "txt",
        Upload::File,
        None,
        Some("group1"),
    ) {
        Err(NetError::Status(s)) => assert_eq!(s, errno::ENOSPC),
        other => panic!("upload to the full group: {other:?}"),
    }
    for g in client.list_groups().unwrap() {
        assert_eq!(g.reserved_mb, reserved, "{g:?}");
    }
    drop(c);

    // more than either has: nothing can take a file
    let reserved = free_mb(&fs.big.dir) + 100 * 1024;
    let c = two_groups(&fs, 1, 1, &format!("reserved_storage_space={reserved}MB\n"));
    match c
        .client()
        .upload(Content::Buffer(b"x"), "txt", Upload::File, None, None)
    {
        Err(NetError::Status(s)) => assert_eq!(s, errno::ENOSPC),
        other => panic!("upload with every group full: {other:?}"),
    }
}

#[test]
fn a_group_is_as_full_as_its_fullest_member() {
    let fs = FileSystems::find();
    let reserved = (free_mb(&fs.small.dir) + free_mb(&fs.big.dir)) / 2;
    let mut c = Cluster::start(ClusterOpts {
        storages: 1,
        group_store_roots: vec![("group1".into(), fs.big.dir.clone())],
        tracker_extra: format!("reserved_storage_space={reserved}MB\n"),
        ..Default::default()
    });
    // the first member (big file system) alone has room
    let client = c.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.list_groups().unwrap()[0].total_mb == 0 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    rfdfs_tests::upload(&client, b"room", "txt");
    // a second member on the small file system makes the group full
    let opts = ClusterOpts {
        group_store_roots: vec![("group1".into(), fs.small.dir.clone())],
        ..Default::default()
    };
    c.add_storage(&opts);
    c.wait_active(2);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let g = &client.list_groups().unwrap()[0];
        if g.free_mb < reserved {
            break;
        }
        assert!(Instant::now() < deadline, "group free space still {g:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    match client.upload(Content::Buffer(b"full"), "txt", Upload::File, None, None) {
        Err(NetError::Status(s)) => assert_eq!(s, errno::ENOSPC),
        other => panic!("upload to a group with a full member: {other:?}"),
    }
}

#[test]
fn store_path_round_robin_fills_every_path() {
    let c = Cluster::start(ClusterOpts {
        store_paths: 2,
        tracker_extra: "store_path=0\n".into(),
        ..Default::default()
    });
    let client = c.client();
    let mut per_path = [0usize; 2];
    for k in 0..10 {
        let data = format!("path file {k}").into_bytes();
        let id = rfdfs_tests::upload(&client, &data, "txt");
        let p = match &id.name[..3] {
            "M00" => 0,
            "M01" => 1,
            other => panic!("unexpected store path {other} in {id}"),
        };
        per_path[p] += 1;
        let local = c.storages[0].store_paths[p]
            .join("data")
            .join(&id.name[4..]);
        assert_eq!(std::fs::read(&local).unwrap(), data, "{}", local.display());
        assert_eq!(rfdfs_tests::read_back(&client, &id), data);
    }
    assert_eq!(per_path, [5, 5], "store_path=0 alternates the paths");
}

#[test]
fn an_emptied_group_is_deleted_and_uploads_go_elsewhere() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        groups: 2,
        ..Default::default()
    });
    let client = c.client();
    let member = c.storages[1].ip.clone();
    assert_eq!(c.storages[1].group, "group2");
    // a group with a live member cannot go, nor can a live member
    let (_, out, _) = c.tool("fdfs_monitor", &["delete", "group2"]);
    assert!(out.contains("delete group: group2 fail"), "{out}");
    assert_eq!(c.storages[1].daemon.stop(), Some(0));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, out, _) = c.tool("fdfs_monitor", &["delete", "group2", &member]);
        if out.contains("success") {
            break;
        }
        assert!(Instant::now() < deadline, "{out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, out, _) = c.tool("fdfs_monitor", &["delete", "group2"]);
    assert_eq!(code, 0);
    assert!(out.contains("delete group: group2 success"), "{out}");
    let groups = client.list_groups().unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert!(upload_groups(&client, 4).iter().all(|g| g == "group1"));
}

/// Start one more group1 storage with its own store paths and extra settings (not waited for).
fn extra_storage(c: &mut Cluster, k: u8, paths: &[PathBuf], extra: &str) -> rfdfs_tests::Daemon {
    let base = c.dir.path().join(format!("extra{k}"));
    std::fs::create_dir_all(&base).unwrap();
    for p in paths {
        std::fs::create_dir_all(p).unwrap();
    }
    let ip = format!("127.{}.{}.{}", c.net.0, c.net.1, 100 + k);
    let conf = base.join("storage.conf");
    std::fs::write(
        &conf,
        rfdfs_tests::storage_conf_text(&ip, 23000, &base, paths, 4, &c.tracker_addrs(), extra),
    )
    .unwrap();
    rfdfs_tests::Daemon::start("fdfs_storaged", &conf, &base)
}

#[test]
fn store_path_most_free_space_picks_the_roomier_path() {
    let fs = FileSystems::find();
    let mut c = Cluster::start(ClusterOpts {
        storages: 0,
        tracker_extra: "store_path=2\n".into(),
        ..Default::default()
    });
    let small = rfdfs_tests::TempDir::new_in(&fs.small.dir, "path");
    let big = rfdfs_tests::TempDir::new_in(&fs.big.dir, "path");
    let _d = extra_storage(
        &mut c,
        0,
        &[small.path().join("p0"), big.path().join("p1")],
        "",
    );
    c.wait_active(1);
    let client = c.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.list_groups().unwrap()[0].total_mb == 0 {
        assert!(Instant::now() < deadline, "no disk report");
        std::thread::sleep(Duration::from_millis(50));
    }
    for k in 0..6 {
        let id = client
            .upload(
                Content::Buffer(format!("p{k}").as_bytes()),
                "txt",
                Upload::File,
                None,
                None,
            )
            .unwrap();
        assert!(id.name.starts_with("M01/"), "{id} not on the roomier path");
    }
}

#[test]
fn store_server_by_upload_priority_and_download_server_source_first() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 1,
        storage_extra: "upload_priority=20\n".into(),
        tracker_extra: "store_server=2\ndownload_server=1\n".into(),
        ..Default::default()
    });
    let dir = c.dir.path().join("extra-store");
    let _d = extra_storage(&mut c, 1, &[dir], "upload_priority=5\n");
    c.wait_active(2);
    let client = c.client();
    let preferred = format!("127.{}.{}.101", c.net.0, c.net.1);
    let mut ids = Vec::new();
    for k in 0..6 {
        let data = format!("prio{k}").into_bytes();
        let id = rfdfs_tests::upload(&client, &data, "txt");
        let info = client.file_info(&id, 0).unwrap();
        assert_eq!(info.source_ip, preferred, "{id}");
        ids.push(id);
    }
    // download_server=1: the source, every time, even once both members surely have the file
    for id in &ids {
        let deadline = Instant::now() + Duration::from_secs(30);
        // a member surely has a file once it received a later one from the same source
        while client.query_fetch_all(id).unwrap().len() < 2 {
            assert!(Instant::now() < deadline, "{id} never on both members");
            rfdfs_tests::upload(&client, b"tick", "txt");
            std::thread::sleep(Duration::from_millis(200));
        }
        for _ in 0..4 {
            assert_eq!(client.query_fetch(id).unwrap().host, preferred);
        }
    }
}
