//! One simulated storage: its reporter connection to each tracker and what it sends on them, as a
//! 6.16.1 storage does (JOIN, the initial-sync handshake, BEAT, CHANGELOG_REQ, SYNC_REPORT,
//! REPORT_DISK_USAGE, the trunk server's reports, a source's report of new members); and the
//! worker threads that serve every storage from a timer queue.

use super::shared::{ms_since, request, Samples, Shared};
use fdfs_common::codec::Message;
use fdfs_common::net::{self, NetError};
use fdfs_common::proto::cluster::{
    encode_disk_usage, encode_sync_report, Brief, ChangeList, GetMyIpReq, GroupStorageReq, JoinReq,
    PathUsage, ReportStatusReq, StatBlock, SyncReportEntry, SyncSource,
};
use fdfs_common::proto::{cmd, status, VERSION};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One reporter connection of one storage.
struct Link {
    pub(super) conn: Option<TcpStream>,
    /// the initial-sync handshake was done on this tracker
    pub(super) handshaken: bool,
    /// this tracker could not be reached
    pub(super) tried: bool,
    pub(super) next_beat: Instant,
    pub(super) next_disk_usage: Instant,
    pub(super) sent_beats: u64,
}

/// One simulated storage.
struct Sim {
    pub(super) index: usize,
    pub(super) group: String,
    pub(super) ip: Ipv4Addr,
    pub(super) links: Vec<Link>,
    /// SYNC_DEST_REQ answered (on whichever tracker first)
    pub(super) sync_source: Option<SyncSource>,
    /// the source's index, until it is asked to report this member synced
    pub(super) source_index: Option<usize>,
    pub(super) started: bool,
    pub(super) trunk_server: bool,
    pub(super) trunk_reported: bool,
    pub(super) join_time: i64,
}

impl Sim {
    pub(super) fn new(index: usize, shared: &Shared) -> Sim {
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

    pub(super) fn connect(&self, shared: &Shared, t: usize) -> std::io::Result<TcpStream> {
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
    pub(super) fn start(&mut self, shared: &Shared) {
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
    pub(super) fn open(&mut self, shared: &Shared, t: usize) -> Result<(), NetError> {
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
                SyncSource::from_bytes(&body)?
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
    pub(super) fn serve(&mut self, shared: &Shared, t: usize, scratch: &mut Samples) -> Instant {
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

/// A worker: the storages `i` with `i % threads == w`, served from a timer queue.
pub(super) fn worker(
    shared: Arc<Shared>,
    w: usize,
    threads: usize,
    late: Option<usize>,
) -> Samples {
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
