//! A damaged binlog on the sending member (issue 28, finding 5): cut below a peer's mark, or its
//! index lost. Nothing acknowledged may stay away from the peer, the damage is logged and
//! counted, and writes after the damage replicate.

use fdfs_client::{Client, FileId};
use rfdfs_tests::{upload_via, wait_member_has, Cluster, ClusterOpts, Rng};
use std::path::PathBuf;

const METRICS: u16 = 9113;

fn pair() -> Cluster {
    Cluster::start(ClusterOpts {
        storages: 2,
        storage_extra: format!("metrics.server_port={METRICS}\n"),
        ..Default::default()
    })
}

fn stop(c: &mut Cluster, i: usize) {
    assert_eq!(c.storages[i].daemon.stop(), Some(0));
}

fn sync_dir(c: &Cluster, i: usize) -> PathBuf {
    c.storages[i].base.join("data/sync")
}

/// `n` files uploaded to member 0, with their content.
fn upload_n(client: &Client, c: &Cluster, rng: &mut Rng, n: usize) -> Vec<(FileId, Vec<u8>)> {
    (0..n)
        .map(|_| {
            let len = 2000 + rng.index(3000);
            let d = rng.bytes(len);
            (upload_via(client, &d, "bin", &c.storage_addr(0)), d)
        })
        .collect()
}

fn assert_all_on_member_1(c: &Cluster, files: &[(FileId, Vec<u8>)]) {
    for (id, d) in files {
        wait_member_has(c, 1, id, d);
    }
}

/// Member 0's binlog is cut to half its size while it is stopped: the peer's mark points past
/// the new end, and the changes the peer had not received yet lost their lines. Every
/// acknowledged file still reaches the peer, and so do the uploads made after the restart.
#[test]
fn a_binlog_cut_below_a_peers_mark_loses_nothing() {
    let mut c = pair();
    let client = c.client();
    let mut rng = Rng(0xb1_0001);
    let mut files = upload_n(&client, &c, &mut rng, 20);
    assert_all_on_member_1(&c, &files);
    // these lines are never sent before the cut
    stop(&mut c, 1);
    files.extend(upload_n(&client, &c, &mut rng, 20));
    stop(&mut c, 0);
    let binlog = sync_dir(&c, 0).join("binlog.000");
    let len = std::fs::metadata(&binlog).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&binlog)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    c.start_storage(0);
    c.start_storage(1);
    c.wait_active(2);
    files.extend(upload_n(&client, &c, &mut rng, 40));
    assert_all_on_member_1(&c, &files);
    let log = c.storages[0].daemon.log();
    assert!(
        log.contains("binlog damaged"),
        "the damage is not logged:\n{log}"
    );
    assert!(rfdfs_tests::storage_metric(&c.storages[0].ip, METRICS, "binlog_damage_total") >= 1.0);
}

/// Member 0's binlog index is lost after a rotation (binlog.001 is the file being written):
/// the storage carries on in binlog.001, and what it takes after the restart replicates.
#[test]
fn a_lost_binlog_index_neither_stalls_the_peers_nor_loses_lines() {
    let mut c = pair();
    let client = c.client();
    let mut rng = Rng(0xb1_0002);
    let mut files = upload_n(&client, &c, &mut rng, 5);
    assert_all_on_member_1(&c, &files);
    // a rotation, as at 1 GiB: the next lines go to binlog.001
    stop(&mut c, 0);
    let dir = sync_dir(&c, 0);
    std::fs::write(
        dir.join("binlog_index.dat"),
        "current_write=1\ncurrent_compress=0\n",
    )
    .unwrap();
    c.start_storage(0);
    c.wait_active(2);
    files.extend(upload_n(&client, &c, &mut rng, 5));
    assert_all_on_member_1(&c, &files);
    assert!(std::fs::metadata(dir.join("binlog.001")).unwrap().len() > 0);
    // the index is lost
    stop(&mut c, 0);
    std::fs::remove_file(dir.join("binlog_index.dat")).unwrap();
    c.start_storage(0);
    c.wait_active(2);
    files.extend(upload_n(&client, &c, &mut rng, 10));
    assert_all_on_member_1(&c, &files);
    let index = std::fs::read_to_string(dir.join("binlog_index.dat")).unwrap();
    assert!(index.starts_with("current_write=1\n"), "{index}");
    assert!(c.storages[0].daemon.log().contains("binlog index"));
}

/// Member 0's binlog loses every line while it is stopped, in a group whose small files are in
/// trunk slots (a slot's header cannot name its file, so the store paths alone cannot give
/// those lines back). Then member 1's store path is replaced by a blank one and recovers from
/// member 0, the only member there is: every acknowledged file, those in trunk slots included,
/// is read back from both members.
#[test]
fn trunk_files_whose_lines_were_lost_still_reach_a_member_recovering_from_here() {
    let mut c = rfdfs_tests::trunk_cluster(2);
    let client = c.client();
    let mut rng = Rng(0xb1_0003);
    let files: Vec<(FileId, Vec<u8>)> = (0..24)
        .map(|k| {
            let d = rng.bytes(500 + 97 * k);
            (upload_via(&client, &d, "bin", &c.storage_addr(k % 2)), d)
        })
        .collect();
    assert!(
        files.iter().all(|(id, _)| id.name.len() > 50),
        "not all in trunk slots"
    );
    for (id, d) in &files {
        wait_member_has(&c, 0, id, d);
        wait_member_has(&c, 1, id, d);
    }
    stop(&mut c, 0);
    std::fs::write(sync_dir(&c, 0).join("binlog.000"), b"").unwrap();
    c.start_storage(0);
    c.wait_active(2);
    rfdfs_tests::wait_for(
        "member 0 never finished its re-record",
        || {
            c.storages[0]
                .daemon
                .log()
                .contains("re-record done")
                .then_some(())
        },
        || c.storages[0].daemon.log(),
    );
    stop(&mut c, 1);
    let store = c.storages[1].store_paths[0].clone();
    std::fs::remove_dir_all(&store).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    c.start_storage(1);
    c.wait_active(2);
    for (id, d) in &files {
        wait_member_has(&c, 0, id, d);
        wait_member_has(&c, 1, id, d);
    }
}
