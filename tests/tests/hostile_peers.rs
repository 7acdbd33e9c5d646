//! Names that are not file IDs and peers that are not members (issue 29): a client command may
//! name only a file ID, and what only a member of the group may ask (sync, trunk, reconcile) is
//! refused to anyone else.

use fdfs_client::FileId;
use fdfs_common::codec::Message;
use fdfs_common::proto::sync::SyncDeleteReq;
use fdfs_common::proto::{cmd, errno};
use rfdfs_tests::raw::{connect, connect_from, exchange, frame};
use rfdfs_tests::{upload_via, wait_member_has, Cluster, Rng};
use std::path::Path;

/// `n` small files (into trunk slots), through both members, on both members.
fn small_files(c: &Cluster, rng: &mut Rng, n: usize) -> Vec<(FileId, Vec<u8>)> {
    let client = c.client();
    let files: Vec<(FileId, Vec<u8>)> = (0..n)
        .map(|k| {
            let d = rng.bytes(300 + 41 * k);
            (upload_via(&client, &d, "bin", &c.storage_addr(k % 2)), d)
        })
        .collect();
    for (id, d) in &files {
        wait_member_has(c, 0, id, d);
        wait_member_has(c, 1, id, d);
    }
    files
}

/// The logical names (`M00/HH/HH/NNNNNN`) of the trunk files under a store path.
fn trunk_file_names(store: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let data = store.join("data");
    for high in std::fs::read_dir(&data).unwrap().flatten() {
        let h = high.file_name().to_string_lossy().into_owned();
        if h.len() != 2 {
            continue;
        }
        for low in std::fs::read_dir(high.path()).unwrap().flatten() {
            let l = low.file_name().to_string_lossy().into_owned();
            for f in std::fs::read_dir(low.path()).unwrap().flatten() {
                let n = f.file_name().to_string_lossy().into_owned();
                if n.bytes().all(|b| b.is_ascii_digit()) {
                    names.push(format!("M00/{h}/{l}/{n}"));
                }
            }
        }
    }
    names
}

fn group_and_name(name: &str) -> Vec<u8> {
    let mut body = b"group1".to_vec();
    body.resize(16, 0);
    body.extend_from_slice(name.as_bytes());
    body
}

/// DELETE_FILE of a trunk file's own name, sent straight to a member: refused (EINVAL), and
/// every file in it is still served by both members.
#[test]
fn a_client_delete_of_a_name_that_is_no_file_id_is_refused() {
    let c = rfdfs_tests::trunk_cluster(2);
    let mut rng = Rng(0x7051_0001);
    let files = small_files(&c, &mut rng, 30);
    let trunks = trunk_file_names(&c.storages[0].store_paths[0]);
    assert!(!trunks.is_empty(), "no trunk file");
    let member = c.storage_addr(0);
    for name in &trunks {
        let mut s = connect(&member.host, member.port);
        let reply = exchange(&mut s, &frame(cmd::DELETE_FILE, 0, &group_and_name(name)));
        assert_eq!(
            reply.map(|r| r.0),
            Some(errno::EINVAL),
            "DELETE_FILE of {name} was not refused"
        );
    }
    for (id, d) in &files {
        wait_member_has(&c, 0, id, d);
        wait_member_has(&c, 1, id, d);
    }
    assert!(
        c.storages[0].daemon.log().contains("is not a file ID"),
        "the refusal is not logged"
    );
}

/// SYNC_DELETE_FILE of a live file from 127.0.0.99, no member of the group: refused
/// (EACCES), logged, and the file is still served by both members; the members' own
/// replication goes on.
#[test]
fn a_sync_delete_from_a_host_that_is_no_member_is_refused() {
    let c = rfdfs_tests::trunk_cluster(2);
    let mut rng = Rng(0x7051_0002);
    let files = small_files(&c, &mut rng, 4);
    let member = c.storage_addr(0);
    for (id, _) in &files {
        let mut s = connect_from("127.0.0.99", &member.host, member.port);
        let req = SyncDeleteReq {
            timestamp: 2_000_000_000,
            group: "group1".into(),
            filename: id.name.clone(),
        };
        let reply = exchange(&mut s, &frame(cmd::SYNC_DELETE_FILE, 0, &req.to_bytes()));
        assert_eq!(
            reply.map(|r| r.0),
            Some(errno::EACCES),
            "SYNC_DELETE_FILE of {id} from 127.0.0.99 was not refused"
        );
    }
    let more = small_files(&c, &mut rng, 4);
    for (id, d) in files.iter().chain(&more) {
        wait_member_has(&c, 0, id, d);
        wait_member_has(&c, 1, id, d);
    }
    assert!(
        c.storages[0]
            .daemon
            .log()
            .contains("127.0.0.99 is no member"),
        "the refusal is not logged"
    );
}
