//! A member that lost its disk, or was rebuilt blank, gets the group's files back (issue 28,
//! findings 3 and 4): trunk files in trunk layout, from any member that has them, reported to
//! the trackers as RECOVERY while it runs, resumed after an interruption (its own, and a C
//! storage's whose disk it took over).

use fdfs_client::FileId;
use fdfs_common::proto::status;
use nix::sys::signal::Signal;
use rfdfs_tests::{
    read_from, signal_storage, upload_via, wait_for, wait_member_has, Cluster, ClusterOpts, Rng,
};
use std::path::Path;

/// A trunk group of `members` (small trunk files: 4 MiB, slots up to 64 KiB).
fn trunk_group(members: usize) -> Cluster {
    let c = Cluster::start(ClusterOpts {
        storages: members,
        tracker_extra: format!("{}check_active_interval=2\n", rfdfs_tests::SMALL_TRUNKS),
        ..Default::default()
    });
    rfdfs_tests::wait_trunk_server_known(&c);
    c
}

/// Small files (into trunk slots) and larger ones (plain files) uploaded through every member.
fn upload_mix(c: &Cluster, rng: &mut Rng, n: usize) -> Vec<(FileId, Vec<u8>)> {
    let client = c.client();
    (0..n)
        .map(|k| {
            let len = if k % 3 == 0 {
                100_000 + k
            } else {
                500 + 37 * k
            };
            let d = rng.bytes(len);
            let via = c.storage_addr(k % c.storages.len());
            (upload_via(&client, &d, "bin", &via), d)
        })
        .collect()
}

fn is_trunk(id: &FileId) -> bool {
    id.name.len() > 50
}

fn status_on_tracker(c: &Cluster, i: usize) -> Option<u8> {
    c.client()
        .list_storages("group1", None)
        .ok()?
        .into_iter()
        .find(|s| s.id == c.storages[i].ip)
        .map(|s| s.status)
}

/// Replace a store path by an empty directory.
fn blank(dir: &Path) {
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::create_dir_all(dir).unwrap();
}

/// Member 1's store path is replaced by a blank one while it is stopped: at its start every
/// file comes back, those in trunk slots in their slots (not as stray plain files).
#[test]
fn a_blank_store_path_gets_its_trunk_files_back_in_their_slots() {
    let mut c = trunk_group(2);
    let mut rng = Rng(0x7ec0_0001);
    let files = upload_mix(&c, &mut rng, 24);
    for (id, d) in &files {
        wait_member_has(&c, 1, id, d);
    }
    assert!(files.iter().any(|(id, _)| is_trunk(id)), "no trunk file");
    assert_eq!(c.storages[1].daemon.stop(), Some(0));
    blank(&c.storages[1].store_paths[0]);
    c.start_storage(1);
    c.wait_active(2);
    for (id, d) in &files {
        wait_member_has(&c, 1, id, d);
    }
    let data = c.storages[1].store_paths[0].join("data");
    for (id, _) in files.iter().filter(|(id, _)| is_trunk(id)) {
        assert!(!data.join(&id.name[4..]).exists(), "{id} as a plain file");
    }
}

/// While member 1 recovers a blank store path the tracker has it as RECOVERY (reads are not
/// sent there); killed in the middle, it goes on at its next start; ACTIVE again at the end.
#[test]
fn a_recovery_is_reported_and_goes_on_after_a_kill() {
    let mut c = trunk_group(2);
    let mut rng = Rng(0x7ec0_0003);
    let files = upload_mix(&c, &mut rng, 12);
    for (id, d) in &files {
        wait_member_has(&c, 1, id, d);
    }
    assert_eq!(c.storages[1].daemon.stop(), Some(0));
    blank(&c.storages[1].store_paths[0]);
    // member 0 hangs: member 1's recovery waits on it, in RECOVERY
    signal_storage(&c, 0, Signal::SIGSTOP);
    c.start_storage(1);
    wait_for(
        "member 1 to be RECOVERY on the tracker",
        || (status_on_tracker(&c, 1) == Some(status::RECOVERY)).then_some(()),
        || c.storages[1].daemon.log(),
    );
    let client = c.client();
    assert!(client
        .query_fetch_all(&files[0].0)
        .map_or(true, |to| !to.iter().any(|a| a.host == c.storages[1].ip)));
    c.storages[1].daemon.kill9();
    c.start_storage(1);
    signal_storage(&c, 0, Signal::SIGCONT);
    for (id, d) in &files {
        wait_member_has(&c, 1, id, d);
    }
    wait_for(
        "member 1 ACTIVE again",
        || (status_on_tracker(&c, 1) == Some(status::ACTIVE)).then_some(()),
        || c.storages[1].daemon.log(),
    );
    let data = c.storages[1].store_paths[0].join("data");
    assert!(!data.join(".recovery.flag").exists());
    for (id, d) in &files {
        assert_eq!(&read_from(&client, &c.storage_addr(1), id).unwrap(), d);
    }
}

/// A C storage was recovering its store path (`.recovery.flag`, its recovery binlog and mark,
/// a file half downloaded to its final path) when rfdfs took its place: the recovery goes on,
/// and the half file is fetched again.
#[test]
fn a_c_storages_interrupted_recovery_is_resumed() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        ..Default::default()
    });
    let client = c.client();
    let mut rng = Rng(0x7ec0_0002);
    let files: Vec<(FileId, Vec<u8>)> = (0..12)
        .map(|_| {
            let d = rng.bytes(30_000);
            (upload_via(&client, &d, "bin", &c.storage_addr(0)), d)
        })
        .collect();
    for (id, d) in &files {
        wait_member_has(&c, 1, id, d);
    }
    assert_eq!(c.storages[1].daemon.stop(), Some(0));
    // what upstream's recovery leaves when interrupted after 4 of 12 files (5.7 of the
    // layout notes): every sub directory made, the flag, the recovery binlog and its mark, the
    // files done, and the fifth half written where it belongs
    let sp = c.storages[1].store_paths[0].clone();
    let data = sp.join("data");
    for (k, (id, d)) in files.iter().enumerate() {
        let path = data.join(&id.name[4..]);
        match k {
            0..4 => {}
            4 => std::fs::write(&path, &d[..d.len() / 2]).unwrap(),
            _ => std::fs::remove_file(&path).unwrap(),
        }
    }
    std::fs::write(
        data.join(".recovery.flag"),
        "saved_storage_status=7\nfetch_binlog_done=1\nrecovery_threads=1\n",
    )
    .unwrap();
    let lines: Vec<String> = files
        .iter()
        .map(|(id, _)| format!("1796000000 C {}\n", id.name))
        .collect();
    std::fs::write(data.join(".binlog.recovery.0"), lines.concat()).unwrap();
    let done: usize = lines[..4].iter().map(String::len).sum();
    std::fs::write(
        data.join(".recovery.mark.0"),
        format!("binlog_offset={done}\n"),
    )
    .unwrap();
    c.start_storage(1);
    c.wait_active(2);
    for (id, d) in &files {
        wait_member_has(&c, 1, id, d);
    }
    wait_for(
        "the recovery to finish",
        || (!data.join(".recovery.flag").exists()).then_some(()),
        || c.storages[1].daemon.log(),
    );
    assert!(!data.join(".binlog.recovery.0").exists());
    assert!(!data.join(".recovery.mark.0").exists());
}

/// Issue 28, finding 4: member 1 is rebuilt blank (same address, base_path and store path
/// empty) while member 0 is down and the tracker has lost its data (a tracker without a
/// persistent volume): no member can be its sync source, so it starts empty; once member 0 is
/// back, every file of the group reaches member 1.
#[test]
fn a_member_rebuilt_blank_while_its_peers_are_down_gets_the_old_files() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        ..Default::default()
    });
    let client = c.client();
    let mut rng = Rng(0x7ec0_0004);
    let files: Vec<(FileId, Vec<u8>)> = (0..16)
        .map(|k| {
            let d = rng.bytes(5000 + k);
            (upload_via(&client, &d, "bin", &c.storage_addr(k % 2)), d)
        })
        .collect();
    for (id, d) in &files {
        wait_member_has(&c, 0, id, d);
        wait_member_has(&c, 1, id, d);
    }
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    assert_eq!(c.storages[1].daemon.stop(), Some(0));
    c.tracker.stop();
    std::fs::remove_dir_all(c.tracker.base.join("data")).unwrap();
    let (conf, base) = (c.tracker.conf.clone(), c.tracker.base.clone());
    c.tracker = rfdfs_tests::Daemon::start("fdfs_trackerd", &conf, &base);
    rfdfs_tests::wait_port(&c.tracker_addr.host, c.tracker_addr.port, "tracker");
    blank(&c.storages[1].base.join("data"));
    blank(&c.storages[1].store_paths[0]);
    c.start_storage(1);
    c.wait_active(1);
    c.start_storage(0);
    c.wait_active(2);
    for (id, d) in &files {
        wait_member_has(&c, 1, id, d);
    }
}

/// What a C storage recovering a store path from an rfdfs member asks (5.7 of the layout
/// notes): the file list (FETCH_ONE_PATH_BINLOG) names the files in trunk slots too, and each
/// trunk file downloads whole by its own name, with every listed file in its slot.
#[test]
fn a_c_storage_recovering_from_this_one_gets_the_trunk_files() {
    use fdfs_common::codec::Message;
    use fdfs_common::file_id::RemoteName;
    use fdfs_common::proto::sync::{FetchPathBinlogReq, PathBinlogStream};
    use fdfs_common::trunk::{SlotHeader, TrunkSlot, SLOT_HEADER_LEN, SLOT_REGULAR};
    use std::io::Read;
    let c = trunk_group(2);
    let mut rng = Rng(0x7ec0_0005);
    let files = upload_mix(&c, &mut rng, 12);
    for (id, d) in &files {
        wait_member_has(&c, 0, id, d);
    }
    let member = c.storage_addr(0);
    // as member 1 would ask: the listing is for members only
    let mut s = rfdfs_tests::raw::connect_from(&c.storages[1].ip, &member.host, member.port);
    let req = FetchPathBinlogReq {
        group: "group1".into(),
        store_path_index: 0,
    };
    std::io::Write::write_all(
        &mut s,
        &rfdfs_tests::raw::frame(
            fdfs_common::proto::cmd::FETCH_ONE_PATH_BINLOG,
            0,
            &req.to_bytes(),
        ),
    )
    .unwrap();
    let mut stream = Vec::new();
    s.read_to_end(&mut stream).unwrap();
    let lines =
        String::from_utf8(PathBinlogStream::lines(&stream[10..]).unwrap().to_vec()).unwrap();
    let client = c.client();
    for (id, d) in files.iter().filter(|(id, _)| is_trunk(id)) {
        assert!(lines.contains(&id.name), "{id} not listed:\n{lines}");
        // the whole trunk file, by the name upstream's recovery asks for
        let rn = RemoteName::decode(&id.name).unwrap();
        let slot = TrunkSlot::of_name(&rn).unwrap();
        let trunk_file = FileId {
            group: "group1".into(),
            name: format!("{}{}", &id.name[..10], slot.file_name()),
        };
        let whole = read_from(&client, &member, &trunk_file).unwrap();
        let at = slot.offset as usize;
        let head: [u8; SLOT_HEADER_LEN as usize] =
            whole[at..at + SLOT_HEADER_LEN as usize].try_into().unwrap();
        assert_eq!(
            SlotHeader::from_bytes(&head),
            SlotHeader::for_name(&rn, SLOT_REGULAR).unwrap()
        );
        let data_at = slot.data_offset() as usize;
        assert_eq!(&whole[data_at..data_at + d.len()], &d[..]);
    }
}
