//! The tracker cluster (cluster-protocol.md section 4): trackers learn each other from the
//! storages' JOIN lists, elect a leader with GET_STATUS / NOTIFY_NEXT_LEADER /
//! COMMIT_NEXT_LEADER, and followers keep a JOIN_LEADER connection to it and ping it every
//! second, re-electing after three failed pings. Outgoing connections bind to `bind_addr` so
//! that several trackers on one host's 127.x addresses recognise each other.

use crate::service::Tracker;
use fdfs_common::codec::{Reader, Writer};
use fdfs_common::config::parse_host_port;
use fdfs_common::net::{self, NetError};
use fdfs_common::proto::{cmd, errno, Refusal, VERSION, VERSION_SIZE};
use std::net::{IpAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Who leads, as this tracker knows it.
#[derive(Debug, Default)]
pub struct Relationship {
    /// `ip:port` of the leader
    pub leader: Option<String>,
    /// announced by NOTIFY_NEXT_LEADER, waiting for its COMMIT
    pub next_leader: Option<String>,
    /// bumped whenever the leader changes: storages get the leader brief again
    pub leader_change: u64,
    /// followers seen by this leader: `ip:port` -> (up_time, version, connections, last ping)
    pub followers: std::collections::BTreeMap<String, FollowerInfo>,
}

#[derive(Debug, Clone, Default)]
pub struct FollowerInfo {
    pub up_time: i64,
    pub version: String,
    pub connections: [i32; 3],
    pub last_heartbeat: i64,
}

/// A tracker's running status (TRACKER_GET_STATUS reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningStatus {
    pub is_leader: bool,
    pub running_time: i64,
    pub restart_interval: i64,
}

impl RunningStatus {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(17);
        out.put_u8(self.is_leader as u8);
        out.put_i64(self.running_time);
        out.put_i64(self.restart_interval);
        out
    }

    pub fn from_bytes(b: &[u8]) -> Option<RunningStatus> {
        let mut r = Reader::new(b);
        let s = RunningStatus {
            is_leader: r.u8("is_leader").ok()? != 0,
            running_time: r.i64("running_time").ok()?,
            restart_interval: r.i64("restart_interval").ok()?,
        };
        r.finish().ok()?;
        Some(s)
    }
}

impl Tracker {
    /// This tracker's entry of the tracker list (`ip:port`), once it can tell.
    pub fn me(&self) -> Option<String> {
        let st = self.state.lock();
        self.me_in(&st)
    }

    pub fn am_leader(&self) -> bool {
        let me = self.me();
        me.is_some() && self.relation.lock().leader == me
    }

    pub fn running_status(&self) -> RunningStatus {
        let now = fdfs_common::now();
        RunningStatus {
            is_leader: self.am_leader(),
            running_time: (now - self.up_time) / 300 * 300,
            restart_interval: self.restart_interval / 300 * 300,
        }
    }

    fn set_leader(&self, leader: Option<String>) {
        let mut r = self.relation.lock();
        if r.leader != leader {
            log::info!("tracker leader: {}", leader.as_deref().unwrap_or("none"));
            r.leader = leader;
            r.leader_change += 1;
            r.followers.clear();
        }
    }

    pub(crate) fn connect_tracker(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> std::io::Result<TcpStream> {
        let hp = parse_host_port(addr, 22122).map_err(std::io::Error::other)?;
        let bind: Option<IpAddr> = self.cfg.server.bind_addr.parse().ok();
        net::connect(&hp.host, hp.port, bind, timeout, timeout)
    }

    pub(crate) fn request_tracker(
        &self,
        addr: &str,
        command: u8,
        body: &[u8],
    ) -> Result<Vec<u8>, NetError> {
        let mut s = self.connect_tracker(
            addr,
            Duration::from_secs(self.cfg.server.connect_timeout.min(5)),
        )?;
        let r = net::request(&mut s, command, body);
        net::quit(s);
        r
    }

    /// One election round (4.3). Returns false when it failed and should back off.
    fn elect(&self) -> bool {
        let Some(me) = self.me() else { return true };
        let trackers = self.state.lock().trackers.clone();
        let mut candidates: Vec<(RunningStatus, String)> = Vec::new();
        for t in &trackers {
            if *t == me {
                candidates.push((self.running_status(), t.clone()));
                continue;
            }
            if let Ok(b) = self.request_tracker(t, cmd::TRACKER_GET_STATUS, &[]) {
                if let Some(st) = RunningStatus::from_bytes(&b) {
                    candidates.push((st, t.clone()));
                }
            }
        }
        let key = |(st, addr): &(RunningStatus, String)| {
            let hp = parse_host_port(addr, 22122).ok();
            (
                st.is_leader,
                st.running_time,
                std::cmp::Reverse(st.restart_interval),
                hp.as_ref().map(|h| h.host.clone()).unwrap_or_default(),
                hp.map(|h| h.port).unwrap_or(0),
            )
        };
        let Some(best) = candidates.iter().max_by_key(|c| key(c)).cloned() else {
            return false;
        };
        if best.1 != me {
            if best.0.is_leader {
                self.set_leader(Some(best.1));
            }
            return true; // otherwise wait for its announcement
        }
        // two-phase announcement to every other tracker
        for command in [
            cmd::TRACKER_NOTIFY_NEXT_LEADER,
            cmd::TRACKER_COMMIT_NEXT_LEADER,
        ] {
            for t in trackers.iter().filter(|t| **t != me) {
                match self.request_tracker(t, command, me.as_bytes()) {
                    Ok(_) => {}
                    Err(NetError::Io(_)) => {} // unreachable trackers do not stop an election
                    Err(e) => {
                        log::warn!("announce leader {me} to tracker {t} fail: {e}");
                        return false;
                    }
                }
            }
        }
        log::info!("I am the new tracker leader {me}");
        self.set_leader(Some(me));
        true
    }

    /// Run the relationship loop until `stop`.
    pub fn relationship_loop(&self, stop: &std::sync::atomic::AtomicBool) {
        let mut follower: Option<TcpStream> = None;
        let mut ping_failures = 0u32;
        let mut next_try = Instant::now();
        let mut first_ping = true;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            if Instant::now() < next_try {
                continue;
            }
            next_try = Instant::now() + Duration::from_secs(1);
            let leader = self.relation.lock().leader.clone();
            let me = self.me();
            match leader {
                None => {
                    follower = None;
                    if !self.elect() {
                        next_try = Instant::now()
                            + Duration::from_millis(1000 + (fdfs_common::now() % 4) as u64 * 1000);
                    }
                }
                Some(l) if Some(&l) == me.as_ref() => follower = None,
                Some(l) => {
                    if follower.is_none() {
                        first_ping = true;
                        follower = self.join_leader(&l).ok();
                    }
                    let ok = follower
                        .as_mut()
                        .is_some_and(|s| self.ping_leader(s, first_ping));
                    first_ping = false;
                    if ok {
                        ping_failures = 0;
                    } else {
                        follower = None;
                        ping_failures += 1;
                        next_try = Instant::now() + Duration::from_secs(1 << ping_failures.min(2));
                        if ping_failures >= 3 {
                            log::warn!("tracker leader {l} lost after {ping_failures} failed pings, reselect");
                            ping_failures = 0;
                            self.set_leader(None);
                        }
                    }
                }
            }
        }
    }

    fn join_leader(&self, leader: &str) -> std::io::Result<TcpStream> {
        let mut s = self.connect_tracker(
            leader,
            Duration::from_secs(self.cfg.server.connect_timeout.min(5)),
        )?;
        let mut body = Vec::with_capacity(24);
        body.put_i64(self.up_time);
        body.put_fixed_str(VERSION, VERSION_SIZE);
        body.put_i64(self.cfg.server.port as i64);
        net::request(&mut s, cmd::TRACKER_JOIN_LEADER, &body)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(s)
    }

    fn ping_leader(&self, s: &mut TcpStream, _first: bool) -> bool {
        let counts = self.conn_counts();
        let mut body = Vec::with_capacity(12);
        for c in counts {
            body.put_i32(c);
        }
        net::request(s, cmd::TRACKER_PING_LEADER, &body).is_ok()
    }

    pub fn conn_counts(&self) -> [i32; 3] {
        let cs = self.conn_stats.get();
        let c = |f: fn(&fdfs_common::server::ConnStats) -> &std::sync::atomic::AtomicI32| {
            cs.map(|s| f(s).load(Ordering::Relaxed)).unwrap_or(0)
        };
        [c(|s| &s.alloc), c(|s| &s.current), c(|s| &s.max)]
    }

    // ---- tracker -> tracker commands (server side) -----------------------------------------

    fn named_tracker(&self, body: &[u8]) -> Result<String, u8> {
        if body.is_empty() || body.len() > 52 {
            return Err(errno::EINVAL);
        }
        let text = String::from_utf8_lossy(body).into_owned();
        let hp = parse_host_port(&text, 22122).map_err(|_| errno::EINVAL)?;
        let trackers = self.state.lock().trackers.clone();
        trackers
            .into_iter()
            .find(|t| parse_host_port(t, 22122).is_ok_and(|x| x == hp))
            .ok_or(errno::ENOENT)
    }

    pub fn tracker_notify_next_leader(&self, body: &[u8]) -> Result<Vec<u8>, Refusal> {
        let named = self.named_tracker(body)?;
        if self.am_leader() && Some(&named) != self.me().as_ref() {
            log::warn!("tracker {named} claims leadership while I lead: giving it up");
            self.set_leader(None);
            return Err(errno::EINVAL.into());
        }
        self.relation.lock().next_leader = Some(named);
        Ok(Vec::new())
    }

    pub fn tracker_commit_next_leader(&self, body: &[u8]) -> Result<Vec<u8>, Refusal> {
        let named = self.named_tracker(body)?;
        if self.relation.lock().next_leader.as_ref() != Some(&named) {
            return Err(errno::EINVAL.into());
        }
        self.set_leader(Some(named));
        Ok(Vec::new())
    }

    pub fn tracker_notify_reselect_leader(&self, body: &[u8]) -> Result<Vec<u8>, Refusal> {
        if !body.is_empty() {
            return Err(errno::EINVAL.into());
        }
        if !self.am_leader() {
            return Err(errno::EOPNOTSUPP.into());
        }
        self.set_leader(None);
        Ok(Vec::new())
    }

    /// JOIN_LEADER: returns the follower's `ip:port` for the connection to remember.
    pub fn tracker_join_leader(&self, peer_ip: &str, body: &[u8]) -> Result<String, Refusal> {
        if body.len() != 24 {
            return Err(errno::EINVAL.into());
        }
        if !self.am_leader() {
            return Err(errno::EOPNOTSUPP.into());
        }
        let mut r = Reader::new(body);
        let up_time = r.i64("up_time").map_err(|_| errno::EINVAL)?;
        let version = r
            .fixed_str(VERSION_SIZE, "version")
            .map_err(|_| errno::EINVAL)?;
        let port = r.i64("server_port").map_err(|_| errno::EINVAL)?;
        let addr = self.named_tracker(format!("{peer_ip}:{port}").as_bytes())?;
        self.relation.lock().followers.insert(
            addr.clone(),
            FollowerInfo {
                up_time,
                version,
                last_heartbeat: fdfs_common::now(),
                ..Default::default()
            },
        );
        Ok(addr)
    }

    /// PING_LEADER from a joined follower; the first one on a connection gets the groups'
    /// trunk servers (none: trunk files are not supported).
    pub fn tracker_ping_leader(
        &self,
        follower: Option<&str>,
        first: bool,
        body: &[u8],
    ) -> Result<Vec<u8>, Refusal> {
        if !self.am_leader() {
            return Err(errno::EOPNOTSUPP.into());
        }
        let Some(addr) = follower else {
            return Err(errno::EINVAL.into());
        };
        if body.len() != 12 {
            return Err(errno::EINVAL.into());
        }
        let mut r = Reader::new(body);
        let counts = [
            r.i32("alloc").unwrap_or(0),
            r.i32("current").unwrap_or(0),
            r.i32("max").unwrap_or(0),
        ];
        if let Some(f) = self.relation.lock().followers.get_mut(addr) {
            f.connections = counts;
            f.last_heartbeat = fdfs_common::now();
        }
        if !first {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for g in self.state.lock().groups.values() {
            out.put_fixed_str(&g.name, 16);
            out.put_fixed_str(&g.trunk_server, 16);
        }
        Ok(out)
    }
}
