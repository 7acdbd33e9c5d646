//! Disk faults: a store path on a real file system that fills up, and a store path that
//! becomes unreadable while the storage runs (a tmpfs mounted over it hides its `data/`).
//! Both mount tmpfs file systems, which needs root.

use fdfs_client::Upload;
use fdfs_client::{Client, Content, FileId};
use fdfs_common::codec::Message;
use fdfs_common::net::NetError;
use fdfs_common::proto::storage::{FileIdReply, UploadReq};
use fdfs_common::proto::{cmd, errno, Header};
use fdfs_storage::binlog::{parse_line, Record};
use rfdfs_tests::{raw, Cluster, ClusterOpts, Rng, Tmpfs};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

fn upload(client: &Client, data: &[u8], kind: Upload) -> Result<FileId, NetError> {
    client.upload(Content::Buffer(data), "bin", kind, None, None)
}

/// File names (`HH/HH/name`) in the data tree of a store path, and anything in its temp dir.
fn files_on(store_path: &Path) -> (BTreeSet<String>, Vec<String>) {
    let data = store_path.join("data");
    let mut names = BTreeSet::new();
    for hi in std::fs::read_dir(&data).unwrap().flatten() {
        let h = hi.file_name().to_string_lossy().into_owned();
        if h.len() != 2 || !hi.path().is_dir() {
            continue;
        }
        for lo in std::fs::read_dir(hi.path()).unwrap().flatten() {
            let l = lo.file_name().to_string_lossy().into_owned();
            for f in std::fs::read_dir(lo.path()).unwrap().flatten() {
                names.insert(format!("{h}/{l}/{}", f.file_name().to_string_lossy()));
            }
        }
    }
    let temp = std::fs::read_dir(data.join(".rfdfs_tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    (names, temp)
}

/// `HH/HH/name` of logical names `M00/HH/HH/name`.
fn tree_names<'a>(names: impl Iterator<Item = &'a String>) -> BTreeSet<String> {
    names
        .map(|n| n.split_once('/').unwrap().1.to_string())
        .collect()
}

/// The storage's binlog records; every line must parse.
fn binlog_records(c: &Cluster) -> Vec<Record> {
    let text = std::fs::read_to_string(c.storages[0].base.join("data/sync/binlog.000")).unwrap();
    text.lines()
        .map(|l| parse_line(l).unwrap_or_else(|| panic!("unparsable binlog line {l:?}")))
        .collect()
}

fn expect_enospc<T: std::fmt::Debug>(r: Result<T, NetError>, what: &str) {
    match r {
        Err(NetError::Status(s)) if s == errno::ENOSPC => {}
        other => panic!("{what}: expected a clean ENOSPC status, got {other:?}"),
    }
}

#[test]
fn a_full_file_system_answers_enospc_loses_nothing_and_recovers() {
    let fs = Tmpfs::new("full", 8);
    // no reserved space: the file system itself must run out under a write
    let mut c = Cluster::start(ClusterOpts {
        group_store_roots: vec![("group1".into(), fs.dir.clone())],
        tracker_extra: "reserved_storage_space=0".into(),
        ..Default::default()
    });
    let client = c.client();
    let mut rng = Rng(0x5eed_d15c);
    let mut acked: BTreeMap<String, (FileId, Vec<u8>)> = BTreeMap::new();

    let appender_data = rng.bytes(100 << 10);
    let appender = upload(&client, &appender_data, Upload::Appender).unwrap();
    acked.insert(appender.name.clone(), (appender.clone(), appender_data));

    // 1 MiB files until the file system is full: the one that does not fit gets ENOSPC
    let mut refused = None;
    for _ in 0..16 {
        let data = rng.bytes(1 << 20);
        match upload(&client, &data, Upload::File) {
            Ok(id) => {
                acked.insert(id.name.clone(), (id, data));
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("16 MiB fit on an 8 MiB file system");
    expect_enospc::<()>(Err(refused), "upload onto a full file system");
    // bigger writes and appends fail the same way, and leave the appender as it was
    expect_enospc(
        upload(&client, &rng.bytes(3 << 20), Upload::File),
        "3 MiB upload",
    );
    expect_enospc(
        client.append(&appender, Content::Buffer(&rng.bytes(2 << 20))),
        "2 MiB append",
    );
    for (id, data) in acked.values() {
        assert_eq!(&client.download_to_vec(id, 0, 0).unwrap(), data, "{id:?}");
    }
    let store_path = &c.storages[0].store_paths[0];
    let (names, temp) = files_on(store_path);
    assert!(temp.is_empty(), "temp files left: {temp:?}");
    assert_eq!(
        names,
        tree_names(acked.keys()),
        "the data tree holds the acknowledged files"
    );
    // the binlog names every acknowledged file and no other
    let logged: BTreeSet<String> = binlog_records(&c).into_iter().map(|r| r.name).collect();
    assert_eq!(logged, acked.keys().cloned().collect());

    assert!(
        c.storages[0].daemon.log().contains("write file fail"),
        "the append did not run into the full file system"
    );

    // writes that each fit when they start but not together: the storage's own check lets
    // all three in, the file system refuses the last bytes of at least one
    let mut deleted = BTreeSet::new();
    let freed: Vec<String> = acked
        .keys()
        .filter(|n| **n != appender.name)
        .take(5)
        .cloned()
        .collect();
    for n in &freed {
        let (id, _) = acked.remove(n).unwrap();
        client.delete(&id).unwrap();
        deleted.insert(n.clone());
    }
    let storage = c.storage_addr(0);
    let size = 5 << 19; // 2.5 MiB
    let mut conns: Vec<(TcpStream, Vec<u8>)> = (0..3)
        .map(|_| {
            let mut s = raw::connect(&storage.host, storage.port);
            let req = UploadReq {
                store_path_index: 0xFF,
                file_size: size as i64,
                ext: "bin".into(),
            }
            .to_bytes();
            let data = rng.bytes(size);
            let mut head = Header::new(cmd::UPLOAD_FILE, req.len() + size)
                .to_bytes()
                .to_vec();
            head.extend_from_slice(&req);
            head.push(data[0]);
            s.write_all(&head).unwrap();
            (s, data)
        })
        .collect();
    // all three are past the check and writing once their new files exist
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.storages[0].daemon.files_being_received(store_path).len() < 3 {
        assert!(Instant::now() < deadline, "three uploads never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let answers: Vec<(TcpStream, u8, Vec<u8>, Vec<u8>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = conns
            .drain(..)
            .map(|(mut s, data)| {
                scope.spawn(move || {
                    s.write_all(&data[1..])
                        .expect("the storage reads the whole body");
                    let (status, body) = raw::read_response(&mut s).expect("an answer");
                    (s, status, body, data)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut refused = 0;
    for (mut s, status, body, data) in answers {
        match status {
            0 => {
                let r = FileIdReply::from_bytes(&body).unwrap();
                let id = FileId {
                    group: r.group,
                    name: r.filename,
                };
                acked.insert(id.name.clone(), (id, data));
            }
            s if s == errno::ENOSPC => refused += 1,
            other => panic!("status {other} for an upload onto a full file system"),
        }
        // the connection is still good
        assert_eq!(
            raw::exchange(&mut s, &raw::frame(cmd::ACTIVE_TEST, 0, &[])),
            Some((0, Vec::new()))
        );
    }
    // together they need more than there is; written at once, all three may run out
    assert!(refused >= 1, "all three fitted");

    // space comes back: uploads and appends work again at once
    for n in acked
        .keys()
        .filter(|n| **n != appender.name)
        .take(2)
        .cloned()
        .collect::<Vec<_>>()
    {
        let (id, _) = acked.remove(&n).unwrap();
        client.delete(&id).unwrap();
        deleted.insert(n);
    }
    let data = rng.bytes(2 << 20);
    let id = upload(&client, &data, Upload::File).expect("upload after space came back");
    acked.insert(id.name.clone(), (id, data));
    let more = rng.bytes(64 << 10);
    client.append(&appender, Content::Buffer(&more)).unwrap();
    acked
        .get_mut(&appender.name)
        .unwrap()
        .1
        .extend_from_slice(&more);

    for (id, data) in acked.values() {
        assert_eq!(&client.download_to_vec(id, 0, 0).unwrap(), data, "{id:?}");
    }
    let (names, temp) = files_on(store_path);
    assert!(temp.is_empty(), "temp files left: {temp:?}");
    assert_eq!(names, tree_names(acked.keys()));
    // no binlog line names a file that was never acknowledged
    for rec in binlog_records(&c) {
        assert!(
            acked.contains_key(&rec.name) || deleted.contains(&rec.name),
            "binlog names {rec:?}"
        );
    }
    assert!(c.storages[0].daemon.alive());
}

#[test]
fn an_unreadable_store_path_is_reported_and_skipped() {
    let mut c = Cluster::start(ClusterOpts {
        store_paths: 2,
        ..Default::default()
    });
    let client = c.client();
    let mut rng = Rng(0xbad_d15c);
    let mut files = Vec::new();
    for _ in 0..10 {
        let data = rng.bytes(4096);
        files.push((upload(&client, &data, Upload::File).unwrap(), data));
    }
    let on_path = |id: &FileId, p: &str| id.name.starts_with(&format!("{p}/"));
    assert!(files.iter().any(|(id, _)| on_path(id, "M01")), "{files:?}");

    // store path #1 disappears under the running storage
    let path1 = c.storages[0].store_paths[1].clone();
    let hidden = Tmpfs::over(&path1, 1, true);
    for _ in 0..10 {
        let data = rng.bytes(4096);
        let id = upload(&client, &data, Upload::File).expect("uploads go to the readable path");
        assert!(on_path(&id, "M00"), "{id:?} on the unreadable path");
        files.push((id, data));
    }
    for (id, data) in &files {
        let r = client.download_to_vec(id, 0, 0);
        if on_path(id, "M01") {
            assert!(
                matches!(r, Err(NetError::Status(s)) if s == errno::ENOENT),
                "{id:?}: {r:?}"
            );
        } else {
            assert_eq!(&r.unwrap(), data);
        }
    }
    let storage = &mut c.storages[0];
    assert!(storage.daemon.alive());
    let log = storage.daemon.log();
    assert!(
        log.contains("store path #1") && log.contains("is unreadable"),
        "{log}"
    );

    // it comes back: its files are served again and new files go to both paths
    drop(hidden);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut back_on_1 = false;
    while !back_on_1 {
        assert!(
            Instant::now() < deadline,
            "no upload went to store path #1 again"
        );
        let data = rng.bytes(4096);
        let id = upload(&client, &data, Upload::File).unwrap();
        back_on_1 = on_path(&id, "M01");
        files.push((id, data));
    }
    for (id, data) in &files {
        assert_eq!(&client.download_to_vec(id, 0, 0).unwrap(), data, "{id:?}");
    }
    assert!(c.storages[0].daemon.log().contains("is readable again"));
}

/// Issue 28, finding 1: base_path (binlog, marks) on a file system that is full while the store
/// path has room. A change that cannot get its binlog line is refused with ENOSPC and leaves
/// nothing; every acknowledged one reaches the peer; reads go on; writes come back by themselves
/// when space does; the log says it once, `/metrics` and `rfdfs_admin status` say it.
#[test]
fn a_full_base_path_refuses_writes_until_space_returns_and_loses_nothing() {
    const METRICS: u16 = 9111;
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        storage_extra: format!("metrics.server_port={METRICS}\n"),
        ..Default::default()
    });
    // storage 0's base_path/data (binlog, marks, state files) onto a 2 MiB tmpfs
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    let data = c.storages[0].base.join("data");
    let small = rfdfs_tests::onto_tmpfs(&data, 2);
    let s = &mut c.storages[0];
    s.daemon = rfdfs_tests::Daemon::start("fdfs_storaged", &s.daemon.conf.clone(), &s.base);
    rfdfs_tests::wait_port(&s.ip.clone(), s.port, "storage");
    c.wait_active(2);
    rfdfs_tests::wait_sees_a_peer(&c, 0);
    let client = c.client();
    let via = c.storage_addr(0);
    let mut rng = Rng(0xf011_ba5e);
    let mut acked: Vec<(FileId, Vec<u8>)> = Vec::new();
    let first = rng.bytes(1000);
    acked.push((rfdfs_tests::upload_via(&client, &first, "bin", &via), first));

    let filler = rfdfs_tests::fill(&data);
    let mut refused = 0;
    for _ in 0..300 {
        let d = rng.bytes(1000);
        match client.upload(
            Content::Buffer(&d),
            "bin",
            Upload::File,
            Some((via.clone(), 0)),
            None,
        ) {
            Ok(id) => acked.push((id, d)),
            Err(NetError::Status(s)) if s == errno::ENOSPC => refused += 1,
            Err(e) => panic!("an upload with base_path full failed otherwise than ENOSPC: {e}"),
        }
    }
    // every acknowledged file reached the peer, byte for byte
    for (id, d) in &acked {
        rfdfs_tests::wait_member_has(&c, 1, id, d);
    }
    assert!(refused > 0, "300 uploads fitted in a full base_path");
    // reads go on
    for (id, d) in &acked {
        assert_eq!(
            &rfdfs_tests::read_from(&client, &via, id).unwrap(),
            d,
            "{id}"
        );
    }
    let log = c.storages[0].daemon.log();
    assert_eq!(
        log.matches("writes are refused").count(),
        1,
        "the refusal is logged once:\n{log}"
    );
    assert_eq!(
        rfdfs_tests::storage_metric(&via.host, METRICS, "binlog_writable"),
        0.0
    );
    let status = client.rfdfs_status(&via).unwrap();
    assert_eq!(status.get("binlog_writable"), Some("0"));
    // nothing of a refused upload is left in the store path
    let (names, temp) = files_on(&c.storages[0].store_paths[0]);
    assert!(temp.is_empty(), "temp files left: {temp:?}");
    assert_eq!(
        names.len(),
        acked.len(),
        "files of refused uploads are left"
    );

    // space comes back: writes are accepted again without a restart
    std::fs::remove_file(filler).unwrap();
    let id = rfdfs_tests::wait_for(
        "uploads were not accepted again once space came back",
        || {
            let d = rng.bytes(1000);
            client
                .upload(
                    Content::Buffer(&d),
                    "bin",
                    Upload::File,
                    Some((via.clone(), 0)),
                    None,
                )
                .ok()
                .map(|id| (id, d))
        },
        || c.storages[0].daemon.log(),
    );
    acked.push(id);
    for (id, d) in &acked {
        rfdfs_tests::wait_member_has(&c, 1, id, d);
    }
    assert_eq!(
        rfdfs_tests::storage_metric(&via.host, METRICS, "binlog_writable"),
        1.0
    );
    assert!(c.storages[0]
        .daemon
        .log()
        .contains("binlog is writable again"));
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    drop(small);
}
