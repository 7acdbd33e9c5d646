//! One thread per tracker: join, the initial-sync handshake, beats, disk usage reports, and the
//! change lists the leader sends back (docs/protocol/cluster-protocol.md 1.3). Also the startup
//! requests GET_MY_IP and PARAMETER_REQ.

use crate::init_flag::{InitFlag, DATA_INIT_FLAG};
use crate::mark_moves::MarkMoves;
use crate::storage::Storage;
use crate::tracker_link::TrackerLink;
use fdfs_common::codec::Message;
use fdfs_common::config::HostPort;
use fdfs_common::net::{self, NetError, NetResult};
use fdfs_common::proto::advertise::AdvertiseReq;
use fdfs_common::proto::cluster::{
    encode_disk_usage, encode_sync_report, Brief, ChangeList, ChangeStatusReq, JoinReply, JoinReq,
    StorageAddrReq, SyncReportEntry, SyncSource,
};
use fdfs_common::proto::trunk::{TrunkFileId, TrunkFreeMb};
use fdfs_common::proto::{cmd, status, VERSION};
use fdfs_common::sync::Mutex;
use std::collections::HashMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long after its start a storage beats every second.
const STARTUP_FAST_BEAT_SECS: i64 = 60;
/// Seconds between two prunings of the delete tombstones (one tracker's beat does it).
const PRUNE_EVERY: i64 = 10;

/// Shared by the reporter threads.
pub struct Reporter {
    pub storage: Arc<Storage>,
    pub init_flag: Mutex<InitFlag>,
    pub init_flag_path: PathBuf,
    pub up_time: i64,
    pub stop: Arc<AtomicBool>,
    /// trackers that accepted our JOIN
    pub joined: Mutex<Vec<String>>,
    /// trackers that answered a JOIN at least once, either way
    pub answered_join: Mutex<std::collections::HashSet<String>>,
    /// the tracker leader as the change lists name it
    pub leader: Arc<Mutex<Option<HostPort>>>,
    /// held around SYNC_DEST_REQ: one tracker picks the source, the others hear it through
    /// SYNC_NOTIFY (two answers would leave the trackers with different sources)
    pub sync_dest_lock: Mutex<()>,
    /// one replication thread per peer of the group, by storage id
    pub sync_threads: Mutex<HashMap<String, std::thread::JoinHandle<()>>>,
    /// changelog entries whose mark file is still held by a running sync thread: the thread
    /// saves its mark once more on its way out, so the file is moved only after it ends
    pub mark_moves: MarkMoves,
    /// when the delete tombstones were last pruned
    pub last_prune: AtomicI64,
}

impl Reporter {
    /// The reporter's state before the first tracker is reached.
    pub(crate) fn new(storage: &Arc<Storage>, stop: &Arc<AtomicBool>, data: &Path) -> Reporter {
        Reporter {
            storage: Arc::clone(storage),
            init_flag: Mutex::new(InitFlag::default()),
            init_flag_path: data.join(DATA_INIT_FLAG),
            up_time: fdfs_common::now(),
            stop: Arc::clone(stop),
            joined: Mutex::new(Vec::new()),
            answered_join: Mutex::new(Default::default()),
            leader: Arc::new(Mutex::new(None)),
            sync_dest_lock: Mutex::new(()),
            sync_threads: Mutex::new(std::collections::HashMap::new()),
            mark_moves: Default::default(),
            last_prune: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// The part of the reporter the sync threads use.
    pub fn link(&self) -> TrackerLink {
        TrackerLink {
            storage: Arc::clone(&self.storage),
            leader: Arc::clone(&self.leader),
            stop: Arc::clone(&self.stop),
        }
    }

    pub fn connect(&self, t: &HostPort) -> std::io::Result<TcpStream> {
        self.link().connect(t)
    }

    /// A trunk binlog compaction is recorded in `.data_init_flag` as upstream records it
    /// (its time, and stage 9, finished).
    pub fn note_trunk_compaction(&self) {
        let t = self
            .storage
            .trunk_last_compress_time
            .load(Ordering::Relaxed);
        {
            let mut f = self.init_flag.lock();
            if f.trunk_last_compress_time == t {
                return;
            }
            f.trunk_last_compress_time = t;
            f.trunk_binlog_compress_stage = 9;
        }
        self.save_init_flag();
    }

    fn save_init_flag(&self) {
        let text = self.init_flag.lock().to_text();
        if let Err(e) = crate::store::write_atomic(&self.init_flag_path, text.as_bytes()) {
            log::error!("write {} fail: {e}", self.init_flag_path.display());
        }
    }

    pub(crate) fn sleep_unless_stopped(&self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end && !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Run the report loop against one tracker until stopped.
    pub fn run(self: Arc<Self>, tracker: HostPort) {
        let hb = Duration::from_secs(self.storage.cfg.heart_beat_interval);
        while !self.stop.load(Ordering::Relaxed) {
            match self.connect(&tracker) {
                Ok(stream) => {
                    if let Err(e) = self.session(stream, &tracker) {
                        if !self.stop.load(Ordering::Relaxed) {
                            log::error!("tracker server {tracker}, report fail: {e}");
                        }
                    }
                    self.joined.lock().retain(|t| *t != tracker.to_string());
                    self.sleep_unless_stopped(Duration::from_secs(1));
                }
                Err(e) => {
                    log::error!(
                        "connect to tracker server {tracker} fail, errno: {}, error info: {e}",
                        e.raw_os_error().unwrap_or(0)
                    );
                    self.sleep_unless_stopped(hb);
                }
            }
        }
    }

    fn join_req(&self, stream: &TcpStream, tracker: &HostPort) -> JoinReq {
        let cfg = &self.storage.cfg;
        let flag = self.init_flag.lock();
        let my_status = self
            .storage
            .members
            .read()
            .iter()
            .find(|b| b.id == *self.storage.my_id.read())
            .map(|b| b.status as i8)
            .unwrap_or_else(|| {
                // unknown to the leader: "no status" (-1) until every tracker has answered a
                // JOIN, then INIT, so that a tracker that lost our record (-1 is refused with
                // EFAULT) can take us in again, as upstream's storages do
                let answered = self.answered_join.lock();
                let all = cfg
                    .tracker_servers
                    .iter()
                    .all(|t| answered.contains(&t.to_string()));
                if cfg.tracker_servers.len() == 1 || all {
                    0
                } else {
                    -1
                }
            });
        JoinReq {
            group: self.storage.group.clone(),
            storage_port: cfg.server.port as i64,
            store_path_count: cfg.store_paths.len() as i64,
            subdir_count_per_path: cfg.subdir_count_per_path as i64,
            upload_priority: cfg.upload_priority,
            join_time: flag.storage_join_time,
            up_time: self.up_time,
            version: VERSION.into(),
            init_flag: (!flag.sync_old_done) as u8,
            status: my_status,
            // upstream's storages send their id only when ids are in use
            storage_id: if self.storage.params.read().use_storage_id {
                self.storage.my_id.read().clone()
            } else {
                String::new()
            },
            current_tracker_ip: stream
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_else(|_| tracker.host.clone()),
            trackers: cfg
                .tracker_servers
                .iter()
                .map(|t| t.current().to_string())
                .collect(),
        }
    }

    /// After each JOIN (which forgets them): the `advertise_address` rules, host names at
    /// their present addresses. A tracker that refuses (a C tracker does not know the command)
    /// hands clients the joined address; that is logged, and the storage carries on.
    fn advertise(&self, stream: &mut TcpStream, tracker: &HostPort) {
        let cfg = &self.storage.cfg;
        if cfg.advertise.is_empty() {
            return;
        }
        let rules = cfg
            .advertise
            .iter()
            .filter_map(|r| {
                let mut r = r.clone();
                if fdfs_common::resolver::is_name(&r.host) {
                    match fdfs_common::resolver::address_of(&r.host) {
                        Some(ip) => r.host = ip,
                        None => {
                            log::warn!("advertise_address {}: host unknown, left out", r.host);
                            return None;
                        }
                    }
                }
                Some(r)
            })
            .collect();
        let req = AdvertiseReq {
            group: self.storage.group.clone(),
            rules,
        };
        if let Err(e) = net::request(stream, cmd::STORAGE_ADVERTISE, &req.to_bytes()) {
            log::warn!(
                "tracker server {tracker} did not take my advertise_address lines ({e}): it \
                 hands clients the address I joined from"
            );
        }
    }

    fn session(self: &Arc<Self>, mut stream: TcpStream, tracker: &HostPort) -> NetResult<()> {
        let join = self.join_req(&stream, tracker);
        let answer = net::request(&mut stream, cmd::STORAGE_JOIN, &join.to_bytes());
        if matches!(answer, Ok(_) | Err(NetError::Status(_))) {
            self.answered_join.lock().insert(tracker.to_string());
        }
        let reply = JoinReply::from_bytes(&answer?)?;
        log::info!(
            "tracker server {tracker}, join ok, my status: {}",
            status::name(reply.status)
        );
        self.advertise(&mut stream, tracker);
        // this tracker's view of my status: from the JOIN, refreshed before acting on it
        let mut here = reply.status;
        self.joined.lock().push(tracker.to_string());
        let _asking = self.sync_dest_lock.lock();
        if !self.init_flag.lock().sync_old_done {
            let body = net::request(&mut stream, cmd::STORAGE_SYNC_DEST_REQ, &[])?;
            {
                let mut f = self.init_flag.lock();
                if !body.is_empty() {
                    let src = SyncSource::from_bytes(&body)?;
                    f.sync_src_server = src.src_id;
                    f.sync_until_timestamp = src.until_timestamp;
                } else {
                    // no member to copy from: the group's first storage, or one rebuilt blank
                    // while the members that hold the files are away or unknown to the
                    // trackers (recovery.rs tells the two apart later)
                    self.storage.started_without_source();
                }
                f.sync_old_done = true;
            }
            self.save_init_flag();
        }
        drop(_asking);
        let src = {
            let f = self.init_flag.lock();
            SyncSource {
                src_id: f.sync_src_server.clone(),
                until_timestamp: f.sync_until_timestamp,
            }
        };
        net::request(&mut stream, cmd::STORAGE_SYNC_NOTIFY, &src.to_bytes())?;

        let cfg = &self.storage.cfg;
        let hb = Duration::from_secs(cfg.heart_beat_interval);
        let df = Duration::from_secs(cfg.stat_report_interval);
        let mut last_beat: Option<Instant> = None;
        let mut last_df: Option<Instant> = None;
        let mut sent_stats_version = 0u64;
        let mut trunk_reported = None;
        let mut reported_sync = 0u64;
        let mut last_sync_report: Option<Instant> = None;
        let mut reported_writable = true;
        let mut told_recovering = false;
        while !self.stop.load(Ordering::Relaxed) {
            // the group's member list only comes back with beats: while a cluster is starting
            // (its members joining one by one) beat every second, so that replication to the
            // members that joined after us starts now rather than a heart_beat_interval later
            let starting = fdfs_common::now() - self.up_time < STARTUP_FAST_BEAT_SECS;
            let beat_every = if starting {
                hb.min(Duration::from_secs(1))
            } else {
                hb
            };
            if last_beat.is_none_or(|t| t.elapsed() >= beat_every) {
                let v = self.storage.stats_version.load(Ordering::Relaxed);
                let body = if v != sent_stats_version {
                    sent_stats_version = v;
                    let mut s = *self.storage.stats.lock();
                    if let Some(cs) = self.storage.conn_stats.get() {
                        s.connections = [
                            cs.alloc.load(Ordering::Relaxed),
                            cs.current.load(Ordering::Relaxed),
                            cs.max.load(Ordering::Relaxed),
                        ];
                    }
                    s.counters[fdfs_common::proto::cluster::stat::LAST_SYNCED_TIMESTAMP] = 0;
                    s.counters[fdfs_common::proto::cluster::stat::LAST_HEART_BEAT_TIME] = 0;
                    s.to_bytes()
                } else {
                    Vec::new()
                };
                let reply = net::request(&mut stream, cmd::STORAGE_BEAT, &body)?;
                if self.storage.params.read().storage_ip_changed_auto_adjust {
                    // before the new member list: a peer's renamed mark must be in place when
                    // the sync thread for its new address starts
                    let changes = net::request(&mut stream, cmd::STORAGE_CHANGELOG_REQ, &[])?;
                    self.mark_moves
                        .apply_changelog(&self.storage, &String::from_utf8_lossy(&changes));
                }
                self.apply_change_list(&reply);
                // the leader answered and its list leaves the trunk server role here
                if self.storage.is_trunk_server()
                    && self.leader.lock().as_ref().is_none_or(|l| l == tracker)
                {
                    self.storage.renew_trunk_lease();
                }
                last_beat = Some(Instant::now());
                if self.follower_disagrees(tracker, here).is_some() {
                    // the JOIN's answer may be old by now (a new member joins INIT and becomes
                    // ACTIVE later): ask what the tracker has at present before correcting it
                    here = self.my_status_on(&mut stream)?;
                    if let Some(leader_says) = self.follower_disagrees(tracker, here) {
                        // align this follower with the leader, then re-JOIN it (3.5)
                        log::info!(
                            "tracker server {tracker} has my status {}, the leader {}: align it",
                            status::name(here),
                            status::name(leader_says)
                        );
                        net::request(
                            &mut stream,
                            cmd::STORAGE_CHANGE_STATUS,
                            &ChangeStatusReq {
                                status: leader_says,
                            }
                            .to_bytes(),
                        )?;
                        return Ok(());
                    }
                }
            }
            // while store paths are recovered, the trackers send no reads here (upstream's
            // RECOVERY, which its storages report before they join; this one recovers online)
            let recovering = self.storage.recovering.load(Ordering::SeqCst) > 0;
            if recovering != told_recovering {
                let status = if recovering {
                    status::RECOVERY
                } else {
                    status::ACTIVE
                };
                net::request(
                    &mut stream,
                    cmd::STORAGE_CHANGE_STATUS,
                    &ChangeStatusReq { status }.to_bytes(),
                )?;
                told_recovering = recovering;
                log::info!(
                    "tracker server {tracker}: my status {}",
                    status::name(status)
                );
            }
            let changed = self.storage.sync_changed.load(Ordering::Relaxed);
            if changed != reported_sync && last_sync_report.is_none_or(|t| t.elapsed() >= hb) {
                let body = self.sync_report_body();
                if !body.is_empty() {
                    let reply = net::request(&mut stream, cmd::STORAGE_SYNC_REPORT, &body)?;
                    self.apply_change_list(&reply);
                }
                reported_sync = changed;
                last_sync_report = Some(Instant::now());
            }
            // a binlog that refuses lines makes the storage take no writes: the trackers hear
            // it as no free space, at once, and send uploads elsewhere until it can again
            let writable = self.storage.binlog.refusing().is_none();
            if last_df.is_none_or(|t| t.elapsed() >= df) || writable != reported_writable {
                reported_writable = writable;
                let store = &self.storage.store;
                let usage: Vec<_> = (0..store.paths.len())
                    .map(|i| {
                        let mut u = store.usage(i);
                        if !writable {
                            u.free_mb = 0;
                        }
                        u
                    })
                    .collect();
                let reply = net::request(
                    &mut stream,
                    cmd::STORAGE_REPORT_DISK_USAGE,
                    &encode_disk_usage(&usage),
                )?;
                self.apply_change_list(&reply);
                last_df = Some(Instant::now());
            }
            self.report_trunk(&mut stream, &mut trunk_reported)?;
            self.sleep_unless_stopped(Duration::from_secs(1).min(hb));
        }
        net::quit(stream);
        Ok(())
    }

    /// As trunk server, on this tracker connection: the group's trunk file id first (FETCH_TRUNK_FID),
    /// then the last trunk file id whenever it grew (REPORT_TRUNK_FID) and the free trunk space
    /// whenever it changed (REPORT_TRUNK_FREE). A tracker that does not know us as trunk server
    /// yet refuses; that is retried, not fatal.
    fn report_trunk(
        &self,
        stream: &mut TcpStream,
        reported: &mut Option<(u32, i64)>,
    ) -> NetResult<()> {
        if !self.storage.is_trunk_server() {
            *reported = None;
            return Ok(());
        }
        if reported.is_none() {
            match net::request(stream, cmd::STORAGE_FETCH_TRUNK_FID, &[]) {
                Ok(b) => {
                    if let Ok(f) = TrunkFileId::from_bytes(&b) {
                        self.storage.raise_trunk_id(f.id.max(0) as u32);
                    }
                }
                Err(NetError::Status(_)) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        let Some((id, free_mb)) = self.storage.trunk_report() else {
            return Ok(());
        };
        let (last_id, last_free) = reported.unwrap_or((0, -1));
        let mut send = |command: u8, body: Vec<u8>| match net::request(stream, command, &body) {
            Ok(_) | Err(NetError::Status(_)) => Ok(()),
            Err(e) => Err(e),
        };
        if id > last_id {
            send(
                cmd::STORAGE_REPORT_TRUNK_FID,
                TrunkFileId { id: id as i32 }.to_bytes(),
            )?;
        }
        if free_mb != last_free {
            send(
                cmd::STORAGE_REPORT_TRUNK_FREE,
                TrunkFreeMb { mb: free_mb }.to_bytes(),
            )?;
        }
        *reported = Some((id, free_mb));
        Ok(())
    }

    fn apply_change_list(self: &Arc<Self>, body: &[u8]) {
        match ChangeList::from_bytes(body) {
            Ok(cl) => {
                if let Some(l) = cl.leader {
                    let known = self
                        .storage
                        .cfg
                        .tracker_servers
                        .iter()
                        .find(|t| t.is_at(&l.ip) && i32::from(t.port) == l.port)
                        .cloned();
                    let mut leader = self.leader.lock();
                    if *leader != known {
                        log::info!(
                            "tracker leader: {}",
                            known
                                .as_ref()
                                .map(|t| t.to_string())
                                .unwrap_or("unknown".into())
                        );
                        *leader = known;
                    }
                }
                if let Some(list) = cl.group_servers {
                    *self.storage.members.write() = list;
                }
                if let Some(trunk) = cl.trunk_server {
                    let mut current = self.storage.trunk_server.write();
                    if current.as_ref().map(|b| &b.id) != Some(&trunk.id) {
                        log::info!("trunk server: {}:{} ({})", trunk.ip, trunk.port, trunk.id);
                        let mine = trunk.id == *self.storage.my_id.read();
                        *current = Some(trunk);
                        // a trunk server's index is rebuilt from the binlog whenever the role
                        // comes (back) to it
                        *self.storage.trunk_state.lock() = None;
                        if mine {
                            self.storage.trunk_role_arrived();
                        }
                    }
                }
                // every beat, not only on a new list: a deferred mark move may be due now
                self.mark_moves
                    .settle(&self.storage, &self.sync_threads.lock());
                let (now, last) = (fdfs_common::now(), self.last_prune.load(Ordering::Relaxed));
                if now - last >= PRUNE_EVERY
                    && self
                        .last_prune
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    self.storage.prune_tombstones();
                }
                let me = self.storage.my_id.read().clone();
                let peers = self.storage.members.read().clone();
                for b in peers.iter().filter(|b| b.id != me) {
                    self.ensure_sync_thread(b);
                }
            }
            Err(e) => log::warn!("invalid change list from tracker: {e}"),
        }
    }

    /// GET_STATUS of this storage on the tracker at the other end of `stream`.
    fn my_status_on(&self, stream: &mut TcpStream) -> NetResult<u8> {
        let body = StorageAddrReq {
            group: self.storage.group.clone(),
            addr: format!(
                "{}:{}",
                self.storage.my_ip.read(),
                self.storage.cfg.server.port
            ),
        }
        .to_bytes();
        let b = net::request(stream, cmd::STORAGE_GET_STATUS, &body)?;
        Brief::from_bytes(&b)
            .map(|b| b.status)
            .map_err(NetError::from)
    }

    /// The status the leader lists for this storage, when `tracker` is a follower whose JOIN
    /// reply said `here` and the two differ in a way that matters (not both in service).
    fn follower_disagrees(&self, tracker: &HostPort, here: u8) -> Option<u8> {
        if self.leader.lock().as_ref().is_none_or(|l| l == tracker) {
            return None;
        }
        let me = self.storage.my_id.read().clone();
        let leader_says = self
            .storage
            .members
            .read()
            .iter()
            .find(|b| b.id == me)?
            .status;
        let in_service = |s: u8| matches!(s, status::OFFLINE | status::ONLINE | status::ACTIVE);
        (leader_says != here && !(in_service(leader_says) && in_service(here)))
            .then_some(leader_says)
    }

    /// The configured trackers, the leader first: one-shot queries whose answer only the
    /// leader surely has (sync source, parameters, storage ids) go there first (4.7).
    pub fn trackers_leader_first(&self) -> Vec<HostPort> {
        self.link().leader_first()
    }

    /// Start the replication thread for a peer unless one is running.
    fn ensure_sync_thread(self: &Arc<Self>, peer: &Brief) {
        if status::gone(peer.status) {
            return;
        }
        // a peer on its new address starts from the mark of its old one, once that is moved
        if self.mark_moves.awaited_by(&peer.id) {
            return;
        }
        let mut threads = self.sync_threads.lock();
        if threads.get(&peer.id).is_some_and(|h| !h.is_finished()) {
            return;
        }
        let ps = crate::sync::PeerSync {
            link: self.link(),
            peer: peer.clone(),
        };
        match std::thread::Builder::new()
            .name("sync".into())
            .spawn(move || ps.run())
        {
            Ok(h) => {
                threads.insert(peer.id.clone(), h);
            }
            Err(e) => log::error!("start sync thread for {} fail: {e}", peer.id),
        }
    }

    /// SYNC_REPORT body: the newest timestamp received from each member (0 for none, and
    /// for ourselves).
    fn sync_report_body(&self) -> Vec<u8> {
        let synced = self.storage.synced_from.lock().clone();
        let entries: Vec<SyncReportEntry> = self
            .storage
            .members
            .read()
            .iter()
            .map(|b| SyncReportEntry {
                src_id: b.id.clone(),
                timestamp: *synced.get(&b.id).unwrap_or(&0) as i32,
            })
            .collect();
        encode_sync_report(&entries)
    }
}
