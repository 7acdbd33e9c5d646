//! The fault campaign (issue 28): a storage's bad days, round after round, under load.
//!
//! A three-member group with trunk files on, each member with its base_path's `data/` on a
//! tmpfs of its own and its store path on a btrfs image of its own (a loop device), takes
//! uploads from three clients that put requests on the wire as the C library, the Java client
//! and py3fdfs do (`fdfs_client::personality`), and deletes. Each round injects one fault into
//! one member, heals it, then checks every acknowledged file on every member byte for byte
//! (every file deleted with an acknowledgement must stay deleted) and times how long that takes
//! to hold. The faults, in turn:
//!
//! | fault | how |
//! |---|---|
//! | base_path full | a file fills the member's base_path tmpfs; removed after the hold |
//! | store path full | a file fills the member's store path file system; removed after |
//! | store path blank | the member is stopped, its store path emptied, started |
//! | rebuilt while another is stopped | a second member stopped; the member stopped, its base_path and store path emptied, started; the second started after the hold |
//! | binlog damaged | the member stopped, its binlog cut to half (odd rounds) or its binlog index removed (even rounds), started |
//! | stopped for minutes | SIGSTOP for the hold, then SIGCONT |
//! | byte flipped | one byte of a stored file (plain or in a trunk slot) changed on the disk |
//! | block unreadable | one 4 KiB block of a stored file made unreadable: a byte changed under btrfs's checksum, so reads fail with EIO (this kernel has no device-mapper `error` target) |
//!
//! The rfdfs members run with `write_ack_copies = 2` (a change is on two members when it is
//! answered), the scrub and reconcile on: what an operator who counts on every acknowledged
//! file sets. `RFDFS_DAEMON_DIR` runs another build's daemons instead (upstream's, for the
//! comparison; they ignore those keys), and then nothing is asserted: the table says what
//! happened. `RFDFS_CAMPAIGN_MINUTES` runs rounds for that long (`scripts/fault-campaign.sh`);
//! without it, as in the suite, each fault is injected once with short holds.
//! `RFDFS_CAMPAIGN_FAULTS` (a comma-separated list of parts of fault names) keeps to those.

use fdfs_client::FileId;
use nix::sys::signal::Signal;
use rfdfs_tests::load::{
    not_served_right, serve_check, served_for_good, start_clients, Acked, Load,
};
use rfdfs_tests::{Cluster, ClusterOpts, LoopFs, Rng, Tmpfs};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MEMBERS: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    BasePathFull,
    StorePathFull,
    StorePathBlank,
    RebuiltWhileAnotherStopped,
    BinlogDamaged,
    StoppedForMinutes,
    ByteFlipped,
    BlockUnreadable,
}

impl Fault {
    const ALL: [Fault; 8] = [
        Fault::BasePathFull,
        Fault::StorePathFull,
        Fault::StorePathBlank,
        Fault::RebuiltWhileAnotherStopped,
        Fault::BinlogDamaged,
        Fault::StoppedForMinutes,
        Fault::ByteFlipped,
        Fault::BlockUnreadable,
    ];

    fn name(self) -> &'static str {
        match self {
            Fault::BasePathFull => "base_path full",
            Fault::StorePathFull => "store path full",
            Fault::StorePathBlank => "store path replaced by a blank one",
            Fault::RebuiltWhileAnotherStopped => "rebuilt (same id) while another is stopped",
            Fault::BinlogDamaged => "binlog truncated / index removed",
            Fault::StoppedForMinutes => "stopped (SIGSTOP)",
            Fault::ByteFlipped => "a byte flipped",
            Fault::BlockUnreadable => "a block unreadable (EIO)",
        }
    }
}

/// How long faults are held.
struct Holds {
    fill: Duration,
    sigstop: Duration,
    rebuilt: Duration,
    converge: Duration,
}

/// What one round found once the fault was healed.
#[derive(Debug, Default, Clone)]
struct RoundResult {
    /// members whose process died, started again (as systemd would)
    died: usize,
    acked: usize,
    lost: usize,
    corrupt: usize,
    resurrected: usize,
    refused: u64,
    converged: Option<f64>,
}

struct Campaign {
    c: Cluster,
    stores: Vec<LoopFs>,
    bases: Vec<Tmpfs>,
    load: Arc<Load>,
    rng: Rng,
    holds: Holds,
    threads: Vec<std::thread::JoinHandle<()>>,
    rounds_done: usize,
    /// binlog faults so far: they cut the binlog and remove the index in turn
    binlog_rounds: usize,
    /// files an earlier round found lost, corrupt or deleted and served again
    known_bad: std::collections::BTreeSet<String>,
}

impl Campaign {
    fn start(holds: Holds) -> Campaign {
        let stores: Vec<LoopFs> = (0..MEMBERS)
            .map(|i| LoopFs::new(&format!("campaign{i}"), "btrfs", 8192))
            .collect();
        let mut c = Cluster::start(ClusterOpts {
            storages: MEMBERS,
            member_store_roots: stores.iter().map(|s| s.dir.clone()).collect(),
            tracker_extra: "use_trunk_file=true\ncheck_active_interval=10\nslot_min_size=256\n\
                            slot_max_size=16KB\ntrunk_file_size=4MB\n\
                            trunk_alloc_alignment_size=256\n"
                .into(),
            storage_extra: "write_ack_copies=2\nwrite_ack_timeout=30\n\
                            scrub_bytes_per_second=32MB\nreconcile_interval=20\n"
                .into(),
            ..Default::default()
        });
        // each member's base_path data on a file system of its own, that can fill up
        let mut bases = Vec::new();
        for i in 0..MEMBERS {
            assert_eq!(c.storages[i].daemon.stop(), Some(0));
            bases.push(rfdfs_tests::onto_tmpfs(
                &c.storages[i].base.join("data"),
                256,
            ));
            c.start_storage(i);
        }
        c.wait_active(MEMBERS);
        let (load, threads) = start_clients(&c, 0xca3a_0000);
        Campaign {
            c,
            stores,
            bases,
            load,
            rng: Rng(0xfa17),
            holds,
            threads,
            rounds_done: 0,
            binlog_rounds: 0,
            known_bad: Default::default(),
        }
    }

    fn base_data(&self, i: usize) -> PathBuf {
        self.c.storages[i].base.join("data")
    }

    fn store_path(&self, i: usize) -> PathBuf {
        self.c.storages[i].store_paths[0].clone()
    }

    fn stop_member(&mut self, i: usize) {
        let _ = self.c.storages[i].daemon.stop();
    }

    fn start_member(&mut self, i: usize) {
        self.c.start_storage(i);
    }

    /// Let the load run for `d`.
    fn under_load(&self, d: Duration) {
        std::thread::sleep(d);
    }

    /// Start again the members whose process died (counted, and said); how many.
    fn restart_the_dead(&mut self) -> usize {
        let mut died = 0;
        for i in 0..MEMBERS {
            if !self.c.storages[i].daemon.alive() {
                eprintln!("  member {i} died: started again");
                died += 1;
                self.c.storages[i].daemon.child = None;
                self.start_member(i);
            }
        }
        died
    }

    /// Inject `fault` into member `x` and heal it.
    fn inject(&mut self, fault: Fault, x: usize) {
        match fault {
            Fault::BasePathFull => {
                let filler = rfdfs_tests::fill(&self.base_data(x));
                self.under_load(self.holds.fill);
                std::fs::remove_file(filler).unwrap();
            }
            Fault::StorePathFull => {
                let filler = rfdfs_tests::fill(&self.stores[x].dir);
                self.under_load(self.holds.fill);
                std::fs::remove_file(filler).unwrap();
            }
            Fault::StorePathBlank => {
                self.stop_member(x);
                empty(&self.store_path(x));
                self.start_member(x);
            }
            Fault::RebuiltWhileAnotherStopped => {
                let y = (x + 1) % MEMBERS;
                self.stop_member(y);
                self.stop_member(x);
                empty(&self.base_data(x));
                empty(&self.store_path(x));
                self.start_member(x);
                self.under_load(self.holds.rebuilt);
                self.start_member(y);
            }
            Fault::BinlogDamaged => {
                self.stop_member(x);
                let sync = self.base_data(x).join("sync");
                self.binlog_rounds += 1;
                if self.binlog_rounds % 2 == 1 {
                    let index = std::fs::read_to_string(sync.join("binlog_index.dat"))
                        .ok()
                        .and_then(|t| {
                            t.lines()
                                .find_map(|l| l.strip_prefix("current_write="))
                                .and_then(|v| v.trim().parse::<u32>().ok())
                        })
                        .unwrap_or(0);
                    let binlog = sync.join(format!("binlog.{index:03}"));
                    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&binlog) {
                        let len = f.metadata().unwrap().len();
                        f.set_len(len / 2).unwrap();
                    }
                } else {
                    let _ = std::fs::remove_file(sync.join("binlog_index.dat"));
                }
                self.start_member(x);
            }
            Fault::StoppedForMinutes => {
                rfdfs_tests::signal_storage(&self.c, x, Signal::SIGSTOP);
                self.under_load(self.holds.sigstop);
                rfdfs_tests::signal_storage(&self.c, x, Signal::SIGCONT);
            }
            Fault::ByteFlipped => {
                if let Some(at) = self.some_stored_byte(x, 0) {
                    flip(&at.0, at.1);
                }
            }
            Fault::BlockUnreadable => {
                if let Some((path, _)) = self.some_stored_byte(x, 8192) {
                    self.stores[x].break_block(&path, 1);
                }
            }
        }
    }

    /// A byte of an acknowledged file as member `x` stores it (a plain file of at least
    /// `min_len` bytes, or, with `min_len` 0, a file in a trunk slot too): the file holding it and
    /// the byte's offset there.
    fn some_stored_byte(&mut self, x: usize, min_len: usize) -> Option<(PathBuf, u64)> {
        use fdfs_common::file_id::RemoteName;
        use fdfs_common::trunk::TrunkSlot;
        let acked = self.load.acked.lock().unwrap().clone();
        let candidates: Vec<&Acked> = acked
            .iter()
            .filter(|a| a.len >= min_len.max(1))
            .filter(|a| {
                min_len == 0
                    || RemoteName::decode(&a.id.name)
                        .is_ok_and(|rn| TrunkSlot::of_name(&rn).is_none())
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let a = candidates[self.rng.index(candidates.len())];
        let data = self.store_path(x).join("data");
        let rn = RemoteName::decode(&a.id.name).ok()?;
        Some(match TrunkSlot::of_name(&rn) {
            Some(slot) => (
                data.join(&a.id.name[4..10]).join(slot.file_name()),
                slot.data_offset() + a.len as u64 / 2,
            ),
            None => (data.join(&a.id.name[4..]), a.len as u64 / 2),
        })
    }

    /// Wait until every acknowledged file is served byte for byte by every member (or the
    /// convergence time is over), and no member serves a deleted one.
    /// Files found lost, corrupt or brought back in an earlier round are not counted again, nor
    /// waited for: each round is charged with what it did.
    fn check(&mut self) -> RoundResult {
        let began = Instant::now();
        let known_bad = self.known_bad.clone();
        let acked: Vec<Acked> = self
            .load
            .acked
            .lock()
            .unwrap()
            .iter()
            .filter(|a| !known_bad.contains(&a.id.name))
            .cloned()
            .collect();
        let deleted: Vec<FileId> = self
            .load
            .deleted
            .lock()
            .unwrap()
            .iter()
            .filter(|id| !known_bad.contains(&id.name))
            .cloned()
            .collect();
        let mut pending: Vec<(usize, usize)> = (0..acked.len())
            .flat_map(|f| (0..MEMBERS).map(move |m| (f, m)))
            .collect();
        let mut bad: BTreeMap<(usize, usize), bool> = BTreeMap::new();
        let mut converged = None;
        let mut died = 0;
        loop {
            // a daemon that dies meanwhile is started again at once, as systemd would
            died += self.restart_the_dead();
            pending = not_served_right(serve_check(&self.c, &acked, &pending), &mut bad);
            if pending.is_empty() {
                converged = Some(began.elapsed().as_secs_f64());
                break;
            }
            if began.elapsed() > self.holds.converge {
                break;
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        let lost: std::collections::BTreeSet<usize> = bad
            .iter()
            .filter(|(_, c)| !**c)
            .map(|((f, _), _)| *f)
            .collect();
        let corrupt: std::collections::BTreeSet<usize> = bad
            .iter()
            .filter(|(_, c)| **c)
            .map(|((f, _), _)| *f)
            .collect();
        let resurrected: Vec<&FileId> =
            served_for_good(&self.c, &deleted, began + self.holds.converge, |_| true);
        for id in &resurrected {
            eprintln!("  {id}: deleted, served again");
        }
        self.known_bad.extend(
            lost.iter()
                .chain(&corrupt)
                .map(|&f| acked[f].id.name.clone()),
        );
        self.known_bad
            .extend(resurrected.iter().map(|id| id.name.clone()));
        for ((f, m), corrupt) in bad.iter().take(10) {
            eprintln!(
                "  {} on member {m}: {}",
                acked[*f].id,
                if *corrupt {
                    "different bytes"
                } else {
                    "not served"
                }
            );
        }
        RoundResult {
            died,
            acked: acked.len(),
            lost: lost.len(),
            corrupt: corrupt.len(),
            resurrected: resurrected.len(),
            refused: 0,
            converged,
        }
    }

    /// One round: the fault, healed, then the check with the clients paused.
    fn round(&mut self, fault: Fault) -> RoundResult {
        let x = self.rng.index(MEMBERS);
        let refused_before = self.load.refused.load(Ordering::Relaxed);
        eprintln!(
            "round {}: {} on member {x}",
            self.rounds_done + 1,
            fault.name()
        );
        self.inject(fault, x);
        let died = self.restart_the_dead();
        self.load.pause();
        // members stopped by the fault are back before anything is read from them
        if let Err(e) = self.c.wait_active_for(MEMBERS, Duration::from_secs(120)) {
            eprintln!("  {e}");
        }
        let mut r = self.check();
        r.died += died;
        self.load.resume();
        r.refused = self.load.refused.load(Ordering::Relaxed) - refused_before;
        eprintln!(
            "  {} acknowledged, {} lost, {} corrupt, {} deleted ones served again, {} refused, \
             converged in {}",
            r.acked,
            r.lost,
            r.corrupt,
            r.resurrected,
            r.refused,
            r.converged
                .map_or("(not in time)".to_string(), |s| format!("{s:.1} s"))
        );
        self.rounds_done += 1;
        // a little load before the next fault
        self.under_load(Duration::from_secs(5));
        r
    }

    fn finish(mut self) {
        self.load.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for i in 0..MEMBERS {
            let _ = self.c.storages[i].daemon.stop();
        }
        drop(self.bases);
        drop(self.stores);
    }
}

/// Remove everything inside `dir` (a store path, a base_path's data on its tmpfs).
fn empty(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            let _ = if p.is_dir() && !p.is_symlink() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
}

/// Change the byte at `at` of `path`, in place (size and mtime as a failing disk leaves them).
fn flip(path: &Path, at: u64) {
    use std::os::unix::fs::FileExt;
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    else {
        return;
    };
    let mut b = [0u8; 1];
    if f.read_exact_at(&mut b, at).is_ok() {
        let mtime = f.metadata().and_then(|m| m.modified()).ok();
        let _ = f.write_all_at(&[b[0] ^ 0x5a], at);
        if let Some(t) = mtime {
            let _ = f.set_modified(t);
        }
    }
}

#[test]
fn every_acknowledged_file_survives_a_storages_bad_days() {
    let minutes: Option<f64> = std::env::var("RFDFS_CAMPAIGN_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok());
    let upstream = std::env::var_os("RFDFS_DAEMON_DIR").is_some();
    let holds = match minutes {
        Some(_) => Holds {
            fill: Duration::from_secs(60),
            sigstop: Duration::from_secs(150),
            rebuilt: Duration::from_secs(30),
            converge: Duration::from_secs(300),
        },
        None => Holds {
            fill: Duration::from_secs(12),
            sigstop: Duration::from_secs(15),
            rebuilt: Duration::from_secs(6),
            converge: Duration::from_secs(120),
        },
    };
    let mut campaign = Campaign::start(holds);
    campaign.under_load(Duration::from_secs(10));
    let began = Instant::now();
    let mut results: BTreeMap<Fault, Vec<RoundResult>> = BTreeMap::new();
    // RFDFS_CAMPAIGN_FAULTS="EIO,flipped": only the faults whose names hold one of these
    let only: Vec<String> = std::env::var("RFDFS_CAMPAIGN_FAULTS")
        .map(|v| v.split(',').map(|f| f.trim().to_lowercase()).collect())
        .unwrap_or_default();
    let faults: Vec<Fault> = Fault::ALL
        .into_iter()
        .filter(|f| only.is_empty() || only.iter().any(|o| f.name().to_lowercase().contains(o)))
        .collect();
    assert!(!faults.is_empty(), "RFDFS_CAMPAIGN_FAULTS names no fault");
    'rounds: loop {
        for &fault in &faults {
            let r = campaign.round(fault);
            results.entry(fault).or_default().push(r);
            match minutes {
                Some(m) if began.elapsed().as_secs_f64() < m * 60.0 => {}
                Some(_) => break 'rounds,
                None => {}
            }
        }
        if minutes.is_none() {
            break;
        }
    }
    let total = began.elapsed();
    campaign.finish();
    println!(
        "\nfault campaign: {} daemons, {} rounds in {:.0} min\n",
        if upstream { "upstream's" } else { "rfdfs's" },
        results.values().map(Vec::len).sum::<usize>(),
        total.as_secs_f64() / 60.0
    );
    println!(
        "| fault | rounds | acknowledged files | lost | corrupt | deleted served again | refused writes | daemon died | seconds to converge (max) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut failures = Vec::new();
    for (fault, rs) in &results {
        let converge = if rs.iter().all(|r| r.converged.is_some()) {
            format!(
                "{:.1}",
                rs.iter().filter_map(|r| r.converged).fold(0.0f64, f64::max)
            )
        } else {
            "not within the limit".into()
        };
        let sum = |f: fn(&RoundResult) -> usize| rs.iter().map(f).sum::<usize>();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {converge} |",
            fault.name(),
            rs.len(),
            rs.iter().map(|r| r.acked).max().unwrap_or(0),
            sum(|r| r.lost),
            sum(|r| r.corrupt),
            sum(|r| r.resurrected),
            rs.iter().map(|r| r.refused).sum::<u64>(),
            sum(|r| r.died),
        );
        if sum(|r| r.lost) + sum(|r| r.corrupt) + sum(|r| r.resurrected) + sum(|r| r.died) > 0 {
            failures.push(fault.name());
        }
    }
    if !upstream {
        assert!(
            failures.is_empty(),
            "acknowledged files lost, corrupt or brought back, or a daemon died, after: {failures:?}"
        );
    }
}
