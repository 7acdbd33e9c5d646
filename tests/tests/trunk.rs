//! Trunk servers (issue 15): with `use_trunk_file`, the tracker leader elects one storage of
//! each group as its trunk server, tells the members, logs the change, and moves the role when
//! its holder goes away.

use rfdfs_tests::{upload_via, wait_for, Cluster, ClusterOpts, SMALL_TRUNKS};
use std::time::Duration;

/// The id of group1's trunk server as the tracker lists it, once there is one.
fn trunk_server(c: &Cluster) -> Option<String> {
    c.client()
        .list_storages("group1", None)
        .ok()?
        .into_iter()
        .find(|s| s.if_trunk_server != 0)
        .map(|s| s.id)
}

/// `id` read from one member directly, when that member answers with exactly `data`.
fn member_has(ip: &str, port: u16, id: &fdfs_client::FileId, data: &[u8]) -> Option<()> {
    use fdfs_common::codec::Message;
    let mut conn = rfdfs_tests::raw::connect(ip, port);
    let body = fdfs_common::proto::storage::DownloadReq {
        offset: 0,
        count: 0,
        group: id.group.clone(),
        filename: id.name.clone(),
    };
    let frame =
        rfdfs_tests::raw::frame(fdfs_common::proto::cmd::DOWNLOAD_FILE, 0, &body.to_bytes());
    rfdfs_tests::raw::exchange(&mut conn, &frame)
        .filter(|(st, got)| *st == 0 && got == data)
        .map(|_| ())
}

/// The two trunk binlogs' content, when they are the same.
fn same_trunk_binlog(a: &std::path::Path, b: &std::path::Path) -> Option<Vec<u8>> {
    let text = std::fs::read(a).ok()?;
    (Some(&text) == std::fs::read(b).ok().as_ref()).then_some(text)
}

/// Every file reads back as uploaded, and no two share a slot.
fn assert_read_back_in_distinct_slots(
    client: &fdfs_client::Client,
    files: &[(fdfs_client::FileId, Vec<u8>)],
) {
    use fdfs_common::file_id::RemoteName;
    use fdfs_common::trunk::TrunkSlot;
    let mut slots = Vec::new();
    for (id, data) in files {
        assert_eq!(&rfdfs_tests::read_back(client, id), data, "{id}");
        let slot = TrunkSlot::of_name(&RemoteName::decode(&id.name).unwrap()).unwrap();
        slots.push((slot.trunk_id, slot.offset));
    }
    slots.sort();
    slots.dedup();
    assert_eq!(slots.len(), files.len(), "a slot was handed out twice");
}

/// Every file of `files` on member `i`.
fn wait_replicated(c: &Cluster, i: usize, files: &[(fdfs_client::FileId, Vec<u8>)]) {
    let s = &c.storages[i];
    for (id, data) in files {
        wait_for(
            "a file did not replicate",
            || member_has(&s.ip, s.port, id, data),
            || s.daemon.log(),
        );
    }
}

/// The tracker names another trunk server than `first`, and member `survivor` heard of it.
fn wait_role_moved(c: &Cluster, first: &str, survivor: usize) {
    wait_for(
        "the role did not move",
        || trunk_server(c).filter(|id| id != first),
        || c.tracker.log(),
    );
    let s = &c.storages[survivor];
    wait_for(
        "the survivor was not told",
        || s.daemon.log().matches("trunk server: ").nth(1).map(|_| ()),
        || s.daemon.log(),
    );
}

/// Start member `i` again (after a kill or a stop) and wait until both are ACTIVE.
fn start_again(c: &mut Cluster, i: usize) {
    c.start_storage(i);
    c.wait_active(2);
}

/// A two-member group with small trunk files (4 MiB, slots up to 64 KiB, 256-byte alignment),
/// once both members know their trunk server; and that server's id.
fn trunk_group() -> (Cluster, String) {
    trunk_group_with("", "")
}

/// [`trunk_group`] with more tracker.conf and storage.conf lines.
fn trunk_group_with(tracker_extra: &str, storage_extra: &str) -> (Cluster, String) {
    trunk_group_of(2, tracker_extra, storage_extra)
}

/// [`trunk_group_with`] of `members` members.
fn trunk_group_of(members: usize, tracker_extra: &str, storage_extra: &str) -> (Cluster, String) {
    let c = Cluster::start(ClusterOpts {
        storages: members,
        tracker_extra: format!("{SMALL_TRUNKS}check_active_interval=2\n{tracker_extra}"),
        storage_extra: storage_extra.into(),
        ..Default::default()
    });
    c.wait_active(members);
    let holder = wait_for("no trunk server", || trunk_server(&c), || c.tracker.log());
    rfdfs_tests::wait_trunk_server_known(&c);
    (c, holder)
}

#[test]
fn trunk_server_elected_announced_and_moved() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        tracker_extra: "use_trunk_file=true\ncheck_active_interval=2\n".into(),
        ..Default::default()
    });
    c.wait_active(2);
    let tracker_log = || c.tracker.log();
    let first = wait_for("no trunk server elected", || trunk_server(&c), tracker_log);
    let change_log = c.tracker.base.join("logs/trunk_server_change.log");
    let holder = c
        .storages
        .iter()
        .position(|s| s.ip == first)
        .expect("the trunk server is one of the group");
    let addrs: Vec<String> = c
        .storages
        .iter()
        .map(|s| format!("{}:{}", s.ip, s.port))
        .collect();
    let addr = |i: usize| addrs[i].clone();
    let text = std::fs::read_to_string(&change_log).unwrap();
    assert!(
        text.ends_with(&format!(" group1  -  =>  {}\n", addr(holder))),
        "{text}"
    );
    // every member hears it from its change list
    for s in &c.storages {
        let line = format!("trunk server: {} ({first})", addr(holder));
        wait_for(
            "a member was not told the trunk server",
            || s.daemon.log().contains(&line).then_some(()),
            || s.daemon.log(),
        );
    }
    // the holder goes away: the role moves to the other member, logged with both
    let other = 1 - holder;
    c.storages[holder].daemon.kill9();
    let second = wait_for(
        "the trunk server role did not move",
        || trunk_server(&c).filter(|id| *id != first),
        || c.tracker.log(),
    );
    assert_eq!(second, c.storages[other].ip);
    let text = std::fs::read_to_string(&change_log).unwrap();
    assert!(
        text.ends_with(&format!(" group1  {}  =>  {}\n", addr(holder), addr(other))),
        "{text}"
    );
    // a restarted tracker still knows the trunk server, and a restarted member learns it again
    let (conf, base) = (c.tracker.conf.clone(), c.tracker.base.clone());
    c.tracker.stop();
    c.tracker = rfdfs_tests::Daemon::start("fdfs_trackerd", &conf, &base);
    rfdfs_tests::wait_port(&c.tracker_addr.host, c.tracker_addr.port, "tracker");
    let (sconf, sbase) = (
        c.storages[other].daemon.conf.clone(),
        c.storages[other].base.clone(),
    );
    let told = format!("trunk server: {} ({second})", addr(other));
    let before = c.storages[other].daemon.log().matches(&told).count();
    c.storages[other].daemon.stop();
    c.storages[other].daemon = rfdfs_tests::Daemon::start("fdfs_storaged", &sconf, &sbase);
    wait_for(
        "the restarted member was not told the trunk server",
        || (c.storages[other].daemon.log().matches(&told).count() > before).then_some(()),
        || c.storages[other].daemon.log(),
    );
    assert_eq!(trunk_server(&c).as_deref(), Some(second.as_str()));
    // asked again by hand: the live holder is the answer
    let (code, out, err) = c.tool("fdfs_monitor", &["set_trunk_server", "group1"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// Small uploads land in trunk slots allocated by the trunk server, whichever member took
/// them; they read back from every member, deleting one gives its slot to the next upload of
/// that size, and a file too big for a slot stays a plain file.
#[test]
fn small_uploads_go_into_trunk_slots() {
    use fdfs_common::file_id::{FileKind, RemoteName};
    use fdfs_common::trunk::TrunkSlot;
    let (c, holder) = trunk_group();
    let client = c.client();
    let slot_of = |id: &fdfs_client::FileId| {
        let rn = RemoteName::decode(&id.name).unwrap();
        assert_eq!(rn.kind, FileKind::Trunk, "{id}");
        TrunkSlot::of_name(&rn).unwrap()
    };
    // uploads go to both members in turn (store_server round robin)
    let mut files = Vec::new();
    for (i, size) in [0usize, 9, 300, 1000, 5000, 30000, 9, 300]
        .into_iter()
        .enumerate()
    {
        let data: Vec<u8> = (0..size).map(|k| (k * 7 + i) as u8).collect();
        let id = rfdfs_tests::upload(&client, &data, "bin");
        let slot = slot_of(&id);
        let expected = if size + 24 <= 256 {
            256
        } else {
            (size as u32 + 24).div_ceil(256) * 256
        };
        assert_eq!(slot.alloc_size, expected, "{id}: slot for {size} bytes");
        assert_eq!(rfdfs_tests::read_back(&client, &id), data, "{id}");
        files.push((id, data, slot));
    }
    let mut slots: Vec<_> = files.iter().map(|f| (f.2.trunk_id, f.2.offset)).collect();
    slots.sort();
    slots.dedup();
    assert_eq!(slots.len(), files.len(), "a slot was handed out twice");
    // every member holds every file in the same slot: read each from each member directly
    for s in &c.storages {
        for (id, data, _) in &files {
            wait_for(
                "a trunk file did not reach a member",
                || member_has(&s.ip, s.port, id, data),
                || s.daemon.log(),
            );
        }
    }
    // a delete frees its slot: the next upload of that size takes it
    let (gone, _, freed) = files.remove(2);
    client.delete(&gone).unwrap();
    // not within the second of the delete (a same-second file of the same content and ext
    // would carry the deleted name's slot header): from the next second on
    let freed_in = fdfs_common::now();
    while fdfs_common::now() == freed_in {
        std::thread::sleep(Duration::from_millis(20));
    }
    let again = rfdfs_tests::upload(&client, &[7u8; 300], "bin");
    assert_eq!(slot_of(&again), freed, "the freed slot was not reused");
    assert_eq!(rfdfs_tests::read_back(&client, &again), [7u8; 300]);
    assert_eq!(client.download_to_vec(&gone, 0, 0).unwrap_err().errno(), 2);
    // too big for a slot: a plain file
    let big = rfdfs_tests::upload(&client, &vec![1u8; 70 * 1024], "bin");
    assert_eq!(
        RemoteName::decode(&big.name).unwrap().kind,
        FileKind::Normal
    );
    // the trunk server reports its trunk file id and free trunk space to the tracker
    wait_for(
        "the tracker does not have the trunk file id and free space",
        || {
            let g = client.list_groups().ok()?.into_iter().next()?;
            (g.current_trunk_file_id == 1 && g.trunk_free_mb == 3).then_some(())
        },
        || c.tracker.log(),
    );
    // the trunk server's binlog holds the whole story
    let ts = c.storages.iter().find(|s| s.ip == holder).unwrap();
    let binlog = std::fs::read_to_string(ts.base.join("data/trunk/binlog")).unwrap();
    assert!(binlog.lines().count() >= 4 * 9, "{binlog}");
    for line in binlog.lines() {
        assert!(
            fdfs_common::trunk::TrunkBinlogRecord::parse(line).is_some(),
            "{line:?}"
        );
    }
}

/// The trunk server pushes its trunk binlog to the members; when it dies, the member taking
/// the role rebuilds the free-space index from its copy and hands out no slot that holds a
/// file.
#[test]
fn trunk_role_moves_with_its_binlog() {
    let (mut c, first) = trunk_group();
    let client = c.client();
    let mut files = Vec::new();
    for i in 0..10usize {
        let data = vec![i as u8; 100 + i * 300];
        files.push((rfdfs_tests::upload(&client, &data, "bin"), data));
    }
    let holder = c.storages.iter().position(|s| s.ip == first).unwrap();
    let other = 1 - holder;
    let theirs = c.storages[holder].base.join("data/trunk/binlog");
    let ours = c.storages[other].base.join("data/trunk/binlog");
    wait_for(
        "the trunk binlog did not reach the other member",
        || {
            same_trunk_binlog(&theirs, &ours)
                .filter(|t| !t.is_empty())
                .map(|_| ())
        },
        || c.storages[other].daemon.log(),
    );
    // every file on the other member before its holder goes away
    wait_replicated(&c, other, &files);
    c.storages[holder].daemon.kill9();
    wait_role_moved(&c, &first, other);
    for i in 0..10usize {
        let data = vec![100 + i as u8; 100 + i * 300];
        files.push((rfdfs_tests::upload(&client, &data, "bin"), data));
    }
    assert_read_back_in_distinct_slots(&client, &files);
}

/// A trunk file over HTTP: whole, a range inside the slot (never past the file's end into the
/// slot's slack), and its ETag from the name's CRC.
#[test]
fn trunk_files_over_http() {
    use std::io::{Read, Write};
    let c = Cluster::start(ClusterOpts {
        storages: 1,
        tracker_extra: "use_trunk_file=true\ncheck_active_interval=2\nslot_max_size=64KB\n\
                        trunk_file_size=4MB\ntrunk_alloc_alignment_size=256\n"
            .into(),
        storage_extra: "http.server_port=8888\n".into(),
        ..Default::default()
    });
    c.wait_active(1);
    wait_for("no trunk server", || trunk_server(&c), || c.tracker.log());
    let s = &c.storages[0];
    wait_for(
        "the storage was not told the trunk server",
        || s.daemon.log().contains("trunk server: ").then_some(()),
        || s.daemon.log(),
    );
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let id = rfdfs_tests::upload(&c.client(), &data, "bin");
    assert_eq!(id.name.len(), 60, "{id}: not in a trunk");
    let get = |range: Option<&str>| {
        let mut conn = std::net::TcpStream::connect((s.ip.as_str(), 8888)).unwrap();
        let extra = range.map(|r| format!("Range: {r}\r\n")).unwrap_or_default();
        write!(
            conn,
            "GET /{}/{} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n",
            id.group, id.name
        )
        .unwrap();
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).unwrap();
        let at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        (
            String::from_utf8_lossy(&raw[..at]).into_owned(),
            raw[at + 4..].to_vec(),
        )
    };
    let (head, body) = get(None);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, data);
    let rn = fdfs_common::file_id::RemoteName::decode(&id.name).unwrap();
    assert!(
        head.contains(&format!("ETag: \"{:08x}-3e8\"", rn.payload.crc32)),
        "{head}"
    );
    let (head, body) = get(Some("bytes=10-19"));
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert_eq!(body, &data[10..20]);
    let (head, body) = get(Some("bytes=990-"));
    assert!(head.contains("Content-Range: bytes 990-999/1000"), "{head}");
    assert_eq!(body, &data[990..]);
    let (head, _) = get(Some("bytes=1000-"));
    assert!(head.starts_with("HTTP/1.1 416"), "{head}");
}

/// Trunk commands where they do not belong, or malformed, are refused and change nothing:
/// allocation on a member that is not the trunk server, binlog pushes and mark deletion sent to
/// the trunk server itself (upstream answers all of these EINVAL), bodies of the wrong shape.
#[test]
fn trunk_commands_refused_where_they_do_not_belong() {
    use fdfs_common::codec::Message;
    use fdfs_common::proto::trunk::{TrunkAllocReq, TrunkInfo, TrunkSlotReq};
    use fdfs_common::proto::{cmd, errno};
    use rfdfs_tests::raw::{exchange, frame};
    let (c, holder) = trunk_group();
    let ts = c.storages.iter().find(|s| s.ip == holder).unwrap();
    let member = c.storages.iter().find(|s| s.ip != holder).unwrap();
    let alloc = TrunkAllocReq {
        group: "group1".into(),
        size: 300,
        store_path_index: 0,
    }
    .to_bytes();
    let slot = TrunkSlotReq {
        group: "group1".into(),
        info: TrunkInfo {
            store_path_index: 0,
            sub_path_high: 0,
            sub_path_low: 0,
            trunk_id: 1,
            offset: 0,
            size: 256,
        },
    }
    .to_bytes();
    // asked from the other member's address: trunk commands are for members only
    let ask = |s: &rfdfs_tests::Storage, command: u8, body: &[u8]| {
        let from = if s.ip == holder { &member.ip } else { &ts.ip };
        let mut conn = rfdfs_tests::raw::connect_from(from, &s.ip, s.port);
        exchange(&mut conn, &frame(command, 0, body)).map(|r| r.0)
    };
    assert_eq!(
        ask(member, cmd::TRUNK_ALLOC_SPACE, &alloc),
        Some(errno::EINVAL)
    );
    assert_eq!(
        ask(member, cmd::TRUNK_ALLOC_CONFIRM, &slot),
        Some(errno::EINVAL)
    );
    assert_eq!(
        ask(member, cmd::TRUNK_FREE_SPACE, &slot),
        Some(errno::EINVAL)
    );
    assert_eq!(
        ask(ts, cmd::TRUNK_SYNC_BINLOG, b"1 A 0 0 0 1 0 256\n"),
        Some(errno::EINVAL)
    );
    assert_eq!(
        ask(ts, cmd::TRUNK_TRUNCATE_BINLOG_FILE, &[]),
        Some(errno::EINVAL)
    );
    assert_eq!(
        ask(ts, cmd::TRUNK_DELETE_BINLOG_MARKS, &[]),
        Some(errno::EINVAL)
    );
    // wrong shapes: short, a zero size, a torn binlog line
    assert_eq!(
        ask(ts, cmd::TRUNK_ALLOC_SPACE, &alloc[..20]),
        Some(errno::EINVAL)
    );
    let mut zero = alloc.clone();
    zero[16..20].copy_from_slice(&0i32.to_be_bytes());
    assert_eq!(ask(ts, cmd::TRUNK_ALLOC_SPACE, &zero), Some(errno::EINVAL));
    assert_eq!(
        ask(member, cmd::TRUNK_SYNC_BINLOG, b"1 A 0 0 0 1 0"),
        Some(errno::EINVAL)
    );
    wait_for(
        "the malformed allocation was not logged",
        || {
            ts.daemon
                .log()
                .contains("(TRUNK_ALLOC_SPACE), malformed request: body too short")
                .then_some(())
        },
        || ts.daemon.log(),
    );
    // nothing changed: the trunk server's binlog is still empty and the member's untouched
    let binlog = |s: &rfdfs_tests::Storage| {
        std::fs::read_to_string(s.base.join("data/trunk/binlog")).unwrap_or_default()
    };
    assert_eq!(binlog(ts), "");
    assert_eq!(binlog(member), "");
}

/// The trunk server's housekeeping with every switch on: trunk files created ahead of need up
/// to the threshold, the binlog compacted on its schedule (touching free blocks merged, only
/// `A` lines left, the members' copies truncated and sent again, `.data_init_flag` recording
/// it), `storage_trunk.dat` written at a clean stop, and uploads, reads and slot uniqueness
/// unaffected through all of it and a restart.
#[test]
fn trunk_binlog_compacted_snapshotted_and_trunks_created_ahead() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        tracker_extra: "use_trunk_file=true\ncheck_active_interval=2\nslot_min_size=256\n\
                        slot_max_size=64KB\ntrunk_file_size=4MB\ntrunk_alloc_alignment_size=256\n\
                        trunk_create_file_advance=true\ntrunk_create_file_interval=1\n\
                        trunk_create_file_space_threshold=12MB\n\
                        trunk_compress_binlog_interval=1\ntrunk_free_space_merge=true\n"
            .into(),
        ..Default::default()
    });
    c.wait_active(2);
    let first = wait_for("no trunk server", || trunk_server(&c), || c.tracker.log());
    let holder = c.storages.iter().position(|s| s.ip == first).unwrap();
    let other = 1 - holder;
    for s in &c.storages {
        wait_for(
            "a member was not told the trunk server",
            || s.daemon.log().contains("trunk server: ").then_some(()),
            || s.daemon.log(),
        );
    }
    // 12 MB free wanted, nothing there: three 4 MB trunk files
    let trunk_files = |base: &std::path::Path| -> usize {
        let mut n = 0;
        for hh in std::fs::read_dir(base.join("data")).unwrap().flatten() {
            let Ok(sub) = std::fs::read_dir(hh.path()) else {
                continue;
            };
            for ll in sub.flatten() {
                if let Ok(files) = std::fs::read_dir(ll.path()) {
                    n += files
                        .flatten()
                        .filter(|f| {
                            let name = f.file_name();
                            let name = name.to_string_lossy();
                            name.len() >= 6 && name.bytes().all(|b| b.is_ascii_digit())
                        })
                        .count();
                }
            }
        }
        n
    };
    let hbase = c.storages[holder].base.clone();
    let hstore = c.storages[holder].store_paths[0].clone();
    wait_for(
        "trunk files were not created ahead",
        || (trunk_files(&hstore) == 3).then_some(()),
        || c.storages[holder].daemon.log(),
    );
    let client = c.client();
    let mut files = Vec::new();
    for i in 0..40usize {
        let data = vec![i as u8; 100 + i * 97];
        files.push((rfdfs_tests::upload(&client, &data, "bin"), data));
    }
    let mut kept = Vec::new();
    for (i, f) in files.into_iter().enumerate() {
        if i % 2 == 0 {
            client.delete(&f.0).unwrap();
        } else {
            kept.push(f);
        }
    }
    // compacted after the last change: no D line left, and the member holds the same binlog
    let binlog = hbase.join("data/trunk/binlog");
    let member_binlog = c.storages[other].base.join("data/trunk/binlog");
    wait_for(
        "the trunk binlog was not compacted",
        || {
            let text = std::fs::read_to_string(&binlog).ok()?;
            let member = std::fs::read_to_string(&member_binlog).ok()?;
            (!text.is_empty() && !text.contains(" D ") && text == member).then_some(())
        },
        || c.storages[holder].daemon.log(),
    );
    assert!(c.storages[holder]
        .daemon
        .log()
        .contains("trunk binlog compacted"));
    let flag = std::fs::read_to_string(hbase.join("data/.data_init_flag")).unwrap();
    assert!(flag.contains("trunk_binlog_compress_stage=9"), "{flag}");
    assert!(!flag.contains("trunk_last_compress_time=0\n"), "{flag}");
    // a clean stop leaves a snapshot that describes the binlog beside it
    assert_eq!(c.storages[holder].daemon.stop(), Some(0));
    let snapshot = std::fs::read_to_string(hbase.join("data/storage_trunk.dat")).unwrap();
    let size: u64 = snapshot.lines().next().unwrap().parse().unwrap();
    assert_eq!(size, std::fs::metadata(&binlog).unwrap().len());
    assert!(snapshot.lines().skip(1).all(|l| l.contains(" A ")));
    start_again(&mut c, holder);
    for i in 0..20usize {
        let data = vec![200 + (i % 50) as u8; 150 + i * 211];
        kept.push((rfdfs_tests::upload(&client, &data, "bin"), data));
    }
    let now_holder = wait_for("no trunk server", || trunk_server(&c), || c.tracker.log());
    let (h, m) = if now_holder == c.storages[holder].ip {
        (holder, other)
    } else {
        (other, holder)
    };
    let (hb, mb) = (
        c.storages[h].base.join("data/trunk/binlog"),
        c.storages[m].base.join("data/trunk/binlog"),
    );
    wait_for(
        "the member's trunk binlog is not the trunk server's",
        || same_trunk_binlog(&hb, &mb).map(|_| ()),
        || c.storages[h].daemon.log(),
    );
    assert_read_back_in_distinct_slots(&client, &kept);
}

/// A trunk server whose role comes back (here: after a restart) starts every member over:
/// a mark left from an earlier turn (as one is when another trunk server rewrote the members'
/// binlogs and the tracker sent no TRUNK_DELETE_BINLOG_MARKS) is never pushed from.
#[test]
fn returning_trunk_server_never_pushes_from_a_stale_mark() {
    let (mut c, first) = trunk_group();
    let client = c.client();
    for i in 0..10usize {
        rfdfs_tests::upload(&client, &vec![i as u8; 100 + i * 300], "bin");
    }
    let holder = c.storages.iter().position(|s| s.ip == first).unwrap();
    let other = 1 - holder;
    let hb = c.storages[holder].base.join("data/trunk/binlog");
    let mb = c.storages[other].base.join("data/trunk/binlog");
    let same = || {
        same_trunk_binlog(&hb, &mb)
            .filter(|t| !t.is_empty())
            .map(|_| ())
    };
    wait_for("the member did not get the binlog", same, || {
        c.storages[holder].daemon.log()
    });
    assert_eq!(c.storages[holder].daemon.stop(), Some(0));
    let mark = c.storages[holder].base.join(format!(
        "data/trunk/{}_{}.mark",
        c.storages[other].ip, c.storages[other].port
    ));
    std::fs::write(&mark, "binlog_offset=40\n").unwrap();
    start_again(&mut c, holder);
    assert_eq!(trunk_server(&c).as_deref(), Some(first.as_str()));
    for i in 0..5usize {
        rfdfs_tests::upload(&client, &vec![50 + i as u8; 200 + i * 300], "bin");
    }
    wait_for(
        "the member's binlog is not the trunk server's",
        same,
        || c.storages[holder].daemon.log(),
    );
}

/// The role moves to a member whose copy of the trunk binlog lacks the last allocations of the
/// trunk server that died (here: its last lines cut from the copy before the move, as a push
/// that never came leaves it). The new trunk server must not hand those slots out again: it
/// allocates from new trunk files until every member is back.
#[test]
fn new_trunk_server_never_reuses_what_the_old_one_may_have_handed_out() {
    use fdfs_common::file_id::RemoteName;
    use fdfs_common::trunk::TrunkSlot;
    let (mut c, first) = trunk_group();
    let client = c.client();
    let holder = c.storages.iter().position(|s| s.ip == first).unwrap();
    let other = 1 - holder;
    let mut files = Vec::new();
    for i in 0..20usize {
        let data = vec![i as u8; 100 + i * 50];
        let id = upload_via(&client, &data, "bin", &c.storage_addr(holder));
        files.push((id, data));
    }
    let hb = c.storages[holder].base.join("data/trunk/binlog");
    let ob = c.storages[other].base.join("data/trunk/binlog");
    wait_for(
        "the member did not get the binlog",
        || same_trunk_binlog(&hb, &ob).map(|_| ()),
        || c.storages[holder].daemon.log(),
    );
    wait_replicated(&c, other, &files);
    c.storages[holder].daemon.kill9();
    // the member's copy loses the last ten allocations (four lines each)
    let text = std::fs::read_to_string(&ob).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines.len() - 40;
    std::fs::write(&ob, lines[..kept].join("\n") + "\n").unwrap();
    wait_role_moved(&c, &first, other);
    let old_trunks: Vec<u32> = files
        .iter()
        .map(|(id, _)| {
            TrunkSlot::of_name(&RemoteName::decode(&id.name).unwrap())
                .unwrap()
                .trunk_id
        })
        .collect();
    for i in 0..20usize {
        let data = vec![100 + i as u8; 100 + i * 50];
        let id = upload_via(&client, &data, "bin", &c.storage_addr(other));
        let slot = TrunkSlot::of_name(&RemoteName::decode(&id.name).unwrap()).unwrap();
        assert!(
            !old_trunks.contains(&slot.trunk_id),
            "a slot of the old trunk server's trunk file was handed out: {slot:?}"
        );
        files.push((id, data));
    }
    assert!(c.storages[other]
        .daemon
        .log()
        .contains("trunk server after another one"));
    // the old trunk server comes back: every file on both
    start_again(&mut c, holder);
    wait_replicated(&c, holder, &files);
    wait_replicated(&c, other, &files);
}

/// `use_connection_pool` (both daemons): a member's trunk allocations and confirmations reuse
/// connections to the trunk server instead of opening two per upload, as they do with the pool
/// off; the trunk server counts the connections it accepted.
#[test]
fn trunk_requests_reuse_pooled_connections() {
    const METRICS: u16 = 9107;
    let accepted_by_trunk_server = |pool: bool| {
        let keys = format!("use_connection_pool={pool}\nconnection_pool_max_idle_time=60\n");
        let (c, holder) =
            trunk_group_with(&keys, &format!("{keys}metrics.server_port={METRICS}\n"));
        let other = c.storages.iter().position(|s| s.ip != holder).unwrap();
        let accepted = || {
            let (status, _, body) = rfdfs_tests::http_get(&holder, METRICS, "/metrics");
            assert_eq!(status, 200);
            body.lines()
                .find_map(|l| l.strip_prefix("fdfs_storage_connections_accepted_total "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .expect("connections_accepted_total")
        };
        let client = c.client();
        // the first upload may open the member's one pooled connection
        upload_via(&client, &[1u8; 500], "bin", &c.storage_addr(other));
        let before = accepted();
        for k in 0..20u8 {
            let data = vec![k; 300 + usize::from(k)];
            let id = upload_via(&client, &data, "bin", &c.storage_addr(other));
            assert_eq!(rfdfs_tests::read_back(&client, &id), data);
        }
        accepted() - before
    };
    let pooled = accepted_by_trunk_server(true);
    let unpooled = accepted_by_trunk_server(false);
    // each scrape of /metrics is on its own port; the trunk binlog push to the member may add one
    assert!(pooled <= 2, "{pooled} connections with the pool");
    assert!(unpooled >= 40, "{unpooled} connections without the pool");
}

/// `scrub_bytes_per_second` on a file in a trunk slot (issue 17): a byte flipped in the slot's
/// data is found against the CRC32 its name carries, the slot's bytes are kept in quarantine,
/// the slot is written again from the other member's intact copy, and `/metrics` counts it.
#[test]
fn scrub_repairs_a_flipped_byte_in_a_trunk_slot() {
    const METRICS: u16 = 9108;
    let (c, _) = trunk_group_with(
        "",
        &format!("scrub_bytes_per_second=64MB\nmetrics.server_port={METRICS}\n"),
    );
    let client = c.client();
    let data: Vec<u8> = (0..3000).map(|k| (k * 13 % 251) as u8).collect();
    let id = upload_via(&client, &data, "bin", &c.storage_addr(0));
    let (trunk_file, slot) = rfdfs_tests::trunk_slot_of(&c, 0, &id).expect("a trunk slot");
    wait_replicated(&c, 1, &[(id.clone(), data.clone())]);
    // a repair asks the members storage 0 knows ACTIVE
    rfdfs_tests::wait_sees_a_peer(&c, 0);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&trunk_file)
        .unwrap();
    let at = slot.data_offset() + 1234;
    let mut b = [0u8; 1];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut b, at).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[b[0] ^ 0x01], at).unwrap();
    drop(f);
    let counter = |name: &str| rfdfs_tests::storage_metric(&c.storages[0].ip, METRICS, name);
    wait_for(
        "the scrub to repair the slot",
        || (counter("scrub_repaired_total") >= 1.0).then_some(()),
        || c.storages[0].daemon.log(),
    );
    assert!(counter("scrub_corrupt_total") >= 1.0);
    assert_eq!(
        counter("scrub_unrepairable_total"),
        0.0,
        "{}",
        c.storages[0].daemon.log()
    );
    let s = &c.storages[0];
    assert!(member_has(&s.ip, s.port, &id, &data).is_some());
    let quarantine = s.store_paths[0].join("data/.rfdfs_quarantine");
    let kept: Vec<_> = std::fs::read_dir(&quarantine).unwrap().flatten().collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let copy = std::fs::read(kept[0].path()).unwrap();
    assert_eq!(copy.len(), 24 + data.len());
    assert_ne!(&copy[24..], &data[..], "the kept copy is the corrupt one");
}

/// How far member `from` knows member `to` has taken its binlog, and where its binlog ends,
/// when the two are the same (everything sent).
fn sent_everything(c: &Cluster, from: usize, to: usize) -> Option<()> {
    let st = c.client().rfdfs_status(&c.storage_addr(from)).ok()?;
    let end = st.get("binlog_end")?.to_string();
    (st.get(&format!("peer.{}", c.storages[to].ip))? == end).then_some(())
}

/// Issue 28, finding 2: a slot freed by a delete is handed to a new file while a third member
/// lags. That member gets the new file (from its source) while its slot still holds the deleted
/// one, and the delete (from the deleted file's source) only after: the new file must survive.
#[test]
fn a_slot_reused_while_a_third_member_lags_keeps_the_new_file_there() {
    use fdfs_common::file_id::RemoteName;
    use fdfs_common::trunk::TrunkSlot;
    use nix::sys::signal::Signal;
    let (mut c, holder) = trunk_group_of(3, "", "");
    let client = c.client();
    let index_of = |id: &str| c.storages.iter().position(|s| s.ip == id).unwrap();
    // A allocates (the trunk server), B is the deleted file's source, L lags
    let a = index_of(&holder);
    let b = (a + 1) % 3;
    let l = (a + 2) % 3;
    let slot_of = |id: &fdfs_client::FileId| {
        TrunkSlot::of_name(&RemoteName::decode(&id.name).unwrap()).unwrap()
    };
    let old = vec![0x0fu8; 1000];
    let x = upload_via(&client, &old, "bin", &c.storage_addr(b));
    for i in 0..3 {
        rfdfs_tests::wait_member_has(&c, i, &x, &old);
    }
    // L is down: nothing is sent to it, not even into its socket buffers
    assert_eq!(c.storages[l].daemon.stop(), Some(0));
    client.delete_on(&c.storage_addr(b), &x).unwrap();
    // B's TRUNK_FREE_SPACE reached A before B answered; A applies it once B's delete line
    // has reached it too (it waits for that line when the free came first)
    wait_for(
        "A to free the deleted file's slot",
        || {
            let log = c.storages[a].daemon.log();
            let waited = log.contains("no delete of a file in it is recorded here yet");
            (!waited || log.contains("deferred trunk free of")).then_some(())
        },
        || c.storages[a].daemon.log(),
    );
    // the slot is handed out again from the next second on
    let freed_in = fdfs_common::now();
    while fdfs_common::now() == freed_in {
        std::thread::sleep(Duration::from_millis(20));
    }
    let new = vec![0xf0u8; 1000];
    let y = upload_via(&client, &new, "bin", &c.storage_addr(a));
    assert_eq!(slot_of(&y), slot_of(&x), "the freed slot was not reused");
    // L hears of the new file before it hears of the delete
    rfdfs_tests::signal_storage(&c, b, Signal::SIGSTOP);
    c.start_storage(l);
    wait_for(
        "A to send its binlog to L",
        || sent_everything(&c, a, l),
        || c.storages[a].daemon.log(),
    );
    rfdfs_tests::signal_storage(&c, b, Signal::SIGCONT);
    wait_for(
        "B to send its binlog (the delete) to L",
        || sent_everything(&c, b, l),
        || c.storages[b].daemon.log(),
    );
    for i in 0..3 {
        rfdfs_tests::wait_member_has(&c, i, &y, &new);
        let gone = rfdfs_tests::read_from(&client, &c.storage_addr(i), &x);
        assert!(gone.is_err(), "member {i} still serves the deleted file");
    }
}

/// A trunk server that hangs (SIGSTOP) loses the role; the allocation it was asked for just
/// before is answered when it goes on, after another member took the role and allocates from
/// the same trunk files. Its lease ran out with its beats: it gives no slot, and the upload is
/// stored as a plain file instead of in a slot the new trunk server may hand out too.
#[test]
fn a_trunk_server_paused_past_its_role_gives_no_slot() {
    use nix::sys::signal::Signal;
    let (c, holder) = trunk_group_of(3, "", "");
    let t = c.storages.iter().position(|s| s.ip == holder).unwrap();
    let a = (t + 1) % 3;
    rfdfs_tests::signal_storage(&c, t, Signal::SIGSTOP);
    // asked of the trunk server while it hangs
    let upload = {
        let client = c.client();
        let via = c.storage_addr(a);
        std::thread::spawn(move || {
            let data = vec![0x3cu8; 900];
            (upload_via(&client, &data, "bin", &via), data)
        })
    };
    wait_for(
        "the role to move",
        || trunk_server(&c).filter(|id| *id != holder),
        || c.tracker.log(),
    );
    rfdfs_tests::signal_storage(&c, t, Signal::SIGCONT);
    let (id, data) = upload.join().unwrap();
    assert!(
        !is_trunk_name(&id),
        "{id}: a slot from a trunk server that had lost the role"
    );
    for i in 0..3 {
        rfdfs_tests::wait_member_has(&c, i, &id, &data);
    }
}

fn is_trunk_name(id: &fdfs_client::FileId) -> bool {
    use fdfs_common::file_id::RemoteName;
    use fdfs_common::trunk::TrunkSlot;
    RemoteName::decode(&id.name).is_ok_and(|rn| TrunkSlot::of_name(&rn).is_some())
}

/// A member's copy of the trunk binlog cut to half while it was stopped: the trunk server finds
/// the copy shorter than what it pushed and sends the whole binlog again (lines appended to the
/// short copy would sit at the wrong place, and a member elected trunk server from it would
/// hand out slots in use).
#[test]
fn a_members_trunk_binlog_cut_short_is_sent_again_whole() {
    let (mut c, holder) = trunk_group();
    let h = c.storages.iter().position(|s| s.ip == holder).unwrap();
    let m = 1 - h;
    let client = c.client();
    for k in 0..12u8 {
        upload_via(&client, &[k; 1000], "bin", &c.storage_addr(k as usize % 2));
    }
    let copies: Vec<std::path::PathBuf> = c
        .storages
        .iter()
        .map(|s| s.base.join("data/trunk/binlog"))
        .collect();
    let copy = |i: usize| copies[i].clone();
    wait_for(
        "the member's copy of the trunk binlog",
        || same_trunk_binlog(&copy(h), &copy(m)),
        || c.storages[h].daemon.log(),
    );
    assert_eq!(c.storages[m].daemon.stop(), Some(0));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(copy(m))
        .unwrap();
    f.set_len(f.metadata().unwrap().len() / 2).unwrap();
    start_again(&mut c, m);
    for k in 12..20u8 {
        upload_via(&client, &[k; 1000], "bin", &c.storage_addr(k as usize % 2));
    }
    wait_for(
        "the member's copy to be the trunk server's again",
        || same_trunk_binlog(&copy(h), &copy(m)),
        || c.storages[h].daemon.log(),
    );
}

/// The trunk server cannot write its trunk mark for a member (a full or failing base_path;
/// here the mark's temp file is a directory): what it pushed is pushed once, not again at every
/// round (the member's copy held the same lines over and over until the next size check).
#[test]
fn a_trunk_mark_that_cannot_be_written_sends_no_line_twice() {
    let (c, holder) = trunk_group();
    let h = c.storages.iter().position(|s| s.ip == holder).unwrap();
    let m = 1 - h;
    let client = c.client();
    let copy = |i: usize| c.storages[i].base.join("data/trunk/binlog");
    for k in 0..4u8 {
        upload_via(&client, &[k; 1000], "bin", &c.storage_addr(h));
    }
    wait_for(
        "the member's copy of the trunk binlog",
        || same_trunk_binlog(&copy(h), &copy(m)),
        || c.storages[h].daemon.log(),
    );
    let mark = c.storages[h].base.join(format!(
        "data/trunk/{}_{}.mark",
        c.storages[m].ip, c.storages[h].port
    ));
    // (a mark being written at that moment has its temp file there for a moment)
    wait_for(
        "the mark's temp file to be made a directory",
        || std::fs::create_dir(mark.with_extension("mark.tmp")).ok(),
        || c.storages[h].daemon.log(),
    );
    let len = |i: usize| std::fs::metadata(copy(i)).map(|md| md.len()).unwrap_or(0);
    let longest = std::cell::Cell::new(0);
    for round in 0..3u8 {
        for k in 0..4u8 {
            upload_via(&client, &[16 * round + k; 1000], "bin", &c.storage_addr(h));
            longest.set(longest.get().max(len(m)));
        }
        wait_for(
            "the member's copy to be the trunk server's",
            || {
                longest.set(longest.get().max(len(m)));
                same_trunk_binlog(&copy(h), &copy(m))
            },
            || format!("trunk server's {} bytes, member's {}", len(h), len(m)),
        );
    }
    // the member's copy never held more than the trunk server's (lines sent again)
    assert_eq!(
        longest.get(),
        len(h),
        "the member's copy grew past the trunk server's"
    );
    // said once, not at every push
    let log = c.storages[h].daemon.log();
    let fails = log.matches(".mark fail").count();
    assert_eq!(fails, 1, "the mark's failure logged {fails} times");
}

/// The trunk server's own trunk binlog cut to half while it was stopped (a storage alone in
/// its group keeps the role): the allocations among the lost lines hold files, and their slots
/// must not be handed out again.
#[test]
fn a_trunk_servers_binlog_cut_short_hands_out_no_slot_in_use() {
    let mut c = rfdfs_tests::trunk_cluster(1);
    let client = c.client();
    let member = c.storage_addr(0);
    let mut files = Vec::new();
    for k in 0..20u8 {
        let data = vec![k; 1000];
        files.push((upload_via(&client, &data, "bin", &member), data));
    }
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    let binlog = c.storages[0].base.join("data/trunk/binlog");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&binlog)
        .unwrap();
    f.set_len(f.metadata().unwrap().len() / 2).unwrap();
    c.start_storage(0);
    c.wait_active(1);
    wait_for(
        "the member to be told the trunk server again",
        || (c.storages[0].daemon.log().matches("trunk server: ").count() >= 2).then_some(()),
        || c.storages[0].daemon.log(),
    );
    for k in 20..60u8 {
        let data = vec![k; 1000];
        files.push((upload_via(&client, &data, "bin", &member), data));
    }
    assert_read_back_in_distinct_slots(&client, &files);
    assert!(c.storages[0].daemon.log().contains("binlog damaged"));
}
