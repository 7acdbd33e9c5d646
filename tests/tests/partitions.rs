//! Network partitions (issue 29): a member cut off from its peers, a member cut off from the
//! trackers, the trackers split among themselves, lossy, reset and slow links, each while
//! clients write as the C library, the Java client and py3fdfs do, and a randomised run of
//! them (`scripts/partition-test.sh`); after the heal every acknowledged file is read back
//! byte for byte from every member and no deleted file is served again. The links are cut
//! with nftables between the daemons' own loopback addresses (`rfdfs_tests::partition`) and
//! slowed by a proxy put on them (`rfdfs_tests::delay`).
//!
//! The members run with `write_ack_copies = 2`: while a member cannot reach a peer, nothing it
//! takes may be acknowledged, and every file acknowledged during the partition must be on two
//! members already.

use fdfs_common::config::HostPort;
use rfdfs_tests::delay::SlowLink;
use rfdfs_tests::load::{serve_check, start_clients, wait_converged, Acked, Load, Served, Verdict};
use rfdfs_tests::partition::{Link, Partition};
use rfdfs_tests::{leader_of, Cluster, ClusterOpts};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MEMBERS: usize = 3;

fn group(trackers: usize) -> Cluster {
    Cluster::start(ClusterOpts {
        storages: MEMBERS,
        trackers,
        // round robin: every member takes uploads, the cut-off one too
        tracker_extra: "store_server=0\ncheck_active_interval=6\n".into(),
        storage_extra: "write_ack_copies=2\nwrite_ack_timeout=3\nreconcile_interval=5\n".into(),
        ..Default::default()
    })
}

fn member_ips(c: &Cluster, which: &[usize]) -> Vec<String> {
    which.iter().map(|&i| c.storages[i].ip.clone()).collect()
}

fn tracker_ips(c: &Cluster) -> Vec<String> {
    c.tracker_addrs().into_iter().map(|t| t.host).collect()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Every file acknowledged since `from` (its index in the list) is served by at least two
/// members now; the ones that are not.
fn on_fewer_than_two(c: &Cluster, load: &Load, from: usize) -> Vec<String> {
    let acked: Vec<Acked> = load.acked.lock().unwrap()[from..].to_vec();
    let pairs: Vec<(usize, usize)> = (0..acked.len())
        .flat_map(|f| (0..MEMBERS).map(move |m| (f, m)))
        .collect();
    let mut copies = vec![0; acked.len()];
    for ((f, _), s) in serve_check(c, &acked, &pairs) {
        if matches!(s, Served::Same) {
            copies[f] += 1;
        }
    }
    acked
        .iter()
        .zip(copies)
        .filter(|(_, n)| *n < 2)
        .map(|(a, _)| a.id.to_string())
        .collect()
}

/// Wait until every tracker names the same leader; that leader.
fn one_leader(trackers: &[HostPort], what: &str) -> String {
    rfdfs_tests::wait_for(
        what,
        || {
            let l: Vec<Option<String>> = trackers.iter().map(leader_of).collect();
            (l.iter().all(|x| x.is_some() && *x == l[0])).then(|| l[0].clone().unwrap())
        },
        || format!("{:?}", trackers.iter().map(leader_of).collect::<Vec<_>>()),
    )
}

fn assert_healed(v: &Verdict, what: &str) {
    v.assert_all_kept(&format!("{what}, after the heal"));
    assert!(
        v.acked > 20,
        "{what}: only {} uploads acknowledged",
        v.acked
    );
}

/// Run the load, cut with `cut` for `hold`, check what was acknowledged meanwhile has two
/// copies, heal, check every member.
fn partition_under_load<P>(
    c: &Cluster,
    what: &str,
    hold: Duration,
    cut: impl FnOnce() -> P,
) -> (Arc<Load>, u64) {
    let (load, threads) = start_clients(c, 0x5917_0000);
    std::thread::sleep(Duration::from_secs(5));
    let before = load.acked.lock().unwrap().len();
    let refused_before = load.refused.load(Ordering::Relaxed);
    let p = cut();
    std::thread::sleep(hold);
    load.pause();
    let during = load.acked.lock().unwrap().len() - before;
    let single = on_fewer_than_two(c, &load, before);
    drop(p);
    assert!(
        single.is_empty(),
        "{what}: acknowledged during the partition with fewer than two copies: {single:?}"
    );
    let refused = load.refused.load(Ordering::Relaxed) - refused_before;
    eprintln!("{what}: {during} uploads acknowledged during the partition, {refused} refused");
    load.resume();
    std::thread::sleep(Duration::from_secs(5));
    let v = wait_converged(c, &load, Duration::from_secs(120));
    eprintln!(
        "{what}: converged {:.1} s after the heal",
        v.converged.unwrap_or(f64::NAN)
    );
    load.stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert_healed(&v, what);
    (load, refused)
}

#[test]
fn a_member_cut_off_from_its_peers_acknowledges_nothing_alone_and_catches_up() {
    let c = group(1);
    let (cut, rest) = (member_ips(&c, &[2]), member_ips(&c, &[0, 1]));
    let (_, refused) = partition_under_load(
        &c,
        "member 2 cut off from its peers",
        Duration::from_secs(12),
        || Partition::new(&refs(&cut), &refs(&rest), Link::Down),
    );
    // the cut took: the uploads member 2 took could not get their second copy
    assert!(
        refused > 0,
        "no upload was refused while member 2 was cut off"
    );
}

#[test]
fn a_member_cut_off_from_the_trackers_catches_up_after_the_heal() {
    let c = group(1);
    let (cut, trackers) = (member_ips(&c, &[2]), tracker_ips(&c));
    partition_under_load(
        &c,
        "member 2 cut off from the trackers",
        Duration::from_secs(12),
        || Partition::new(&refs(&cut), &refs(&trackers), Link::Down),
    );
}

#[test]
fn a_lossy_link_between_members_loses_nothing() {
    let c = group(1);
    let (a, b) = (member_ips(&c, &[0]), member_ips(&c, &[1, 2]));
    partition_under_load(
        &c,
        "a link losing 30% of packets",
        Duration::from_secs(12),
        || Partition::new(&refs(&a), &refs(&b), Link::Lossy(30)),
    );
}

#[test]
fn connections_refused_between_members_lose_nothing() {
    let c = group(1);
    let (a, b) = (member_ips(&c, &[1]), member_ips(&c, &[0, 2]));
    partition_under_load(
        &c,
        "member 1's links reset",
        Duration::from_secs(10),
        || Partition::new(&refs(&a), &refs(&b), Link::Refused),
    );
}

/// Three trackers, the leader cut off from the other two: the two elect one leader between
/// them, the one alone does not act as the leader of a majority, uploads go on; after the heal
/// the three name one leader and every member holds every acknowledged file.
#[test]
fn trackers_split_elect_one_leader_on_the_majority_side() {
    let c = group(3);
    let trackers = c.tracker_addrs();
    let leader = one_leader(&trackers, "the trackers to agree on a leader");
    let alone = trackers
        .iter()
        .position(|t| leader.starts_with(&t.host))
        .expect("the leader is one of the trackers");
    let others: Vec<usize> = (0..trackers.len()).filter(|&i| i != alone).collect();
    let ips: Vec<String> = trackers.iter().map(|t| t.host.clone()).collect();
    let a = vec![ips[alone].clone()];
    let b: Vec<String> = others.iter().map(|&i| ips[i].clone()).collect();
    let majority_leader = std::sync::Mutex::new(None);
    partition_under_load(
        &c,
        "the leader tracker cut off from the other two",
        Duration::from_secs(25),
        || {
            let p = Partition::new(&refs(&a), &refs(&b), Link::Down);
            // the majority side agrees on a leader of its own
            let began = Instant::now();
            let l = rfdfs_tests::wait_for_up_to(
                Duration::from_secs(120),
                "the two trackers to elect a leader between them",
                || {
                    let l: Vec<Option<String>> =
                        others.iter().map(|&i| leader_of(&trackers[i])).collect();
                    let agreed = l.iter().all(|x| x.is_some() && *x == l[0]);
                    (agreed && l[0].as_ref().is_some_and(|x| !x.starts_with(&ips[alone])))
                        .then(|| l[0].clone().unwrap())
                },
                || {
                    let logs: Vec<String> = c.more_trackers.iter().map(|t| t.0.log()).collect();
                    format!(
                        "{:?}\n{}\n----\n{}",
                        others
                            .iter()
                            .map(|&i| leader_of(&trackers[i]))
                            .collect::<Vec<_>>(),
                        c.tracker.log(),
                        logs.join("\n----\n")
                    )
                },
            );
            // the tracker alone stops acting as the leader of the cluster
            rfdfs_tests::wait_for(
                "the tracker cut off from the others to stop naming itself leader",
                || {
                    (!leader_of(&trackers[alone]).is_some_and(|x| x.starts_with(&ips[alone])))
                        .then_some(())
                },
                || c.tracker_log_of(alone),
            );
            eprintln!(
                "majority side elected {l} in {:.1} s; the tracker alone names {:?}",
                began.elapsed().as_secs_f64(),
                leader_of(&trackers[alone])
            );
            *majority_leader.lock().unwrap() = Some(l);
            p
        },
    );
    // healed: one leader for all three
    one_leader(
        &trackers,
        "the three trackers to name one leader after the heal",
    );
    assert!(majority_leader.lock().unwrap().is_some());
}

/// A member whose links to its peers and to the trackers are slow (every byte held back 300 ms
/// each way, by a proxy the kernel puts on the links): with `write_ack_copies = 2` what it
/// acknowledges has its second copy, and after the heal every member holds every file.
#[test]
fn a_slow_link_to_the_peers_and_trackers_loses_nothing() {
    let c = group(1);
    let slow = vec![(c.storages[2].ip.clone(), c.storages[2].port)];
    let mut rest: Vec<(String, u16)> = [0, 1]
        .iter()
        .map(|&i| (c.storages[i].ip.clone(), c.storages[i].port))
        .collect();
    rest.extend(c.tracker_addrs().into_iter().map(|t| (t.host, t.port)));
    let link = std::sync::Mutex::new(None);
    partition_under_load(
        &c,
        "member 2's links 300 ms slow each way",
        Duration::from_secs(12),
        || {
            let s = SlowLink::between(&slow, &rest, Duration::from_millis(300));
            // a proxied connection: new ones come as heartbeats and syncs are made
            rfdfs_tests::wait_for(
                "a connection of member 2 through the slow link",
                || (s.proxied() > 0).then_some(()),
                || c.storages[2].daemon.log(),
            );
            *link.lock().unwrap() = Some(s.proxied());
            eprintln!("slow link in place, {} connections through it", s.proxied());
            s
        },
    );
    assert!(link.lock().unwrap().is_some());
}

/// One fault of the randomised run, and the links it takes.
enum Fault {
    /// held for its drop: the heal
    Cut {
        _partition: Partition,
    },
    Slow(SlowLink),
}

/// Draw a fault on three members and three trackers: its name and the fault, in place.
fn draw_fault(c: &Cluster, rng: &mut rfdfs_tests::Rng) -> (String, Fault) {
    let m = rng.index(MEMBERS);
    let others: Vec<usize> = (0..MEMBERS).filter(|&i| i != m).collect();
    let (me, peers, trackers) = (member_ips(c, &[m]), member_ips(c, &others), tracker_ips(c));
    let mut everyone = peers.clone();
    everyone.extend(trackers.iter().cloned());
    let cut = |a: &[String], b: &[String], link| Fault::Cut {
        _partition: Partition::new(&refs(a), &refs(b), link),
    };
    match rng.below(7) {
        0 => (
            format!("member {m} cut off from its peers"),
            cut(&me, &peers, Link::Down),
        ),
        1 => (
            format!("member {m} cut off from the trackers"),
            cut(&me, &trackers, Link::Down),
        ),
        2 => (
            format!("member {m} cut off from everyone"),
            cut(&me, &everyone, Link::Down),
        ),
        3 => {
            let p = 10 + rng.below(40) as u8;
            (
                format!("member {m}'s links to its peers lose {p}%"),
                cut(&me, &peers, Link::Lossy(p)),
            )
        }
        4 => (
            format!("member {m}'s links to its peers reset"),
            cut(&me, &peers, Link::Refused),
        ),
        5 => {
            let ms = 100 + rng.below(600);
            let at = |ips: &[usize]| -> Vec<(String, u16)> {
                ips.iter()
                    .map(|&i| (c.storages[i].ip.clone(), c.storages[i].port))
                    .collect()
            };
            let mut rest = at(&others);
            rest.extend(c.tracker_addrs().into_iter().map(|t| (t.host, t.port)));
            let s = SlowLink::between(&at(&[m]), &rest, Duration::from_millis(ms));
            (
                format!("member {m}'s links {ms} ms slow each way"),
                Fault::Slow(s),
            )
        }
        _ => {
            let t = rng.index(trackers.len());
            let rest: Vec<String> = trackers
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != t)
                .map(|(_, x)| x.clone())
                .collect();
            (
                format!("tracker {t} cut off from the other trackers"),
                cut(&trackers[t..=t], &rest, Link::Down),
            )
        }
    }
}

/// The long randomised run, `scripts/partition-test.sh [minutes]` (RFDFS_PARTITION_MINUTES;
/// the suite runs one round): three members with `write_ack_copies = 2` and three trackers
/// under client load, round after round one or two faults drawn at random held for 3-15 s;
/// in each, every file acknowledged during the faults has two copies; after each heal every
/// acknowledged file is on every member byte for byte and no deleted one is served; at the end
/// the three trackers name one leader.
#[test]
fn randomised_partitions_lose_nothing() {
    let minutes: f64 = std::env::var("RFDFS_PARTITION_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let seed = std::env::var("RFDFS_PARTITION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9a27_0001);
    let mut rng = rfdfs_tests::Rng(seed);
    let c = group(3);
    let (load, threads) = start_clients(&c, 0x5917_1000);
    std::thread::sleep(Duration::from_secs(5));
    let began = Instant::now();
    let mut rounds = 0;
    while rounds == 0 || began.elapsed().as_secs_f64() < minutes * 60.0 {
        rounds += 1;
        let before = load.acked.lock().unwrap().len();
        let refused_before = load.refused.load(Ordering::Relaxed);
        let mut faults = vec![draw_fault(&c, &mut rng)];
        if rng.below(3) == 0 {
            faults.push(draw_fault(&c, &mut rng));
        }
        let what: Vec<String> = faults.iter().map(|(w, _)| w.clone()).collect();
        let what = format!("round {rounds} (seed {seed}): {}", what.join(" + "));
        let hold = 3 + rng.below(13);
        std::thread::sleep(Duration::from_secs(hold));
        load.pause();
        let during = load.acked.lock().unwrap().len() - before;
        let single = on_fewer_than_two(&c, &load, before);
        let proxied: u32 = faults
            .iter()
            .map(|(_, f)| match f {
                Fault::Slow(s) => s.proxied(),
                Fault::Cut { .. } => 0,
            })
            .sum();
        drop(faults);
        assert!(
            single.is_empty(),
            "{what}: acknowledged with fewer than two copies: {single:?}"
        );
        load.resume();
        std::thread::sleep(Duration::from_secs(2));
        let v = wait_converged(&c, &load, Duration::from_secs(180));
        eprintln!(
            "{what}, {hold} s: {during} acknowledged during it, {} refused, {proxied} \
             connections slowed; {} acknowledged in all, converged in {:.1} s",
            load.refused.load(Ordering::Relaxed) - refused_before,
            v.acked,
            v.converged.unwrap_or(f64::NAN)
        );
        v.assert_all_kept(&what);
        load.resume();
    }
    load.stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    one_leader(
        &c.tracker_addrs(),
        "the three trackers to name one leader after the last round",
    );
    let acked = load.acked.lock().unwrap().len();
    let deleted = load.deleted.lock().unwrap().len();
    eprintln!(
        "partitions: {rounds} rounds in {:.0} s, {acked} files acknowledged, {deleted} deleted, \
         lost 0, deleted served again 0",
        began.elapsed().as_secs_f64()
    );
}
