//! `reconcile_interval` (issue 17): members compare what they hold, without the binlog, and
//! fetch what they lack; nothing a client did not delete is deleted, nothing it deleted comes
//! back.

use fdfs_client::FileId;
use rfdfs_tests::{snapshot, upload_via, wait_converged, Cluster, ClusterOpts};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

fn data(i: usize) -> Vec<u8> {
    (0..1000 + i * 37).map(|k| (k * 31 + i) as u8).collect()
}

fn stop(c: &mut Cluster, i: usize) {
    assert_eq!(c.storages[i].daemon.stop(), Some(0));
}

/// Upload `n` files to storage `i` and remember their content.
fn upload_to(
    c: &Cluster,
    i: usize,
    n: usize,
    known: &mut BTreeMap<String, Vec<u8>>,
) -> Vec<FileId> {
    let client = c.client();
    (0..n)
        .map(|k| {
            let d = data(known.len() + k);
            let id = upload_via(&client, &d, "bin", &c.storage_addr(i));
            known.insert(id.name[4..].to_string(), d);
            id
        })
        .collect()
}

/// Both members hold exactly the files `known` says, byte for byte, and nothing else.
fn assert_members_hold(c: &Cluster, known: &BTreeMap<String, Vec<u8>>, what: &str) {
    let common = wait_converged(c, &[0, 1], Duration::from_secs(60));
    let want: BTreeMap<String, String> = known
        .iter()
        .map(|(k, d)| (k.clone(), rfdfs_tests::content_digest(d)))
        .collect();
    assert_eq!(common, want, "{what}");
}

fn binlog(c: &Cluster, i: usize) -> PathBuf {
    c.storages[i].base.join("data/sync/binlog.000")
}

/// Storage 0's mark file for storage 1.
fn mark_for_1(c: &Cluster) -> PathBuf {
    let dir = c.storages[0].base.join("data/sync");
    std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "mark"))
        .expect("storage 0 has a mark file")
}

/// Storage 1 misses what storage 0 took while it was stopped, and `damage` then takes from
/// storage 0 what its sync would have used to send it.
fn miss_changes(
    c: &mut Cluster,
    known: &mut BTreeMap<String, Vec<u8>>,
    damage: impl FnOnce(&Cluster, u64),
) -> Vec<FileId> {
    stop(c, 1);
    let before = std::fs::metadata(binlog(c, 0)).unwrap().len();
    let ids = upload_to(c, 0, 4, known);
    stop(c, 0);
    damage(c, before);
    c.start_storage(0);
    c.start_storage(1);
    c.wait_active(2);
    ids
}

/// Storage 1 got these files through reconcile, which says so in its log.
fn assert_reconcile_fetched(c: &Cluster, ids: &[FileId], what: &str) {
    let log = c.storages[1].daemon.log();
    for id in ids {
        assert!(
            log.contains(&format!("reconcile: {} fetched from storage", id.name)),
            "{what}: {id} did not come through reconcile\n{log}"
        );
    }
}

#[test]
fn reconcile_repairs_what_the_binlog_cannot() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        storage_extra: "reconcile_interval=1\n".into(),
        ..Default::default()
    });
    c.wait_active(2);
    let client = c.client();
    let mut known = BTreeMap::new();
    let ids = upload_to(&c, 0, 6, &mut known);
    upload_to(&c, 1, 2, &mut known);
    // deleted by a client: must never come back
    client.delete(&ids[0]).unwrap();
    known.remove(&ids[0].name[4..]);
    assert_members_hold(&c, &known, "after the uploads");

    // files removed from disk by hand
    for id in &ids[1..3] {
        std::fs::remove_file(
            c.storages[1].store_paths[0]
                .join("data")
                .join(&id.name[4..]),
        )
        .unwrap();
    }
    assert_members_hold(&c, &known, "files removed by hand");
    assert_reconcile_fetched(&c, &ids[1..3], "files removed by hand");

    // a truncated binlog: the lines of the changes storage 1 had not received are gone;
    // storage 0 finds that out itself (binlog_damage.rs) while reconcile may fetch them first
    miss_changes(&mut c, &mut known, |c, before| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(binlog(c, 0))
            .unwrap();
        f.set_len(before).unwrap();
    });
    assert_members_hold(&c, &known, "binlog truncated");
    assert!(c.storages[0].daemon.log().contains("binlog damaged"));

    // an emptied mark file (the sync thread starts that member over, and resends)
    miss_changes(&mut c, &mut known, |c, _| {
        std::fs::write(mark_for_1(c), b"").unwrap();
    });
    assert_members_hold(&c, &known, "mark file emptied");

    // a stale mark file that claims everything was sent
    miss_changes(&mut c, &mut known, |c, _| {
        let end = std::fs::metadata(binlog(c, 0)).unwrap().len();
        let mark = std::fs::read_to_string(mark_for_1(c)).unwrap();
        let stale: String = mark
            .lines()
            .map(|l| match l.split_once('=') {
                Some(("binlog_offset", _)) => format!("binlog_offset={end}\n"),
                _ => format!("{l}\n"),
            })
            .collect();
        std::fs::write(mark_for_1(c), stale).unwrap();
    });
    // converges; not checked to be through reconcile: once, under the full suite's load, the
    // sync thread sent these files itself (not understood yet)
    assert_members_hold(&c, &known, "stale mark file");

    // a store path replaced by an empty one
    stop(&mut c, 1);
    let sp = c.storages[1].store_paths[0].clone();
    std::fs::remove_dir_all(&sp).unwrap();
    std::fs::create_dir_all(&sp).unwrap();
    c.start_storage(1);
    c.wait_active(2);
    assert_members_hold(&c, &known, "store path replaced by an empty one");
    assert!(snapshot(&c.storages[1].store_paths[0]).len() == known.len());

    // the operator sees it: the storage's status and rfdfs_admin
    let st = rfdfs_tests::wait_for(
        "a reconcile pass to end",
        || {
            let st = client.rfdfs_status(&c.storage_addr(1)).ok()?;
            (st.get("reconcile_passes")? != "0").then_some(st)
        },
        || c.storages[1].daemon.log(),
    );
    assert_eq!(st.get("reconcile_interval"), Some("1"), "{st:?}");
    let (code, out, err) = c.tool("rfdfs_admin", &["status"]);
    // rfdfs_admin takes client.conf first
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("reconcile: every 1 s"), "{out}");
    assert!(out.contains("scrub: off"), "{out}");
    assert!(c.storages[1].daemon.log().contains("reconcile: "));
}

/// Issue 28, finding 6: a delete one member missed for good (its source's binlog lost the line
/// before sending it) is a fact reconcile passes on: the member that still holds the file
/// deletes it, and no member fetches it back, then or once the tombstones are old.
#[test]
fn a_delete_one_member_missed_is_passed_on_and_never_undone() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 3,
        storage_extra: "reconcile_interval=1\n".into(),
        ..Default::default()
    });
    c.wait_active(3);
    let client = c.client();
    let mut known = BTreeMap::new();
    let ids = upload_to(&c, 0, 3, &mut known);
    let gone = ids[0].clone();
    let paths: Vec<PathBuf> = c
        .storages
        .iter()
        .map(|s| s.store_paths[0].join("data").join(&gone.name[4..]))
        .collect();
    let on = |i: usize| paths[i].clone();
    for i in 0..3 {
        rfdfs_tests::wait_member_has(&c, i, &gone, &known[&gone.name[4..]]);
    }
    // member 2 is away while member 0 takes the delete; member 1 receives it
    stop(&mut c, 2);
    let before = std::fs::metadata(binlog(&c, 0)).unwrap().len();
    client.delete_on(&c.storage_addr(0), &gone).unwrap();
    known.remove(&gone.name[4..]);
    rfdfs_tests::wait_for(
        "member 1 to take the delete",
        || std::fs::symlink_metadata(on(1)).is_err().then_some(()),
        || c.storages[1].daemon.log(),
    );
    // member 0's binlog loses the delete's line before member 2 could get it
    stop(&mut c, 0);
    std::fs::OpenOptions::new()
        .write(true)
        .open(binlog(&c, 0))
        .unwrap()
        .set_len(before)
        .unwrap();
    c.start_storage(0);
    c.start_storage(2);
    c.wait_active(3);
    rfdfs_tests::wait_for(
        "the file to be gone from every member",
        || {
            (0..3)
                .all(|i| std::fs::symlink_metadata(on(i)).is_err())
                .then_some(())
        },
        || c.storages[2].daemon.log(),
    );
    let common = wait_converged(&c, &[0, 1, 2], Duration::from_secs(30));
    assert!(!common.contains_key(&gone.name[4..]));
    // member 1 logs it once member 2 has answered, which is after the file went there
    rfdfs_tests::wait_for(
        "member 1 to log the delete it passed on",
        || {
            c.storages[1]
                .daemon
                .log()
                .contains("the delete sent to storage")
                .then_some(())
        },
        || c.storages[1].daemon.log(),
    );
}

/// A file of a trunk slot that member 1 lost together with its binlog line (what a power cut
/// in page-cache mode does to the last changes): its slot's header zeroed, its line turned
/// into one no replay reads (same length: nothing looks cut short). The scrub cannot see it
/// (no line names it), the sync will not send it again (the mark is past it): reconcile finds
/// it in member 0's list of the sub directory and fetches it into its slot.
/// Two members with small trunk files, reconciling every second, once they use trunk slots.
fn trunk_pair() -> Cluster {
    let c = Cluster::start(ClusterOpts {
        storages: 2,
        tracker_extra: rfdfs_tests::SMALL_TRUNKS.into(),
        storage_extra: "reconcile_interval=1\n".into(),
        ..Default::default()
    });
    rfdfs_tests::wait_trunk_server_known(&c);
    c
}

#[test]
fn a_trunk_slot_file_lost_with_its_line_is_fetched_back() {
    let mut c = trunk_pair();
    let client = c.client();
    let files: Vec<(FileId, Vec<u8>)> = (0..6)
        .map(|k| {
            let d = data(k);
            (upload_via(&client, &d, "bin", &c.storage_addr(0)), d)
        })
        .collect();
    for (id, d) in &files {
        rfdfs_tests::wait_member_has(&c, 1, id, d);
    }
    let (victim, _) = &files[2];
    stop(&mut c, 1);
    // member 1 loses the slot's bytes and the line that named it
    use fdfs_common::trunk::SLOT_HEADER_LEN;
    use std::os::unix::fs::FileExt;
    let (trunk, slot) = rfdfs_tests::trunk_slot_of(&c, 1, victim).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&trunk)
        .unwrap();
    f.write_all_at(&[0u8; SLOT_HEADER_LEN as usize], u64::from(slot.offset))
        .unwrap();
    let text = std::fs::read_to_string(binlog(&c, 1)).unwrap();
    let line = format!(" c {}", victim.name);
    assert!(
        text.contains(&line),
        "member 1's binlog does not name {victim}"
    );
    std::fs::write(
        binlog(&c, 1),
        text.replace(&line, &format!(" x {}", victim.name)),
    )
    .unwrap();
    c.start_storage(1);
    c.wait_active(2);
    for (id, d) in &files {
        rfdfs_tests::wait_member_has(&c, 1, id, d);
    }
    assert_reconcile_fetched(&c, std::slice::from_ref(victim), "a lost slot file");
}

/// A power cut in page-cache mode can take a replica's bytes and leave in its slot the bytes
/// of the file deleted there before (the trunk server gave the slot out again): the header
/// then names a dead file. Reconcile writes the live file over it.
#[test]
fn a_slot_a_power_cut_gave_back_to_a_deleted_file_is_filled_again() {
    use fdfs_common::file_id::RemoteName;
    use fdfs_common::trunk::TrunkSlot;
    use std::os::unix::fs::FileExt;
    let mut c = trunk_pair();
    let client = c.client();
    let slot_of = |id: &FileId| TrunkSlot::of_name(&RemoteName::decode(&id.name).unwrap()).unwrap();
    let body = |k: u8| -> Vec<u8> { (0..3000u32).map(|i| (i as u8) ^ k).collect() };
    let old = body(0);
    let dead = upload_via(&client, &old, "bin", &c.storage_addr(0));
    rfdfs_tests::wait_member_has(&c, 1, &dead, &old);
    let (trunk, at) = rfdfs_tests::trunk_slot_of(&c, 1, &dead).unwrap();
    let mut kept = vec![0u8; at.alloc_size as usize];
    std::fs::File::open(&trunk)
        .unwrap()
        .read_exact_at(&mut kept, u64::from(at.offset))
        .unwrap();
    client.delete_on(&c.storage_addr(0), &dead).unwrap();
    // uploads of the same size until one is given the dead file's slot (once its delete
    // reached the trunk server's copy)
    let mut live = None;
    for k in 1..=60u8 {
        let d = body(k);
        let id = upload_via(&client, &d, "bin", &c.storage_addr(0));
        if slot_of(&id) == at {
            live = Some((id, d));
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (live, d) = live.expect("no upload was given the deleted file's slot again");
    rfdfs_tests::wait_member_has(&c, 1, &live, &d);
    // the cut: member 1 keeps the line that names `live` but its slot has the old bytes
    c.storages[1].daemon.kill9();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&trunk)
        .unwrap()
        .write_all_at(&kept, u64::from(at.offset))
        .unwrap();
    c.start_storage(1);
    c.wait_active(2);
    rfdfs_tests::wait_member_has(&c, 1, &live, &d);
    assert!(
        rfdfs_tests::read_from(&client, &c.storage_addr(1), &dead).is_err(),
        "member 1 serves the deleted file again"
    );
    assert_reconcile_fetched(
        &c,
        std::slice::from_ref(&live),
        "a slot holding a dead file",
    );
}
