//! The scrub under the faults it is for (issue 28, finding 7): a block that can no longer be
//! read (EIO, the commonest latent disk fault) is repaired like a corrupt one, and a client's
//! delete that meets a repair in progress is neither refused nor undone by it. In a trunk file
//! the unreadable block is written again whole, with the other files it holds.

use fdfs_client::FileId;
use rfdfs_tests::{read_from, upload_via, wait_for, Cluster, ClusterOpts, LoopFs, Rng};

const METRICS: u16 = 9112;

/// Two members scrubbing; `member_roots[i]`: where member i's store path lives.
fn scrubbing_pair(member_roots: Vec<std::path::PathBuf>, tracker_extra: &str) -> Cluster {
    Cluster::start(ClusterOpts {
        storages: 2,
        member_store_roots: member_roots,
        tracker_extra: tracker_extra.into(),
        storage_extra: format!("scrub_bytes_per_second=64MB\nmetrics.server_port={METRICS}\n"),
        ..Default::default()
    })
}

fn on_disk(c: &Cluster, i: usize, id: &FileId) -> std::path::PathBuf {
    c.storages[i].store_paths[0]
        .join("data")
        .join(&id.name[4..])
}

/// A file on member 0 whose third block the disk can no longer read: the scrub counts it,
/// moves the copy aside and fetches the file again from member 1; member 0 serves it intact.
#[test]
fn an_unreadable_block_is_found_and_repaired_from_a_member() {
    // member 0's store path alone on the image: member 1's copy holds the same bytes
    let fs = LoopFs::new("scrub-eio", "btrfs", 256);
    let c = scrubbing_pair(vec![fs.dir.clone()], "");
    let client = c.client();
    let data = Rng(0xeeee_0001).bytes(64 << 10);
    let id = upload_via(&client, &data, "bin", &c.storage_addr(0));
    rfdfs_tests::wait_member_has(&c, 1, &id, &data);
    rfdfs_tests::wait_sees_a_peer(&c, 0);
    // returns once a read of the block fails
    fs.break_block(&on_disk(&c, 0, &id), 2);
    let counter = |name: &str| rfdfs_tests::storage_metric(&c.storages[0].ip, METRICS, name);
    wait_for(
        "member 0 to serve the file intact again",
        || {
            read_from(&client, &c.storage_addr(0), &id)
                .ok()
                .filter(|got| *got == data)
        },
        || c.storages[0].daemon.log(),
    );
    assert!(counter("scrub_unreadable_total") >= 1.0);
    assert!(counter("scrub_repaired_total") >= 1.0);
    let log = c.storages[0].daemon.log();
    assert!(log.contains("cannot be read"), "{log}");
}

/// A block of a trunk file that member 0's disk can no longer read, holding the slots of three
/// files: the scrub finds each unreadable, fetches them from member 1 and writes the block
/// again whole (a write into part of it would have to read the rest first, and fail).
#[test]
fn an_unreadable_block_of_a_trunk_file_is_repaired_from_a_member() {
    use fdfs_common::file_id::RemoteName;
    use fdfs_common::trunk::TrunkSlot;
    let fs = LoopFs::new("scrub-eio-trunk", "btrfs", 256);
    let c = scrubbing_pair(vec![fs.dir.clone()], rfdfs_tests::SMALL_TRUNKS);
    rfdfs_tests::wait_trunk_server_known(&c);
    let client = c.client();
    let files: Vec<(FileId, Vec<u8>)> = (0..3u64)
        .map(|k| {
            let data = Rng(0xeeee_0010 + k).bytes(1000);
            (upload_via(&client, &data, "bin", &c.storage_addr(0)), data)
        })
        .collect();
    let slot = |id: &FileId| TrunkSlot::of_name(&RemoteName::decode(&id.name).unwrap()).unwrap();
    let first = slot(&files[0].0);
    for (id, data) in &files {
        assert_eq!(
            slot(id).trunk_id,
            first.trunk_id,
            "{id:?} in another trunk file"
        );
        assert_eq!(
            slot(id).offset / 4096,
            first.offset / 4096,
            "{id:?} in another block"
        );
        rfdfs_tests::wait_member_has(&c, 1, id, data);
    }
    rfdfs_tests::wait_sees_a_peer(&c, 0);
    let trunk_file = on_disk(&c, 0, &files[0].0).with_file_name(first.file_name());
    fs.break_block(&trunk_file, u64::from(first.offset / 4096));
    for (id, data) in &files {
        wait_for(
            "member 0 to serve the files of the block intact again",
            || {
                read_from(&client, &c.storage_addr(0), id)
                    .ok()
                    .filter(|got| got == data)
            },
            || c.storages[0].daemon.log(),
        );
    }
    let counter = |name: &str| rfdfs_tests::storage_metric(&c.storages[0].ip, METRICS, name);
    assert!(counter("scrub_unreadable_total") >= 1.0);
    assert!(counter("scrub_repaired_total") >= 1.0);
}

/// A delete that arrives while the scrub is fetching a corrupt file again (its member hangs)
/// waits for the repair, then deletes: it is not refused, and the repair does not bring the
/// file back.
#[test]
fn a_delete_during_a_repair_is_neither_refused_nor_undone() {
    let mut c = scrubbing_pair(Vec::new(), "");
    let client = c.client();
    let data = Rng(0xeeee_0002).bytes(20 << 10);
    let id = upload_via(&client, &data, "bin", &c.storage_addr(0));
    rfdfs_tests::wait_member_has(&c, 1, &id, &data);
    rfdfs_tests::wait_sees_a_peer(&c, 0);
    // member 1 hangs: the repair's fetch from it waits
    rfdfs_tests::signal_storage(&c, 1, nix::sys::signal::Signal::SIGSTOP);
    let path = on_disk(&c, 0, &id);
    let mut bad = std::fs::read(&path).unwrap();
    bad[100] ^= 0x40;
    std::os::unix::fs::FileExt::write_all_at(
        &std::fs::OpenOptions::new().write(true).open(&path).unwrap(),
        &bad,
        0,
    )
    .unwrap();
    wait_for(
        "the scrub to find the file corrupt",
        || {
            c.storages[0]
                .daemon
                .log()
                .contains("is corrupt")
                .then_some(())
        },
        || c.storages[0].daemon.log(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let deleter = {
        let client = c.client();
        let id = id.clone();
        let member0 = c.storage_addr(0);
        std::thread::spawn(move || {
            let r = client.delete_on(&member0, &id);
            let _ = tx.send(());
            r
        })
    };
    // a delete refused at once (the file is in quarantine) is the old failure
    if rx.recv_timeout(std::time::Duration::from_secs(3)).is_ok() {
        let r = deleter.join().unwrap();
        panic!("the delete did not wait for the repair: {r:?}");
    }
    rfdfs_tests::signal_storage(&c, 1, nix::sys::signal::Signal::SIGCONT);
    deleter
        .join()
        .unwrap()
        .expect("the delete after the repair succeeds");
    assert!(
        std::fs::symlink_metadata(&path).is_err(),
        "member 0 still holds the deleted file"
    );
    // the delete reaches member 1; nothing brings the file back on either
    wait_for(
        "member 1 to take the delete",
        || {
            std::fs::symlink_metadata(on_disk(&c, 1, &id))
                .is_err()
                .then_some(())
        },
        || c.storages[1].daemon.log(),
    );
    c.restart_storage(0);
    assert!(std::fs::symlink_metadata(&path).is_err());
}

/// A file deleted and its trunk slot given to a new file, with the delete no longer remembered
/// (a storage alone in its group keeps no tombstones): the scrub meets the old name's create
/// line and a slot holding another file. That is no corruption: the new file stays served.
#[test]
fn a_reused_trunk_slot_is_not_taken_for_a_corrupt_one() {
    use fdfs_common::file_id::RemoteName;
    use fdfs_common::trunk::TrunkSlot;
    let c = Cluster::start(ClusterOpts {
        storages: 1,
        tracker_extra: rfdfs_tests::SMALL_TRUNKS.into(),
        storage_extra: format!("scrub_bytes_per_second=64MB\nmetrics.server_port={METRICS}\n"),
        ..Default::default()
    });
    rfdfs_tests::wait_trunk_server_known(&c);
    let client = c.client();
    let member = c.storage_addr(0);
    let old = upload_via(&client, &[1u8; 700], "bin", &member);
    client.delete_on(&member, &old).unwrap();
    let freed_in = fdfs_common::now();
    while fdfs_common::now() == freed_in {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let data = Rng(0xeeee_0003).bytes(700);
    let new = upload_via(&client, &data, "bin", &member);
    let slot = |id: &FileId| TrunkSlot::of_name(&RemoteName::decode(&id.name).unwrap()).unwrap();
    assert_eq!(slot(&new), slot(&old), "the slot was not reused");
    // the delete forgotten: a storage alone in its group drops its tombstones (every 10 s)
    let horizon = c.storages[0]
        .base
        .join("data/sync/rfdfs_tombstone_horizon.dat");
    wait_for(
        "the delete to be forgotten",
        || {
            let t: i64 = std::fs::read_to_string(&horizon)
                .ok()?
                .trim()
                .parse()
                .ok()?;
            (t > freed_in).then_some(())
        },
        || c.storages[0].daemon.log(),
    );
    // two full scrub passes over the binlog's create lines, the old name's included
    let counter = |name: &str| rfdfs_tests::storage_metric(&c.storages[0].ip, METRICS, name);
    let passes = counter("scrub_passes_total");
    wait_for(
        "two scrub passes",
        || (counter("scrub_passes_total") >= passes + 2.0).then_some(()),
        || c.storages[0].daemon.log(),
    );
    assert_eq!(read_from(&client, &member, &new).unwrap(), data);
    assert_eq!(counter("scrub_corrupt_total"), 0.0);
}
