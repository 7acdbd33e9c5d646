//! Every client command against real daemons: one tracker, one group.

use fdfs_client::Upload;
use fdfs_client::{Content, FileId};
use fdfs_common::file_id::{FileKind, RemoteName, Source};
use fdfs_common::net::NetError;
use fdfs_common::proto::{errno, status};
use rfdfs_tests::{Cluster, ClusterOpts};

fn err(e: NetError) -> i32 {
    e.errno()
}

fn meta(v: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    v.iter()
        .map(|(a, b)| (a.as_bytes().to_vec(), b.as_bytes().to_vec()))
        .collect()
}

#[test]
fn upload_download_and_file_id_fields() {
    let c = Cluster::start(ClusterOpts::default());
    let client = c.client();
    let data = b"hello fastdfs spec\n".to_vec();
    let id = rfdfs_tests::upload(&client, &data, "txt");
    assert_eq!(id.group, "group1");
    assert_eq!(id.name.len(), 44);
    assert!(
        id.name.starts_with("M00/0") && id.name.ends_with(".txt"),
        "{}",
        id.name
    );
    assert_eq!(rfdfs_tests::read_back(&client, &id), data);

    // the decoded name agrees with what the storage reports
    let n = RemoteName::decode(&id.name).unwrap();
    let info = client.query_file_info(&id, 0).unwrap();
    assert_eq!(n.kind, FileKind::Normal);
    assert_eq!(n.payload.file_size(), Some(data.len() as i64));
    assert_eq!(info.file_size, data.len() as i64);
    assert_eq!(n.payload.crc32, crc32fast::hash(&data));
    assert_eq!(info.crc32, n.payload.crc32);
    assert_eq!(info.create_timestamp, n.payload.timestamp as i64);
    assert_eq!(
        n.payload.source,
        Source::Ipv4(
            c.storages[0]
                .ip
                .parse::<std::net::Ipv4Addr>()
                .unwrap()
                .octets()
        )
    );
    assert_eq!(info.source_ip, c.storages[0].ip);
    // the file sits where upstream puts it
    let on_disk = c.storages[0].store_paths[0]
        .join("data")
        .join(&id.name[4..]);
    assert_eq!(std::fs::read(on_disk).unwrap(), data);

    // ranges: offset/length, count past EOF clamped, offset at/after EOF refused
    assert_eq!(client.download_to_vec(&id, 6, 7).unwrap(), b"fastdfs");
    assert_eq!(
        client.download_to_vec(&id, 15, 100).unwrap(),
        data[15..].to_vec()
    );
    assert_eq!(
        err(client.download_to_vec(&id, 19, 0).unwrap_err()),
        errno::EINVAL as i32
    );
    assert_eq!(
        err(client.download_to_vec(&id, 100, 5).unwrap_err()),
        errno::EINVAL as i32
    );

    // empty file: uploads, and downloads as an empty body (client-protocol 7.2)
    let empty = rfdfs_tests::upload(&client, b"", "");
    assert_eq!(
        RemoteName::decode(&empty.name).unwrap().payload.file_size(),
        Some(0)
    );
    assert!(rfdfs_tests::read_back(&client, &empty).is_empty());

    // a big file streams through
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let bid = rfdfs_tests::upload(&client, &big, "bin");
    assert_eq!(rfdfs_tests::read_back(&client, &bid), big);
    assert_eq!(
        client.download_to_vec(&bid, 1_000_000, 10).unwrap(),
        big[1_000_000..1_000_010].to_vec()
    );
}

#[test]
fn delete_metadata_and_slaves() {
    let c = Cluster::start(ClusterOpts::default());
    let client = c.client();
    let id = rfdfs_tests::upload(&client, b"master content", "jpg");

    // metadata: never set -> ENOENT; overwrite sorts; merge replaces and adds
    assert_eq!(
        err(client.get_metadata(&id).unwrap_err()),
        errno::ENOENT as i32
    );
    client
        .set_metadata(&id, &meta(&[("b", "two"), ("a", "1")]), b'O')
        .unwrap();
    assert_eq!(
        client.get_metadata(&id).unwrap(),
        meta(&[("a", "1"), ("b", "two")])
    );
    client
        .set_metadata(&id, &meta(&[("c", "3"), ("a", "ONE")]), b'M')
        .unwrap();
    assert_eq!(
        client.get_metadata(&id).unwrap(),
        meta(&[("a", "ONE"), ("b", "two"), ("c", "3")])
    );
    client
        .set_metadata(&id, &meta(&[("z", "9")]), b'O')
        .unwrap();
    assert_eq!(client.get_metadata(&id).unwrap(), meta(&[("z", "9")]));
    client.set_metadata(&id, &[], b'M').unwrap();
    assert_eq!(client.get_metadata(&id).unwrap(), meta(&[("z", "9")]));
    client.set_metadata(&id, &[], b'O').unwrap();
    assert_eq!(
        err(client.get_metadata(&id).unwrap_err()),
        errno::ENOENT as i32
    );
    assert_eq!(
        err(client
            .set_metadata(&id, &meta(&[("a", "1")]), b'X')
            .unwrap_err()),
        errno::EINVAL as i32
    );
    client
        .set_metadata(&id, &meta(&[("k", "v")]), b'M')
        .unwrap();

    // slaves: name derived from the master's, EEXIST the second time, missing master ENOENT
    let slave = client
        .upload_slave(&id, "_big", "jpg", Content::Buffer(b"slave!"))
        .unwrap();
    assert_eq!(
        slave.name,
        format!("{}_big.jpg", &id.name[..id.name.len() - 4])
    );
    assert_eq!(rfdfs_tests::read_back(&client, &slave), b"slave!");
    assert_eq!(
        err(client
            .upload_slave(&id, "_big", "jpg", Content::Buffer(b"x"))
            .unwrap_err()),
        errno::EEXIST as i32
    );
    let noext = client
        .upload_slave(&id, "-s1", "", Content::Buffer(b"s"))
        .unwrap();
    assert_eq!(noext.name, format!("{}-s1", &id.name[..id.name.len() - 4]));
    let slave_info = client.file_info(&slave, 0).unwrap();
    assert!(slave_info.from_server);
    assert_eq!(
        (slave_info.kind, slave_info.file_size, slave_info.crc32),
        (FileKind::Slave, 6, crc32fast::hash(b"slave!"))
    );
    assert_eq!(client.file_info(&slave, 1).unwrap().crc32, 0);

    // delete: file and its -m go; second delete ENOENT; wrong group EINVAL
    client.delete(&id).unwrap();
    assert_eq!(
        err(client.download_to_vec(&id, 0, 0).unwrap_err()),
        errno::ENOENT as i32
    );
    assert_eq!(err(client.delete(&id).unwrap_err()), errno::ENOENT as i32);
    let meta_file = c.storages[0].store_paths[0]
        .join("data")
        .join(format!("{}-m", &id.name[4..]));
    assert!(!meta_file.exists());
    let missing_master = FileId {
        group: id.group.clone(),
        name: id.name.clone(),
    };
    assert_eq!(
        err(client
            .upload_slave(&missing_master, "_x", "jpg", Content::Buffer(b"x"))
            .unwrap_err()),
        errno::ENOENT as i32
    );

    // every change is in upstream's binlog format
    let binlog = std::fs::read_to_string(c.storages[0].base.join("data/sync/binlog.000")).unwrap();
    let ops: Vec<(String, String)> = binlog
        .lines()
        .map(|l| {
            let mut p = l.splitn(3, ' ');
            let _ts = p.next().unwrap();
            (p.next().unwrap().to_string(), p.next().unwrap().to_string())
        })
        .collect();
    assert!(ops.contains(&("C".into(), id.name.clone())));
    assert!(ops.contains(&("C".into(), format!("{}-m", id.name))));
    assert!(ops.contains(&("U".into(), format!("{}-m", id.name))));
    assert!(ops.contains(&("C".into(), slave.name.clone())));
    assert!(ops.contains(&("D".into(), id.name.clone())));
    assert!(ops.contains(&("D".into(), format!("{}-m", id.name))));
    assert_eq!(
        std::fs::read_to_string(c.storages[0].base.join("data/sync/binlog_index.dat")).unwrap(),
        "current_write=0\ncurrent_compress=0\n"
    );
}

#[test]
fn appender_append_modify_truncate_regenerate() {
    let c = Cluster::start(ClusterOpts::default());
    let client = c.client();
    let ap = client
        .upload(
            Content::Buffer(b"appender-initial"),
            "log",
            Upload::Appender,
            None,
            None,
        )
        .unwrap();
    let n = RemoteName::decode(&ap.name).unwrap();
    assert_eq!(n.kind, FileKind::Appender);
    assert_eq!(n.payload.crc32, crc32fast::hash(b"appender-initial"));

    client.append(&ap, Content::Buffer(b"+more")).unwrap();
    client.append(&ap, Content::Buffer(b"")).unwrap(); // 0-byte append is a no-op success
    assert_eq!(
        rfdfs_tests::read_back(&client, &ap),
        b"appender-initial+more"
    );
    client.modify(&ap, 0, Content::Buffer(b"APP")).unwrap();
    client.modify(&ap, 21, Content::Buffer(b"!")).unwrap(); // offset == size appends
    assert_eq!(
        rfdfs_tests::read_back(&client, &ap),
        b"APPender-initial+more!"
    );
    assert_eq!(
        err(client.modify(&ap, 100, Content::Buffer(b"x")).unwrap_err()),
        errno::EINVAL as i32
    );
    client.truncate(&ap, 8).unwrap();
    assert_eq!(rfdfs_tests::read_back(&client, &ap), b"APPender");
    client.truncate(&ap, 10).unwrap(); // grows with zeros
    assert_eq!(rfdfs_tests::read_back(&client, &ap), b"APPender\0\0");
    client.truncate(&ap, 8).unwrap();

    let info = client.file_info(&ap, 0).unwrap();
    assert!(info.from_server);
    assert_eq!(
        (info.file_size, info.crc32),
        (8, crc32fast::hash(b"APPender"))
    );

    // append/modify/truncate on a normal file: EINVAL
    let normal = rfdfs_tests::upload(&client, b"normal", "txt");
    assert_eq!(
        err(client.append(&normal, Content::Buffer(b"x")).unwrap_err()),
        errno::EINVAL as i32
    );
    assert_eq!(
        err(client.truncate(&normal, 1).unwrap_err()),
        errno::EINVAL as i32
    );
    assert_eq!(
        err(client.regenerate_appender_filename(&normal).unwrap_err()),
        errno::EINVAL as i32
    );

    // regenerate: a normal name for the same content; the old name is gone
    let newid = client.regenerate_appender_filename(&ap).unwrap();
    let nn = RemoteName::decode(&newid.name).unwrap();
    assert_eq!(nn.kind, FileKind::Normal);
    assert_eq!(nn.payload.file_size(), Some(8));
    assert_eq!(nn.payload.crc32, crc32fast::hash(b"APPender"));
    assert_eq!(&newid.name[..10], &ap.name[..10]);
    assert_eq!(&newid.name[37..], &ap.name[37..]);
    assert_eq!(rfdfs_tests::read_back(&client, &newid), b"APPender");
    assert_eq!(
        err(client.query_file_info(&ap, 0).unwrap_err()),
        errno::ENOENT as i32
    );
    let binlog = std::fs::read_to_string(c.storages[0].base.join("data/sync/binlog.000")).unwrap();
    assert!(
        binlog.contains(&format!(" A {} 16 5\n", ap.name)),
        "{binlog}"
    );
    assert!(
        binlog.contains(&format!(" M {} 0 3\n", ap.name)),
        "{binlog}"
    );
    assert!(
        binlog.contains(&format!(" T {} 22 8\n", ap.name)),
        "{binlog}"
    );
    assert!(
        binlog.contains(&format!(" R {} {}\n", newid.name, ap.name)),
        "{binlog}"
    );
}

#[test]
fn tracker_queries_and_lists() {
    let c = Cluster::start(ClusterOpts {
        storages: 2,
        store_paths: 2,
        ..Default::default()
    });
    let client = c.client();
    let groups = client.list_groups().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(
        (
            groups[0].storage_count,
            groups[0].writable_server_count,
            groups[0].store_path_count
        ),
        (2, 2, 2)
    );
    assert_eq!(groups[0].current_trunk_file_id, -1);
    assert_eq!(client.list_one_group("group1").unwrap(), groups[0]);
    assert_eq!(
        err(client.list_one_group("group9").unwrap_err()),
        errno::ENOENT as i32
    );
    assert_eq!(client.query_store(Some("group1")).unwrap().group, "group1");
    let storages = client.list_storages("group1", None).unwrap();
    assert_eq!(storages.len(), 2);
    assert!(storages
        .iter()
        .all(|s| s.status == status::ACTIVE && s.version == "6.16.1"));
    assert_eq!(
        client
            .list_storages("group1", Some(&c.storages[1].ip))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        err(client
            .list_storages("group1", Some("127.9.9.9"))
            .unwrap_err()),
        errno::ENOENT as i32
    );
    assert_eq!(
        err(client.list_storages("nogroup", None).unwrap_err()),
        errno::ENOENT as i32
    );

    // round robin over both storages and both store paths
    let mut servers = std::collections::HashSet::new();
    let mut paths = std::collections::HashSet::new();
    for _ in 0..8 {
        let r = client.query_store(None).unwrap();
        servers.insert(r.server.ip.clone());
        paths.insert(r.store_path_index);
    }
    assert_eq!(servers.len(), 2);
    assert_eq!(paths.len(), 2);
    let all = client.query_store_all(Some("group1")).unwrap();
    assert_eq!(all.servers.len(), 2);
    assert_eq!(
        err(client.query_store(Some("nogroup")).unwrap_err()),
        errno::ENOENT as i32
    );

    // a fresh file is fetched from its source; update goes to the source too
    let id = rfdfs_tests::upload(&client, b"abc", "");
    let src = RemoteName::decode(&id.name)
        .unwrap()
        .payload
        .source
        .ip_text()
        .unwrap();
    for _ in 0..4 {
        assert_eq!(client.query_fetch(&id).unwrap().host, src);
    }
    assert_eq!(client.query_update(&id).unwrap().host, src);
    assert_eq!(client.query_fetch_all(&id).unwrap().len(), 1);

    // deleting a live storage is refused; the group is busy
    assert_eq!(
        err(client
            .delete_storage("group1", &c.storages[0].ip)
            .unwrap_err()),
        errno::EBUSY as i32
    );
    assert_eq!(
        err(client.delete_group("group1").unwrap_err()),
        errno::EBUSY as i32
    );
    assert_eq!(
        err(client.delete_group("group9").unwrap_err()),
        errno::ENOENT as i32
    );
}

#[test]
fn restart_keeps_data_and_offline_is_detected() {
    let mut c = Cluster::start(ClusterOpts::default());
    let client = c.client();
    let id = rfdfs_tests::upload(&client, b"kept across restarts", "txt");
    client
        .set_metadata(&id, &meta(&[("k", "v")]), b'O')
        .unwrap();
    let flag_before =
        std::fs::read_to_string(c.storages[0].base.join("data/.data_init_flag")).unwrap();

    c.restart_storage(0);
    assert_eq!(
        rfdfs_tests::read_back(&client, &id),
        b"kept across restarts"
    );
    assert_eq!(client.get_metadata(&id).unwrap(), meta(&[("k", "v")]));
    let flag_after =
        std::fs::read_to_string(c.storages[0].base.join("data/.data_init_flag")).unwrap();
    assert_eq!(
        flag_before, flag_after,
        "an existing tree is taken over, not re-initialised"
    );
    assert!(flag_after.contains("sync_old_done=1\n"));

    // the tracker notices the storage going away, and remembers it across its own restart
    c.storages[0].daemon.stop();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let s = client.list_storages("group1", None).unwrap();
        if s[0].status == status::OFFLINE {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "storage not marked offline"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let tconf = c.tracker.conf.clone();
    let tbase = c.tracker.base.clone();
    assert_eq!(c.tracker.stop(), Some(0));
    c.tracker = rfdfs_tests::Daemon::start("fdfs_trackerd", &tconf, &tbase);
    rfdfs_tests::wait_port(&c.tracker_addr.host, 22122, "tracker");
    let s = client.list_storages("group1", None).unwrap();
    assert_eq!((s.len(), s[0].status), (1, status::OFFLINE));
    let servers = std::fs::read_to_string(tbase.join("data/storage_servers_new.dat")).unwrap();
    assert!(servers.contains(&format!("ip_addr={}", c.storages[0].ip)));
    let s0 = &mut c.storages[0];
    s0.daemon =
        rfdfs_tests::Daemon::start("fdfs_storaged", &s0.daemon.conf.clone(), &s0.base.clone());
    c.wait_active(1);
    assert_eq!(
        rfdfs_tests::read_back(&client, &id),
        b"kept across restarts"
    );
}

#[test]
fn state_files_have_upstream_shape() {
    let c = Cluster::start(ClusterOpts::default());
    let client = c.client();
    rfdfs_tests::upload(&client, b"x", "");
    let base = &c.storages[0].base;
    let flag = std::fs::read_to_string(base.join("data/.data_init_flag")).unwrap();
    let keys: Vec<&str> = flag.lines().map(|l| l.split('=').next().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "storage_join_time",
            "sync_old_done",
            "sync_src_server",
            "sync_until_timestamp",
            "last_ip_addr",
            "last_server_port",
            "current_trunk_file_id",
            "trunk_last_compress_time",
            "trunk_binlog_compress_stage",
            "store_path_mark0"
        ]
    );
    let mark =
        std::fs::read_to_string(c.storages[0].store_paths[0].join("data/.fastdfs_vars")).unwrap();
    assert_eq!(
        mark.trim_end(),
        format!(
            "store_path_mark={}",
            flag.lines().last().unwrap().split_once('=').unwrap().1
        )
    );
    assert_eq!(mark.trim_end().len(), "store_path_mark=".len() + 75);
    for h in 0..4 {
        for l in 0..4 {
            assert!(c.storages[0].store_paths[0]
                .join(format!("data/{h:02X}/{l:02X}"))
                .is_dir());
        }
    }
    // a temp file an interrupted run left behind is removed at the next start
    let stale = c.storages[0].store_paths[0].join("data/.rfdfs_tmp/999_1.tmp");
    std::fs::write(&stale, b"partial").unwrap();
    let pid = std::fs::read_to_string(base.join("data/fdfs_storaged.pid")).unwrap();
    assert_eq!(pid, c.storages[0].daemon.pid().unwrap().to_string());
    let tdata = c.tracker.base.join("data");
    // the tracker writes its data files shortly after a change, not while answering it
    let groups = rfdfs_tests::wait_for(
        "the tracker's groups file",
        || {
            std::fs::read_to_string(tdata.join("storage_groups_new.dat"))
                .ok()
                .filter(|t| t.contains("# group: group1"))
        },
        || c.tracker.log(),
    );
    let mut c = c;
    c.restart_storage(0);
    assert!(!stale.exists(), "stale temp file survived a restart");
    assert!(groups.starts_with(
        "[Global]\n\tgroup_count=1\n\n# group: group1\n[Group001]\n\tgroup_name=group1\n"
    ));
}

#[test]
fn ipv6_width_replies_end_to_end() {
    // response_ip_addr_size other than auto: 46-byte IP fields in every reply
    let c = Cluster::start(ClusterOpts {
        tracker_extra: "response_ip_addr_size = IPv6\n".into(),
        ..Default::default()
    });
    let client = c.client();
    let store = client.query_store(None).unwrap();
    assert_eq!(store.width, fdfs_common::proto::client::IpWidth::V6);
    assert_eq!(store.to_bytes().len(), 70);
    let id = rfdfs_tests::upload(&client, b"wide", "txt");
    assert_eq!(rfdfs_tests::read_back(&client, &id), b"wide");
    let info = client.query_file_info(&id, 0).unwrap();
    assert_eq!(
        info.width,
        fdfs_common::proto::client::IpWidth::V6,
        "storages learn the width from the tracker"
    );
    assert_eq!(info.to_bytes().len(), 70);
    let storages = client.list_storages("group1", None).unwrap();
    assert_eq!(storages[0].width, fdfs_common::proto::client::IpWidth::V6);
    assert_eq!(storages[0].ip, c.storages[0].ip);
}

/// A link that is not a slave's (a dedup link in a C cluster's data dir, made with
/// `check_file_duplicate`) is deleted alone: its target is shared by other names. A slave stored
/// as a link takes its target along, as upstream's delete does.
#[test]
fn deleting_a_link_keeps_its_target_unless_it_is_a_slave() {
    let c = Cluster::start(ClusterOpts::default());
    let client = c.client();
    let data = c.storages[0].store_paths[0].join("data");
    let local = |id: &FileId| data.join(&id.name[4..]);
    let shared = rfdfs_tests::upload(&client, b"content stored once", "txt");
    let dedup = rfdfs_tests::upload(&client, b"content stored once", "txt");
    std::fs::remove_file(local(&dedup)).unwrap();
    std::os::unix::fs::symlink(local(&shared), local(&dedup)).unwrap();
    assert_eq!(
        rfdfs_tests::read_back(&client, &dedup),
        b"content stored once"
    );

    client.delete(&dedup).unwrap();
    assert!(std::fs::symlink_metadata(local(&dedup)).is_err());
    assert_eq!(
        rfdfs_tests::read_back(&client, &shared),
        b"content stored once"
    );

    let master = rfdfs_tests::upload(&client, b"master", "jpg");
    let slave = client
        .upload_slave(&master, "_s", "jpg", Content::Buffer(b"slave"))
        .unwrap();
    std::fs::remove_file(local(&slave)).unwrap();
    std::os::unix::fs::symlink(local(&master), local(&slave)).unwrap();
    client.delete(&slave).unwrap();
    assert_eq!(
        err(client.download_to_vec(&master, 0, 0).unwrap_err()),
        errno::ENOENT as i32
    );

    let binlog = std::fs::read_to_string(c.storages[0].base.join("data/sync/binlog.000")).unwrap();
    let deleted: Vec<&str> = binlog
        .lines()
        .filter_map(|l| {
            l.split(' ')
                .nth(2)
                .filter(|_| l.split(' ').nth(1) == Some("D"))
        })
        .collect();
    assert!(deleted.contains(&dedup.name.as_str()));
    assert!(!deleted.contains(&shared.name.as_str()));
    assert!(deleted.contains(&master.name.as_str()));
}

/// `[access-log] enabled = true`: `logs/storage_access.log` starts with upstream's header line
/// and gets a line per file request with the file name, status and both lengths as upstream's.
#[test]
fn the_access_log_has_upstreams_lines() {
    let c = Cluster::start(ClusterOpts {
        storage_extra: "[access-log]\nenabled=true\ntime_precision=ms\n".into(),
        ..Default::default()
    });
    let client = c.client();
    let data = b"nineteen bytes here";
    let id = rfdfs_tests::upload(&client, data, "txt");
    assert_eq!(rfdfs_tests::read_back(&client, &id), data);
    client.delete(&id).unwrap();
    assert_eq!(err(client.delete(&id).unwrap_err()), errno::ENOENT as i32);
    let path = c.storages[0].base.join("logs/storage_access.log");
    // a request's line is written after its answer: wait for it
    let with_lines = |n: usize| {
        rfdfs_tests::wait_for(
            "the access log lines",
            || {
                let t = std::fs::read_to_string(&path).ok()?;
                (t.lines().count() >= n).then_some(t)
            },
            || std::fs::read_to_string(&path).unwrap_or_default(),
        )
    };
    let text = with_lines(5);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].ends_with("] client_ip action filename status time_used_ms req_len resp_len"),
        "{}",
        lines[0]
    );
    // `[YYYY-mm-dd HH:MM:SS.fff] ip action name status ms req resp`, ms padded to 3 digits
    let fields = |l: &str| -> Vec<String> {
        assert_eq!(l.find(']'), Some(24), "{l}");
        l[26..].split(' ').map(String::from).collect()
    };
    let want = [
        ("upload", 0, 44, 70),
        ("download", 0, 86, 29),
        ("delete", 0, 70, 10),
        ("delete", 2, 70, 10),
    ];
    // a line is written once its answer is sent: two requests in a row may be logged in
    // either order (the next one is served by another worker meanwhile)
    let mut got: Vec<(String, String, String, String, String)> = lines[1..5]
        .iter()
        .map(|line| {
            let f = fields(line);
            assert!(f[0].parse::<std::net::IpAddr>().is_ok(), "{line}");
            (
                f[1].clone(),
                f[2].clone(),
                f[3].clone(),
                f[5].clone(),
                f[6].clone(),
            )
        })
        .collect();
    let mut expected: Vec<(String, String, String, String, String)> = want
        .iter()
        .map(|(action, status, req, resp)| {
            (
                action.to_string(),
                id.name.clone(),
                status.to_string(),
                req.to_string(),
                resp.to_string(),
            )
        })
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "{text}");

    // SIGHUP sets it aside as storage_access.log.YYYYMMDD_HHMMSS; the new one starts with the
    // header line and takes the next request
    let logs = c.storages[0].base.join("logs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.storages[0].daemon.pid().unwrap() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let rotated = rfdfs_tests::wait_for(
        "SIGHUP did not set the access log aside",
        || {
            std::fs::read_dir(&logs).ok()?.flatten().find_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                let stamp = n.strip_prefix("storage_access.log.")?;
                (stamp.len() == 15 && stamp.as_bytes()[8] == b'_').then(|| e.path())
            })
        },
        || std::fs::read_to_string(&path).unwrap_or_default(),
    );
    assert_eq!(std::fs::read_to_string(&rotated).unwrap(), text);
    let again = rfdfs_tests::upload(&client, data, "txt");
    let fresh = with_lines(2);
    let fresh: Vec<&str> = fresh.lines().collect();
    assert!(
        fresh[0].ends_with("time_used_ms req_len resp_len"),
        "{}",
        fresh[0]
    );
    assert!(fresh[1].contains(&again.name), "{}", fresh[1]);
}
