//! Replication between the storages of one group: binlog-driven sync threads, new members,
//! kill -9 and restart.

use fdfs_client::Content;
use rfdfs_tests::{Cluster, ClusterOpts};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Every stored file (data, `-m`, slaves) of a store path with its content hash.
fn snapshot(store: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let data = store.join("data");
    for h in std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().len() == 2)
    {
        for l in std::fs::read_dir(h.path()).unwrap().flatten() {
            for f in std::fs::read_dir(l.path()).unwrap().flatten() {
                let rel = f
                    .path()
                    .strip_prefix(&data)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let bytes = std::fs::read(f.path()).unwrap_or_default();
                out.insert(rel, sha1_smol::Sha1::from(&bytes).digest().to_string());
            }
        }
    }
    out
}

/// Wait until every storage holds the same files as storage 0; returns the common snapshot.
fn wait_converged(c: &Cluster, members: &[usize], timeout: Duration) -> BTreeMap<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let snaps: Vec<_> = members
            .iter()
            .map(|&i| snapshot(&c.storages[i].store_paths[0]))
            .collect();
        if snaps.windows(2).all(|w| w[0] == w[1]) {
            return snaps.into_iter().next().unwrap();
        }
        if Instant::now() > deadline {
            for (i, s) in members.iter().zip(&snaps) {
                eprintln!("storage {i}: {} files", s.len());
            }
            let a = &snaps[0];
            for (k, s) in members.iter().zip(&snaps).skip(1) {
                let missing: Vec<_> = a.keys().filter(|x| !s.contains_key(*x)).take(5).collect();
                let extra: Vec<_> = s.keys().filter(|x| !a.contains_key(*x)).take(5).collect();
                let differ: Vec<_> = a
                    .keys()
                    .filter(|x| s.get(*x).is_some_and(|v| v != &a[*x]))
                    .take(5)
                    .collect();
                eprintln!("storage {k}: missing {missing:?} extra {extra:?} differ {differ:?}");
                eprintln!("log:\n{}", c.storages[*k].daemon.log());
            }
            panic!("storages did not converge within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_members_replicate_every_operation() {
    let c = Cluster::start(ClusterOpts {
        storages: 2,
        ..Default::default()
    });
    let client = c.client();
    let mut ids = Vec::new();
    for i in 0..20usize {
        let data: Vec<u8> = (0..i * 1000).map(|k| (k * 7 + i) as u8).collect();
        ids.push(
            client
                .upload(Content::Buffer(&data), "bin", false, None, None)
                .unwrap(),
        );
    }
    let ap = client
        .upload(Content::Buffer(b"appender"), "log", true, None, None)
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
        .upload(Content::Buffer(b"to rename"), "dat", true, None, None)
        .unwrap();
    let renamed = client.regenerate_appender_filename(&ap2).unwrap();
    let snap = wait_converged(&c, &[0, 1], Duration::from_secs(60));
    assert!(snap.contains_key(&slave.name[4..]));
    assert!(snap.contains_key(&renamed.name[4..]));
    assert!(!snap.contains_key(&ids[2].name[4..]));
    assert!(!snap.contains_key(&ap2.name[4..]));
    assert!(snap.contains_key(&format!("{}-m", &ids[0].name[4..])));
}
