//! Crash harness (issue 6): kill -9 of a storage, or of the tracker, at a random moment under a
//! 16-thread upload / append / delete load; restart; verify against the client's record of what
//! was acknowledged. Rounds: `RFDFS_CRASH_ROUNDS` (default 3 for CI; scripts/crash-test.sh
//! runs the long mode), seed `RFDFS_CRASH_SEED`.
//!
//! After every round: every acknowledged file is on both members with exactly its acknowledged
//! content; every acknowledged delete is gone from both; every normal file on disk matches the
//! size and CRC32 its own name carries (nothing partial is visible, acknowledged or not); no
//! temp file is left in the data tree; binlogs and marks parse; both members hold the same files;
//! the tracker's data files load and it knows both storages.

use fdfs_client::Upload;
use fdfs_client::{Client, Content, FileId};
use fdfs_common::file_id::{FileKind, RemoteName};
use rfdfs_tests::{Cluster, ClusterOpts, Daemon, Rng};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Content as length and CRC32: the record of thousands of files stays small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Digest(usize, u32);

impl Digest {
    fn of(b: &[u8]) -> Digest {
        Digest(b.len(), crc32fast::hash(b))
    }
}

/// What the client knows of a file.
#[derive(Debug, Clone)]
enum Known {
    /// acknowledged: exactly this content
    Exact(Digest),
    /// an append whose answer was lost: the content before it, or after it
    EitherOf(Digest, Digest),
    /// acknowledged delete
    Deleted,
    /// a delete whose answer was lost: gone, or still this content
    MaybeDeleted(Digest),
}

type Record = Arc<Mutex<BTreeMap<String, Known>>>;

fn content(r: &mut Rng, large: bool) -> Vec<u8> {
    let n = match r.below(10) {
        0 => 0,
        1 if large => 256 * 1024 + r.below(768 * 1024) as usize,
        _ => r.below(64 * 1024) as usize,
    };
    let seed = r.next_u64() as u8;
    (0..n)
        .map(|i| seed.wrapping_add((i * 7 % 251) as u8))
        .collect()
}

/// One worker of the load: uploads, appends to its appender files, deletes its files.
fn worker(client: Arc<Client>, record: Record, stop: Arc<AtomicBool>, seed: u64) {
    let mut r = Rng(seed | 1);
    let mut mine: Vec<(FileId, Digest)> = Vec::new();
    // appender files with their acknowledged content (the next append builds on it)
    let mut appenders: Vec<(FileId, Vec<u8>)> = Vec::new();
    let put = |id: &FileId, k: Known| {
        record.lock().unwrap().insert(id.to_string(), k);
    };
    while !stop.load(Ordering::Relaxed) {
        match r.below(10) {
            0..=4 => {
                let data = content(&mut r, true);
                if let Ok(id) =
                    client.upload(Content::Buffer(&data), "bin", Upload::File, None, None)
                {
                    put(&id, Known::Exact(Digest::of(&data)));
                    mine.push((id, Digest::of(&data)));
                }
            }
            5 => {
                let data = content(&mut r, false);
                if let Ok(id) =
                    client.upload(Content::Buffer(&data), "log", Upload::Appender, None, None)
                {
                    put(&id, Known::Exact(Digest::of(&data)));
                    appenders.push((id, data));
                }
            }
            6..=7 if !appenders.is_empty() => {
                let k = r.below(appenders.len() as u64) as usize;
                let extra: Vec<u8> = (0..1 + r.below(8192)).map(|i| i as u8).collect();
                let mut after = appenders[k].1.clone();
                after.extend_from_slice(&extra);
                match client.append(&appenders[k].0, Content::Buffer(&extra)) {
                    Ok(()) => {
                        put(&appenders[k].0, Known::Exact(Digest::of(&after)));
                        appenders[k].1 = after;
                    }
                    Err(_) => {
                        // unknown outcome: stop appending to it
                        let (id, before) = appenders.swap_remove(k);
                        put(
                            &id,
                            Known::EitherOf(Digest::of(&before), Digest::of(&after)),
                        );
                    }
                }
            }
            _ if !mine.is_empty() => {
                let (id, d) = mine.swap_remove(r.below(mine.len() as u64) as usize);
                match client.delete(&id) {
                    Ok(()) => put(&id, Known::Deleted),
                    Err(_) => put(&id, Known::MaybeDeleted(d)),
                }
            }
            _ => {}
        }
    }
}

/// Every regular file under the store's data tree (relative path -> content digest).
fn stored(store: &Path) -> BTreeMap<String, Digest> {
    let mut out = BTreeMap::new();
    let data = store.join("data");
    for h in std::fs::read_dir(&data).unwrap().flatten() {
        let hn = h.file_name().to_string_lossy().into_owned();
        if hn.len() != 2 || !h.path().is_dir() {
            continue;
        }
        for l in std::fs::read_dir(h.path()).unwrap().flatten() {
            for f in std::fs::read_dir(l.path()).unwrap().flatten() {
                let rel = format!(
                    "{hn}/{}/{}",
                    l.file_name().to_string_lossy(),
                    f.file_name().to_string_lossy()
                );
                out.insert(
                    rel,
                    Digest::of(&std::fs::read(f.path()).unwrap_or_default()),
                );
            }
        }
    }
    out
}

/// Every binlog line of both members that names `name`, for a failure's message.
fn binlog_lines_naming(c: &Cluster, name: &str) -> String {
    let mut out = String::new();
    for (i, s) in c.storages.iter().enumerate() {
        for e in std::fs::read_dir(s.base.join("data/sync"))
            .unwrap()
            .flatten()
        {
            let file = e.file_name().to_string_lossy().into_owned();
            if !file.starts_with("binlog.") || file.ends_with(".gz") {
                continue;
            }
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            for line in text.lines().filter(|l| l.contains(name)) {
                out += &format!("storage {i} {file}: {line}\n");
            }
        }
    }
    out
}

fn check_state_files(base: &Path) {
    let sync = base.join("data/sync");
    for e in std::fs::read_dir(&sync).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("binlog.") && !name.ends_with(".gz") && name != "binlog_index.dat" {
            let text = std::fs::read_to_string(e.path()).unwrap();
            for line in text.lines() {
                // a record the crash cut short is skipped by readers; nothing else may be odd
                if fdfs_storage::binlog::parse_line(line).is_none() && !text.ends_with(line) {
                    panic!("{name}: unparsable line {line:?}");
                }
            }
        }
        if name.ends_with(".mark") {
            fdfs_storage::mark::Mark::load(&e.path())
                .unwrap_or_else(|err| panic!("{name}: {err}"))
                .expect("mark present");
        }
    }
}

/// A trunk file's name (`NNNNNN`): its bytes may differ between members (slots written by an
/// upload that failed), so members are compared by the files in it, read through the protocol.
fn is_trunk_file(rel: &str) -> bool {
    rel.rsplit('/')
        .next()
        .is_some_and(|n| n.len() >= 6 && n.bytes().all(|b| b.is_ascii_digit()))
}

fn verify(c: &Cluster, record: &Record, round: usize) {
    let client = c.client();
    // replicas converge: both members hold the same files with the same bytes
    let deadline = Instant::now() + Duration::from_secs(90);
    let (a, b) = loop {
        let mut a = stored(&c.storages[0].store_paths[0]);
        let mut b = stored(&c.storages[1].store_paths[0]);
        a.retain(|rel, _| !is_trunk_file(rel));
        b.retain(|rel, _| !is_trunk_file(rel));
        if a == b {
            break (a, b);
        }
        let only_a: Vec<_> = a
            .keys()
            .filter(|k| b.get(*k) != a.get(*k))
            .take(3)
            .collect();
        let only_b: Vec<_> = b
            .keys()
            .filter(|k| a.get(*k) != b.get(*k))
            .take(3)
            .collect();
        assert!(
            Instant::now() < deadline,
            "round {round}: members differ: {only_a:?} / {only_b:?}\n{}\n----\n{}",
            c.storages[0].daemon.log(),
            c.storages[1].daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(b);
    // nothing partial or temporary is visible
    for (rel, digest) in &a {
        assert!(
            !rel.contains(".rfdfs") && !rel.contains(".tmp"),
            "round {round}: temp file {rel} in the data tree"
        );
        if rel.ends_with("-m") {
            continue;
        }
        let name = format!("M00/{rel}");
        let rn = RemoteName::decode(&name)
            .unwrap_or_else(|e| panic!("round {round}: stray file {rel}: {e}"));
        if rn.kind == FileKind::Normal {
            assert_eq!(
                Some(digest.0 as i64),
                rn.payload.file_size(),
                "round {round}: {rel} size"
            );
            assert_eq!(
                digest.1, rn.payload.crc32,
                "round {round}: {rel} content does not match its name"
            );
        }
    }
    // every acknowledged operation holds, read through the protocol from each member
    for (key, known) in record.lock().unwrap().iter() {
        let id = FileId::parse(key).unwrap();
        let rel = &id.name[4..];
        for i in 0..2 {
            let mut got = Vec::new();
            let r = client.download_from(&c.storage_addr(i), &id, 0, 0, || Ok(&mut got));
            let d = Digest::of(&got);
            let ok = match known {
                Known::Exact(want) => r.is_ok() && d == *want,
                Known::EitherOf(x, y) => r.is_ok() && (d == *x || d == *y),
                Known::Deleted => r.is_err() && !a.contains_key(rel),
                Known::MaybeDeleted(want) => r.is_err() || d == *want,
            };
            assert!(
                ok,
                "round {round}: {key} on storage {i}: expected {}, got {:?} ({} bytes); on \
                 disk: {:?}; binlog lines naming it:\n{}",
                match known {
                    Known::Exact(w) => format!("{} bytes", w.0),
                    Known::EitherOf(x, y) => format!("{} or {} bytes", x.0, y.0),
                    Known::Deleted => "deleted".into(),
                    Known::MaybeDeleted(w) => format!("deleted or {} bytes", w.0),
                },
                r.err(),
                got.len(),
                a.get(rel),
                binlog_lines_naming(c, &id.name)
                    + &c.storages
                        .iter()
                        .map(|s| {
                            s.daemon
                                .log()
                                .lines()
                                .filter(|l| l.contains("trunk") || l.contains("refused"))
                                .collect::<Vec<_>>()
                                .join("\n")
                        })
                        .collect::<Vec<_>>()
                        .join("\n----\n")
            );
        }
    }
    // no slot holds two live files
    let mut slots = std::collections::BTreeMap::new();
    for (key, known) in record.lock().unwrap().iter() {
        if matches!(known, Known::Exact(_) | Known::EitherOf(..)) {
            let id = FileId::parse(key).unwrap();
            let rn = RemoteName::decode(&id.name).unwrap();
            if let Some(slot) = fdfs_common::trunk::TrunkSlot::of_name(&rn) {
                let at = (rn.subdir_high, rn.subdir_low, slot.trunk_id, slot.offset);
                if let Some(other) = slots.insert(at, key.clone()) {
                    panic!("round {round}: {key} and {other} share a trunk slot");
                }
            }
        }
    }
    for s in &c.storages {
        check_state_files(&s.base);
    }
    // the tracker knows both storages, from its data files after a crash
    let listed = client.list_storages("group1", None).unwrap();
    assert_eq!(listed.len(), 2, "round {round}: {listed:?}");
}

#[test]
fn kill_9_under_load_loses_nothing_acknowledged() {
    crash_rounds(false);
}

/// The same with small files in trunk slots: the trunk server (and the members allocating
/// through it) killed at random moments; no acknowledged file is lost or shares its slot.
#[test]
fn kill_9_under_load_with_trunk_files() {
    crash_rounds(true);
}

fn crash_rounds(trunks: bool) {
    let rounds: usize = std::env::var("RFDFS_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if trunks { 2 } else { 3 });
    let seed: u64 = std::env::var("RFDFS_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x00c0_ffee);
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        tracker_extra: if trunks {
            "use_trunk_file=true\nslot_max_size=64KB\ntrunk_file_size=16MB\n\
             trunk_alloc_alignment_size=256\n"
                .into()
        } else {
            String::new()
        },
        ..Default::default()
    });
    if trunks {
        c.wait_active(2);
        // both members take small uploads into trunks once they know the trunk server
        let deadline = Instant::now() + Duration::from_secs(30);
        while !c
            .storages
            .iter()
            .all(|s| s.daemon.log().contains("trunk server: "))
        {
            assert!(Instant::now() < deadline, "no trunk server announced");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let client = Arc::new(c.client());
    let record: Record = Arc::new(Mutex::new(BTreeMap::new()));
    let mut r = Rng(seed);
    let started = Instant::now();
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..16)
            .map(|t| {
                let (cl, rec, st) = (Arc::clone(&client), Arc::clone(&record), Arc::clone(&stop));
                let s = r.next_u64() ^ t;
                std::thread::spawn(move || worker(cl, rec, st, s))
            })
            .collect();
        // the crash: a storage (alternating) or, every third round, the tracker
        std::thread::sleep(Duration::from_millis(200 + r.below(1300)));
        let victim = if round % 3 == 2 {
            c.tracker.kill9();
            None
        } else {
            let i = round % 2;
            c.storages[i].daemon.kill9();
            Some(i)
        };
        std::thread::sleep(Duration::from_millis(100 + r.below(900)));
        match victim {
            None => {
                let (conf, base) = (c.tracker.conf.clone(), c.tracker.base.clone());
                c.tracker = Daemon::start("fdfs_trackerd", &conf, &base);
                rfdfs_tests::wait_port(&c.tracker_addr.host, c.tracker_addr.port, "tracker");
            }
            Some(i) => {
                let (conf, base) = (
                    c.storages[i].daemon.conf.clone(),
                    c.storages[i].base.clone(),
                );
                c.storages[i].daemon = Daemon::start("fdfs_storaged", &conf, &base);
                rfdfs_tests::wait_port(&c.storages[i].ip, c.storages[i].port, "storage");
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().unwrap();
        }
        c.wait_active(2);
        verify(&c, &record, round);
        let files = record.lock().unwrap().len();
        eprintln!(
            "round {round}{}: killed {}, {files} files recorded, all verified ({:.0?} so far)",
            if trunks { " (trunks)" } else { "" },
            match victim {
                None => "the tracker".to_string(),
                Some(i) => format!("storage {i}"),
            },
            started.elapsed()
        );
    }
}

/// A crash in the middle of an append leaves the file longer than before and shorter than
/// after, with the append's line (written first) as its last change: the restart puts it back
/// as it was before, the client never having been answered. A completed append is left alone.
/// The torn state is made by hand while the storage is down (the kill cannot be aimed between
/// two writes of one append).
#[test]
fn a_torn_append_is_undone_at_restart() {
    use std::io::Write;
    let mut c = Cluster::start(ClusterOpts {
        storages: 1,
        ..Default::default()
    });
    c.wait_active(1);
    let client = c.client();
    let before: Vec<u8> = (0..1500u32).map(|i| (i % 251) as u8).collect();
    let torn = rfdfs_tests::upload_appender(&client, &before[..1000], "log");
    client
        .append(&torn, Content::Buffer(&before[1000..]))
        .unwrap();
    let whole = rfdfs_tests::upload_appender(&client, &before, "log");
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    let store = c.storages[0].store_paths[0].join("data");
    let sync = c.storages[0].base.join("data/sync");
    let binlog = std::fs::read_dir(&sync)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("binlog.") && n[7..].bytes().all(|b| b.is_ascii_digit())
            })
        })
        .max()
        .unwrap();
    let now = fdfs_common::now();
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&binlog)
        .unwrap();
    // torn: 1000 of 3000 bytes arrived; whole: all 500 arrived, nothing to undo
    writeln!(log, "{now} A {} 1500 3000", torn.name).unwrap();
    writeln!(log, "{now} A {} 1500 500", whole.name).unwrap();
    for (id, extra) in [(&torn, 1000usize), (&whole, 500)] {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(store.join(&id.name[4..]))
            .unwrap();
        f.write_all(&vec![7u8; extra]).unwrap();
    }
    let s = &mut c.storages[0];
    s.daemon = Daemon::start("fdfs_storaged", &s.daemon.conf.clone(), &s.base.clone());
    rfdfs_tests::wait_port(&s.ip.clone(), s.port, "storage");
    c.wait_active(1);
    assert_eq!(rfdfs_tests::read_back(&client, &torn), before);
    let mut grown = before.clone();
    grown.extend_from_slice(&[7u8; 500]);
    assert_eq!(rfdfs_tests::read_back(&client, &whole), grown);
    assert!(c.storages[0].daemon.log().contains("cut short by a crash"));
}
