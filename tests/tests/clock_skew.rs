//! Clock skew (issue 29): members whose wall clocks disagree, and one whose clock jumps back.
//!
//! Binlog lines, tombstones and reconcile's choices carry times from different machines: a
//! member an hour ahead stamps its deletes an hour after the files they delete were made
//! elsewhere, one an hour behind stamps them before. A three-member group takes uploads through every member and deletes, with member 1's clock an hour ahead and
//! member 2's an hour behind (libfaketime, `rfdfs_tests::clock`); then every acknowledged file
//! must be on every member, byte for byte, and no deleted file may come back, also after
//! reconcile has compared the members. A second test, with trunk files (every upload through
//! member 0), turns member 0's clock back an hour while the load runs: its sync must go on.

use rfdfs_tests::clock::SkewedClock;
use rfdfs_tests::load::{start_clients, wait_converged};
use rfdfs_tests::{Cluster, ClusterOpts};
use std::time::Duration;

const MEMBERS: usize = 3;

/// A group whose member `i`'s clock is `offsets[i]` seconds off. With trunk files every upload
/// goes to the first member (upstream's rule); without, to each in turn.
fn group(offsets: [i64; MEMBERS], trunk: bool) -> (Cluster, Vec<SkewedClock>) {
    let mut c = Cluster::start(ClusterOpts {
        storages: MEMBERS,
        tracker_extra: if trunk {
            rfdfs_tests::SMALL_TRUNKS.into()
        } else {
            "store_server=0\n".into()
        },
        storage_extra: "reconcile_interval=5\n".into(),
        ..Default::default()
    });
    let clocks: Vec<SkewedClock> = (0..MEMBERS)
        .map(|i| SkewedClock::new(&c.storages[i].base.clone(), offsets[i]))
        .collect();
    for (i, clock) in clocks.iter().enumerate() {
        assert_eq!(c.storages[i].daemon.stop(), Some(0));
        c.start_storage_with_env(i, &clock.env());
    }
    c.wait_active(MEMBERS);
    if trunk {
        rfdfs_tests::wait_trunk_server_known(&c);
    }
    (c, clocks)
}

/// The timestamps of member `i`'s own binlog lines (its clock, as its lines carry it), in
/// the order they were written.
fn own_stamps(c: &Cluster, i: usize) -> Vec<i64> {
    use fdfs_storage::binlog;
    let sync = c.storages[i].base.join("data/sync");
    let mut stamps = Vec::new();
    for index in binlog::binlog_files(&sync) {
        let _ = binlog::for_each_record(&sync.join(binlog::binlog_name(index)), |r| {
            if r.op.is_ascii_uppercase() {
                stamps.push(r.timestamp);
            }
        });
    }
    stamps
}

/// Member `i`'s clock is `offset` seconds off: the time of its newest log line, from the daemon's
/// own clock (file times come from the kernel's: libfaketime does not shift those).
fn assert_clock_off(c: &Cluster, i: usize, offset: i64) {
    let log = c.storages[i].daemon.log();
    let stamp = log
        .lines()
        .rev()
        .find_map(|l| {
            let t = l.strip_prefix('[')?.get(..19)?;
            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").ok()
        })
        .expect("a log line");
    let local = chrono::Local::now().naive_local();
    let off = (stamp - local).num_seconds();
    assert!(
        (off - offset).abs() < 600,
        "member {i}'s clock is {off} s off, not {offset}"
    );
}

fn newest_stamp(c: &Cluster, i: usize) -> i64 {
    own_stamps(c, i).into_iter().max().unwrap_or(0)
}

#[test]
fn members_an_hour_apart_lose_no_file_and_bring_no_delete_back() {
    let (c, _clocks) = group([0, 3600, -3600], false);
    let (load, threads) = start_clients(&c, 0xc10c_0000);
    std::thread::sleep(Duration::from_secs(25));
    // the clocks took: each member's log lines carry its own time
    assert_clock_off(&c, 1, 3600);
    assert_clock_off(&c, 2, -3600);
    let v = wait_converged(&c, &load, Duration::from_secs(120));
    assert!(v.acked > 50, "only {} uploads acknowledged", v.acked);
    v.assert_all_kept("members with skewed clocks");
    // reconcile has compared the members since (every 5 s): still nothing back
    load.resume();
    std::thread::sleep(Duration::from_secs(12));
    let v = wait_converged(&c, &load, Duration::from_secs(120));
    v.assert_all_kept("members with skewed clocks");
    load.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_member_whose_clock_jumps_back_an_hour_keeps_syncing_with_trunk_files() {
    let (c, clocks) = group([0, 0, 0], true);
    let (load, threads) = start_clients(&c, 0x1a5c_0000);
    std::thread::sleep(Duration::from_secs(10));
    let before = newest_stamp(&c, 0);
    clocks[0].set(-3600);
    std::thread::sleep(Duration::from_secs(20));
    // the jump took: member 0's later lines are stamped an hour back
    let last = own_stamps(&c, 0).last().copied().unwrap_or(0);
    assert!(
        last < before - 3000,
        "member 0's clock did not jump back (last line {last}, before {before})"
    );
    let v = wait_converged(&c, &load, Duration::from_secs(120));
    v.assert_all_kept("members with skewed clocks");
    load.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
}
