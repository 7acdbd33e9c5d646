//! Storages joining and staying in their group (docs/protocol/cluster-protocol.md 2.1-2.6,
//! 2.12): STORAGE_JOIN, BEAT, REPORT_DISK_USAGE, SYNC_REPORT, REPLICA_CHG, CHANGE_STATUS,
//! REPORT_STATUS, and the change list every answer carries.

use super::{Joined, Reply, Session};
use crate::state::{Group, State, StorageServer};
use crate::tracker::Tracker;
use fdfs_common::codec::Message;
use fdfs_common::proto::cluster::{
    decode_disk_usage, decode_sync_report, stat, Brief, ChangeList, ChangeStatusReq, JoinReply,
    JoinReq, ReportStatusReq, StatBlock,
};
use fdfs_common::proto::{errno, rw_mode, status, STORAGE_ID_MAX};
use fdfs_common::refusal::Refusal;
use fdfs_common::server::Conn;

impl Tracker {
    /// The change list for a logged-in storage (only the leader sets flags; a lone tracker is its
    /// own leader).
    fn change_list(&self, session: &mut Session, st: &mut State, j: &Joined) -> Vec<u8> {
        let mut cl = ChangeList::default();
        // only the leader tells storages about the leader and their group
        let (leader, change) = {
            let r = self.relation.lock();
            (r.leader.clone(), r.leader_change)
        };
        if leader.is_none() || leader != self.me_in(st) {
            return cl.to_bytes();
        }
        if session.leader_seen != change {
            session.leader_seen = change;
            let hp =
                fdfs_common::config::parse_host_port(leader.as_deref().unwrap_or(""), 22122).ok();
            let ip = hp.as_ref().map(|h| h.host.clone()).unwrap_or_default();
            cl.leader = Some(Brief {
                status: 0,
                port: hp.map(|h| h.port as i32).unwrap_or(0),
                id: ip.chars().take(STORAGE_ID_MAX - 1).collect(),
                ip,
            });
        }
        if let Some(g) = st.groups.get_mut(&j.group) {
            let Some(me) = g.find(&j.id) else {
                return cl.to_bytes();
            };
            if g.storages[me].group_change_seen != g.change_count {
                g.storages[me].group_change_seen = g.change_count;
                cl.group_servers =
                    Some(g.sorted().iter().map(|&i| g.storages[i].brief()).collect());
            }
            if g.storages[me].trunk_change_seen != g.trunk_change {
                if let Some(t) = g.find(&g.trunk_server) {
                    cl.trunk_server = Some(g.storages[t].brief());
                    g.storages[me].trunk_change_seen = g.trunk_change;
                }
            }
        }
        cl.to_bytes()
    }

    /// BEAT and DISK_USAGE make a storage ACTIVE unless it is still syncing in, or recovering
    /// a store path: an rfdfs storage recovers online, beating meanwhile (upstream's recover
    /// before they join), and says when it is done (CHANGE_STATUS).
    fn activate(g: &mut Group, id: &str, now: i64) {
        let mut changed = false;
        if let Some(s) = g.storage_mut(id) {
            if !matches!(
                s.status,
                status::INIT
                    | status::WAIT_SYNC
                    | status::SYNCING
                    | status::IP_CHANGED
                    | status::DELETED
                    | status::RECOVERY
            ) && s.status != status::ACTIVE
            {
                s.status = status::ACTIVE;
                if s.up_time == 0 {
                    s.up_time = now;
                }
                changed = true;
            }
            s.last_heart_beat_time = now;
        }
        if changed {
            g.bump();
        }
    }

    // ---- storage -> tracker -------------------------------------------------------------

    pub(super) fn storage_join(&self, conn: &Conn, session: &mut Session, body: &[u8]) -> Reply {
        let j = JoinReq::from_bytes(body).map_err(|e| {
            log::error!("client ip: {}, invalid join request: {e}", conn.peer_ip());
            errno::EINVAL
        })?;
        if !fdfs_common::proto::valid_group_name(&j.group)
            || j.storage_port <= 0
            || !(1..=256).contains(&j.store_path_count)
            || !(1..=256).contains(&j.subdir_count_per_path)
        {
            return Err(Refusal::invalid(
                "join",
                format!(
                    "port {}, {} store paths, {} subdirs per path",
                    j.storage_port, j.store_path_count, j.subdir_count_per_path
                ),
            ));
        }
        let peer_ip = conn.peer_ip();
        let (id, rw) = self.storage_identity(&j, &peer_ip)?;
        {
            let mut ips = self.my_ips.lock();
            for ip in [conn.local.ip().to_string(), j.current_tracker_ip.clone()] {
                if !ip.is_empty() && !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
        }
        self.bootstrap_sys_files(&j.trackers)?;
        let mut st = self.state.lock();
        for t in &j.trackers {
            if !st.trackers.contains(t) && st.trackers.len() < 16 {
                st.trackers.push(t.clone());
            }
        }
        let mut inserted_group = false;
        if !st.groups.contains_key(&j.group) {
            st.groups.insert(j.group.clone(), Group::new(&j.group));
            inserted_group = true;
        }
        let changelog_size = self.changelog.lock().size;
        let g = st.groups.get_mut(&j.group).expect("just inserted");
        // validate group consistency before touching any record
        let others: Vec<&StorageServer> = g
            .storages
            .iter()
            .filter(|s| s.id != id && s.status != status::DELETED)
            .collect();
        let mixed_ports = self.cfg.use_storage_id && self.cfg.id_type_in_filename_id;
        if g.storage_port != 0 && g.storage_port != j.storage_port {
            if mixed_ports {
                // ids tell members apart, so each may listen on its own port
                g.storage_port = -1;
            } else if others.iter().all(|s| s.port == j.storage_port) {
                g.storage_port = j.storage_port;
            } else {
                log::error!(
                    "client ip: {id}, port {} != group port {}",
                    j.storage_port,
                    g.storage_port
                );
                return Err(errno::EINVAL.into());
            }
        }
        if g.store_path_count != 0 && j.store_path_count < g.store_path_count && !others.is_empty()
        {
            return Err(Refusal::invalid(
                "store_path_count",
                format!(
                    "{} < the group's {}",
                    j.store_path_count, g.store_path_count
                ),
            ));
        }
        if g.subdir_count_per_path != 0
            && g.subdir_count_per_path != j.subdir_count_per_path
            && !others.is_empty()
        {
            return Err(Refusal::invalid(
                "subdir_count_per_path",
                format!(
                    "{} != the group's {}",
                    j.subdir_count_per_path, g.subdir_count_per_path
                ),
            ));
        }
        if g.storage_port != -1 {
            g.storage_port = j.storage_port;
        }
        g.store_path_count = g.store_path_count.max(j.store_path_count);
        g.subdir_count_per_path = j.subdir_count_per_path;
        let inserted = match g.find(&id) {
            Some(_) => false,
            None => {
                let st0 = if j.init_flag != 0 || j.status == 0 {
                    status::INIT
                } else {
                    let s = j.status;
                    if s < 0
                        || matches!(s as u8, status::DELETED | status::IP_CHANGED | status::NONE)
                        || s as u8 > status::RECOVERY
                    {
                        return Err(errno::EFAULT.into());
                    }
                    if s as u8 == status::ACTIVE {
                        status::ONLINE
                    } else {
                        s as u8
                    }
                };
                g.storages.push(StorageServer {
                    id: id.clone(),
                    status: st0,
                    rw_mode: rw,
                    changelog_offset: changelog_size,
                    ..Default::default()
                });
                true
            }
        };
        let s = g.storage_mut(&id).expect("present");
        if matches!(s.status, status::DELETED | status::IP_CHANGED) {
            s.status = status::INIT;
            s.changelog_offset = changelog_size;
        }
        if s.ip != peer_ip && !s.ip.is_empty() {
            // with server ids the identity survives an address change: serve from the new one
            log::info!(
                "storage server {}::{id} address changed from {} to {peer_ip}",
                j.group,
                s.ip
            );
        }
        s.ip = peer_ip;
        s.rw_mode = rw;
        s.port = j.storage_port;
        s.store_path_count = j.store_path_count;
        s.subdir_count_per_path = j.subdir_count_per_path;
        s.upload_priority = j.upload_priority;
        s.join_time = j.join_time;
        s.up_time = j.up_time;
        s.version = j.version.clone();
        if matches!(s.status, status::OFFLINE | status::RECOVERY) {
            s.status = status::ONLINE;
        }
        s.group_change_seen = 0;
        s.join_generation += 1;
        s.advertise.clear();
        let reply = JoinReply {
            status: s.status,
            src_id: s.sync_src_id.clone(),
        };
        let generation = s.join_generation;
        g.bump();
        session.joined = Some(Joined {
            group: j.group.clone(),
            id: id.clone(),
            generation,
        });
        session.leader_seen = 0;
        if inserted || inserted_group {
            log::info!(
                "storage server {}::{id}:{} joined, status: {}",
                j.group,
                j.storage_port,
                status::name(reply.status)
            );
            st.dirty = true;
        } else {
            st.dirty = true;
        }
        Ok(reply.to_bytes())
    }

    /// Who a joining storage is (docs/protocol/cluster-protocol.md 2.1 and 7.2): its IP, or
    /// with `use_storage_id` the id it claims (when trusted) or the id listed for its address.
    fn storage_identity(&self, j: &JoinReq, peer_ip: &str) -> Result<(String, u8), u8> {
        if !self.cfg.use_storage_id {
            return Ok((peer_ip.to_string(), rw_mode::BOTH));
        }
        let ids = &self.cfg.storage_ids;
        let entry = if self.cfg.trust_storage_server_id && !j.storage_id.is_empty() {
            let e = ids.by_id(&j.storage_id).ok_or_else(|| {
                log::error!(
                    "storage id: {} not exist in storage ids, group_name: {}, storage ip: {peer_ip}",
                    j.storage_id,
                    j.group
                );
                errno::ENOENT
            })?;
            if e.group != j.group {
                log::error!(
                    "storage id: {} belongs to group {}, not to the reported group {}",
                    e.id,
                    e.group,
                    j.group
                );
                return Err(errno::EINVAL);
            }
            e
        } else {
            let port = u16::try_from(j.storage_port).map_err(|_| errno::EINVAL)?;
            ids.by_group_ip_port(&j.group, peer_ip, port)
                .ok_or_else(|| {
                    log::error!(
                        "group_name: {}, storage {peer_ip}:{port} not exist in storage ids",
                        j.group
                    );
                    errno::ENOENT
                })?
        };
        Ok((entry.id.clone(), entry.rw_mode))
    }

    pub(super) fn storage_beat(&self, session: &mut Session, body: &[u8]) -> Reply {
        let j = self.require_login(session)?.clone();
        let stat_block = match body.len() {
            0 => None,
            StatBlock::LEN => Some(StatBlock::from_bytes(body)?),
            n => {
                return Err(Refusal::invalid(
                    "statistics",
                    format!("{n} bytes, not 0 or {}", StatBlock::LEN),
                ))
            }
        };
        let now = fdfs_common::now();
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&j.group).ok_or(errno::ENOENT)?;
        if let (Some(b), Some(s)) = (stat_block, g.storage_mut(&j.id)) {
            let keep = (
                s.stat.counters[stat::LAST_SYNCED_TIMESTAMP],
                s.stat.counters[stat::LAST_HEART_BEAT_TIME],
            );
            s.stat = b;
            s.stat.counters[stat::LAST_SYNCED_TIMESTAMP] = keep.0;
            s.stat.counters[stat::LAST_HEART_BEAT_TIME] = keep.1;
        }
        Self::activate(g, &j.id, now);
        if stat_block.is_some() {
            // the statistics are saved every 1000 beats, as upstream does, but no more often
            // than once per round of beats: each save writes every storage's record, so with
            // thousands of storages saving every 1000 beats would cost O(storages) per beat
            if st.beats_until_save == 0 {
                // a new round, counted once rather than at every beat
                st.beats_until_save = st.storage_count().max(1000) as u64;
            }
            st.beats_until_save -= 1;
            if st.beats_until_save == 0 {
                st.dirty = true;
            }
        }
        Ok(self.change_list(session, &mut st, &j))
    }

    pub(super) fn storage_report_disk_usage(&self, session: &mut Session, body: &[u8]) -> Reply {
        let j = self.require_login(session)?.clone();
        let paths = decode_disk_usage(body)?;
        let now = fdfs_common::now();
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&j.group).ok_or(errno::ENOENT)?;
        if paths.len() as i64 != g.store_path_count {
            return Err(Refusal::invalid(
                "store paths",
                format!(
                    "{} reported, the group has {}",
                    paths.len(),
                    g.store_path_count
                ),
            ));
        }
        let store_path_mode = self.cfg.store_path;
        if let Some(s) = g.storage_mut(&j.id) {
            s.total_mb = paths.iter().map(|p| p.total_mb).sum();
            s.free_mb = paths.iter().map(|p| p.free_mb).sum();
            if store_path_mode == 2 {
                if let Some((i, _)) = paths
                    .iter()
                    .enumerate()
                    .max_by_key(|(i, p)| (p.free_mb, std::cmp::Reverse(*i)))
                {
                    s.current_write_path = i;
                }
            }
            s.paths = paths;
        }
        g.members_changed();
        Self::activate(g, &j.id, now);
        Ok(self.change_list(session, &mut st, &j))
    }

    pub(super) fn storage_sync_report(&self, session: &mut Session, body: &[u8]) -> Reply {
        let j = self.require_login(session)?.clone();
        let entries = decode_sync_report(body)?;
        let min_rule = self.cfg.store_server == 0;
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&j.group).ok_or(errno::ENOENT)?;
        let accepted: Vec<(String, i64)> = entries
            .iter()
            .filter(|e| e.timestamp > 0 && e.src_id != j.id)
            .filter(|e| {
                g.storages
                    .iter()
                    .any(|s| s.id == e.src_id && s.status == status::ACTIVE)
            })
            .map(|e| (e.src_id.clone(), e.timestamp as i64))
            .collect();
        if let Some(s) = g.storage_mut(&j.id) {
            for (src, ts) in &accepted {
                s.synced_from.insert(src.clone(), *ts);
            }
            let vals = accepted.iter().map(|a| a.1);
            let v = if min_rule {
                vals.min()
            } else {
                vals.max().map(|m| m.max(s.last_synced_timestamp))
            };
            if let Some(v) = v {
                s.last_synced_timestamp = v;
            }
        }
        Ok(self.change_list(session, &mut st, &j))
    }

    pub(super) fn storage_replica_chg(&self, session: &Session, body: &[u8]) -> Reply {
        self.require_login(session)?;
        if body.is_empty() || !body.len().is_multiple_of(Brief::LEN) || body.len() / Brief::LEN > 32
        {
            return Err(Refusal::invalid(
                "briefs",
                format!("body of {} bytes", body.len()),
            ));
        }
        // the leader keeps its own view
        Ok(Vec::new())
    }

    pub(super) fn storage_report_status(&self, body: &[u8]) -> Reply {
        let req = ReportStatusReq::from_bytes(body)?;
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&req.group).ok_or(errno::ENOENT)?;
        if State::apply_reported_status(g, &req.brief) {
            st.dirty = true;
        }
        Ok(Vec::new())
    }

    pub(super) fn storage_change_status(&self, session: &Session, body: &[u8]) -> Reply {
        let j = self.require_login(session)?.clone();
        let new = ChangeStatusReq::from_bytes(body)?.status;
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&j.group).ok_or(errno::ENOENT)?;
        let s = g.storage_mut(&j.id).ok_or(errno::ENOENT)?;
        let avail = |x: u8| matches!(x, status::OFFLINE | status::ONLINE | status::ACTIVE);
        if s.status == new || (avail(s.status) && avail(new)) {
            return Ok(Vec::new());
        }
        s.status = if matches!(new, status::ONLINE | status::ACTIVE) {
            status::OFFLINE
        } else {
            new
        };
        g.members_changed();
        st.dirty = true;
        Ok(Vec::new())
    }
}
