//! Power cuts (issue 29): what a storage keeps when the power goes, not just the process.
//!
//! kill -9 leaves the page cache to the kernel, which writes it out: a crash test passes
//! whatever the fsync order. Here each member's directory (base_path and store path) and the
//! tracker's are mounted through `rfdfs-cutfs` (tests/cutfs), which drops every write not
//! fsynced when the power is cut, with the daemons killed at the same instant. A three-member
//! group takes uploads from clients writing as the C library, the Java client and py3fdfs do,
//! and deletes; each round cuts the power of one member, or of all members and the tracker at
//! once (a rack), brings it back, and then checks, once the group has converged:
//!
//! * every acknowledged file on every member, byte for byte; no deleted file served again;
//! * every member's binlog lines and mark files parse, the members' binlogs name the same
//!   live files, and no block the trunk server holds free is a slot of an acknowledged file.
//!
//! Durable mode (`fsync_after_written_bytes` > 0, the one key rfdfs needs for it) must lose
//! nothing, cut after cut, with nothing unsynced surviving (LazyFS's rule). Page-cache mode
//! (upstream's default, 0) runs with Linux's writeback (a file dirty for 30 s is written out):
//! what a cut may lose is the files acknowledged in the last 30 s (plus the flusher's second)
//! whose every copy was on members that lost power; the round checks that nothing older is
//! lost, that the group converges all the same, and that no member serves a file whose bytes
//! are not the acknowledged ones.
//!
//! `RFDFS_POWER_CUTS=N` runs N cuts per test (`scripts/power-cut.sh`); the suite runs a few.

use fdfs_client::FileId;
use rfdfs_tests::load::{
    not_served_right, serve_check, served_for_good, start_clients, Acked, Load,
};
use rfdfs_tests::power::{self, PowerFs};
use rfdfs_tests::{Cluster, ClusterOpts, Daemon, Rng};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MEMBERS: usize = 3;

/// Linux's `dirty_expire_centisecs` default, for page-cache mode.
const WRITEBACK: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Durable,
    PageCache,
}

struct Rig {
    c: Cluster,
    members: Vec<PowerFs>,
    tracker: PowerFs,
    load: Arc<Load>,
    threads: Vec<std::thread::JoinHandle<()>>,
    rng: Rng,
    mode: Mode,
    trunk: bool,
    /// when each acknowledged upload or delete was acknowledged (by name)
    acked_at: BTreeMap<String, Instant>,
    deleted_at: BTreeMap<String, Instant>,
}

#[derive(Default, Debug)]
struct CutResult {
    acked: usize,
    lost: Vec<String>,
    /// lost files acknowledged before the writeback window of the cut
    lost_outside_promise: Vec<String>,
    corrupt: Vec<String>,
    resurrected: Vec<String>,
    /// deletes undone that were acknowledged before the writeback window of the cut
    resurrected_outside_promise: Vec<String>,
    dropped_files: u64,
    converged: Option<f64>,
    state_problems: Vec<String>,
    /// members whose binlogs name different live files
    disagreements: Vec<String>,
}

impl Rig {
    fn start(mode: Mode, trunk: bool) -> Rig {
        let mut storage_extra =
            String::from("reconcile_interval=20\nscrub_bytes_per_second=32MB\n");
        if mode == Mode::Durable {
            storage_extra += "fsync_after_written_bytes=1MB\n";
        }
        let tracker_extra = if trunk {
            "use_trunk_file=true\nslot_min_size=256\nslot_max_size=16KB\ntrunk_file_size=4MB\n\
             trunk_alloc_alignment_size=256\n"
        } else {
            ""
        };
        let mut c = Cluster::start(ClusterOpts {
            storages: MEMBERS,
            tracker_extra: tracker_extra.into(),
            storage_extra,
            ..Default::default()
        });
        let expire = (mode == Mode::PageCache).then_some(WRITEBACK);
        for s in &mut c.storages {
            assert_eq!(s.daemon.stop(), Some(0));
        }
        assert_eq!(c.tracker.stop(), Some(0));
        let tracker = PowerFs::over(&c.tracker.base.clone(), expire);
        let members = (0..MEMBERS)
            .map(|i| PowerFs::over(&c.storages[i].base.clone(), expire))
            .collect();
        restart_tracker(&mut c);
        for i in 0..MEMBERS {
            c.start_storage(i);
        }
        c.wait_active(MEMBERS);
        // (upstream's daemons say it otherwise; their first small uploads may be plain files)
        if trunk && !upstream() {
            rfdfs_tests::wait_trunk_server_known(&c);
        }
        let (load, threads) = start_clients(&c, 0x90e7_0000);
        Rig {
            c,
            members,
            tracker,
            load,
            threads,
            rng: Rng(0x05ee_dc07),
            mode,
            trunk,
            acked_at: BTreeMap::new(),
            deleted_at: BTreeMap::new(),
        }
    }

    /// Stamp the acknowledgements seen since the last call.
    fn stamp_acks(&mut self) {
        let now = Instant::now();
        for a in self.load.acked.lock().unwrap().iter() {
            self.acked_at.entry(a.id.name.clone()).or_insert(now);
        }
        for id in self.load.deleted.lock().unwrap().iter() {
            self.deleted_at.entry(id.name.clone()).or_insert(now);
        }
    }

    /// Let the load run for `d`, stamping acknowledgements as they come.
    fn under_load(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(100));
            self.stamp_acks();
        }
    }

    /// One cut: of member `x`'s power alone, or (`x` = None) of every member and the tracker.
    fn cut(&mut self, x: Option<usize>) -> CutResult {
        let victims: Vec<usize> = match x {
            Some(x) => vec![x],
            None => (0..MEMBERS).collect(),
        };
        let mut pids: Vec<u32> = victims
            .iter()
            .filter_map(|&i| self.c.storages[i].daemon.pid())
            .collect();
        let cut_at = Instant::now();
        let dropped = {
            let mut fs: Vec<&mut PowerFs> = Vec::new();
            let (tracker, members) = (&mut self.tracker, &mut self.members);
            for (i, m) in members.iter_mut().enumerate() {
                if victims.contains(&i) {
                    fs.push(m);
                }
            }
            if x.is_none() {
                pids.extend(self.c.tracker.pid());
                fs.push(tracker);
            }
            power::cut(&mut fs, &pids)
        };
        self.stamp_acks();
        for &i in &victims {
            reap(&mut self.c.storages[i].daemon);
        }
        if x.is_none() {
            reap(&mut self.c.tracker);
            self.tracker.power_on();
            restart_tracker(&mut self.c);
        }
        for &i in &victims {
            self.members[i].power_on();
            self.c.start_storage(i);
        }
        self.load.pause();
        self.stamp_acks();
        if let Err(e) = self.c.wait_active_for(MEMBERS, Duration::from_secs(120)) {
            eprintln!("  {e}");
        }
        let mut r = self.check(cut_at);
        r.dropped_files = dropped.iter().map(|d| d.files).sum();
        self.load.resume();
        r
    }

    /// Wait until every acknowledged file is served byte for byte by every member (or 180 s
    /// passed), then look at what is served and at each member's state files.
    fn check(&mut self, cut_at: Instant) -> CutResult {
        let began = Instant::now();
        let acked: Vec<Acked> = self.load.acked.lock().unwrap().clone();
        let deleted: Vec<FileId> = self.load.deleted.lock().unwrap().clone();
        let mut pending: Vec<(usize, usize)> = (0..acked.len())
            .flat_map(|f| (0..MEMBERS).map(move |m| (f, m)))
            .collect();
        let mut bad: BTreeMap<(usize, usize), bool> = BTreeMap::new();
        let mut converged = None;
        loop {
            pending = not_served_right(serve_check(&self.c, &acked, &pending), &mut bad);
            // converged: every file some member serves right is served right by all; a file
            // no member has (lost in page-cache mode) cannot come back
            let missing_everywhere =
                |f: usize| (0..MEMBERS).all(|m| bad.get(&(f, m)) == Some(&false));
            if pending.iter().all(|&(f, _)| missing_everywhere(f)) {
                converged = Some(began.elapsed().as_secs_f64());
                break;
            }
            if began.elapsed() > Duration::from_secs(180) {
                for &(f, m) in pending.iter().filter(|p| !missing_everywhere(p.0)).take(5) {
                    println!(
                        "  not converged: {} on member {m}: {}",
                        acked[f].id,
                        if bad.get(&(f, m)) == Some(&true) {
                            "different bytes"
                        } else {
                            "not served"
                        }
                    );
                }
                break;
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        let name = |f: usize| acked[f].id.to_string();
        let lost: BTreeSet<usize> = bad.iter().filter(|(_, c)| !**c).map(|(p, _)| p.0).collect();
        let corrupt: BTreeSet<usize> = bad.iter().filter(|(_, c)| **c).map(|(p, _)| p.0).collect();
        // page-cache mode's promise: only what was acknowledged within the writeback window
        // (and the flusher's tick) before the cut, with every copy on a member that lost power
        let window = WRITEBACK + Duration::from_secs(2);
        let lost_outside_promise: Vec<String> = lost
            .iter()
            .filter(|&&f| {
                let at = self.acked_at.get(&acked[f].id.name).copied();
                self.mode == Mode::Durable
                    || at.is_none_or(|at| cut_at.saturating_duration_since(at) > window)
            })
            .map(|&f| name(f))
            .collect();
        // a delete answered just before the cut may still be on its way to the other members
        // (its source sends it after the restart, behind what it had not sent yet): what is
        // served for good is what is still served once every delete could have arrived, so
        // the served-again ones outside the promise are looked at again until none is left or
        // the time is up
        let outside_promise = |id: &FileId| {
            let at = self.deleted_at.get(&id.name).copied();
            self.mode == Mode::Durable
                || at.is_none_or(|at| cut_at.saturating_duration_since(at) > window)
        };
        let resurrected: Vec<&FileId> = served_for_good(
            &self.c,
            &deleted,
            began + Duration::from_secs(180),
            outside_promise,
        );
        let resurrected_outside_promise = resurrected
            .iter()
            .filter(|id| outside_promise(id))
            .map(|id| id.to_string())
            .collect();
        // a delete undone by the cut is a file again: later rounds need not see it deleted
        let undone: BTreeSet<String> = resurrected.iter().map(|id| id.name.clone()).collect();
        self.load
            .deleted
            .lock()
            .unwrap()
            .retain(|id| !undone.contains(&id.name));
        let resurrected = resurrected.iter().map(|id| id.to_string()).collect();
        // what was lost is gone for good: later rounds check the rest
        let gone: BTreeSet<&str> = lost.iter().map(|&f| acked[f].id.name.as_str()).collect();
        self.load
            .acked
            .lock()
            .unwrap()
            .retain(|a| !gone.contains(a.id.name.as_str()));
        let kept: Vec<Acked> = acked
            .iter()
            .filter(|a| !gone.contains(a.id.name.as_str()))
            .cloned()
            .collect();
        let (state_problems, disagreements) = if converged.is_some() {
            self.state_problems(&kept)
        } else {
            Default::default()
        };
        CutResult {
            acked: acked.len(),
            lost: lost.iter().map(|&f| name(f)).collect(),
            lost_outside_promise,
            corrupt: corrupt.iter().map(|&f| name(f)).collect(),
            resurrected,
            resurrected_outside_promise,
            dropped_files: 0,
            converged,
            state_problems,
            disagreements,
        }
    }

    /// Every member's binlog lines and mark files parse; the trunk server holds no kept file's
    /// slot free (the problems); and the binlogs name the same live files (the disagreements).
    fn state_problems(&self, acked: &[Acked]) -> (Vec<String>, Vec<String>) {
        use fdfs_storage::binlog;
        let mut problems = Vec::new();
        let mut live_sets = Vec::new();
        for i in 0..MEMBERS {
            let sync = self.c.storages[i].base.join("data/sync");
            let mut live = BTreeSet::new();
            for index in binlog::binlog_files(&sync) {
                let path = sync.join(binlog::binlog_name(index));
                if !path.exists() {
                    continue; // compressed
                }
                let _ = binlog::for_each_line(&path, |l| match binlog::parse_line(l) {
                    Some(r) => match r.op {
                        'C' | 'c' | 'L' | 'l' => {
                            live.insert(r.name);
                        }
                        'D' | 'd' => {
                            live.remove(&r.name);
                        }
                        _ => {}
                    },
                    None if l.is_empty() => {}
                    None => problems.push(format!("member {i}: binlog line {l:?} does not parse")),
                });
            }
            for e in std::fs::read_dir(&sync).into_iter().flatten().flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "mark") {
                    match fdfs_storage::mark::Mark::load(&p) {
                        Ok(Some(_)) => {}
                        Ok(None) => problems.push(format!("member {i}: {} is empty", p.display())),
                        Err(why) => problems.push(format!("member {i}: {}: {why}", p.display())),
                    }
                }
            }
            live_sets.push(live);
        }
        // a name some binlogs hold and others lack is a disagreement when a member serves the
        // file; a line no member has a file for is an upload the cut interrupted after its
        // line was written (the client got no answer), which the sync skips
        let client = self.c.client();
        let served = |name: &str| {
            let id = FileId {
                group: "group1".into(),
                name: name.into(),
            };
            (0..MEMBERS)
                .any(|m| rfdfs_tests::read_from(&client, &self.c.storage_addr(m), &id).is_ok())
        };
        let mut disagreements = Vec::new();
        for i in 1..MEMBERS {
            let differ: Vec<&String> = live_sets[0]
                .symmetric_difference(&live_sets[i])
                .filter(|n| served(n))
                .take(3)
                .collect();
            if !differ.is_empty() {
                disagreements.push(format!(
                    "members 0 and {i} binlogs disagree on files a member serves: {differ:?}"
                ));
            }
        }
        if self.trunk {
            problems.extend(self.trunk_problems(acked));
        }
        (problems, disagreements)
    }

    /// The trunk server's free blocks (its snapshot and trunk binlog replayed) against the
    /// slots of acknowledged files.
    fn trunk_problems(&self, acked: &[Acked]) -> Vec<String> {
        use fdfs_common::file_id::RemoteName;
        use fdfs_common::trunk::{TrunkBinlogRecord, TrunkOp, TrunkSlot};
        let client = self.c.client();
        let Ok(storages) = client.list_storages("group1", None) else {
            return vec!["the tracker did not list the group".into()];
        };
        let Some(ts) = storages.iter().find(|s| s.if_trunk_server != 0) else {
            return Vec::new();
        };
        let Some(i) = self.c.storages.iter().position(|s| s.ip == ts.ip) else {
            return Vec::new();
        };
        let dir = self.c.storages[i].base.join("data/trunk");
        let text = std::fs::read_to_string(dir.join("binlog")).unwrap_or_default();
        let mut free: BTreeSet<(u32, u32, u32)> = BTreeSet::new();
        let mut apply =
            |line: &str, problems: &mut Vec<String>| match TrunkBinlogRecord::parse(line) {
                Some(r) => {
                    let key = (r.block.trunk_id, r.block.offset, r.block.size);
                    match r.op {
                        TrunkOp::Add => free.insert(key),
                        TrunkOp::Delete => free.remove(&key),
                    };
                }
                None if line.trim().is_empty() => {}
                None => problems.push(format!(
                    "trunk server: trunk binlog line {line:?} does not parse"
                )),
            };
        let mut problems = Vec::new();
        let mut from = 0;
        if let Ok(s) =
            std::fs::read_to_string(self.c.storages[i].base.join("data/storage_trunk.dat"))
        {
            let mut lines = s.lines();
            if let Some(size) = lines.next().and_then(|l| l.trim().parse::<usize>().ok()) {
                if size <= text.len() {
                    from = size;
                    lines.for_each(|l| apply(l, &mut problems));
                }
            }
        }
        for line in text[from..].lines() {
            apply(line, &mut problems);
        }
        for a in acked {
            let Some(slot) = RemoteName::decode(&a.id.name)
                .ok()
                .and_then(|rn| TrunkSlot::of_name(&rn))
            else {
                continue;
            };
            let (start, end) = (slot.offset, slot.offset + slot.alloc_size);
            if free
                .iter()
                .any(|&(t, o, s)| t == slot.trunk_id && o < end && start < o + s)
            {
                problems.push(format!("the trunk server holds {}'s slot free", a.id));
            }
        }
        problems
    }

    fn finish(mut self) {
        self.load
            .stop
            .store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for s in &mut self.c.storages {
            let _ = s.daemon.stop();
        }
        let _ = self.c.tracker.stop();
    }
}

fn restart_tracker(c: &mut Cluster) {
    c.tracker = Daemon::start(
        "fdfs_trackerd",
        &c.tracker.conf.clone(),
        &c.tracker.base.clone(),
    );
    rfdfs_tests::wait_port(&c.tracker_addr.host, c.tracker_addr.port, "tracker");
}

/// Wait for a daemon killed by a power cut.
fn reap(d: &mut Daemon) {
    if let Some(mut c) = d.child.take() {
        let _ = c.wait();
    }
}

/// Run `cuts` cuts (the environment's `RFDFS_POWER_CUTS` if set), alternating a rack's cut and
/// one member's; print a line each and a table; the results.
fn campaign(mode: Mode, trunk: bool, cuts: usize) -> Vec<CutResult> {
    let cuts = std::env::var("RFDFS_POWER_CUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cuts);
    let mut rig = Rig::start(mode, trunk);
    let mut results = Vec::new();
    rig.under_load(Duration::from_secs(5));
    for k in 0..cuts {
        // a while under load: in page-cache mode, longer than the writeback at times
        let wait = match mode {
            Mode::Durable => 2 + rig.rng.below(6),
            Mode::PageCache => 5 + rig.rng.below(35),
        };
        rig.under_load(Duration::from_secs(wait));
        let x = (k % 2 == 1).then(|| rig.rng.index(MEMBERS));
        let r = rig.cut(x);
        println!(
            "cut {} ({mode:?}, trunk {}): {}: {} acknowledged, {} files with unsynced writes, \
             {} lost ({} outside the promise), {} corrupt, {} deleted served again ({} outside \
             the promise), converged in {}{}",
            k + 1,
            if trunk { "on" } else { "off" },
            match x {
                Some(x) => format!("member {x}"),
                None => "every member and the tracker".into(),
            },
            r.acked,
            r.dropped_files,
            r.lost.len(),
            r.lost_outside_promise.len(),
            r.corrupt.len(),
            r.resurrected.len(),
            r.resurrected_outside_promise.len(),
            r.converged
                .map_or("(not within 180 s)".into(), |s| format!("{s:.1} s")),
            if r.state_problems.is_empty() && r.disagreements.is_empty() {
                String::new()
            } else {
                format!("; state: {:?} {:?}", r.state_problems, r.disagreements)
            }
        );
        for f in r.lost.iter().chain(&r.corrupt).take(5) {
            println!("  {f}");
        }
        results.push(r);
    }
    rig.finish();
    let sum = |f: fn(&CutResult) -> usize| results.iter().map(f).sum::<usize>();
    println!(
        "\n{} daemons\n| mode | trunk | cuts | acknowledged files (last) | lost | lost outside the promise | corrupt | deleted served again | outside the promise | state problems | binlogs disagree | converged (max s) |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n| {mode:?} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        if upstream() { "upstream's" } else { "rfdfs's" },
        if trunk { "on" } else { "off" },
        results.len(),
        results.last().map_or(0, |r| r.acked),
        sum(|r| r.lost.len()),
        sum(|r| r.lost_outside_promise.len()),
        sum(|r| r.corrupt.len()),
        sum(|r| r.resurrected.len()),
        sum(|r| r.resurrected_outside_promise.len()),
        sum(|r| r.state_problems.len()),
        sum(|r| r.disagreements.len()),
        if results.iter().all(|r| r.converged.is_some()) {
            format!(
                "{:.1}",
                results.iter().filter_map(|r| r.converged).fold(0.0, f64::max)
            )
        } else {
            "not within 180 s".into()
        },
    );
    results
}

/// Whether another build's daemons run (`RFDFS_DAEMON_DIR`, upstream's for the comparison):
/// then the table says what happened and nothing is asserted.
fn upstream() -> bool {
    std::env::var_os("RFDFS_DAEMON_DIR").is_some()
}

fn assert_kept(results: &[CutResult], mode: Mode) {
    if upstream() {
        return;
    }
    for (k, r) in results.iter().enumerate() {
        let lost = if mode == Mode::Durable {
            &r.lost
        } else {
            &r.lost_outside_promise
        };
        assert!(
            lost.is_empty(),
            "cut {}: acknowledged files lost: {lost:?}",
            k + 1
        );
        assert!(
            r.corrupt.is_empty(),
            "cut {}: corrupt files served: {:?}",
            k + 1,
            r.corrupt
        );
        let resurrected = if mode == Mode::Durable {
            &r.resurrected
        } else {
            &r.resurrected_outside_promise
        };
        assert!(
            resurrected.is_empty(),
            "cut {}: deleted files served again: {resurrected:?}",
            k + 1,
        );
        assert!(
            r.converged.is_some(),
            "cut {}: the group did not converge",
            k + 1
        );
        assert!(
            mode == Mode::PageCache || r.disagreements.is_empty(),
            "cut {}: {:?}",
            k + 1,
            r.disagreements
        );
        assert!(
            r.state_problems.is_empty(),
            "cut {}: state files: {:?}",
            k + 1,
            r.state_problems
        );
    }
}

#[test]
fn durable_mode_keeps_every_acknowledged_file_through_power_cuts_with_trunk_files() {
    let r = campaign(Mode::Durable, true, 2);
    assert_kept(&r, Mode::Durable);
}

#[test]
fn durable_mode_keeps_every_acknowledged_file_through_power_cuts_without_trunk_files() {
    let r = campaign(Mode::Durable, false, 2);
    assert_kept(&r, Mode::Durable);
}

#[test]
fn page_cache_mode_loses_only_the_writeback_window_and_serves_nothing_corrupt() {
    let r = campaign(Mode::PageCache, true, 1);
    assert_kept(&r, Mode::PageCache);
}
