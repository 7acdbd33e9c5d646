//! A client load for the fault tests: uploads of random content from clients that write as the
//! C library, the Java client and py3fdfs do, and deletes, with the list of what was
//! acknowledged (each file's content is made again from its seed for every check, not kept).

use crate::{Cluster, Rng};
use fdfs_client::personality::{Personality, WireClient};
use fdfs_client::{Client, FileId};
use fdfs_common::config::HostPort;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The content of an uploaded file: `len` bytes drawn from `seed`, 8 at a time (fast enough to
/// be made again for every check instead of kept).
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&r.next_u64().to_le_bytes());
    }
    v.truncate(len);
    v
}

#[derive(Clone, Debug)]
pub struct Acked {
    pub id: FileId,
    pub seed: u64,
    pub len: usize,
}

/// What the clients did, shared by their threads.
#[derive(Default)]
pub struct Load {
    pub acked: Mutex<Vec<Acked>>,
    pub deleted: Mutex<Vec<FileId>>,
    pub refused: AtomicU64,
    paused: AtomicBool,
    /// operations under way: a pause waits for them (a delete answered after the check took
    /// its list would look like a lost file)
    busy: std::sync::atomic::AtomicUsize,
    pub stop: AtomicBool,
}

impl Load {
    /// Whether an operation may start now; if so it counts as under way until `done`.
    pub fn begin(&self) -> bool {
        self.busy.fetch_add(1, Ordering::SeqCst);
        if self.paused.load(Ordering::SeqCst) {
            self.busy.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    pub fn done(&self) {
        self.busy.fetch_sub(1, Ordering::SeqCst);
    }

    /// Stop the clients, once what they are doing is answered.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        while self.busy.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }
}

/// One client: uploads (small ones go into trunk slots, larger ones are plain files), about
/// two a second, as `personality` writes them.
pub fn uploader(load: Arc<Load>, personality: Personality, tracker: HostPort, seed: u64) {
    let mut rng = Rng(seed);
    let mut client = WireClient::new(personality, tracker.clone(), Duration::from_secs(30));
    while !load.stop.load(Ordering::Relaxed) {
        if !load.begin() {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let len = match rng.below(100) {
            0..50 => 100 + rng.index(8000),
            50..85 => 9000 + rng.index(60_000),
            _ => 70_000 + rng.index(900_000),
        };
        let seed = rng.next_u64();
        match client.upload(&content(seed, len), "bin") {
            Ok(id) => load.acked.lock().unwrap().push(Acked { id, seed, len }),
            Err(_) => {
                load.refused.fetch_add(1, Ordering::Relaxed);
                // the client's connections may be the broken part
                client = WireClient::new(personality, tracker.clone(), Duration::from_secs(30));
            }
        }
        load.done();
        std::thread::sleep(Duration::from_millis(400));
    }
}

/// Deletes one acknowledged file every few seconds (through the tracker, as the tools do).
pub fn deleter(load: Arc<Load>, client: Client, seed: u64) {
    let mut rng = Rng(seed);
    while !load.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_secs(3));
        if !load.begin() {
            continue;
        }
        let victim = {
            let acked = load.acked.lock().unwrap();
            if acked.len() < 20 {
                load.done();
                continue;
            }
            acked[rng.index(acked.len())].clone()
        };
        match client.delete(&victim.id) {
            Ok(()) => {
                load.acked
                    .lock()
                    .unwrap()
                    .retain(|a| a.id.name != victim.id.name);
                load.deleted.lock().unwrap().push(victim.id);
            }
            // refused: the file stays acknowledged
            Err(fdfs_common::net::NetError::Status(_)) => {
                load.refused.fetch_add(1, Ordering::Relaxed);
            }
            // not answered (a member stopped, a timeout): it may have been done later, so the
            // file is checked neither way
            Err(_) => {
                load.refused.fetch_add(1, Ordering::Relaxed);
                load.acked
                    .lock()
                    .unwrap()
                    .retain(|a| a.id.name != victim.id.name);
            }
        }
        load.done();
    }
}

/// What a member served for an acknowledged file.
pub enum Served {
    Same,
    Missing,
    Different,
}

/// Each (file, member) pair read back from that member, eight at a time.
pub fn serve_check(
    c: &Cluster,
    acked: &[Acked],
    pairs: &[(usize, usize)],
) -> Vec<((usize, usize), Served)> {
    let chunk = pairs.len().div_ceil(8).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = pairs
            .chunks(chunk)
            .map(|part| {
                let client = c.client();
                scope.spawn(move || {
                    part.iter()
                        .map(|&(f, m)| {
                            let a = &acked[f];
                            let got = crate::read_from(&client, &c.storage_addr(m), &a.id);
                            let verdict = match got {
                                Ok(b) if b == content(a.seed, a.len) => Served::Same,
                                Ok(_) => Served::Different,
                                Err(_) => Served::Missing,
                            };
                            ((f, m), verdict)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

/// Start the load on `c`: three uploaders (as the C library, the Java client and py3fdfs
/// write) and a deleter, seeded from `seed`; their threads end once `stop` is set.
pub fn start_clients(c: &Cluster, seed: u64) -> (Arc<Load>, Vec<std::thread::JoinHandle<()>>) {
    let load = Arc::new(Load::default());
    let mut threads = Vec::new();
    for (k, p) in [
        Personality::Libfdfsclient,
        Personality::Java,
        Personality::Py3fdfs,
    ]
    .into_iter()
    .enumerate()
    {
        let (load, tracker) = (Arc::clone(&load), c.tracker_addr.clone());
        threads.push(std::thread::spawn(move || {
            uploader(load, p, tracker, seed + k as u64)
        }));
    }
    let (l, client) = (Arc::clone(&load), c.client());
    threads.push(std::thread::spawn(move || {
        deleter(l, client, seed ^ 0xde1e7e)
    }));
    (load, threads)
}

/// The pairs of a `serve_check` not served right, noted in `bad` (true: different bytes,
/// false: not served).
pub fn not_served_right(
    results: Vec<((usize, usize), Served)>,
    bad: &mut std::collections::BTreeMap<(usize, usize), bool>,
) -> Vec<(usize, usize)> {
    bad.clear();
    results
        .into_iter()
        .filter_map(|(pair, s)| match s {
            Served::Same => None,
            Served::Missing => {
                bad.insert(pair, false);
                Some(pair)
            }
            Served::Different => {
                bad.insert(pair, true);
                Some(pair)
            }
        })
        .collect()
}

/// The deleted files some member of `c` still serves.
pub fn served_again<'a>(c: &Cluster, deleted: &'a [FileId]) -> Vec<&'a FileId> {
    let client = c.client();
    deleted
        .iter()
        .filter(|id| {
            (0..c.storages.len()).any(|m| crate::read_from(&client, &c.storage_addr(m), id).is_ok())
        })
        .collect()
}

/// The deleted files some member of `c` still serves once none that `matters` is, or at
/// `deadline`. A delete answered just before the check may still be on its way to a member,
/// behind the sync of the files before it: what is served for good is what is still served at
/// the end.
pub fn served_for_good<'a>(
    c: &Cluster,
    deleted: &'a [FileId],
    deadline: std::time::Instant,
    matters: impl Fn(&FileId) -> bool,
) -> Vec<&'a FileId> {
    let mut served = served_again(c, deleted);
    while served.iter().any(|id| matters(id)) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        served = served_again(c, deleted);
    }
    served
}

/// What a wait for convergence found.
#[derive(Debug, Default)]
pub struct Verdict {
    pub acked: usize,
    /// acknowledged files some member did not serve at the end
    pub not_served: Vec<String>,
    /// acknowledged files some member served with other bytes
    pub corrupt: Vec<String>,
    /// deleted files some member still serves
    pub resurrected: Vec<String>,
    /// seconds until every acknowledged file was served right by every member
    pub converged: Option<f64>,
}

impl Verdict {
    /// Panics, naming `what`, unless every acknowledged file was on every member, byte for
    /// byte, and no deleted file was served again.
    pub fn assert_all_kept(&self, what: &str) {
        assert!(
            self.converged.is_some() && self.corrupt.is_empty(),
            "{what}: not every acknowledged file is on every member: missing {:?}, corrupt {:?}",
            &self.not_served[..self.not_served.len().min(5)],
            &self.corrupt[..self.corrupt.len().min(5)]
        );
        assert!(
            self.resurrected.is_empty(),
            "{what}: deleted files served again: {:?}",
            self.resurrected
        );
    }
}

/// Pause the load and wait up to `limit` until every acknowledged file is served byte for byte
/// by every member and no deleted file is served (within the same `limit`). The load stays
/// paused.
pub fn wait_converged(c: &Cluster, load: &Load, limit: std::time::Duration) -> Verdict {
    load.pause();
    let began = std::time::Instant::now();
    let acked: Vec<Acked> = load.acked.lock().unwrap().clone();
    let deleted: Vec<FileId> = load.deleted.lock().unwrap().clone();
    let mut pending: Vec<(usize, usize)> = (0..acked.len())
        .flat_map(|f| (0..c.storages.len()).map(move |m| (f, m)))
        .collect();
    let mut bad = std::collections::BTreeMap::new();
    let mut converged = None;
    while converged.is_none() && began.elapsed() < limit {
        pending = not_served_right(serve_check(c, &acked, &pending), &mut bad);
        if pending.is_empty() {
            converged = Some(began.elapsed().as_secs_f64());
        } else {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let names = |corrupt: bool| {
        let set: std::collections::BTreeSet<String> = bad
            .iter()
            .filter(|(_, c)| **c == corrupt)
            .map(|((f, _), _)| acked[*f].id.to_string())
            .collect();
        set.into_iter().collect()
    };
    let resurrected = served_for_good(c, &deleted, began + limit, |_| true);
    Verdict {
        acked: acked.len(),
        not_served: names(false),
        corrupt: names(true),
        resurrected: resurrected.iter().map(|id| id.to_string()).collect(),
        converged,
    }
}
