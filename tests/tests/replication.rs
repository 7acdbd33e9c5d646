//! Replication between the storages of one group: binlog-driven sync threads, new members,
//! kill -9 and restart.

use fdfs_client::Content;
use fdfs_client::Upload;
use rfdfs_tests::{snapshot, wait_converged, Cluster, ClusterOpts};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[test]
fn two_members_replicate_every_operation() {
    replicate_every_operation("");
}

/// The same with fsyncs configured: data synced every 4 KiB and before each answer, binlog
/// lines and directory entries before the change is acknowledged.
#[test]
fn two_durable_members_replicate_every_operation() {
    replicate_every_operation("fsync_after_written_bytes=4K\n");
}

fn replicate_every_operation(storage_extra: &str) {
    let c = Cluster::start(ClusterOpts {
        storages: 2,
        storage_extra: storage_extra.into(),
        ..Default::default()
    });
    let client = c.client();
    let mut ids = Vec::new();
    for i in 0..20usize {
        let data: Vec<u8> = (0..i * 1000).map(|k| (k * 7 + i) as u8).collect();
        ids.push(rfdfs_tests::upload(&client, &data, "bin"));
    }
    let ap = client
        .upload(
            Content::Buffer(b"appender"),
            "log",
            Upload::Appender,
            None,
            None,
        )
        .unwrap();
    client.append(&ap, Content::Buffer(b"+1")).unwrap();
    client.modify(&ap, 0, Content::Buffer(b"A")).unwrap();
    client.truncate(&ap, 6).unwrap();
    client
        .set_metadata(&ids[0], &[(b"k".to_vec(), b"v".to_vec())], b'O')
        .unwrap();
    client
        .set_metadata(&ids[0], &[(b"k2".to_vec(), b"v2".to_vec())], b'M')
        .unwrap();
    let slave = client
        .upload_slave(&ids[1], "_s", "bin", Content::Buffer(b"slave"))
        .unwrap();
    client.delete(&ids[2]).unwrap();
    let ap2 = client
        .upload(
            Content::Buffer(b"to rename"),
            "dat",
            Upload::Appender,
            None,
            None,
        )
        .unwrap();
    let renamed = client.regenerate_appender_filename(&ap2).unwrap();
    let snap = wait_converged(&c, &[0, 1], Duration::from_secs(60));
    assert!(snap.contains_key(&slave.name[4..]));
    assert!(snap.contains_key(&renamed.name[4..]));
    assert!(!snap.contains_key(&ids[2].name[4..]));
    assert!(!snap.contains_key(&ap2.name[4..]));
    assert!(snap.contains_key(&format!("{}-m", &ids[0].name[4..])));
}

fn content(k: usize) -> Vec<u8> {
    let size = if k % 500 == 7 {
        5 << 20
    } else if k % 50 == 3 {
        512 << 10
    } else {
        (k * 37) % 20000
    };
    (0..size)
        .map(|i| (i as u32).wrapping_mul(2654435761).wrapping_add(k as u32) as u8)
        .collect()
}

#[test]
fn three_members_converge_under_load() {
    let c = Cluster::start(ClusterOpts {
        storages: 3,
        ..Default::default()
    });
    let client = std::sync::Arc::new(c.client());
    // 8 threads upload 3000 files of 0 B to 5 MiB
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let client = std::sync::Arc::clone(&client);
            std::thread::spawn(move || {
                let mut out = Vec::new();
                for k in (t..3000).step_by(8) {
                    let data = content(k);
                    let id = rfdfs_tests::upload(&client, &data, "bin");
                    out.push((k, id, rfdfs_tests::content_digest(&data)));
                }
                out
            })
        })
        .collect();
    let mut files: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    files.sort_by_key(|f| f.0);
    // appender files, appended, modified and truncated
    let mut appenders = Vec::new();
    for k in 0..40usize {
        let ap = rfdfs_tests::upload_appender(&client, format!("appender {k}\n").as_bytes(), "log");
        client
            .append(&ap, Content::Buffer(&vec![b'a'; k * 10]))
            .unwrap();
        client.modify(&ap, 0, Content::Buffer(b"APP")).unwrap();
        if k % 2 == 0 {
            client.truncate(&ap, 5 + k as i64).unwrap();
        }
        let now = rfdfs_tests::read_back(&client, &ap);
        appenders.push((ap, rfdfs_tests::content_digest(&now)));
    }
    // deletes
    for f in files.iter().filter(|f| f.0 % 10 == 0) {
        client.delete(&f.1).unwrap();
    }
    let snap = wait_converged(&c, &[0, 1, 2], Duration::from_secs(240));
    let mut expected = BTreeMap::new();
    for f in files.iter().filter(|f| f.0 % 10 != 0) {
        expected.insert(f.1.name[4..].to_string(), f.2.clone());
    }
    for (ap, h) in &appenders {
        expected.insert(ap.name[4..].to_string(), h.clone());
    }
    assert_eq!(snap.len(), expected.len(), "live file count");
    assert_eq!(
        snap, expected,
        "every member holds exactly the live files, byte-identical"
    );
}

#[test]
fn new_member_receives_old_files_and_reads_never_fail() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 3,
        ..Default::default()
    });
    let client = std::sync::Arc::new(c.client());
    let mut ids = Vec::new();
    for k in 0..300 {
        ids.push(
            client
                .upload(
                    Content::Buffer(&content(k % 60)),
                    "bin",
                    Upload::File,
                    None,
                    None,
                )
                .unwrap(),
        );
    }
    let ap = client
        .upload(
            Content::Buffer(b"appender"),
            "log",
            Upload::Appender,
            None,
            None,
        )
        .unwrap();
    client.append(&ap, Content::Buffer(b" and more")).unwrap();
    client.delete(&ids[5]).unwrap();
    wait_converged(&c, &[0, 1, 2], Duration::from_secs(60));
    // readers go through the tracker the whole time the new member syncs in
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|t| {
            let (client, stop, ids) = (
                std::sync::Arc::clone(&client),
                std::sync::Arc::clone(&stop),
                ids.clone(),
            );
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0, Vec::new());
                let mut k = t;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    k = (k + 7) % ids.len();
                    if k == 5 {
                        continue;
                    }
                    match client.download_to_vec(&ids[k], 0, 0) {
                        Ok(_) => ok += 1,
                        Err(e) => failed.push(format!("{}: {e}", ids[k])),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let opts = ClusterOpts::default();
    c.add_storage(&opts);
    c.wait_active(4);
    let snap = wait_converged(&c, &[0, 1, 2, 3], Duration::from_secs(120));
    // keep reading a little while the new member serves
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for r in readers {
        let (ok, failed) = r.join().unwrap();
        assert!(
            failed.is_empty(),
            "downloads failed while the member synced in: {failed:?}"
        );
        total += ok;
    }
    assert!(total > 0);
    assert_eq!(snap.len(), 300 - 1 + 1);
    let flag = std::fs::read_to_string(c.storages[3].base.join("data/.data_init_flag")).unwrap();
    assert!(
        flag.contains("sync_old_done=1\n") && !flag.contains("sync_src_server=\n"),
        "{flag}"
    );
    // the source kept a mark for the new member with the full pass done
    let marks: Vec<_> = [0usize, 1, 2]
        .iter()
        .filter_map(|&i| {
            let p = c.storages[i]
                .base
                .join(format!("data/sync/{}_23000.mark", c.storages[3].ip));
            fdfs_storage::mark::Mark::load(&p).unwrap()
        })
        .collect();
    assert!(
        marks.iter().any(|m| m.need_sync_old && m.sync_old_done),
        "{marks:?}"
    );
}

#[test]
fn killed_member_catches_up_after_restart() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 3,
        ..Default::default()
    });
    let client = std::sync::Arc::new(c.client());
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let burst = |from: usize, to: usize| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (client, acked) = (
                    std::sync::Arc::clone(&client),
                    std::sync::Arc::clone(&acked),
                );
                std::thread::spawn(move || {
                    for k in (from + t..to).step_by(4) {
                        let data = content(k);
                        // an upload to the member being killed may fail: only acknowledged ones count
                        if let Ok(id) =
                            client.upload(Content::Buffer(&data), "bin", Upload::File, None, None)
                        {
                            acked
                                .lock()
                                .unwrap()
                                .push((id, rfdfs_tests::content_digest(&data)));
                        }
                    }
                })
            })
            .collect();
        handles
    };
    let first = burst(0, 400);
    // kill -9 a member while the burst and its replication are running
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 100 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    c.storages[2].daemon.kill9();
    for h in first {
        h.join().unwrap();
    }
    for h in burst(400, 600) {
        h.join().unwrap();
    }
    let s = &mut c.storages[2];
    s.daemon = rfdfs_tests::Daemon::start("fdfs_storaged", &s.daemon.conf.clone(), &s.base.clone());
    c.wait_active(3);
    let snap = wait_converged(&c, &[0, 1, 2], Duration::from_secs(180));
    for (id, h) in acked.lock().unwrap().iter() {
        assert_eq!(
            snap.get(&id.name[4..]),
            Some(h),
            "acknowledged file {id} lost or changed"
        );
    }
    // no partial file anywhere, and the state files parse
    for st in &c.storages {
        assert_eq!(
            std::fs::read_dir(st.store_paths[0].join("data/.rfdfs_tmp"))
                .unwrap()
                .count(),
            0
        );
        for e in std::fs::read_dir(st.base.join("data/sync"))
            .unwrap()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".mark") {
                assert!(
                    fdfs_storage::mark::Mark::load(&e.path()).unwrap().is_some(),
                    "{name}"
                );
            }
            if name.starts_with("binlog.") {
                let text = std::fs::read_to_string(e.path()).unwrap();
                assert!(text.is_empty() || text.ends_with('\n'));
                for line in text.lines() {
                    assert!(
                        fdfs_storage::binlog::parse_line(line).is_some(),
                        "{name}: {line:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_lost_subtree_is_repaired_from_a_peer() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        storage_extra: "file_distribute_rotate_count = 5\n".into(),
        ..Default::default()
    });
    let client = c.client();
    for k in 0..120 {
        client
            .upload(
                Content::Buffer(&content(k % 40)),
                "bin",
                Upload::File,
                None,
                None,
            )
            .unwrap();
    }
    let full = wait_converged(&c, &[0, 1], Duration::from_secs(60));
    let data = c.storages[1].store_paths[0].join("data");
    // lose a whole first-level directory and one leaf, while the storage keeps running
    std::fs::remove_dir_all(data.join("00/01")).unwrap();
    std::fs::remove_dir_all(data.join("01")).unwrap();
    assert_ne!(snapshot(&c.storages[1].store_paths[0]), full);
    std::fs::write(data.join(".rfdfs_repair"), b"").unwrap();
    assert_eq!(wait_converged(&c, &[0, 1], Duration::from_secs(60)), full);
    assert!(data.join("01/03").is_dir());

    // lost while stopped: found and repaired at the next start
    c.storages[1].daemon.stop();
    std::fs::remove_dir_all(data.join("02/02")).unwrap();
    let s = &mut c.storages[1];
    s.daemon = rfdfs_tests::Daemon::start("fdfs_storaged", &s.daemon.conf.clone(), &s.base.clone());
    c.wait_active(2);
    assert_eq!(wait_converged(&c, &[0, 1], Duration::from_secs(60)), full);
    assert!(c.storages[1]
        .daemon
        .log()
        .contains("sub directories were missing"));
}

#[test]
fn a_member_restarted_on_a_new_address_keeps_its_record_and_sync_positions() {
    use fdfs_common::proto::status;
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        ..Default::default()
    });
    let client = c.client();
    let mut ids = Vec::new();
    for k in 0..10 {
        let data = content(k);
        ids.push((rfdfs_tests::upload(&client, &data, "bin"), data));
    }
    let before = wait_converged(&c, &[0, 1], Duration::from_secs(30));
    let old_ip = c.storages[0].ip.clone();
    let join_time = client.list_storages("group1", Some(&old_ip)).unwrap()[0].join_time;

    // storage 0 comes back on another address, same data
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    let new_ip = format!("127.{}.{}.61", c.net.0, c.net.1);
    let conf = c.storages[0].daemon.conf.clone();
    let text = std::fs::read_to_string(&conf).unwrap().replace(
        &format!("bind_addr={old_ip}"),
        &format!("bind_addr={new_ip}"),
    );
    std::fs::write(&conf, text).unwrap();
    let base = c.storages[0].base.clone();
    c.storages[0].daemon = rfdfs_tests::Daemon::start("fdfs_storaged", &conf, &base);
    c.storages[0].ip = new_ip.clone();
    rfdfs_tests::wait_port(&new_ip, 23000, "storage");

    // the tracker moved the record: old address IP_CHANGED, new one ACTIVE with its history
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = client.list_storages("group1", None).unwrap();
        let st = |ip: &str| {
            list.iter()
                .find(|s| s.ip == ip)
                .map(|s| (s.status, s.join_time))
        };
        if st(&old_ip).map(|s| s.0) == Some(status::IP_CHANGED)
            && st(&new_ip) == Some((status::ACTIVE, join_time))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{list:?}\n{}",
            c.storages[0].daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // storage 1 carries on from its mark for the moved peer
    let marks = c.storages[1].base.join("data/sync");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !marks.join(format!("{new_ip}_23000.mark")).exists() {
        assert!(Instant::now() < deadline, "mark never renamed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!marks.join(format!("{old_ip}_23000.mark")).exists());
    assert!(c.storages[1].daemon.log().contains("its mark follows"));

    // every old file is still served, and new ones replicate both ways
    for (id, data) in &ids {
        assert_eq!(&client.download_to_vec(id, 0, 0).unwrap(), data);
    }
    for k in 10..20 {
        client
            .upload(
                Content::Buffer(&content(k)),
                "bin",
                Upload::File,
                None,
                None,
            )
            .unwrap();
    }
    let after = wait_converged(&c, &[0, 1], Duration::from_secs(30));
    assert_eq!(after.len(), before.len() + 10);
}

/// `sync_start_time` / `sync_end_time`: outside the daily window a member pushes nothing (its
/// sync thread says it waits for the window), so a file stays on the member that took it.
#[test]
fn replication_waits_for_its_daily_window() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        ..Default::default()
    });
    // storage 0 restarts with a window that opens two hours from now
    let minute = fdfs_common::log::seconds_from_local_midnight(fdfs_common::now()).unwrap() / 60;
    let hm = |m: i64| {
        let m = m.rem_euclid(1440);
        format!("{:02}:{:02}", m / 60, m % 60)
    };
    let conf = c.storages[0].daemon.conf.clone();
    let text = std::fs::read_to_string(&conf).unwrap()
        + &format!(
            "sync_start_time={}\nsync_end_time={}\n",
            hm(minute + 120),
            hm(minute + 180)
        );
    std::fs::write(&conf, text).unwrap();
    c.restart_storage(0);
    rfdfs_tests::wait_for(
        "the sync thread never said it waits for its window",
        || {
            c.storages[0]
                .daemon
                .log()
                .contains("waits for its window")
                .then_some(())
        },
        || c.storages[0].daemon.log(),
    );
    let client = c.client();
    let id = rfdfs_tests::upload_via(&client, b"stays here", "txt", &c.storage_addr(0));
    assert!(client
        .download_from(&c.storage_addr(0), &id, 0, 0, || Ok(Vec::new()))
        .is_ok());
    assert!(client
        .download_from(&c.storage_addr(1), &id, 0, 0, || Ok(Vec::new()))
        .is_err());
}

/// A binlog record that cannot be read stops the sync to the peer with an error
/// (`file_sync_skip_invalid_record = false`, upstream's default); with the key true it is
/// skipped and what follows reaches the peer.
#[test]
fn an_invalid_binlog_record_stops_the_sync_unless_skipping_is_asked() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        ..Default::default()
    });
    let conf = c.storages[0].daemon.conf.clone();
    let base = c.storages[0].base.clone();
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    let binlog = base.join("data/sync/binlog.000");
    let mut text = std::fs::read_to_string(&binlog).unwrap_or_default();
    text += "not a binlog record\n";
    std::fs::write(&binlog, text).unwrap();
    c.storages[0].daemon = rfdfs_tests::Daemon::start("fdfs_storaged", &conf, &base);
    c.wait_active(2);
    let client = c.client();
    let id = rfdfs_tests::upload_via(&client, b"after the bad line", "txt", &c.storage_addr(0));
    rfdfs_tests::wait_for(
        "the sync never stopped at the invalid record",
        || {
            c.storages[0]
                .daemon
                .log()
                .contains("the sync stops here while file_sync_skip_invalid_record = false")
                .then_some(())
        },
        || c.storages[0].daemon.log(),
    );
    assert!(client
        .download_from(&c.storage_addr(1), &id, 0, 0, || Ok(Vec::new()))
        .is_err());

    let text = std::fs::read_to_string(&conf).unwrap() + "file_sync_skip_invalid_record=true\n";
    std::fs::write(&conf, text).unwrap();
    c.restart_storage(0);
    rfdfs_tests::wait_for(
        "the record after the invalid one never reached the peer",
        || {
            client
                .download_from(&c.storage_addr(1), &id, 0, 0, || Ok(Vec::new()))
                .ok()
        },
        || c.storages[0].daemon.log(),
    );
}

/// `compress_binlog`: at `compress_binlog_time` the binlog files below the current one are
/// gzip'ed (upstream's names, flag file gone, `current_compress` advanced); a member that
/// joins afterwards still receives every file, the old ones read back from the `.gz`.
#[test]
fn rotated_binlogs_are_compressed_daily_and_still_replicate() {
    let opts = ClusterOpts {
        storages: 1,
        storage_extra: "compress_binlog=true\n".into(),
        ..Default::default()
    };
    let mut c = Cluster::start(opts.clone());
    let client = c.client();
    let old: Vec<_> = (0..3)
        .map(|k| rfdfs_tests::upload(&client, &content(k), "bin"))
        .collect();
    // a rotation (upstream's comes at 1 GiB): the next file is written from the restart on,
    // and the compression runs at the first whole minute at least 5 s away
    let sync_dir = c.storages[0].base.join("data/sync");
    c.storages[0].daemon.stop();
    std::fs::write(
        sync_dir.join("binlog_index.dat"),
        "current_write=1\ncurrent_compress=0\n",
    )
    .unwrap();
    let since_midnight = fdfs_common::log::seconds_from_local_midnight(fdfs_common::now()).unwrap();
    let minute = ((since_midnight + 65) / 60).rem_euclid(1440);
    let conf = c.storages[0].daemon.conf.clone();
    let text = std::fs::read_to_string(&conf).unwrap()
        + &format!(
            "compress_binlog_time={:02}:{:02}\n",
            minute / 60,
            minute % 60
        );
    std::fs::write(&conf, text).unwrap();
    let s = &mut c.storages[0];
    s.daemon = rfdfs_tests::Daemon::start("fdfs_storaged", &conf, &s.base.clone());
    rfdfs_tests::wait_port(&s.ip.clone(), s.port, "storage");
    c.wait_active(1);
    let new: Vec<_> = (3..5)
        .map(|k| rfdfs_tests::upload(&client, &content(k), "bin"))
        .collect();

    let deadline = Instant::now() + Duration::from_secs(150);
    while !sync_dir.join("binlog.000.gz").exists() || sync_dir.join("binlog.000").exists() {
        assert!(
            Instant::now() < deadline,
            "binlog.000 not compressed at {:02}:{:02}:\n{}",
            minute / 60,
            minute % 60,
            c.storages[0].daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!sync_dir.join(".binlog.000.flag").exists());
    assert!(sync_dir.join("binlog.001").exists());
    let index = std::fs::read_to_string(sync_dir.join("binlog_index.dat")).unwrap();
    assert_eq!(index, "current_write=1\ncurrent_compress=1\n");
    let unzipped = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(sync_dir.join("binlog.000.gz"))
        .output()
        .unwrap();
    let text = String::from_utf8(unzipped.stdout).unwrap();
    for id in &old {
        assert!(text.contains(&format!(" C {}\n", id.name)), "{text}");
    }

    // a new member's full sync reads binlog.000 back from the .gz
    let k = c.add_storage(&opts);
    c.wait_active(2);
    for (n, id) in old.iter().chain(&new).enumerate() {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = client.download_from(&c.storage_addr(k), id, 0, 0, || Ok(Vec::new()));
            match got {
                Ok(_) => break,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "file {n} never reached the new member: {e}\n{}",
                    c.storages[0].daemon.log()
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert!(c.storages[0]
        .daemon
        .log()
        .contains("binlog.000.gz uncompressed for reading"));
}

/// `store_slave_file_use_link = true` (tracker.conf, pushed to the storages): a slave's content
/// is a normal file of its own and the slave name a symlink to its absolute path, on the source
/// and on the member it replicates to; deleting the slave takes the content along everywhere
/// and leaves the master.
#[test]
fn slaves_stored_as_links_replicate_and_delete_with_their_content() {
    let c = Cluster::start(ClusterOpts {
        storages: 2,
        tracker_extra: "store_slave_file_use_link=true\n".into(),
        ..Default::default()
    });
    let client = c.client();
    let master = rfdfs_tests::upload(&client, &content(1), "jpg");
    let slave = client
        .upload_slave(&master, "_150x150", "jpg", Content::Buffer(&content(2)))
        .unwrap();
    assert_eq!(rfdfs_tests::read_back(&client, &slave), content(2));
    // which member took the upload: the one whose binlog has the link line
    let binlog = |i: usize| {
        std::fs::read_to_string(c.storages[i].base.join("data/sync/binlog.000")).unwrap()
    };
    let source = (0..2)
        .find(|&i| binlog(i).contains(" L "))
        .expect("an L line");
    let line = binlog(source)
        .lines()
        .find(|l| l.contains(" L "))
        .unwrap()
        .to_string();
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields.len(), 4, "{line}");
    assert_eq!(fields[2], slave.name, "{line}");
    let target = fields[3].to_string();
    assert!(
        binlog(source).contains(&format!(" C {target}\n")),
        "{}",
        binlog(source)
    );
    let local = |i: usize, name: &str| c.storages[i].store_paths[0].join("data").join(&name[4..]);
    for i in [source, 1 - source] {
        rfdfs_tests::wait_for(
            "the slave link on both members",
            || {
                let md = std::fs::symlink_metadata(local(i, &slave.name)).ok()?;
                md.file_type().is_symlink().then_some(())
            },
            || c.storages[1 - source].daemon.log(),
        );
        let pointed = std::fs::read_link(local(i, &slave.name)).unwrap();
        assert_eq!(pointed, local(i, &target), "member {i}");
        assert_eq!(std::fs::read(local(i, &target)).unwrap(), content(2));
    }
    let reply = client
        .download_from(&c.storage_addr(1 - source), &slave, 0, 0, || Ok(Vec::new()))
        .unwrap();
    assert_eq!(reply, content(2).len() as u64);

    client.delete(&slave).unwrap();
    for i in [source, 1 - source] {
        rfdfs_tests::wait_for(
            "the slave and its content gone on both members",
            || {
                let gone = |n: &str| std::fs::symlink_metadata(local(i, n)).is_err();
                (gone(&slave.name) && gone(&target)).then_some(())
            },
            || c.storages[1 - source].daemon.log(),
        );
        assert!(local(i, &master.name).exists());
    }
    assert!(binlog(source).contains(&format!(" D {target}\n")));
    assert_eq!(rfdfs_tests::read_back(&client, &master), content(1));
}

/// `scrub_bytes_per_second`: a byte flipped in a stored file is found against the CRC32 its name
/// carries, the corrupt copy is moved into `data/.rfdfs_quarantine/`, the file is fetched again
/// intact from the other member, and `/metrics` counts it.
#[test]
fn scrub_finds_a_flipped_byte_and_repairs_it_from_a_member() {
    const METRICS: u16 = 9108;
    let c = Cluster::start(ClusterOpts {
        storages: 2,
        storage_extra: format!("scrub_bytes_per_second=64MB\nmetrics.server_port={METRICS}\n"),
        ..Default::default()
    });
    let client = c.client();
    let data = content(7);
    let id = rfdfs_tests::upload_via(&client, &data, "bin", &c.storage_addr(0));
    let on_disk = |i: usize| {
        c.storages[i].store_paths[0]
            .join("data")
            .join(&id.name[4..])
    };
    rfdfs_tests::wait_for(
        "the file on the other member",
        || (std::fs::read(on_disk(1)).ok()? == data).then_some(()),
        || c.storages[1].daemon.log(),
    );
    rfdfs_tests::wait_sees_a_peer(&c, 0);
    let counter = |name: &str| rfdfs_tests::storage_metric(&c.storages[0].ip, METRICS, name);
    // flip one byte in place, size and mtime unchanged as a failing disk would leave them
    let mut bad = std::fs::read(on_disk(0)).unwrap();
    bad[data.len() / 2] ^= 0x20;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(on_disk(0))
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &bad, 0).unwrap();
    drop(f);
    rfdfs_tests::wait_for(
        "the scrub to repair the file",
        || (counter("scrub_repaired_total") >= 1.0).then_some(()),
        || c.storages[0].daemon.log(),
    );
    assert_eq!(std::fs::read(on_disk(0)).unwrap(), data);
    assert!(counter("scrub_corrupt_total") >= 1.0);
    assert_eq!(counter("scrub_unrepairable_total"), 0.0);
    assert!(
        counter("scrub_files_total") >= 1.0 && counter("scrub_bytes_total") >= data.len() as f64
    );
    let quarantine = c.storages[0].store_paths[0].join("data/.rfdfs_quarantine");
    let kept: Vec<_> = std::fs::read_dir(&quarantine).unwrap().flatten().collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(kept[0].path()).unwrap(), bad);
    assert!(c.storages[0].daemon.log().contains("is corrupt"));
    assert_eq!(
        client
            .download_from(&c.storage_addr(0), &id, 0, 0, || Ok(Vec::new()))
            .unwrap(),
        data.len() as u64
    );
}

/// A corrupt file no member holds intact (here: a storage alone in its group) is reported,
/// counted, kept in quarantine and no longer served; nothing is deleted.
#[test]
fn scrub_keeps_a_file_no_member_holds_intact_and_stops_serving_it() {
    const METRICS: u16 = 9108;
    let c = Cluster::start(ClusterOpts {
        storages: 1,
        storage_extra: format!("scrub_bytes_per_second=64MB\nmetrics.server_port={METRICS}\n"),
        ..Default::default()
    });
    c.wait_active(1);
    let client = c.client();
    let data = content(11);
    let id = rfdfs_tests::upload_via(&client, &data, "bin", &c.storage_addr(0));
    let path = c.storages[0].store_paths[0]
        .join("data")
        .join(&id.name[4..]);
    let mut bad = std::fs::read(&path).unwrap();
    bad[0] ^= 0x01;
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &bad, 0).unwrap();
    drop(f);
    let counter = |name: &str| rfdfs_tests::storage_metric(&c.storages[0].ip, METRICS, name);
    rfdfs_tests::wait_for(
        "the scrub to report the file",
        || (counter("scrub_unrepairable_total") >= 1.0).then_some(()),
        || c.storages[0].daemon.log(),
    );
    assert_eq!(counter("scrub_repaired_total"), 0.0);
    let quarantine = c.storages[0].store_paths[0].join("data/.rfdfs_quarantine");
    let kept: Vec<_> = std::fs::read_dir(&quarantine).unwrap().flatten().collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        std::fs::read(kept[0].path()).unwrap(),
        bad,
        "the copy is kept as found"
    );
    assert!(client
        .download_from(&c.storage_addr(0), &id, 0, 0, || Ok(Vec::new()))
        .is_err());
    assert!(c.storages[0]
        .daemon
        .log()
        .contains("no member holds an intact copy"));
}

/// A member whose peer stopped answering (SIGSTOP: its connections stay open, nothing comes
/// back) stops at once on SIGTERM: the sync session waiting for the peer's reply is ended, not
/// waited for (it waited up to its 60 s read timeout); after both are back the file is on both.
#[test]
fn a_member_stops_at_once_while_its_peer_does_not_answer() {
    use nix::sys::signal::Signal;
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        ..Default::default()
    });
    let client = c.client();
    let d = content(1);
    let first = rfdfs_tests::upload_via(&client, &d, "bin", &c.storage_addr(0));
    rfdfs_tests::wait_member_has(&c, 1, &first, &d);
    rfdfs_tests::signal_storage(&c, 1, Signal::SIGSTOP);
    let d2 = content(2);
    let second = rfdfs_tests::upload_via(&client, &d2, "bin", &c.storage_addr(0));
    // the sync of `second` is sent and waits for member 1's reply: its bytes lie unread in
    // member 1's receive queue
    let (m0, m1) = (c.storages[0].ip.clone(), c.storages[1].ip.clone());
    let port = c.storages[1].port;
    rfdfs_tests::wait_for(
        "member 0's sync to wait on the stopped member",
        || {
            let out = std::process::Command::new("ss")
                .args(["-Htn", "src", &format!("{m1}:{port}"), "dst", &m0])
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines()
                .any(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|q| q.parse::<u64>().ok())
                        .is_some_and(|q| q >= d2.len() as u64)
                })
                .then_some(())
        },
        || c.storages[0].daemon.log(),
    );
    let began = std::time::Instant::now();
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    let took = began.elapsed();
    rfdfs_tests::signal_storage(&c, 1, Signal::SIGCONT);
    assert!(
        took < std::time::Duration::from_secs(10),
        "member 0 took {took:?} to stop while member 1 did not answer"
    );
    c.start_storage(0);
    rfdfs_tests::wait_member_has(&c, 1, &second, &d2);
}

/// An appender file modified and then truncated inside the modified range before the modify
/// reached a member: the modify's bytes that the truncate kept reach the member too (the sync
/// skipped a modify whose range the file no longer spanned, and the member kept the old bytes
/// under the new size; found by the stateful fuzzer).
#[test]
fn a_modify_cut_short_by_a_later_truncate_still_reaches_the_member() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        ..Default::default()
    });
    let client = c.client();
    let first: Vec<u8> = (0..500u32).map(|k| k as u8).collect();
    let ap = client
        .upload(
            Content::Buffer(&first),
            "log",
            Upload::Appender,
            Some((c.storage_addr(0), 0)),
            None,
        )
        .unwrap();
    rfdfs_tests::wait_member_has(&c, 1, &ap, &first);
    assert_eq!(c.storages[1].daemon.stop(), Some(0));
    // while member 1 is away: bytes 200..300 changed, then the file cut to 250
    client
        .modify(&ap, 200, Content::Buffer(&[b'M'; 100]))
        .unwrap();
    client.truncate(&ap, 250).unwrap();
    let mut want = first[..200].to_vec();
    want.extend_from_slice(&[b'M'; 50]);
    assert_eq!(rfdfs_tests::read_back(&client, &ap), want);
    c.start_storage(1);
    rfdfs_tests::wait_member_has(&c, 1, &ap, &want);
}

/// The tracker writes a deleted member's changelog line with four fields (`ts group id 4`, as
/// upstream does): its peers still set that member's mark file aside, so a member later added
/// under the same address starts its sync from the beginning.
#[test]
fn a_deleted_members_mark_is_set_aside_by_its_peers() {
    use fdfs_common::proto::status;
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        ..Default::default()
    });
    let client = c.client();
    rfdfs_tests::upload(&client, b"before the delete", "txt");
    wait_converged(&c, &[0, 1], Duration::from_secs(30));
    let gone = c.storages[0].ip.clone();
    let marks = c.storages[1].base.join("data/sync");
    let mark = marks.join(format!("{gone}_23000.mark"));
    assert!(mark.exists(), "member 1 has no mark for member 0");

    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = client.list_storages("group1", Some(&gone)).unwrap();
        if list[0].status == status::OFFLINE {
            break;
        }
        assert!(Instant::now() < deadline, "{list:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    client.delete_storage("group1", &gone).unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    while mark.exists() {
        assert!(
            Instant::now() < deadline,
            "member 1 kept the deleted member's mark\n{}",
            c.storages[1].daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let aside: Vec<String> = std::fs::read_dir(&marks)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{gone}_23000.mark.")))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(c.storages[1]
        .daemon
        .log()
        .contains(&format!("storage {gone} deleted, its mark set aside")));
}
