//! `rfdfs_bench fleet`: many simulated storage servers against real trackers.
//!
//! Each simulated storage has its own loopback address (`127.x.y.z`, bound before connecting,
//! as a storage's `client_bind` does) and speaks the storage-to-tracker protocol a 6.16.1
//! storage speaks (docs/protocol/cluster-protocol.md 1.2-1.3): GET_MY_IP and PARAMETER_REQ at its
//! start, one reporter connection per tracker with JOIN, the initial-sync handshake (SYNC_DEST_REQ
//! on the first tracker, SYNC_NOTIFY on every one), then BEAT with its statistics block and
//! CHANGELOG_REQ every beat interval, SYNC_REPORT when it has peers, REPORT_DISK_USAGE every stat
//! report interval, and the trunk server's FETCH_TRUNK_FID / REPORT_TRUNK_FREE once a tracker names
//! it trunk server. A member that was given a sync source is carried through the source's part as
//! well: at the source's next beat it asks SYNC_SRC_REQ and reports the new member SYNCING, then
//! OFFLINE, to every tracker (the status machine of 3.2-3.3), after which the new member's next
//! beat makes it ACTIVE.
//!
//! A few worker threads serve all storages from a timer queue, so tens of thousands of
//! reporter connections cost the simulator a file descriptor each and no thread. Clients
//! issue QUERY_STORE / QUERY_FETCH at the given rate on persistent connections, round robin
//! over the trackers. The trackers' own lists (SERVER_LIST_STORAGE) tell when every storage
//! is ACTIVE on every tracker; the leader the storages follow comes from their change lists.

use fdfs_common::codec::Message;
use fdfs_common::config::{parse_host_port, HostPort};
use fdfs_common::file_id::{FilePayload, Source};
use fdfs_common::net::{self, NetError};
use fdfs_common::proto::client::{decode_group_stats, decode_storage_stats, ListStorageReq};
use fdfs_common::proto::cluster::{
    encode_disk_usage, encode_sync_report, Brief, ChangeList, GetMyIpReq, GroupStorageReq, JoinReq,
    PathUsage, ReportStatusReq, StatBlock, StorageAddrReq, SyncReportEntry, SyncSource,
};
use fdfs_common::proto::{cmd, status, VERSION};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `rfdfs_bench fleet`'s command line.
#[derive(clap::Args, Debug, Clone)]
pub struct FleetArgs {
    /// the trackers, HOST:PORT[,HOST:PORT...] (every simulated storage reports to each)
    #[arg(long, value_delimiter = ',', required = true)]
    pub trackers: Vec<String>,
    /// groups of simulated storages
    #[arg(long)]
    pub groups: usize,
    /// storages per group
    #[arg(long)]
    pub per_group: usize,
    /// seconds to run, joins included
    #[arg(long)]
    pub seconds: f64,
    /// a storage's heart_beat_interval
    #[arg(long, default_value_t = 30)]
    pub beat_interval: u64,
    /// a storage's stat_report_interval (REPORT_DISK_USAGE)
    #[arg(long, default_value_t = 60)]
    pub stat_report_interval: u64,
    /// QUERY_STORE and QUERY_FETCH per second, half each (0: none)
    #[arg(long, default_value_t = 0)]
    pub queries_per_second: u64,
    /// the first simulated storage's address; the others follow it
    #[arg(long, default_value = "127.64.0.1")]
    pub first_address: Ipv4Addr,
    /// the port every simulated storage claims
    #[arg(long, default_value_t = 23000)]
    pub storage_port: u16,
    /// simulator threads serving the storages
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// tracker processes to report CPU, memory and disk writes of (steady state only)
    #[arg(long, value_delimiter = ',')]
    pub tracker_pids: Vec<u32>,
    /// once every storage is ACTIVE, one more storage joins group1 and is timed until it is
    /// ACTIVE on every tracker
    #[arg(long)]
    pub late_joiner: bool,
}

/// One exchange; a slow answer is logged (RUST_LOG=debug) with its command.
fn request(s: &mut TcpStream, command: u8, body: &[u8]) -> Result<Vec<u8>, NetError> {
    let began = Instant::now();
    let r = net::request(s, command, body);
    if began.elapsed() > Duration::from_millis(200) {
        log::debug!(
            "{} to {:?} took {:?}",
            cmd::name(command).unwrap_or("?"),
            s.peer_addr(),
            began.elapsed()
        );
    }
    r
}

/// Seconds since the fleet started, in milliseconds.
fn ms_since(t0: Instant) -> u64 {
    t0.elapsed().as_millis() as u64
}

/// Where storage `i` lives: its group, its address, its place in the group.
#[derive(Debug, Clone)]
struct Layout {
    per_group: usize,
    first: u32,
    /// storages past the fleet (the late joiner) join group1
    fleet_n: usize,
}

impl Layout {
    fn group_index(&self, i: usize) -> usize {
        if i >= self.fleet_n {
            0
        } else {
            i / self.per_group
        }
    }

    fn group(&self, i: usize) -> String {
        format!("group{}", self.group_index(i) + 1)
    }

    fn ip(&self, i: usize) -> Ipv4Addr {
        // skip host parts .0 and .255 of every /24: some tools treat them as special
        let base = self.first;
        let (net, host) = (base >> 8, base & 0xff);
        let k = (host.saturating_sub(1)) as usize + i;
        Ipv4Addr::from(((net + (k / 254) as u32) << 8) | (k % 254 + 1) as u32)
    }

    /// Which storage has address `ip` (the inverse of [`ip`](Self::ip)).
    fn index_of(&self, ip: Ipv4Addr) -> Option<usize> {
        let (a, base) = (u32::from(ip), self.first);
        let (host, net) = (a & 0xff, a >> 8);
        if !(1..=254).contains(&host) || net < base >> 8 {
            return None;
        }
        let k = (net - (base >> 8)) as usize * 254 + (host - 1) as usize;
        let i = k.checked_sub((base & 0xff).saturating_sub(1) as usize)?;
        (self.ip(i) == ip).then_some(i)
    }

    /// The members of storage `i`'s group other than itself.
    fn peers(&self, i: usize) -> impl Iterator<Item = usize> {
        let g0 = self.group_index(i) * self.per_group;
        (g0..g0 + self.per_group).filter(move |&k| k != i)
    }
}

/// Latencies of one kind, as `(ms since start, us)`.
#[derive(Default)]
struct Samples(Vec<(u64, u64)>);

impl Samples {
    fn push(&mut self, t0: Instant, took: Duration) {
        self.0.push((ms_since(t0), took.as_micros() as u64));
    }

    /// The latencies from `from_ms` on, sorted.
    fn since(&self, from_ms: u64) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .0
            .iter()
            .filter(|s| s.0 >= from_ms)
            .map(|s| s.1)
            .collect();
        v.sort_unstable();
        v
    }
}

use crate::latency::percentile_ms as pct;

/// What the whole fleet shares.
struct Shared {
    args: FleetArgs,
    trackers: Vec<HostPort>,
    layout: Layout,
    /// storages simulated (the late joiner is one past the fleet)
    n: usize,
    t0: Instant,
    stop: AtomicBool,
    /// sources with new members to report: source index -> the members' indexes
    pending_sources: Mutex<HashMap<usize, Vec<usize>>>,
    /// the leader each storage follows (tracker index + 1, 0 = none yet), and since when (ms)
    leader: Vec<AtomicU64>,
    /// per tracker: ms of the first failed exchange (0 = none)
    first_failure: Vec<AtomicU64>,
    /// `storage_ip_changed_auto_adjust` as the trackers' parameters say
    changelog_after_beat: AtomicBool,
    beat_bytes: AtomicU64,
    beat_count: AtomicU64,
    /// the late joiner may start
    late_go: AtomicBool,
}

/// One reporter connection of one storage.
struct Link {
    conn: Option<TcpStream>,
    /// the initial-sync handshake was done on this tracker
    handshaken: bool,
    /// this tracker could not be reached
    tried: bool,
    next_beat: Instant,
    next_disk_usage: Instant,
    sent_beats: u64,
}

/// One simulated storage.
struct Sim {
    index: usize,
    group: String,
    ip: Ipv4Addr,
    links: Vec<Link>,
    /// SYNC_DEST_REQ answered (on whichever tracker first)
    sync_source: Option<SyncSource>,
    /// the source's index, until it is asked to report this member synced
    source_index: Option<usize>,
    started: bool,
    trunk_server: bool,
    trunk_reported: bool,
    join_time: i64,
}

impl Sim {
    fn new(index: usize, shared: &Shared) -> Sim {
        let now = Instant::now();
        Sim {
            index,
            group: shared.layout.group(index),
            ip: shared.layout.ip(index),
            links: shared
                .trackers
                .iter()
                .map(|_| Link {
                    conn: None,
                    handshaken: false,
                    tried: false,
                    next_beat: now,
                    next_disk_usage: now,
                    sent_beats: 0,
                })
                .collect(),
            sync_source: None,
            source_index: None,
            started: false,
            trunk_server: false,
            trunk_reported: false,
            join_time: fdfs_common::now(),
        }
    }

    fn connect(&self, shared: &Shared, t: usize) -> std::io::Result<TcpStream> {
        let tr = &shared.trackers[t];
        let timeout = Duration::from_secs(5);
        net::connect(
            &tr.host,
            tr.port,
            Some(IpAddr::V4(self.ip)),
            timeout,
            Duration::from_secs(30),
        )
    }

    /// One request on a short connection, then QUIT.
    fn short_request(
        &self,
        shared: &Shared,
        t: usize,
        command: u8,
        body: &[u8],
    ) -> Result<Vec<u8>, NetError> {
        let mut s = self.connect(shared, t)?;
        let r = request(&mut s, command, body);
        net::quit(s);
        r
    }

    /// The startup requests of a storage (1.2 steps 3 and 5): GET_MY_IP to every tracker,
    /// PARAMETER_REQ to the first that answers.
    fn start(&mut self, shared: &Shared) {
        let my_ip = GetMyIpReq {
            group: self.group.clone(),
            port: shared.args.storage_port as i32,
        }
        .to_bytes();
        for t in 0..shared.trackers.len() {
            if let Err(NetError::Io(_)) =
                self.short_request(shared, t, cmd::STORAGE_GET_MY_IP, &my_ip)
            {
                shared.failed(t);
            }
        }
        for t in 0..shared.trackers.len() {
            if let Ok(params) = self.short_request(shared, t, cmd::STORAGE_PARAMETER_REQ, &[]) {
                let text = String::from_utf8_lossy(&params);
                let adjust = text.lines().any(|l| {
                    l.strip_prefix("storage_ip_changed_auto_adjust=")
                        .is_some_and(|v| v.trim() == "1")
                });
                shared.changelog_after_beat.store(adjust, Ordering::Relaxed);
                break;
            }
        }
        self.started = true;
    }

    fn join_req(&self, shared: &Shared, t: usize) -> JoinReq {
        let first = !self.links[t].handshaken;
        JoinReq {
            group: self.group.clone(),
            storage_port: shared.args.storage_port as i64,
            store_path_count: 1,
            subdir_count_per_path: 256,
            upload_priority: 10,
            join_time: self.join_time,
            up_time: self.join_time,
            version: VERSION.into(),
            init_flag: (self.sync_source.is_none()) as u8,
            // a storage that was ACTIVE rejoins with that status (stored as ONLINE)
            status: if first { 0 } else { status::ACTIVE as i8 },
            storage_id: String::new(),
            current_tracker_ip: shared.trackers[t].host.clone(),
            trackers: shared.trackers.iter().map(|t| t.to_string()).collect(),
        }
    }

    /// Connect to tracker `t`, JOIN, and the initial-sync handshake (1.3 steps 3-5).
    fn open(&mut self, shared: &Shared, t: usize) -> Result<(), NetError> {
        let mut s = self.connect(shared, t)?;
        request(
            &mut s,
            cmd::STORAGE_JOIN,
            &self.join_req(shared, t).to_bytes(),
        )?;
        if self.sync_source.is_none() {
            let body = request(&mut s, cmd::STORAGE_SYNC_DEST_REQ, &[])?;
            let src = if body.is_empty() {
                SyncSource::default()
            } else {
                SyncSource::from_bytes(&body).map_err(|e| NetError::Protocol(e.to_string()))?
            };
            self.source_index = src
                .src_id
                .parse()
                .ok()
                .and_then(|ip| shared.layout.index_of(ip))
                .filter(|&k| k < shared.n);
            self.sync_source = Some(src);
        }
        let src = self.sync_source.clone().unwrap_or_default();
        request(&mut s, cmd::STORAGE_SYNC_NOTIFY, &src.to_bytes())?;
        let link = &mut self.links[t];
        link.conn = Some(s);
        link.handshaken = true;
        link.next_beat = Instant::now();
        link.next_disk_usage = Instant::now();
        self.hand_to_source(shared);
        Ok(())
    }

    /// Once this new member has told every tracker its source (or tried to), the source gets
    /// to report it synced. A real source does so after its next beat, seconds after the
    /// member's JOINs, which were milliseconds apart; a report reaching a tracker before the
    /// member's SYNC_NOTIFY there would leave the member WAIT_SYNC on it.
    fn hand_to_source(&mut self, shared: &Shared) {
        if !self.links.iter().all(|l| l.handshaken || l.tried) {
            return;
        }
        if let Some(k) = self.source_index.take() {
            shared
                .pending_sources
                .lock()
                .unwrap()
                .entry(k)
                .or_default()
                .push(self.index);
        }
    }

    fn apply_change_list(&mut self, shared: &Shared, body: &[u8]) {
        let Ok(cl) = ChangeList::from_bytes(body) else {
            return;
        };
        if let Some(l) = cl.leader {
            let named = shared
                .trackers
                .iter()
                .position(|t| t.host == l.ip && i32::from(t.port) == l.port)
                .map_or(0, |k| k as u64 + 1);
            let cell = &shared.leader[self.index];
            if cell.load(Ordering::Relaxed) >> 40 != named {
                cell.store((named << 40) | ms_since(shared.t0), Ordering::Relaxed);
            }
        }
        if let Some(trunk) = cl.trunk_server {
            self.trunk_server = trunk.ip == self.ip.to_string();
            self.trunk_reported = false;
        }
    }

    /// What is due on tracker `t`'s connection; returns when to come back.
    fn serve(&mut self, shared: &Shared, t: usize, scratch: &mut Samples) -> Instant {
        let hb = Duration::from_secs(shared.args.beat_interval.max(1));
        if !self.started {
            self.start(shared);
        }
        if self.links[t].conn.is_none() {
            let opened = self.open(shared, t);
            // a refused request is tried again a second later; only an unreachable tracker
            // is given up on for the source's report
            self.links[t].tried |= matches!(opened, Err(NetError::Io(_)));
            if let Err(e) = opened {
                log::debug!("{} -> {}: join: {e}", self.ip, shared.trackers[t]);
                self.links[t].conn = None;
                self.hand_to_source(shared);
                // a failed connection waits a beat interval, a refused request a second (1.3)
                let wait = match e {
                    NetError::Io(_) => {
                        shared.failed(t);
                        hb
                    }
                    _ => Duration::from_secs(1),
                };
                return Instant::now() + wait;
            }
        }
        match self.due(shared, t, scratch) {
            Ok(next) => next,
            Err(e) => {
                log::debug!("{} -> {}: {e}", self.ip, shared.trackers[t]);
                self.links[t].conn = None;
                if matches!(e, NetError::Io(_)) {
                    shared.failed(t);
                }
                Instant::now() + Duration::from_secs(1)
            }
        }
    }

    fn due(
        &mut self,
        shared: &Shared,
        t: usize,
        scratch: &mut Samples,
    ) -> Result<Instant, NetError> {
        let hb = Duration::from_secs(shared.args.beat_interval.max(1));
        let df = Duration::from_secs(shared.args.stat_report_interval.max(1));
        let now = Instant::now();
        if now >= self.links[t].next_beat {
            let mut stats = StatBlock::default();
            stats.counters[0] = self.links[t].sent_beats as i64;
            let body = stats.to_bytes();
            let s = self.links[t].conn.as_mut().expect("connected");
            let began = Instant::now();
            let reply = request(s, cmd::STORAGE_BEAT, &body)?;
            scratch.push(shared.t0, began.elapsed());
            let mut bytes = 2 * 10 + body.len() + reply.len();
            if shared.changelog_after_beat.load(Ordering::Relaxed) {
                bytes += 2 * 10 + request(s, cmd::STORAGE_CHANGELOG_REQ, &[])?.len();
            }
            shared.beat_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
            shared.beat_count.fetch_add(1, Ordering::Relaxed);
            self.apply_change_list(shared, &reply);
            let link = &mut self.links[t];
            link.sent_beats += 1;
            // the second beat comes a random part of an interval after the first, so that a
            // fleet that joined within a second does not beat in lockstep
            link.next_beat = if link.sent_beats == 1 {
                now + hb.mul_f64(0.5 + (self.index as f64 * 0.618_034).fract())
            } else {
                link.next_beat + hb
            };
            if t == 0 {
                self.report_new_members(shared);
            }
            if shared.layout.peers(self.index).next().is_some() {
                let entries: Vec<SyncReportEntry> = shared
                    .layout
                    .peers(self.index)
                    .map(|k| SyncReportEntry {
                        src_id: shared.layout.ip(k).to_string(),
                        timestamp: fdfs_common::now() as i32 - 1,
                    })
                    .collect();
                let s = self.links[t].conn.as_mut().expect("connected");
                let reply = request(s, cmd::STORAGE_SYNC_REPORT, &encode_sync_report(&entries))?;
                self.apply_change_list(shared, &reply);
            }
        }
        if now >= self.links[t].next_disk_usage {
            let usage = [PathUsage {
                total_mb: 4 << 20,
                free_mb: (2 << 20) - (self.index as i64 % 1000),
            }];
            let s = self.links[t].conn.as_mut().expect("connected");
            let reply = request(
                s,
                cmd::STORAGE_REPORT_DISK_USAGE,
                &encode_disk_usage(&usage),
            )?;
            self.apply_change_list(shared, &reply);
            self.links[t].next_disk_usage = now + df;
            if self.trunk_server {
                self.report_trunk(t)?;
            }
        }
        let link = &self.links[t];
        Ok(link.next_beat.min(link.next_disk_usage))
    }

    /// As trunk server: the group's trunk file id once, then the free trunk space.
    fn report_trunk(&mut self, t: usize) -> Result<(), NetError> {
        let s = self.links[t].conn.as_mut().expect("connected");
        let answered = |r: Result<Vec<u8>, NetError>| match r {
            Ok(_) | Err(NetError::Status(_)) => Ok(()),
            Err(e) => Err(e),
        };
        if !self.trunk_reported {
            answered(request(s, cmd::STORAGE_FETCH_TRUNK_FID, &[]))?;
            self.trunk_reported = true;
        }
        answered(request(
            s,
            cmd::STORAGE_REPORT_TRUNK_FREE,
            &(1024i64).to_be_bytes(),
        ))
    }

    /// As the sync source of members that joined: SYNC_SRC_REQ, then REPORT_STATUS SYNCING
    /// and OFFLINE for each of them to every tracker, as a source's sync thread does after the
    /// beat that showed it the new member.
    fn report_new_members(&mut self, shared: &Shared) {
        let Some(members) = shared.pending_sources.lock().unwrap().remove(&self.index) else {
            return;
        };
        for m in members {
            let (group, ip) = (shared.layout.group(m), shared.layout.ip(m).to_string());
            let req = GroupStorageReq {
                group: group.clone(),
                storage_id: ip.clone(),
            }
            .to_bytes();
            // the leader first, as a sync thread asks; any answer will do
            let _ = (0..shared.trackers.len()).find(|&t| {
                self.short_request(shared, t, cmd::STORAGE_SYNC_SRC_REQ, &req)
                    .is_ok()
            });
            for st in [status::SYNCING, status::OFFLINE] {
                let body = ReportStatusReq {
                    group: group.clone(),
                    brief: Brief {
                        status: st,
                        port: 0,
                        id: ip.clone(),
                        ip: ip.clone(),
                    },
                }
                .to_bytes();
                for t in 0..shared.trackers.len() {
                    if let Err(NetError::Io(_)) =
                        self.short_request(shared, t, cmd::STORAGE_REPORT_STATUS, &body)
                    {
                        shared.failed(t);
                    }
                }
            }
        }
    }
}

impl Shared {
    /// Per leader (tracker index + 1, 0 = none yet): how many storages follow it, and when
    /// the last of them took it (ms since the start).
    fn leader_counts(&self, fleet_n: usize) -> Vec<(usize, u64)> {
        let mut counts = vec![(0usize, 0u64); self.trackers.len() + 1];
        for cell in &self.leader[..fleet_n] {
            let v = cell.load(Ordering::Relaxed);
            let e = &mut counts[(v >> 40) as usize];
            e.0 += 1;
            e.1 = e.1.max(v & ((1 << 40) - 1));
        }
        counts
    }

    /// Leader `k` of [`leader_counts`](Self::leader_counts) by name.
    fn leader_name(&self, k: usize) -> String {
        match k {
            0 => "no leader".into(),
            _ => self.trackers[k - 1].to_string(),
        }
    }

    /// The tracker most storages follow as leader.
    fn followed(&self, fleet_n: usize) -> String {
        let counts = self.leader_counts(fleet_n);
        match (1..counts.len()).max_by_key(|&k| counts[k].0) {
            Some(k) if counts[k].0 > 0 => self.leader_name(k),
            _ => self.leader_name(0),
        }
    }

    fn failed(&self, t: usize) {
        let now = ms_since(self.t0).max(1);
        let _ =
            self.first_failure[t].compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// A worker: the storages `i` with `i % threads == w`, served from a timer queue.
fn worker(shared: Arc<Shared>, w: usize, threads: usize, late: Option<usize>) -> Samples {
    let mut sims: Vec<Sim> = Vec::new();
    let mut queue: BinaryHeap<Reverse<(Instant, usize, usize)>> = BinaryHeap::new();
    let now = Instant::now();
    for i in (w..shared.n).step_by(threads) {
        if Some(i) == late {
            continue;
        }
        let k = sims.len();
        sims.push(Sim::new(i, &shared));
        for t in 0..shared.trackers.len() {
            queue.push(Reverse((now, k, t)));
        }
    }
    let mut late_pending = late.filter(|&i| i % threads == w);
    let mut samples = Samples::default();
    while !shared.stop.load(Ordering::Relaxed) {
        if let Some(i) = late_pending {
            if shared.late_go.load(Ordering::Relaxed) {
                late_pending = None;
                let k = sims.len();
                sims.push(Sim::new(i, &shared));
                for t in 0..shared.trackers.len() {
                    queue.push(Reverse((Instant::now(), k, t)));
                }
            }
        }
        let Some(Reverse((at, k, t))) = queue.peek().copied() else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let now = Instant::now();
        if at > now {
            std::thread::sleep((at - now).min(Duration::from_millis(50)));
            continue;
        }
        queue.pop();
        let next = sims[k].serve(&shared, t, &mut samples);
        queue.push(Reverse((next, k, t)));
    }
    for s in sims.iter_mut() {
        for l in s.links.iter_mut() {
            if let Some(c) = l.conn.take() {
                net::quit(c);
            }
        }
    }
    samples
}

/// The status tracker `t` lists each storage with, or None when it does not answer.
fn statuses_on(t: &HostPort) -> Option<HashMap<String, u8>> {
    let timeout = Duration::from_secs(10);
    let mut s = net::connect(&t.host, t.port, None, timeout, timeout).ok()?;
    let groups =
        decode_group_stats(&request(&mut s, cmd::SERVER_LIST_ALL_GROUPS, &[]).ok()?).ok()?;
    let mut statuses = HashMap::new();
    for g in groups {
        let req = ListStorageReq {
            group: g.group.clone(),
            storage_id: None,
        }
        .to_bytes();
        let body = request(&mut s, cmd::SERVER_LIST_STORAGE, &req).ok()?;
        for st in decode_storage_stats(&body).ok()? {
            statuses.insert(st.ip, st.status);
        }
    }
    net::quit(s);
    Some(statuses)
}

/// How many of the fleet's storages are ACTIVE on every answering tracker, which trackers
/// answered, and per tracker the statuses of the others.
fn count_active(shared: &Shared, fleet: &[String]) -> (usize, Vec<bool>, Vec<String>) {
    let views: Vec<_> = shared.trackers.iter().map(statuses_on).collect();
    let answered: Vec<bool> = views.iter().map(Option::is_some).collect();
    let is_active = |v: &HashMap<String, u8>, ip: &String| v.get(ip) == Some(&status::ACTIVE);
    let active = fleet
        .iter()
        .filter(|ip| views.iter().flatten().all(|v| is_active(v, ip)))
        .count();
    let others = shared
        .trackers
        .iter()
        .zip(&views)
        .filter_map(|(t, v)| {
            let v = v.as_ref()?;
            let mut by_status: std::collections::BTreeMap<&str, usize> = Default::default();
            for ip in fleet.iter().filter(|ip| !is_active(v, ip)) {
                let name = v.get(ip).map_or("unknown", |&s| status::name(s));
                *by_status.entry(name).or_default() += 1;
            }
            (!by_status.is_empty()).then(|| {
                let list: Vec<String> = by_status.iter().map(|(k, c)| format!("{c} {k}")).collect();
                format!("{t}: {}", list.join(", "))
            })
        })
        .collect();
    (
        if answered.iter().any(|a| *a) {
            active
        } else {
            0
        },
        answered,
        others,
    )
}

/// Whether storage `i` is ACTIVE on every tracker that answers GET_STATUS.
fn late_joiner_active(shared: &Shared, i: usize) -> bool {
    let body = StorageAddrReq {
        group: shared.layout.group(i),
        addr: format!("{}:{}", shared.layout.ip(i), shared.args.storage_port),
    }
    .to_bytes();
    shared.trackers.iter().all(|t| {
        let timeout = Duration::from_secs(5);
        net::connect(&t.host, t.port, None, timeout, timeout)
            .ok()
            .and_then(|mut s| request(&mut s, cmd::STORAGE_GET_STATUS, &body).ok())
            .and_then(|b| Brief::from_bytes(&b).ok())
            .is_some_and(|b| b.status == status::ACTIVE)
    })
}

/// Clients: QUERY_STORE_WITHOUT_GROUP_ONE and QUERY_FETCH_ONE in turn, paced to `qps`, on one
/// persistent connection per tracker, round robin over the trackers.
fn clients(shared: Arc<Shared>) -> (Samples, Samples, Samples) {
    let (mut store, mut fetch, mut errors) =
        (Samples::default(), Samples::default(), Samples::default());
    let qps = shared.args.queries_per_second;
    if qps == 0 {
        return (store, fetch, errors);
    }
    let every = Duration::from_secs_f64(1.0 / qps as f64);
    let mut conns: Vec<Option<TcpStream>> = shared.trackers.iter().map(|_| None).collect();
    let groups = shared.args.groups;
    let mut next = Instant::now();
    let mut k = 0usize;
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next += every;
        k += 1;
        let t = k % shared.trackers.len();
        if conns[t].is_none() {
            let tr = &shared.trackers[t];
            let timeout = Duration::from_secs(5);
            conns[t] = net::connect(&tr.host, tr.port, None, timeout, timeout).ok();
        }
        let Some(s) = conns[t].as_mut() else {
            errors.push(shared.t0, Duration::ZERO);
            continue;
        };
        let (command, body, into) = if k.is_multiple_of(2) {
            (cmd::QUERY_STORE_WITHOUT_GROUP_ONE, Vec::new(), &mut store)
        } else {
            // a file of some group, written by its first member an hour ago
            let g = (k / 2) % groups;
            let source = shared.layout.ip(g * shared.layout.per_group).octets();
            let payload = FilePayload {
                source: Source::Ipv4(source),
                timestamp: (fdfs_common::now() - 3600) as u32,
                size_field: FilePayload::make_size_field(1024, false, k as u32),
                crc32: k as u32,
            };
            let mut body = Vec::new();
            let mut group = format!("group{}", g + 1).into_bytes();
            group.resize(16, 0);
            body.extend_from_slice(&group);
            let ext = fdfs_common::file_id::format_ext("txt", || k as u8);
            body.extend_from_slice(format!("M00/00/00/{}{ext}", payload.encode_b27()).as_bytes());
            (cmd::QUERY_FETCH_ONE, body, &mut fetch)
        };
        let began = Instant::now();
        match request(s, command, &body) {
            Ok(_) => into.push(shared.t0, began.elapsed()),
            Err(NetError::Status(_)) => {
                into.push(shared.t0, began.elapsed());
                errors.push(shared.t0, began.elapsed());
            }
            Err(_) => {
                conns[t] = None;
                errors.push(shared.t0, began.elapsed());
            }
        }
    }
    (store, fetch, errors)
}

/// A tracker process's CPU seconds, RSS bytes, threads and bytes written to disk.
#[derive(Debug, Clone, Copy, Default)]
struct ProcSample {
    cpu_s: f64,
    rss: u64,
    threads: u64,
    write_bytes: u64,
}

fn proc_sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // fields after the command name, which may hold spaces
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let cpu_s = (f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / ticks;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let write_bytes = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("write_bytes: "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0);
    Some(ProcSample {
        cpu_s,
        rss: field("VmRSS:") * 1024,
        threads: field("Threads:"),
        write_bytes,
    })
}

/// Run the fleet; prints its findings and returns the exit code (0 when every storage was
/// ACTIVE on every answering tracker at the end).
pub fn run(args: FleetArgs) -> i32 {
    let trackers: Result<Vec<HostPort>, String> = args
        .trackers
        .iter()
        .map(|t| parse_host_port(t, 22122))
        .collect();
    let trackers = match trackers {
        Ok(t) if !t.is_empty() => t,
        Ok(_) => {
            eprintln!("fleet: no tracker given");
            return 2;
        }
        Err(e) => {
            eprintln!("fleet: {e}");
            return 2;
        }
    };
    if args.groups == 0 || args.per_group == 0 || args.threads == 0 {
        eprintln!("fleet: --groups, --per-group and --threads must be at least 1");
        return 2;
    }
    crate::logging::init();
    raise_fd_limit();
    let fleet_n = args.groups * args.per_group;
    let n = fleet_n + args.late_joiner as usize;
    let layout = Layout {
        per_group: args.per_group,
        first: u32::from(args.first_address),
        fleet_n,
    };
    let shared = Arc::new(Shared {
        trackers,
        layout,
        n,
        t0: Instant::now(),
        stop: AtomicBool::new(false),
        pending_sources: Mutex::new(HashMap::new()),
        leader: (0..n).map(|_| AtomicU64::new(0)).collect(),
        first_failure: args.trackers.iter().map(|_| AtomicU64::new(0)).collect(),
        changelog_after_beat: AtomicBool::new(false),
        beat_bytes: AtomicU64::new(0),
        beat_count: AtomicU64::new(0),
        late_go: AtomicBool::new(false),
        args: args.clone(),
    });
    println!(
        "fleet: {} trackers, {fleet_n} storages in {} groups from {}, beat every {} s, disk usage every {} s, {} queries/s",
        shared.trackers.len(),
        args.groups,
        args.first_address,
        args.beat_interval,
        args.stat_report_interval,
        args.queries_per_second
    );
    let late = args.late_joiner.then_some(fleet_n);
    let workers: Vec<_> = (0..args.threads)
        .map(|w| {
            let s = Arc::clone(&shared);
            let threads = args.threads;
            std::thread::spawn(move || worker(s, w, threads, late))
        })
        .collect();
    let client = {
        let s = Arc::clone(&shared);
        std::thread::spawn(move || clients(s))
    };
    let fleet_ips: Vec<String> = (0..fleet_n)
        .map(|i| shared.layout.ip(i).to_string())
        .collect();
    let end = shared.t0 + Duration::from_secs_f64(args.seconds);
    // joins: the trackers' lists, polled, until every storage is ACTIVE on every tracker
    let mut steady_from: Option<u64> = None;
    let mut steady_proc: Vec<Option<ProcSample>> = Vec::new();
    let mut steady_beats = 0u64;
    while Instant::now() < end && steady_from.is_none() {
        let (active, _, _) = count_active(&shared, &fleet_ips);
        if active == fleet_n {
            let at = ms_since(shared.t0);
            steady_from = Some(at);
            println!(
                "joined: {fleet_n}/{fleet_n} ACTIVE on every tracker {:.1} s after the start, following {}",
                at as f64 / 1000.0,
                shared.followed(fleet_n)
            );
            steady_proc = args.tracker_pids.iter().map(|&p| proc_sample(p)).collect();
            steady_beats = shared.beat_count.load(Ordering::Relaxed);
        } else {
            std::thread::sleep(
                Duration::from_secs(1).min(end.saturating_duration_since(Instant::now())),
            );
        }
    }
    let mut late_line = None;
    if let (Some(i), Some(_)) = (late, steady_from) {
        let began = Instant::now();
        shared.late_go.store(true, Ordering::Relaxed);
        while Instant::now() < end {
            if late_joiner_active(&shared, i) {
                late_line = Some(format!(
                    "late joiner: {} in group1 ACTIVE on every tracker {:.2} s after it started",
                    shared.layout.ip(i),
                    began.elapsed().as_secs_f64()
                ));
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if late_line.is_none() {
            late_line = Some("late joiner: not ACTIVE on every tracker by the end".into());
        }
    }
    if let Some(now) = end.checked_duration_since(Instant::now()) {
        std::thread::sleep(now);
    }
    let steady_secs = steady_from.map(|f| (ms_since(shared.t0) - f) as f64 / 1000.0);
    let end_proc: Vec<Option<ProcSample>> =
        args.tracker_pids.iter().map(|&p| proc_sample(p)).collect();
    let end_beats = shared.beat_count.load(Ordering::Relaxed);
    let (active, answered, not_active) = count_active(&shared, &fleet_ips);
    shared.stop.store(true, Ordering::Relaxed);
    let mut beats = Samples::default();
    for w in workers {
        if let Ok(s) = w.join() {
            beats.0.extend(s.0);
        }
    }
    let (store, fetch, query_errors) = client.join().unwrap_or_default();
    let from = steady_from.unwrap_or(0);
    let beats = beats.since(from);
    let (store, fetch, query_errors) = (
        store.since(from),
        fetch.since(from),
        query_errors.since(from).len(),
    );
    let mut queries: Vec<u64> = store.iter().chain(fetch.iter()).copied().collect();
    queries.sort_unstable();
    let count = shared.beat_count.load(Ordering::Relaxed).max(1);
    println!(
        "beats{}: {}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} bytes per beat (BEAT{} with both headers)",
        if steady_from.is_some() { " once all joined" } else { "" },
        beats.len(),
        pct(&beats, 0.5),
        pct(&beats, 0.99),
        pct(&beats, 1.0),
        shared.beat_bytes.load(Ordering::Relaxed) / count,
        if shared.changelog_after_beat.load(Ordering::Relaxed) { " and CHANGELOG_REQ" } else { "" },
    );
    if args.queries_per_second > 0 {
        println!(
            "queries: QUERY_STORE {} p50 {:.2} ms p99 {:.2} ms, QUERY_FETCH {} p50 {:.2} ms p99 {:.2} ms, {query_errors} failed{}",
            store.len(),
            pct(&store, 0.5),
            pct(&store, 0.99),
            fetch.len(),
            pct(&fetch, 0.5),
            pct(&fetch, 0.99),
            if steady_from.is_some() { " once all joined" } else { "" },
        );
    }
    if let Some(secs) = steady_secs {
        let per_tracker_beats = (end_beats - steady_beats) as f64 / shared.trackers.len() as f64;
        for (k, &pid) in args.tracker_pids.iter().enumerate() {
            if let (Some(Some(a)), Some(Some(b))) = (steady_proc.get(k), end_proc.get(k)) {
                let cpu = b.cpu_s - a.cpu_s;
                println!(
                    "tracker pid {pid}: CPU {:.2} s/min ({:.1} us per beat), RSS {:.1} MiB, {} threads, disk writes {:.0} KiB/min",
                    cpu * 60.0 / secs,
                    if per_tracker_beats > 0.0 { cpu * 1e6 / per_tracker_beats } else { 0.0 },
                    b.rss as f64 / (1 << 20) as f64,
                    b.threads,
                    (b.write_bytes - a.write_bytes) as f64 / 1024.0 * 60.0 / secs,
                );
            }
        }
    }
    if let Some(l) = late_line {
        println!("{l}");
    }
    leader_lines(&shared, fleet_n);
    let silent: Vec<String> = shared
        .trackers
        .iter()
        .zip(&answered)
        .filter(|(_, a)| !**a)
        .map(|(t, _)| t.to_string())
        .collect();
    if !silent.is_empty() {
        println!(
            "trackers: {}/{} answered at the end ({} did not)",
            answered.iter().filter(|a| **a).count(),
            answered.len(),
            silent.join(", ")
        );
    }
    for line in not_active {
        println!("not ACTIVE on {line}");
    }
    println!(
        "fleet: {active}/{fleet_n} storages ACTIVE on every tracker, beat p99 {:.2} ms, query p99 {:.2} ms",
        pct(&beats, 0.99),
        pct(&queries, 0.99)
    );
    if active == fleet_n {
        0
    } else {
        1
    }
}

/// Which leader the storages follow, and how long the move to a new one took when the
/// tracker they followed stopped answering.
fn leader_lines(shared: &Shared, fleet_n: usize) {
    let counts = shared.leader_counts(fleet_n);
    let mut v: Vec<usize> = (0..counts.len()).filter(|&k| counts[k].0 > 0).collect();
    v.sort_by_key(|&k| Reverse(counts[k].0));
    let top = v[0];
    let (followers, last_ms) = counts[top];
    println!(
        "leader: {} followed by {followers}/{fleet_n} storages{}",
        shared.leader_name(top),
        v[1..]
            .iter()
            .map(|&k| format!(", {} by {}", shared.leader_name(k), counts[k].0))
            .collect::<String>()
    );
    // a tracker other than the one followed now that failed: the failover
    for (t, f) in shared.first_failure.iter().enumerate() {
        let failed_ms = f.load(Ordering::Relaxed);
        if failed_ms == 0 || t + 1 == top || top == 0 || last_ms < failed_ms {
            continue;
        }
        println!(
            "failover: {} stopped answering at +{:.1} s; {} followed by {followers}/{fleet_n} storages at +{:.1} s ({:.1} s)",
            shared.trackers[t],
            failed_ms as f64 / 1000.0,
            shared.leader_name(top),
            last_ms as f64 / 1000.0,
            (last_ms - failed_ms) as f64 / 1000.0
        );
    }
}

/// Tens of thousands of reporter connections need more descriptors than a shell's 1024.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_is_found_again_by_its_address() {
        for first in ["127.64.0.1", "127.19.2.20", "10.0.0.254"] {
            let layout = Layout {
                per_group: 5,
                first: u32::from(first.parse::<Ipv4Addr>().unwrap()),
                fleet_n: 1000,
            };
            for i in 0..1000 {
                assert_eq!(layout.index_of(layout.ip(i)), Some(i), "{first} + {i}");
            }
            let before = Ipv4Addr::from(u32::from(layout.ip(0)) - 1);
            assert_eq!(layout.index_of(before), None, "{first}");
        }
    }
}
