//! Names that are not file IDs and peers that are not members (issue 29): a client command may
//! name only a file ID, and what only a member of the group may ask (sync, trunk, reconcile) is
//! refused to anyone else; a member's TRUNK_FREE_SPACE of a slot that still holds a file frees
//! nothing until the file's delete arrives.

use fdfs_client::FileId;
use fdfs_common::codec::Message;
use fdfs_common::proto::sync::SyncDeleteReq;
use fdfs_common::proto::trunk::{TrunkInfo, TrunkSlotReq};
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

/// The trunk block of a file in a trunk slot, as TRUNK_FREE_SPACE names it.
fn block_of(id: &FileId) -> TrunkInfo {
    rfdfs_tests::trunk_block_of(id).expect("a file in a trunk slot")
}

/// TRUNK_FREE_SPACE of a live file's slot, sent to the trunk server from the other member (a
/// member may send it, so the address rule lets it in): the slot stays allocated while the
/// trunk server's copy holds the file, so no later upload is given it, and the file is still
/// served by both members. A real delete of the file frees it.
#[test]
fn a_trunk_free_of_a_live_files_slot_frees_nothing() {
    trunk_free_of_a_live_files_slot(false);
}

/// The same while the file's replica has not reached the trunk server (its copy of the slot
/// is still empty): no delete of the file is recorded there, so the slot stays allocated.
#[test]
fn a_trunk_free_of_a_live_files_slot_frees_nothing_before_its_replica_arrives() {
    trunk_free_of_a_live_files_slot(true);
}

fn trunk_free_of_a_live_files_slot(not_arrived: bool) {
    let c = rfdfs_tests::trunk_cluster(2);
    let client = c.client();
    let ts = client
        .list_storages("group1", None)
        .unwrap()
        .iter()
        .position(|s| s.if_trunk_server != 0)
        .expect("a trunk server");
    let other = 1 - ts;
    let mut rng = Rng(0x7051_0003);
    // files of one size: each takes a slot of the same size
    let upload = |rng: &mut Rng| {
        let d = rng.bytes(700);
        (upload_via(&client, &d, "bin", &c.storage_addr(other)), d)
    };
    let files: Vec<(FileId, Vec<u8>)> = (0..4).map(|_| upload(&mut rng)).collect();
    for (id, d) in &files {
        wait_member_has(&c, ts, id, d);
    }
    let victim = block_of(&files[1].0);
    if not_arrived {
        use fdfs_common::trunk::SLOT_HEADER_LEN;
        use std::os::unix::fs::FileExt;
        let (trunk, slot) = rfdfs_tests::trunk_slot_of(&c, ts, &files[1].0).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(trunk)
            .unwrap()
            .write_all_at(&[0u8; SLOT_HEADER_LEN as usize], u64::from(slot.offset))
            .unwrap();
    }
    let server = c.storage_addr(ts);
    let mut s = connect_from(&c.storages[other].ip, &server.host, server.port);
    let req = TrunkSlotReq {
        group: "group1".into(),
        info: victim,
    };
    let reply = exchange(&mut s, &frame(cmd::TRUNK_FREE_SPACE, 0, &req.to_bytes()));
    assert_eq!(
        reply.map(|r| r.0),
        Some(0),
        "TRUNK_FREE_SPACE was not answered"
    );
    // uploads for two seconds: a block freed in a second is not given again in that second
    let began = std::time::Instant::now();
    let mut later: Vec<(FileId, Vec<u8>)> = Vec::new();
    while later.len() < 12 || began.elapsed() < std::time::Duration::from_secs(2) {
        later.push(upload(&mut rng));
    }
    for (id, _) in &later {
        let b = block_of(id);
        assert!(
            !(b.trunk_id == victim.trunk_id
                && b.sub_path_high == victim.sub_path_high
                && b.sub_path_low == victim.sub_path_low
                && b.offset < victim.offset + victim.size
                && victim.offset < b.offset + b.size),
            "{id} was given the slot of {}, a live file",
            files[1].0
        );
    }
    for (id, d) in files.iter().chain(&later) {
        wait_member_has(&c, other, id, d);
        // (the trunk server's copy of the victim was emptied by hand)
        if !(not_arrived && id == &files[1].0) {
            wait_member_has(&c, ts, id, d);
        }
    }
    // the file's own delete frees the slot: an upload gets it again
    client.delete(&files[1].0).unwrap();
    rfdfs_tests::wait_for(
        "the slot of a deleted file to be given again",
        || {
            let (id, _) = upload(&mut rng);
            (block_of(&id).offset == victim.offset && block_of(&id).trunk_id == victim.trunk_id)
                .then_some(())
        },
        || c.storages[ts].daemon.log(),
    );
}

/// SYNC_DELETE_FILE of a trunk file's own name (`M00/00/00/000001`), sent from a member's address
/// (which the member rule lets in): refused (EINVAL), the trunk file stays, and the files in it
/// are served by both members. It used to be answered 0 and remove the trunk file.
#[test]
fn a_member_sync_delete_of_a_trunk_files_own_name_is_refused() {
    let c = rfdfs_tests::trunk_cluster(2);
    let mut rng = Rng(0x7051_0004);
    let files = small_files(&c, &mut rng, 6);
    let trunks = trunk_file_names(&c.storages[1].store_paths[0]);
    assert!(!trunks.is_empty(), "no trunk file");
    let member = c.storage_addr(1);
    for name in &trunks {
        let mut s = connect_from(&c.storages[0].ip, &member.host, member.port);
        let req = SyncDeleteReq {
            timestamp: 2_000_000_000,
            group: "group1".into(),
            filename: name.clone(),
        };
        let reply = exchange(&mut s, &frame(cmd::SYNC_DELETE_FILE, 0, &req.to_bytes()));
        assert_eq!(
            reply.map(|r| r.0),
            Some(errno::EINVAL),
            "SYNC_DELETE_FILE of {name} was not refused"
        );
    }
    assert_eq!(
        trunk_file_names(&c.storages[1].store_paths[0]),
        trunks,
        "a trunk file is gone"
    );
    // restarted, the member serves from its disk, not from a trunk file it still had open
    let mut c = c;
    c.restart_storage(1);
    for (id, d) in &files {
        wait_member_has(&c, 1, id, d);
    }
}
