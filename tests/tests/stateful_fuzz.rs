//! A stateful fuzzer (issue 29): sequences of commands, not single packets, against a running
//! two-member trunk group. Legitimate changes (uploads into slots and plain files, appender
//! files appended, modified and truncated, deletes) are kept in a model; between them go hostile
//! or broken requests: deletes of names that are no file ID or no live file, replication and
//! trunk commands from a member's address naming what does not exist or a live file's slot,
//! frees of blocks in use or of bytes that are free already, allocations never confirmed,
//! random command codes with random or mutated bodies from a client's address (a member is
//! trusted with the replication and trunk commands: from one, a made-up TRUNK_SYNC_BINLOG or
//! TRUNK_TRUNCATE_BINLOG_FILE rewrites its peers' state by design), frames cut short. Every few steps the daemons must still run and both
//! members must serve every file of the model byte for byte, and no deleted one.
//!
//! `RFDFS_STATEFUL_FUZZ_SECONDS` (default 20, the suite's), `RFDFS_STATEFUL_FUZZ_SEED`, and
//! `RFDFS_STATEFUL_FUZZ_APPENDERS=0` to leave appender files unchanged after their upload (by
//! default they are appended to, modified and truncated too); by hand,
//! `scripts/fuzz.sh --stateful [seconds]`. A failure prints the seed and the last steps.

use fdfs_client::{Client, Content, FileId, Upload};
use fdfs_common::codec::Message;
use fdfs_common::file_id::RemoteName;
use fdfs_common::proto::cmd;
use fdfs_common::proto::sync::SyncDeleteReq;
use fdfs_common::proto::trunk::{TrunkAllocReq, TrunkInfo, TrunkSlotReq};
use rfdfs_tests::raw::{connect_from, frame};
use rfdfs_tests::{Cluster, Rng};
use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

struct Fuzz {
    c: Cluster,
    client: Client,
    rng: Rng,
    /// live files: name -> content
    model: BTreeMap<String, (FileId, Vec<u8>)>,
    appenders: Vec<String>,
    deleted: Vec<FileId>,
    /// appender files appended, modified and truncated (unless `RFDFS_STATEFUL_FUZZ_APPENDERS=0`)
    appender_changes: bool,
    /// live files the last check found on both members: a free of their slot is of a block
    /// in use on the trunk server's copy too
    checked: Vec<FileId>,
    log: VecDeque<String>,
}

impl Fuzz {
    fn note(&mut self, what: String) {
        self.log.push_back(what);
    }

    fn member(&mut self) -> usize {
        self.rng.index(2)
    }

    fn some_live(&mut self) -> Option<FileId> {
        if self.model.is_empty() {
            return None;
        }
        let k = self.rng.index(self.model.len());
        self.model.values().nth(k).map(|(id, _)| id.clone())
    }

    /// A name that is no live file: a live name mutated, a trunk file's own name, a path out of
    /// the store, random bytes.
    fn bad_name(&mut self) -> String {
        let base = self
            .some_live()
            .map(|id| id.name)
            .unwrap_or_else(|| "M00/00/00/wKgBAAAAAAAAAAAAAAAAAA.bin".into());
        let name = match self.rng.index(7) {
            0 => "M00/00/00/000001".into(),
            1 => "M00/../../etc/passwd".into(),
            2 => base[..self.rng.index(base.len())].to_string(),
            3 => {
                let mut b = base.clone().into_bytes();
                let i = self.rng.index(b.len());
                b[i] = b"Az09+-_/.%"[self.rng.index(10)];
                String::from_utf8_lossy(&b).into_owned()
            }
            4 => format!("{base}x"),
            5 => String::from_utf8_lossy(&{
                let n = 1 + self.rng.index(120);
                self.rng.bytes(n)
            })
            .into_owned(),
            _ => base.replace("M00", "M01"),
        };
        if self.model.contains_key(&name) {
            format!("{name}.gone")
        } else {
            name
        }
    }

    /// Whether `name` is a file ID: a made-up one may name a live file's trunk slot (a slot's
    /// header holds its file's size, CRC, time and extension, not the source's address), so a
    /// member or client deleting it deletes that file, as upstream's would; only the refusal of
    /// everything else is checked.
    fn is_file_id(name: &str) -> bool {
        RemoteName::decode(name).is_ok()
    }

    /// Send `bytes` to member `m` from `from` (a member's address or a client's) and read
    /// whatever comes back; the connection is dropped either way.
    fn send(&mut self, m: usize, from: &str, bytes: &[u8]) {
        let addr = self.c.storage_addr(m);
        let mut s = connect_from(from, &addr.host, addr.port);
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let _ = s.write_all(bytes);
        let mut sink = [0u8; 4096];
        let _ = s.read(&mut sink);
    }

    fn legit(&mut self) {
        let m = self.member();
        let addr = self.c.storage_addr(m);
        match self.rng.index(10) {
            0..4 => {
                let len = match self.rng.index(3) {
                    0 => 1 + self.rng.index(3000),
                    1 => 3000 + self.rng.index(40_000),
                    _ => 70_000 + self.rng.index(200_000),
                };
                let d = self.rng.bytes(len);
                let r = self.client.upload(
                    Content::Buffer(&d),
                    "bin",
                    Upload::File,
                    Some((addr, 0)),
                    None,
                );
                self.note(format!("upload {len} bytes to {m}: {r:?}"));
                if let Ok(id) = r {
                    self.model.insert(id.name.clone(), (id, d));
                }
            }
            4 => {
                let d = {
                    let n = 1 + self.rng.index(5000);
                    self.rng.bytes(n)
                };
                let r = self.client.upload(
                    Content::Buffer(&d),
                    "log",
                    Upload::Appender,
                    Some((addr, 0)),
                    None,
                );
                self.note(format!("upload an appender to {m}: {r:?}"));
                if let Ok(id) = r {
                    self.appenders.push(id.name.clone());
                    self.model.insert(id.name.clone(), (id, d));
                }
            }
            5 | 6 if self.appender_changes && !self.appenders.is_empty() => {
                let name = self.appenders[self.rng.index(self.appenders.len())].clone();
                let Some((id, mut d)) = self.model.get(&name).cloned() else {
                    return;
                };
                let r = match self.rng.index(3) {
                    0 => {
                        let more = {
                            let n = 1 + self.rng.index(4000);
                            self.rng.bytes(n)
                        };
                        let r = self.client.append(&id, Content::Buffer(&more));
                        if r.is_ok() {
                            d.extend_from_slice(&more);
                        }
                        r
                    }
                    1 if !d.is_empty() => {
                        let at = self.rng.index(d.len());
                        let n = 1 + self.rng.index(d.len() - at);
                        let new = self.rng.bytes(n);
                        let r = self.client.modify(&id, at as i64, Content::Buffer(&new));
                        if r.is_ok() {
                            d[at..at + new.len()].copy_from_slice(&new);
                        }
                        r
                    }
                    _ => {
                        let to = self.rng.index(d.len() + 1);
                        let r = self.client.truncate(&id, to as i64);
                        if r.is_ok() {
                            d.truncate(to);
                        }
                        r
                    }
                };
                self.note(format!("change appender {name}: {r:?}"));
                if r.is_ok() {
                    self.model.insert(name, (id, d));
                } else {
                    // not answered: its content is unknown from here on
                    self.model.remove(&name);
                    self.appenders.retain(|a| *a != name);
                }
            }
            _ => {
                let Some(id) = self.some_live() else { return };
                let r = self.client.delete(&id);
                self.note(format!("delete {}: {r:?}", id.name));
                self.model.remove(&id.name);
                self.appenders.retain(|a| *a != id.name);
                if r.is_ok() {
                    self.deleted.push(id);
                }
            }
        }
    }

    fn hostile(&mut self) {
        let m = self.member();
        let member_ip = self.c.storages[1 - m].ip.clone();
        let group = |name: &str| {
            let mut b = b"group1".to_vec();
            b.resize(16, 0);
            b.extend_from_slice(name.as_bytes());
            b
        };
        match self.rng.index(8) {
            0 => {
                let name = self.bad_name();
                if Self::is_file_id(&name) {
                    return;
                }
                self.note(format!("DELETE_FILE {name:?} to {m}"));
                self.send(m, "127.0.0.1", &frame(cmd::DELETE_FILE, 0, &group(&name)));
            }
            1 => {
                let name = self.bad_name();
                // a file ID only from an address that is no member's: refused for that
                let member_ip = if Self::is_file_id(&name) {
                    "127.0.0.99".to_string()
                } else {
                    member_ip
                };
                let req = SyncDeleteReq {
                    timestamp: fdfs_common::now() as i32,
                    group: "group1".into(),
                    filename: name.clone(),
                };
                self.note(format!("SYNC_DELETE_FILE {name:?} from {member_ip} to {m}"));
                self.send(
                    m,
                    &member_ip,
                    &frame(cmd::SYNC_DELETE_FILE, 0, &req.to_bytes()),
                );
            }
            2 => {
                // a slot that holds a live file on both members (the trunk server's copy too),
                // or a random block
                let held = (!self.checked.is_empty())
                    .then(|| self.checked[self.rng.index(self.checked.len())].clone())
                    .filter(|id| self.model.contains_key(&id.name));
                let info = held
                    .and_then(|id| rfdfs_tests::trunk_block_of(&id))
                    .unwrap_or(TrunkInfo {
                        store_path_index: 0,
                        sub_path_high: self.rng.index(4) as u8,
                        sub_path_low: self.rng.index(4) as u8,
                        trunk_id: self.rng.index(4) as u32,
                        offset: self.rng.index(1 << 22) as u32,
                        size: self.rng.index(1 << 16) as u32,
                    });
                let req = TrunkSlotReq {
                    group: "group1".into(),
                    info,
                };
                self.note(format!("TRUNK_FREE_SPACE {info:?} from a member to {m}"));
                self.send(
                    m,
                    &member_ip,
                    &frame(cmd::TRUNK_FREE_SPACE, 0, &req.to_bytes()),
                );
            }
            3 => {
                let req = TrunkAllocReq {
                    group: "group1".into(),
                    size: self.rng.index(70_000) as i32 - 100,
                    store_path_index: self.rng.index(2) as u8,
                };
                self.note(format!("TRUNK_ALLOC_SPACE {req:?} from a member to {m}"));
                self.send(
                    m,
                    &member_ip,
                    &frame(cmd::TRUNK_ALLOC_SPACE, 0, &req.to_bytes()),
                );
            }
            4 | 5 => {
                // any command code, from a member or a client, with a body of live names'
                // bytes, random bytes, or nothing
                let code = self.rng.index(256) as u8;
                let body = match self.rng.index(3) {
                    0 => {
                        let name = self.bad_name();
                        if Self::is_file_id(&name) {
                            return;
                        }
                        group(&name)
                    }
                    1 => {
                        let n = self.rng.index(300);
                        self.rng.bytes(n)
                    }
                    _ => Vec::new(),
                };
                // from a client's address: a member is trusted with the replication and trunk
                // commands (they can rewrite its peers' state by design); from anyone else they
                // must be refused
                let from = "127.0.0.1".to_string();
                self.note(format!(
                    "command {code} with {} bytes from {from} to {m}",
                    body.len()
                ));
                self.send(m, &from, &frame(code, 0, &body));
            }
            6 => {
                // a frame cut short, or one announcing more than it sends
                let mut f = frame(cmd::UPLOAD_FILE, 0, &self.rng.bytes(40));
                if self.rng.index(2) == 0 {
                    f.truncate(self.rng.index(f.len()));
                } else {
                    f[..8].copy_from_slice(&(1u64 << 40).to_be_bytes());
                }
                self.note(format!("a broken frame of {} bytes to {m}", f.len()));
                self.send(m, "127.0.0.1", &f);
            }
            _ => {
                let name = self.bad_name();
                self.note(format!("DOWNLOAD_FILE {name:?} from {m}"));
                let mut body = 0u64.to_be_bytes().to_vec();
                body.extend_from_slice(&0u64.to_be_bytes());
                body.extend_from_slice(&group(&name));
                self.send(m, "127.0.0.1", &frame(cmd::DOWNLOAD_FILE, 0, &body));
            }
        }
    }

    /// The daemons run, and both members serve the model: every live file byte for byte (once
    /// replication has caught up), no deleted one.
    fn check(&mut self, seed: u64) {
        for i in 0..2 {
            if !self.c.storages[i].daemon.alive() {
                self.fail(seed, &format!("storage {i} died"));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let files: Vec<(FileId, Vec<u8>)> = self.model.values().cloned().collect();
        for (id, d) in &files {
            for m in 0..2 {
                loop {
                    match rfdfs_tests::read_from(&self.client, &self.c.storage_addr(m), id) {
                        Ok(got) if got == *d => break,
                        got if Instant::now() > deadline => {
                            let what = match got {
                                Ok(g) => format!("{} bytes, not the model's {}", g.len(), d.len()),
                                Err(e) => e.to_string(),
                            };
                            self.fail(seed, &format!("storage {m} serves {}: {what}", id.name));
                        }
                        _ => std::thread::sleep(Duration::from_millis(200)),
                    }
                }
            }
        }
        // a delete reaches the other member through replication: given the same time
        self.checked = files.iter().map(|(id, _)| id.clone()).collect();
        let deleted = self.deleted.clone();
        for id in &deleted {
            for m in 0..2 {
                while rfdfs_tests::read_from(&self.client, &self.c.storage_addr(m), id).is_ok() {
                    if Instant::now() > deadline {
                        self.fail(seed, &format!("storage {m} serves deleted {}", id.name));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }

    /// Panics with the seed, the steps that named the file `why` is about (its slot too) and
    /// the last 40.
    fn fail(&self, seed: u64, why: &str) -> ! {
        let named: Vec<&str> = why
            .split_whitespace()
            .filter(|w| w.starts_with("M0"))
            .flat_map(|w| {
                let id = FileId {
                    group: "group1".into(),
                    name: w.trim_end_matches(':').into(),
                };
                let slot =
                    rfdfs_tests::trunk_block_of(&id).map(|b| format!("offset: {}", b.offset));
                [Some(w.trim_end_matches(':').to_string()), slot]
            })
            .flatten()
            .map(|s| &*s.leak())
            .collect();
        let about: Vec<&str> = self
            .log
            .iter()
            .filter(|l| named.iter().any(|n| l.contains(n)))
            .map(String::as_str)
            .collect();
        let last: Vec<&str> = self
            .log
            .iter()
            .rev()
            .take(40)
            .rev()
            .map(String::as_str)
            .collect();
        panic!(
            "stateful fuzz (RFDFS_STATEFUL_FUZZ_SEED={seed}): {why}\nsteps about it:\n{}\nlast steps:\n{}\nstorage logs:\n{}\n----\n{}",
            about.join("\n"),
            last.join("\n"),
            self.c.storages[0].daemon.log(),
            self.c.storages[1].daemon.log()
        );
    }
}

#[test]
fn command_sequences_leave_no_crash_and_lose_no_file() {
    let seconds: u64 = std::env::var("RFDFS_STATEFUL_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("RFDFS_STATEFUL_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fdfs_common::now() as u64);
    eprintln!("stateful fuzz: seed {seed}, {seconds} s");
    let c = rfdfs_tests::trunk_cluster(2);
    let client = c.client();
    let mut f = Fuzz {
        c,
        client,
        rng: Rng(seed | 1),
        model: BTreeMap::new(),
        appenders: Vec::new(),
        deleted: Vec::new(),
        appender_changes: std::env::var("RFDFS_STATEFUL_FUZZ_APPENDERS").map_or(true, |v| v != "0"),
        checked: Vec::new(),
        log: VecDeque::new(),
    };
    let began = Instant::now();
    let (mut steps, mut checks) = (0u64, 0u64);
    while began.elapsed() < Duration::from_secs(seconds) {
        for _ in 0..20 {
            if f.rng.index(3) == 0 {
                f.legit();
            } else {
                f.hostile();
            }
            steps += 1;
        }
        f.check(seed);
        checks += 1;
    }
    println!(
        "stateful fuzz: {steps} steps, {checks} checks, {} live files, {} deleted, seed {seed}",
        f.model.len(),
        f.deleted.len()
    );
}
