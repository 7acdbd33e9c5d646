//! The tracker cluster (docs/protocol/cluster-protocol.md section 4): trackers learn each other
//! from the storages' JOIN lists, elect a leader with GET_STATUS / NOTIFY_NEXT_LEADER /
//! COMMIT_NEXT_LEADER, and followers keep a JOIN_LEADER connection to it and ping it every second,
//! re-electing after three failed pings. Outgoing connections bind to `bind_addr` so that several
//! trackers on one host's 127.x addresses recognise each other.

use crate::tracker::{FollowerInfo, Tracker};
use fdfs_common::codec::Message;
use fdfs_common::codec::Reader;
use fdfs_common::config::parse_host_port;
use fdfs_common::net::{self, NetError};
use fdfs_common::proto::leader::{
    JoinLeaderReq, LeaderAddr, PingLeaderReq, RunningStatus, TrunkServers,
};
use fdfs_common::proto::{cmd, errno, VERSION};
use fdfs_common::refusal::Refusal;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a leader goes on without word from a majority of the trackers (followers ping
/// every second; one that lost the leader re-elects after three failed pings).
const STEP_DOWN_AFTER: Duration = Duration::from_secs(6);

/// Whether `reached` trackers (this one counted) are enough to lead `known`: a strict majority
/// with three or more; with one or two, any (two cannot tell a partition from a crash).
fn has_majority(reached: usize, known: usize) -> bool {
    known < 3 || reached * 2 > known
}

impl Tracker {
    /// One election round (4.3). Returns false when it failed and should back off.
    fn elect(&self) -> bool {
        let Some(me) = self.me() else { return true };
        let trackers = self.state.lock().trackers.clone();
        // asked all at once: a tracker behind a dropped link costs one connect timeout, not
        // one per tracker
        let mut candidates: Vec<(RunningStatus, String)> = std::thread::scope(|scope| {
            let asks: Vec<_> = trackers
                .iter()
                .filter(|t| **t != me)
                .map(|t| {
                    scope.spawn(move || {
                        let b = self.request_tracker(t, cmd::TRACKER_GET_STATUS, &[]).ok()?;
                        Some((RunningStatus::from_bytes(&b).ok()?, t.clone()))
                    })
                })
                .collect();
            asks.into_iter()
                .filter_map(|a| a.join().ok().flatten())
                .collect()
        });
        candidates.push((self.running_status(), me.clone()));
        // with three trackers or more, a leader is elected only by a side that reaches a
        // majority of them (itself counted): the other side of a partition elects none, where
        // upstream's would act as a second leader. Two trackers cannot tell a partition from a
        // crash: there the survivor elects itself, as upstream's does.
        if !has_majority(candidates.len(), trackers.len()) {
            log::warn!(
                "only {} of {} trackers answer: no leader elected on this side of the network",
                candidates.len(),
                trackers.len()
            );
            return false;
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
        let body = LeaderAddr { addr: me.clone() }.to_bytes();
        for command in [
            cmd::TRACKER_NOTIFY_NEXT_LEADER,
            cmd::TRACKER_COMMIT_NEXT_LEADER,
        ] {
            let refused = std::thread::scope(|scope| {
                let sends: Vec<_> = trackers
                    .iter()
                    .filter(|t| **t != me)
                    .map(|t| (t, scope.spawn(|| self.request_tracker(t, command, &body))))
                    .collect();
                sends.into_iter().any(|(t, send)| match send.join() {
                    Ok(Ok(_)) | Ok(Err(NetError::Io(_))) => false, // unreachable: no veto
                    Ok(Err(e)) => {
                        log::warn!("announce leader {me} to tracker {t} fail: {e}");
                        true
                    }
                    Err(_) => true,
                })
            });
            if refused {
                return false;
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
        // while this tracker leads: when it last heard from a majority of the trackers
        let mut leading_with_majority: Option<Instant> = None;
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
                    leading_with_majority = None;
                    if !self.elect() {
                        next_try = Instant::now()
                            + Duration::from_millis(1000 + (fdfs_common::now() % 4) as u64 * 1000);
                    }
                }
                Some(l) if Some(&l) == me.as_ref() => {
                    follower = None;
                    let since = *leading_with_majority.get_or_insert_with(Instant::now);
                    if self.followers_in_touch() {
                        leading_with_majority = Some(Instant::now());
                    } else if since.elapsed() > STEP_DOWN_AFTER {
                        log::warn!(
                            "tracker leader {l}: no word from a majority of the trackers for {} s: \
                             stepping down (a partition: the other side elects the leader)",
                            STEP_DOWN_AFTER.as_secs()
                        );
                        self.set_leader(None);
                        leading_with_majority = None;
                    }
                }
                Some(l) => {
                    let mut refused = false;
                    if follower.is_none() {
                        first_ping = true;
                        follower = match self.join_leader(&l) {
                            Ok(s) => Some(s),
                            Err(e) => {
                                refused = e.kind() == std::io::ErrorKind::ConnectionRefused;
                                None
                            }
                        };
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
                        // nothing listens at the leader's address: its process is gone, so
                        // the back-off that rides out a slow or busy leader only delays the
                        // failover
                        let back_off = if refused { 0 } else { ping_failures.min(2) };
                        next_try = Instant::now() + Duration::from_secs(1 << back_off);
                        if ping_failures >= 3 {
                            log::warn!("tracker leader {l} lost after {ping_failures} failed pings, reselect");
                            ping_failures = 0;
                            self.set_leader(None);
                            // elect now: the storages have been without a leader for the three
                            // pings already (waiting out the back-off added 4 s to a failover)
                            next_try = Instant::now();
                        }
                    }
                }
            }
        }
    }

    /// Whether this leader heard a majority of the known trackers (itself counted) ping it in
    /// the last few seconds; always with fewer than three trackers.
    fn followers_in_touch(&self) -> bool {
        let known = self.state.lock().trackers.len();
        let recent = fdfs_common::now() - 3;
        let pinging = self
            .relation
            .lock()
            .followers
            .values()
            .filter(|f| f.last_heartbeat >= recent)
            .count();
        has_majority(pinging + 1, known)
    }

    fn join_leader(&self, leader: &str) -> std::io::Result<TcpStream> {
        let mut s = self.connect_tracker(
            leader,
            Duration::from_secs(self.cfg.server.connect_timeout.min(5)),
        )?;
        let body = JoinLeaderReq {
            up_time: self.up_time,
            version: VERSION.into(),
            server_port: self.cfg.server.port as i64,
        }
        .to_bytes();
        net::request(&mut s, cmd::TRACKER_JOIN_LEADER, &body)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(s)
    }

    fn ping_leader(&self, s: &mut TcpStream, _first: bool) -> bool {
        let body = PingLeaderReq {
            connections: self.conn_counts(),
        }
        .to_bytes();
        match net::request(s, cmd::TRACKER_PING_LEADER, &body) {
            Ok(reply) => {
                // the leader's trunk servers, when they changed since this link's last ping
                if let Ok(list) = TrunkServers::from_bytes(&reply) {
                    let mut st = self.state.lock();
                    for (group, id) in list.groups {
                        if let Some(g) = st.groups.get_mut(&group) {
                            if g.trunk_server != id {
                                g.trunk_server = id.clone();
                                if !id.is_empty() {
                                    g.last_trunk_server = id;
                                }
                                st.dirty = true;
                            }
                        }
                    }
                }
                true
            }
            Err(_) => false,
        }
    }

    // ---- tracker -> tracker commands (server side) -----------------------------------------

    /// The entry of my tracker list that `addr` names.
    fn named_tracker(&self, addr: &str) -> Result<String, u8> {
        let hp = parse_host_port(addr, 22122).map_err(|_| errno::EINVAL)?;
        let trackers = self.state.lock().trackers.clone();
        trackers
            .into_iter()
            .find(|t| parse_host_port(t, 22122).is_ok_and(|x| x == hp))
            .ok_or(errno::ENOENT)
    }

    pub fn tracker_notify_next_leader(&self, body: &[u8]) -> Result<Vec<u8>, Refusal> {
        let named = self.named_tracker(&LeaderAddr::from_bytes(body)?.addr)?;
        if self.am_leader() && Some(&named) != self.me().as_ref() {
            log::warn!("tracker {named} claims leadership while I lead: giving it up");
            self.set_leader(None);
            return Err(errno::EINVAL.into());
        }
        self.relation.lock().next_leader = Some(named);
        Ok(Vec::new())
    }

    pub fn tracker_commit_next_leader(&self, body: &[u8]) -> Result<Vec<u8>, Refusal> {
        let named = self.named_tracker(&LeaderAddr::from_bytes(body)?.addr)?;
        if self.relation.lock().next_leader.as_ref() != Some(&named) {
            return Err(Refusal::invalid(
                "leader",
                format!("{named} is not the next leader"),
            ));
        }
        self.set_leader(Some(named));
        Ok(Vec::new())
    }

    pub fn tracker_notify_reselect_leader(&self, body: &[u8]) -> Result<Vec<u8>, Refusal> {
        Reader::new(body).finish()?;
        if !self.am_leader() {
            return Err(errno::EOPNOTSUPP.into());
        }
        self.set_leader(None);
        Ok(Vec::new())
    }

    /// JOIN_LEADER: returns the follower's `ip:port` for the connection to remember.
    pub fn tracker_join_leader(&self, peer_ip: &str, body: &[u8]) -> Result<String, Refusal> {
        let req = JoinLeaderReq::from_bytes(body)?;
        if !self.am_leader() {
            return Err(errno::EOPNOTSUPP.into());
        }
        let addr = self.named_tracker(&format!("{peer_ip}:{}", req.server_port))?;
        self.relation.lock().followers.insert(
            addr.clone(),
            FollowerInfo {
                up_time: req.up_time,
                version: req.version,
                last_heartbeat: fdfs_common::now(),
                ..Default::default()
            },
        );
        Ok(addr)
    }

    /// PING_LEADER from a joined follower; the first one on a connection, and the first after any
    /// trunk server change, gets every group's trunk server.
    pub fn tracker_ping_leader(
        &self,
        follower: Option<&str>,
        tell_trunks: bool,
        body: &[u8],
    ) -> Result<Vec<u8>, Refusal> {
        if !self.am_leader() {
            return Err(errno::EOPNOTSUPP.into());
        }
        let Some(addr) = follower else {
            return Err(Refusal::invalid(
                "follower",
                "the connection did not JOIN_LEADER",
            ));
        };
        let req = PingLeaderReq::from_bytes(body)?;
        if let Some(f) = self.relation.lock().followers.get_mut(addr) {
            f.connections = req.connections;
            f.last_heartbeat = fdfs_common::now();
        }
        if !tell_trunks {
            return Ok(Vec::new());
        }
        let st = self.state.lock();
        Ok(TrunkServers {
            groups: st
                .groups
                .values()
                .map(|g| (g.name.clone(), g.trunk_server.clone()))
                .collect(),
        }
        .to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::has_majority;

    #[test]
    fn a_leader_needs_a_strict_majority_of_three_or_more_trackers() {
        assert!(has_majority(1, 1));
        assert!(has_majority(1, 2), "two trackers: a survivor leads");
        assert!(!has_majority(1, 3));
        assert!(has_majority(2, 3));
        assert!(!has_majority(2, 4));
        assert!(has_majority(3, 5));
    }
}
