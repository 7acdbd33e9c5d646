//! One thread per tracker: join, the initial-sync handshake, beats, disk usage reports, and the
//! change lists the leader sends back (cluster-protocol.md 1.3). Also the startup requests
//! GET_MY_IP and PARAMETER_REQ.

use crate::service::{Storage, TrackerParams};
use crate::store::{path_usage, InitFlag};
use fdfs_common::codec::Message;
use fdfs_common::config::HostPort;
use fdfs_common::net::{self, NetError, NetResult};
use fdfs_common::proto::cluster::{
    encode_disk_usage, Brief, ChangeList, GetMyIpReq, GroupStorageReq, JoinReply, JoinReq,
    ReportStatusReq, SyncSource,
};
use fdfs_common::proto::{cmd, errno, status, VERSION};
use parking_lot::Mutex;
use std::net::{IpAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shared by the reporter threads.
pub struct Reporter {
    pub storage: Arc<Storage>,
    pub init_flag: Mutex<InitFlag>,
    pub init_flag_path: PathBuf,
    pub up_time: i64,
    pub stop: Arc<AtomicBool>,
    /// the group's storages as the leader last listed them
    pub peers: Mutex<Vec<Brief>>,
    /// trackers that accepted our JOIN
    pub joined: Mutex<Vec<String>>,
    /// new members we already answered as their sync source
    pub synced_new_members: Mutex<Vec<String>>,
}

impl Reporter {
    fn bind_ip(&self) -> Option<IpAddr> {
        let cfg = &self.storage.cfg;
        if cfg.client_bind && !cfg.server.bind_addr.is_empty() {
            cfg.server.bind_addr.parse().ok()
        } else {
            None
        }
    }

    pub fn connect(&self, t: &HostPort) -> std::io::Result<TcpStream> {
        let c = &self.storage.cfg.server;
        net::connect(
            &t.host,
            t.port,
            self.bind_ip(),
            Duration::from_secs(c.connect_timeout),
            Duration::from_secs(c.network_timeout),
        )
    }

    fn save_init_flag(&self) {
        let text = self.init_flag.lock().to_text();
        if let Err(e) = crate::store::write_atomic(&self.init_flag_path, text.as_bytes()) {
            log::error!("write {} fail: {e}", self.init_flag_path.display());
        }
    }

    fn sleep_unless_stopped(&self, d: Duration) {
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
            .peers
            .lock()
            .iter()
            .find(|b| b.ip == *self.storage.my_ip.read())
            .map(|b| b.status as i8)
            .unwrap_or(if cfg.tracker_servers.len() == 1 {
                0
            } else {
                -1
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
            storage_id: String::new(),
            current_tracker_ip: stream
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_else(|_| tracker.host.clone()),
            trackers: cfg.tracker_servers.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn session(&self, mut stream: TcpStream, tracker: &HostPort) -> NetResult<()> {
        let join = self.join_req(&stream, tracker);
        let reply = JoinReply::from_bytes(&net::request(
            &mut stream,
            cmd::STORAGE_JOIN,
            &join.to_bytes(),
        )?)
        .map_err(|e| NetError::Protocol(e.to_string()))?;
        log::info!(
            "tracker server {tracker}, join ok, my status: {}",
            status::name(reply.status)
        );
        self.joined.lock().push(tracker.to_string());
        if !self.init_flag.lock().sync_old_done {
            let body = net::request(&mut stream, cmd::STORAGE_SYNC_DEST_REQ, &[])?;
            {
                let mut f = self.init_flag.lock();
                if !body.is_empty() {
                    let src = SyncSource::from_bytes(&body)
                        .map_err(|e| NetError::Protocol(e.to_string()))?;
                    f.sync_src_server = src.src_id;
                    f.sync_until_timestamp = src.until_timestamp;
                }
                f.sync_old_done = true;
            }
            self.save_init_flag();
        }
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
        while !self.stop.load(Ordering::Relaxed) {
            if last_beat.is_none_or(|t| t.elapsed() >= hb) {
                let v = self.storage.stats_version.load(Ordering::Relaxed);
                let body = if v != sent_stats_version {
                    sent_stats_version = v;
                    let mut s = *self.storage.stats.lock();
                    s.counters[fdfs_common::proto::cluster::stat::LAST_SYNCED_TIMESTAMP] = 0;
                    s.counters[fdfs_common::proto::cluster::stat::LAST_HEART_BEAT_TIME] = 0;
                    s.to_bytes()
                } else {
                    Vec::new()
                };
                let reply = net::request(&mut stream, cmd::STORAGE_BEAT, &body)?;
                self.apply_change_list(&reply);
                if self.storage.params.read().storage_ip_changed_auto_adjust {
                    // upstream polls the changelog after each beat; peers' deletions matter to sync
                    net::request(&mut stream, cmd::STORAGE_CHANGELOG_REQ, &[])?;
                }
                last_beat = Some(Instant::now());
            }
            if last_df.is_none_or(|t| t.elapsed() >= df) {
                let usage: Vec<_> = self
                    .storage
                    .store
                    .paths
                    .iter()
                    .map(|p| path_usage(p))
                    .collect();
                let reply = net::request(
                    &mut stream,
                    cmd::STORAGE_REPORT_DISK_USAGE,
                    &encode_disk_usage(&usage),
                )?;
                self.apply_change_list(&reply);
                last_df = Some(Instant::now());
            }
            self.sleep_unless_stopped(Duration::from_secs(1).min(hb));
        }
        net::quit(stream);
        Ok(())
    }

    fn apply_change_list(&self, body: &[u8]) {
        match ChangeList::from_bytes(body) {
            Ok(cl) => {
                if let Some(list) = cl.group_servers {
                    let me = self.storage.my_ip.read().clone();
                    for b in list
                        .iter()
                        .filter(|b| b.status == status::WAIT_SYNC && b.id != me)
                    {
                        self.serve_new_member(b);
                    }
                    *self.peers.lock() = list;
                }
            }
            Err(e) => log::warn!("invalid change list from tracker: {e}"),
        }
    }

    /// A new member waits for its sync source to copy the old files. When that source is us and
    /// our binlog is empty there is nothing to copy, so it can be told it is complete at once.
    fn serve_new_member(&self, peer: &Brief) {
        if self.synced_new_members.lock().contains(&peer.id) {
            return;
        }
        let req = GroupStorageReq {
            group: self.storage.group.clone(),
            storage_id: peer.id.clone(),
        }
        .to_bytes();
        let trackers = self.storage.cfg.tracker_servers.clone();
        let Some(src) = trackers.iter().find_map(|t| {
            let mut s = self.connect(t).ok()?;
            let r = net::request(&mut s, cmd::STORAGE_SYNC_SRC_REQ, &req).ok()?;
            net::quit(s);
            Some(SyncSource::from_bytes(&r).unwrap_or_default())
        }) else {
            return;
        };
        if src.src_id != *self.storage.my_ip.read() {
            return;
        }
        if !self.storage.binlog.is_empty() {
            log::warn!(
                "storage {} needs the old files from us; full sync is not implemented yet",
                peer.id
            );
            self.synced_new_members.lock().push(peer.id.clone());
            return;
        }
        for st in [status::SYNCING, status::OFFLINE] {
            let brief = Brief {
                status: st,
                port: 0,
                id: peer.id.clone(),
                ip: peer.ip.clone(),
            };
            let body = ReportStatusReq {
                group: self.storage.group.clone(),
                brief,
            }
            .to_bytes();
            for t in &trackers {
                if let Ok(mut s) = self.connect(t) {
                    if let Err(e) = net::request(&mut s, cmd::STORAGE_REPORT_STATUS, &body) {
                        log::error!(
                            "report status of {} to tracker server {t} fail: {e}",
                            peer.id
                        );
                    }
                    net::quit(s);
                }
            }
        }
        log::info!(
            "storage {}: nothing to copy from us, initial sync done",
            peer.id
        );
        self.synced_new_members.lock().push(peer.id.clone());
    }
}

/// Ask the trackers for our own IP (as they see us) until one answers.
pub fn get_my_ip(rep: &Reporter) -> Option<String> {
    let cfg = &rep.storage.cfg;
    let req = GetMyIpReq {
        group: rep.storage.group.clone(),
        port: cfg.server.port as i32,
    }
    .to_bytes();
    while !rep.stop.load(Ordering::Relaxed) {
        for t in &cfg.tracker_servers {
            match rep.connect(t) {
                Ok(mut s) => match net::request(&mut s, cmd::STORAGE_GET_MY_IP, &req) {
                    Ok(ip) => {
                        net::quit(s);
                        return Some(String::from_utf8_lossy(&ip).into_owned());
                    }
                    Err(e) => log::error!("get my ip from tracker server {t} fail: {e}"),
                },
                Err(e) => log::error!("connect to tracker server {t} fail, error info: {e}"),
            }
        }
        rep.sleep_unless_stopped(Duration::from_secs(1));
    }
    None
}

/// PARAMETER_REQ from the first tracker that answers.
pub fn fetch_parameters(rep: &Reporter) -> Option<TrackerParams> {
    while !rep.stop.load(Ordering::Relaxed) {
        for t in &rep.storage.cfg.tracker_servers {
            if let Ok(mut s) = rep.connect(t) {
                match net::request(&mut s, cmd::STORAGE_PARAMETER_REQ, &[]) {
                    Ok(text) if text.len() < 1024 => {
                        net::quit(s);
                        let text = String::from_utf8_lossy(&text).into_owned();
                        log::info!("{}", text.trim_end().replace('\n', ", "));
                        return Some(TrackerParams::parse(&text));
                    }
                    Ok(_) => log::error!("parameter reply from tracker server {t} too long"),
                    Err(NetError::Status(s)) if s == errno::EINVAL => {}
                    Err(e) => log::error!("get parameters from tracker server {t} fail: {e}"),
                }
            }
        }
        rep.sleep_unless_stopped(Duration::from_secs(1));
    }
    None
}
