//! One function per tracker command, named after it. Each returns the reply body or an errno;
//! the tracker keeps the connection open after an error (upstream behaviour), except for
//! requests it cannot even frame.

use crate::select;
use crate::state::{Group, State, StorageServer};
use crate::tracker::Tracker;
use fdfs_common::codec::{DecodeError, Message};
use fdfs_common::file_id::RemoteName;
use fdfs_common::proto::changelog::ChangelogLine;
use fdfs_common::proto::client::{
    DeleteStorageReq, FetchReply, GroupFileReq, GroupReq, ListStorageReq, ServerAddr,
    StoreAllReply, StoreReply,
};
use fdfs_common::proto::cluster::{
    decode_disk_usage, decode_sync_report, stat, Brief, ChangeList, ChangeStatusReq,
    FetchStorageIdsReq, GetGroupNameReq, GetMyIpReq, GroupName, GroupStorageReq, JoinReply,
    JoinReq, ReportIpChangedReq, ReportStatusReq, StatBlock, StorageAddrReq, StorageIdsPage,
    SyncSource,
};
use fdfs_common::proto::stats::{
    StorageClusterStat, StorageClusterStatReq, TrackerClusterStat, TrackerClusterStatReq,
    VolumeStat, VolumeStatReq,
};
use fdfs_common::proto::trunk::{TrunkFileId, TrunkFreeMb, TrunkServerId};
use fdfs_common::proto::{
    cmd, errno, rw_mode, status, Header, Refusal, GROUP_NAME_MAX, STORAGE_ID_MAX,
};
use fdfs_common::server::{log_malformed, Body, Conn, Flow, Service};

type Reply = Result<Vec<u8>, Refusal>;

/// What a connection remembers: the storage that joined on it.
#[derive(Debug, Default)]
pub struct Session {
    joined: Option<Joined>,
    /// leader-change counter last sent on this connection (0: never)
    leader_seen: u64,
    /// a follower tracker that sent JOIN_LEADER on this connection
    follower: Option<String>,
    /// the tracker's trunk change counter last sent to the follower on this connection
    trunk_changes_seen: u64,
    /// the data files a copying tracker reads after GET_SYS_FILES_START
    sys_files: Option<crate::sysfiles::Snapshot>,
}

#[derive(Debug, Clone)]
struct Joined {
    group: String,
    id: String,
    generation: u64,
}

const CHANGELOG_PIECE: usize = 8192;

impl Tracker {
    fn dispatch(&self, conn: &mut Conn, session: &mut Session, h: Header, body: &[u8]) -> Reply {
        match h.cmd {
            cmd::STORAGE_JOIN => self.storage_join(conn, session, body),
            cmd::STORAGE_BEAT => self.storage_beat(session, body),
            cmd::STORAGE_REPORT_DISK_USAGE => self.storage_report_disk_usage(session, body),
            cmd::STORAGE_SYNC_REPORT => self.storage_sync_report(session, body),
            cmd::STORAGE_REPLICA_CHG => self.storage_replica_chg(session, body),
            cmd::STORAGE_SYNC_DEST_REQ => self.storage_sync_dest_req(session, body),
            cmd::STORAGE_SYNC_NOTIFY => self.storage_sync_notify(session, body),
            cmd::STORAGE_SYNC_DEST_QUERY => self.storage_sync_dest_query(session, body),
            cmd::STORAGE_SYNC_SRC_REQ => self.storage_sync_src_req(body),
            cmd::STORAGE_REPORT_STATUS => self.storage_report_status(body),
            cmd::STORAGE_CHANGE_STATUS => self.storage_change_status(session, body),
            cmd::STORAGE_CHANGELOG_REQ => self.storage_changelog_req(session, body),
            cmd::STORAGE_REPORT_IP_CHANGED => self.storage_report_ip_changed(conn, body),
            cmd::STORAGE_PARAMETER_REQ => self.storage_parameter_req(body),
            cmd::STORAGE_GET_STATUS => self.storage_get_status(body),
            cmd::STORAGE_GET_SERVER_ID => self.storage_get_server_id(body),
            cmd::STORAGE_GET_MY_IP => self.storage_get_my_ip(conn, body),
            cmd::STORAGE_FETCH_STORAGE_IDS => self.storage_fetch_storage_ids(body),
            cmd::STORAGE_GET_GROUP_NAME => self.storage_get_group_name(conn, body),
            cmd::STORAGE_FETCH_TRUNK_FID => self.storage_fetch_trunk_fid(session, body),
            cmd::STORAGE_REPORT_TRUNK_FID => self.storage_report_trunk_fid(session, body),
            cmd::STORAGE_REPORT_TRUNK_FREE => self.storage_report_trunk_free(session, body),
            cmd::TRACKER_GET_STATUS => self.tracker_get_status(body),
            cmd::TRACKER_GET_SYS_FILES_START => {
                session.sys_files = Some(self.tracker_get_sys_files_start(body)?);
                Ok(Vec::new())
            }
            cmd::TRACKER_GET_ONE_SYS_FILE => {
                self.tracker_get_one_sys_file(session.sys_files.as_ref(), body)
            }
            cmd::TRACKER_GET_SYS_FILES_END => {
                session.sys_files = None;
                Ok(Vec::new())
            }
            cmd::TRACKER_NOTIFY_NEXT_LEADER => self.tracker_notify_next_leader(body),
            cmd::TRACKER_COMMIT_NEXT_LEADER => self.tracker_commit_next_leader(body),
            cmd::TRACKER_NOTIFY_RESELECT_LEADER => self.tracker_notify_reselect_leader(body),
            cmd::TRACKER_JOIN_LEADER => {
                if session.follower.is_some() {
                    return Err(errno::EEXIST.into());
                }
                session.follower = Some(self.tracker_join_leader(&conn.peer_ip(), body)?);
                Ok(Vec::new())
            }
            cmd::TRACKER_PING_LEADER => {
                let changes = self
                    .trunk_changes
                    .load(std::sync::atomic::Ordering::Relaxed);
                let tell_trunks = session.trunk_changes_seen != changes;
                let r = self.tracker_ping_leader(session.follower.as_deref(), tell_trunks, body);
                if r.is_ok() {
                    session.trunk_changes_seen = changes;
                }
                r
            }
            cmd::QUERY_STORE_WITHOUT_GROUP_ONE
            | cmd::QUERY_STORE_WITH_GROUP_ONE
            | cmd::QUERY_STORE_WITHOUT_GROUP_ALL
            | cmd::QUERY_STORE_WITH_GROUP_ALL => self.query_store(conn, h.cmd, body),
            cmd::QUERY_FETCH_ONE | cmd::QUERY_FETCH_ALL => self.query_fetch(conn, h.cmd, body),
            cmd::QUERY_UPDATE => self.query_update(conn, body),
            cmd::SERVER_LIST_ONE_GROUP => self.server_list_one_group(body),
            cmd::SERVER_LIST_ALL_GROUPS => self.server_list_all_groups(body),
            cmd::SERVER_LIST_STORAGE => self.server_list_storage(body),
            cmd::SERVER_DELETE_STORAGE => self.server_delete_storage(body),
            cmd::SERVER_DELETE_GROUP => self.server_delete_group(body),
            cmd::SERVER_SET_TRUNK_SERVER => self.server_set_trunk_server(body),
            cmd::SERVER_GET_LEADER => self.server_get_leader(body),
            cmd::SERVER_TRACKER_CLUSTER_STAT => self.server_tracker_cluster_stat(conn, body),
            cmd::SERVER_STORAGE_CLUSTER_STAT => self.server_storage_cluster_stat(body),
            cmd::SERVER_STORAGE_VOLUMN_STAT => self.server_storage_volumn_stat(body),
            cmd::ACTIVE_TEST => {
                if body.is_empty() {
                    Ok(Vec::new())
                } else {
                    Err(errno::EINVAL.into())
                }
            }
            other => {
                log::error!("client ip: {}, unknown cmd: {other}", conn.peer_ip());
                Err(errno::EINVAL.into())
            }
        }
    }

    fn require_login<'a>(&self, session: &'a Session) -> Result<&'a Joined, u8> {
        session.joined.as_ref().ok_or(errno::EACCES)
    }

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

    fn storage_join(&self, conn: &Conn, session: &mut Session, body: &[u8]) -> Reply {
        let j = JoinReq::from_bytes(body).map_err(|e| {
            log::error!("client ip: {}, invalid join request: {e}", conn.peer_ip());
            errno::EINVAL
        })?;
        if !fdfs_common::proto::valid_group_name(&j.group)
            || j.storage_port <= 0
            || !(1..=256).contains(&j.store_path_count)
            || !(1..=256).contains(&j.subdir_count_per_path)
        {
            return Err(errno::EINVAL.into());
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
            return Err(errno::EINVAL.into());
        }
        if g.subdir_count_per_path != 0
            && g.subdir_count_per_path != j.subdir_count_per_path
            && !others.is_empty()
        {
            return Err(errno::EINVAL.into());
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

    fn storage_beat(&self, session: &mut Session, body: &[u8]) -> Reply {
        let j = self.require_login(session)?.clone();
        let stat_block = match body.len() {
            0 => None,
            StatBlock::LEN => Some(StatBlock::from_bytes(body)?),
            _ => return Err(errno::EINVAL.into()),
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

    fn storage_report_disk_usage(&self, session: &mut Session, body: &[u8]) -> Reply {
        let j = self.require_login(session)?.clone();
        let paths = decode_disk_usage(body)?;
        let now = fdfs_common::now();
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&j.group).ok_or(errno::ENOENT)?;
        if paths.len() as i64 != g.store_path_count {
            return Err(errno::EINVAL.into());
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

    fn storage_sync_report(&self, session: &mut Session, body: &[u8]) -> Reply {
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

    fn storage_replica_chg(&self, session: &Session, body: &[u8]) -> Reply {
        self.require_login(session)?;
        if body.is_empty() || !body.len().is_multiple_of(Brief::LEN) || body.len() / Brief::LEN > 32
        {
            return Err(errno::EINVAL.into());
        }
        // the leader keeps its own view
        Ok(Vec::new())
    }

    fn storage_sync_dest_req(&self, session: &Session, body: &[u8]) -> Reply {
        let j = self.require_login(session)?.clone();
        if !body.is_empty() {
            return Err(errno::EINVAL.into());
        }
        let now = fdfs_common::now();
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&j.group).ok_or(errno::ENOENT)?;
        let others_available = g.storages.iter().any(|s| s.id != j.id && s.is_available());
        if g.storages.len() <= 1 || !others_available {
            if let Some(s) = g.storage_mut(&j.id) {
                s.status = status::ONLINE;
            }
            g.bump();
            st.dirty = true;
            return Ok(Vec::new());
        }
        let src = g
            .writable()
            .into_iter()
            .map(|i| g.storages[i].id.clone())
            .find(|id| *id != j.id)
            .ok_or(errno::ENOENT)?;
        if let Some(s) = g.storage_mut(&j.id) {
            s.sync_src_id = src.clone();
            s.sync_until_timestamp = now;
            s.status = status::WAIT_SYNC;
        }
        g.bump();
        st.dirty = true;
        Ok(SyncSource {
            src_id: src,
            until_timestamp: now,
        }
        .to_bytes())
    }

    fn storage_sync_notify(&self, session: &Session, body: &[u8]) -> Reply {
        let j = self.require_login(session)?.clone();
        let src = SyncSource::from_bytes(body)?;
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&j.group).ok_or(errno::ENOENT)?;
        let src_ok = src.src_id.is_empty()
            || g.storages.iter().any(|s| {
                s.id == src.src_id && !matches!(s.status, status::DELETED | status::IP_CHANGED)
            });
        let s = g.storage_mut(&j.id).ok_or(errno::ENOENT)?;
        if !src.src_id.is_empty() && s.sync_src_id.is_empty() && !src_ok {
            // refuse before changing anything: a WAIT_SYNC without a source would tell the
            // source's sync thread (SYNC_SRC_REQ) that nobody copies the old files
            return Err(errno::ENOENT.into());
        }
        let mut changed = false;
        if src.src_id.is_empty() {
            if matches!(s.status, status::INIT | status::WAIT_SYNC | status::SYNCING) {
                s.status = status::ONLINE;
                changed = true;
            }
        } else {
            if s.status == status::INIT {
                s.status = status::WAIT_SYNC;
                changed = true;
            }
            if s.sync_src_id.is_empty() {
                s.sync_src_id = src.src_id.clone();
                s.sync_until_timestamp = src.until_timestamp;
                changed = true;
            }
        }
        if changed {
            g.bump();
            st.dirty = true;
        }
        Ok(Vec::new())
    }

    fn storage_sync_dest_query(&self, session: &Session, body: &[u8]) -> Reply {
        let j = self.require_login(session)?.clone();
        if !body.is_empty() {
            return Err(errno::EINVAL.into());
        }
        let st = self.state.lock();
        let s = st
            .group(&j.group)
            .and_then(|g| g.find(&j.id).map(|i| &g.storages[i]))
            .ok_or(errno::ENOENT)?;
        if s.sync_src_id.is_empty() {
            return Ok(Vec::new());
        }
        Ok(SyncSource {
            src_id: s.sync_src_id.clone(),
            until_timestamp: s.sync_until_timestamp,
        }
        .to_bytes())
    }

    fn storage_sync_src_req(&self, body: &[u8]) -> Reply {
        let req = GroupStorageReq::from_bytes(body)?;
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&req.group).ok_or(errno::ENOENT)?;
        let dest = g.find(&req.storage_id).ok_or(errno::ENOENT)?;
        if matches!(
            g.storages[dest].status,
            status::INIT | status::DELETED | status::IP_CHANGED
        ) {
            return Err(errno::ENOENT.into());
        }
        let src_id = g.storages[dest].sync_src_id.clone();
        if src_id.is_empty() {
            return Ok(Vec::new());
        }
        let src_ok = g.storages.iter().any(|s| {
            s.id == src_id
                && matches!(
                    s.status,
                    status::OFFLINE | status::ONLINE | status::ACTIVE | status::RECOVERY
                )
        });
        if src_ok {
            Ok(SyncSource {
                src_id,
                until_timestamp: g.storages[dest].sync_until_timestamp,
            }
            .to_bytes())
        } else {
            g.storages[dest].sync_src_id.clear();
            st.dirty = true;
            Ok(Vec::new())
        }
    }

    fn storage_report_status(&self, body: &[u8]) -> Reply {
        let req = ReportStatusReq::from_bytes(body)?;
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&req.group).ok_or(errno::ENOENT)?;
        if State::apply_reported_status(g, &req.brief) {
            st.dirty = true;
        }
        Ok(Vec::new())
    }

    fn storage_change_status(&self, session: &Session, body: &[u8]) -> Reply {
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

    fn storage_changelog_req(&self, session: &Session, body: &[u8]) -> Reply {
        let (group, id) = if body.is_empty() {
            let j = self.require_login(session)?;
            (j.group.clone(), j.id.clone())
        } else {
            let r = GroupStorageReq::from_bytes(body)?;
            (r.group, r.storage_id)
        };
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&group).ok_or(errno::ENOENT)?;
        let s = g.storage_mut(&id).ok_or(errno::ENOENT)?;
        let piece = self
            .changelog
            .lock()
            .read_from(s.changelog_offset, CHANGELOG_PIECE);
        if !piece.is_empty() {
            s.changelog_offset += piece.len() as i64;
            st.dirty = true;
        }
        Ok(piece)
    }

    fn storage_report_ip_changed(&self, conn: &Conn, body: &[u8]) -> Reply {
        if self.cfg.use_storage_id {
            return Err(errno::EOPNOTSUPP.into());
        }
        let ReportIpChangedReq {
            group,
            old_ip,
            new_ip,
        } = ReportIpChangedReq::from_bytes(body)?;
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&group).ok_or(errno::ENOENT)?;
        if new_ip != conn.peer_ip() {
            return Err(errno::EINVAL.into());
        }
        let old = g.find(&old_ip).ok_or(errno::ENOENT)?;
        match g.storages[old].status {
            status::DELETED => return Err(errno::ENOENT.into()),
            status::ONLINE | status::ACTIVE | status::RECOVERY => return Err(errno::EBUSY.into()),
            status::IP_CHANGED => return Err(errno::EALREADY.into()),
            _ => {}
        }
        if g.find(&new_ip)
            .is_some_and(|i| !matches!(g.storages[i].status, status::DELETED | status::IP_CHANGED))
        {
            return Err(errno::EEXIST.into());
        }
        g.storages.retain(|s| s.id != new_ip);
        let old = g.find(&old_ip).expect("present");
        let tomb = StorageServer {
            id: old_ip.clone(),
            ip: old_ip.clone(),
            status: status::IP_CHANGED,
            rw_mode: rw_mode::BOTH,
            ..Default::default()
        };
        g.storages[old].id = new_ip.clone();
        g.storages[old].ip = new_ip.clone();
        g.storages.push(tomb);
        g.bump();
        let line = ChangelogLine::ip_changed(fdfs_common::now(), &group, &old_ip, &new_ip);
        let _ = self.changelog.lock().append(&line.to_line());
        st.dirty = true;
        Ok(Vec::new())
    }

    fn storage_parameter_req(&self, body: &[u8]) -> Reply {
        if !body.is_empty() {
            return Err(errno::EINVAL.into());
        }
        let c = &self.cfg;
        let b = |v: bool| if v { 1 } else { 0 };
        let mut text = format!(
            "use_storage_id={}\nid_type_in_filename={}\ntrust_storage_server_id={}\nresponse_ip_addr_size={}\n\
             storage_ip_changed_auto_adjust={}\nstorage_sync_file_max_delay={}\nstore_path={}\n\
             reserved_storage_space={}\nuse_trunk_file={}\nslot_min_size={}\nslot_max_size={}\n",
            b(c.use_storage_id),
            if c.use_storage_id && c.id_type_in_filename_id { "id" } else { "ip" },
            b(c.trust_storage_server_id),
            self.width().size(),
            b(c.storage_ip_changed_auto_adjust),
            c.storage_sync_file_max_delay,
            c.store_path,
            c.reserved_storage_space.to_text(),
            b(c.use_trunk_file),
            c.slot_min_size,
            c.slot_max_size,
        );
        for (k, v) in &c.trunk_params {
            text += &format!("{k}={v}\n");
        }
        text += &format!(
            "store_slave_file_use_link={}\n",
            b(c.store_slave_file_use_link)
        );
        Ok(text.into_bytes())
    }

    /// GET_STATUS and GET_SERVER_ID name a storage by group and `ip:port`.
    fn group_and_addr(body: &[u8]) -> Result<(String, String, i64), Refusal> {
        let req = StorageAddrReq::from_bytes(body)?;
        let hp = fdfs_common::config::parse_host_port(&req.addr, 23000)
            .map_err(|why| DecodeError::invalid("storage_addr", why))?;
        Ok((req.group, hp.host, hp.port as i64))
    }

    fn storage_get_status(&self, body: &[u8]) -> Reply {
        let (group, ip, port) = Self::group_and_addr(body)?;
        let st = self.state.lock();
        let g = st.group(&group).ok_or(errno::ENOENT)?;
        let s = g
            .storages
            .iter()
            .find(|s| s.ip == ip && s.port == port)
            .ok_or(errno::ENOENT)?;
        Ok(s.brief().to_bytes())
    }

    fn storage_get_server_id(&self, body: &[u8]) -> Reply {
        let (group, ip, port) = Self::group_and_addr(body)?;
        if self.cfg.use_storage_id {
            let port = u16::try_from(port)
                .map_err(|_| DecodeError::invalid("storage_addr", format!("port {port}")))?;
            let e = self
                .cfg
                .storage_ids
                .by_group_ip_port(&group, &ip, port)
                .ok_or(errno::ENOENT)?;
            return Ok(e.id.clone().into_bytes());
        }
        let st = self.state.lock();
        st.group(&group).ok_or(errno::ENOENT)?;
        Ok(ip.into_bytes())
    }

    fn storage_get_my_ip(&self, conn: &Conn, body: &[u8]) -> Reply {
        let req = GetMyIpReq::from_bytes(body)?;
        let ip = conn.peer_ip();
        if self.cfg.use_storage_id {
            let port = u16::try_from(req.port).unwrap_or(0);
            if let Some(e) = self.cfg.storage_ids.by_group_ip_port(&req.group, &ip, port) {
                return Ok(e.ips.join(",").into_bytes());
            }
        }
        Ok(ip.into_bytes())
    }

    fn storage_fetch_storage_ids(&self, body: &[u8]) -> Reply {
        let req = FetchStorageIdsReq::from_bytes(body)?;
        if !self.cfg.use_storage_id {
            return if req.allow_empty != 0 {
                Ok(StorageIdsPage {
                    total: 0,
                    count: 0,
                    lines: String::new(),
                }
                .to_bytes())
            } else {
                Err(errno::EOPNOTSUPP.into())
            };
        }
        let ids = &self.cfg.storage_ids;
        let total = ids.entries.len();
        let start = usize::try_from(req.start_index)
            .map_err(|_| DecodeError::invalid("start_index", req.start_index.to_string()))?;
        if start >= total {
            return Err(errno::EINVAL.into());
        }
        // the C storage reads the reply into a buffer of about 8 KB
        let (count, lines) = ids.page(start, 8 * 1024 - 128);
        Ok(StorageIdsPage {
            total: total as i32,
            count: count as i32,
            lines,
        }
        .to_bytes())
    }

    /// GET_GROUP_NAME (109): the group storage_ids lists for an address.
    fn storage_get_group_name(&self, conn: &Conn, body: &[u8]) -> Reply {
        if !self.cfg.use_storage_id {
            return Err(errno::EOPNOTSUPP.into());
        }
        if body.len() >= 4 + GetGroupNameReq::IP_MAX {
            return Err(errno::ENAMETOOLONG.into());
        }
        let req = GetGroupNameReq::from_bytes(body)?;
        let ip = if body.len() == 4 {
            conn.peer_ip()
        } else {
            req.ip
        };
        let port = u16::try_from(req.port)
            .map_err(|_| DecodeError::invalid("port", req.port.to_string()))?;
        let e = self
            .cfg
            .storage_ids
            .by_ip_port(&ip, port)
            .ok_or(errno::ENOENT)?;
        Ok(GroupName {
            group: e.group.clone(),
        }
        .to_bytes())
    }

    fn tracker_get_status(&self, body: &[u8]) -> Reply {
        if !body.is_empty() {
            return Err(errno::EINVAL.into());
        }
        if self.state.lock().groups.is_empty() {
            return Err(errno::ENOENT.into());
        }
        Ok(self.running_status().to_bytes())
    }

    // ---- client queries -------------------------------------------------------------------

    /// The address of `s` handed to the client on `conn`: for a storage listed with several
    /// IPs, the one of the same class as the client's (upstream, docs/protocol/cluster-protocol.md
    /// 7.4), else the first listed; otherwise the address it joined from.
    fn addr_for(&self, s: &crate::state::StorageServer, conn: &Conn) -> ServerAddr {
        let listed = self
            .cfg
            .use_storage_id
            .then(|| self.cfg.storage_ids.by_id(&s.id))
            .flatten()
            .filter(|e| e.ips.len() > 1);
        let ip = match listed {
            Some(e) => {
                let class = address_class(&conn.peer_ip());
                e.ips
                    .iter()
                    .find(|ip| address_class(ip) == class)
                    .unwrap_or(&e.ips[0])
                    .clone()
            }
            None => s.ip.clone(),
        };
        ServerAddr { ip, port: s.port }
    }

    /// The four QUERY_STORE commands: with or without a group, one storage or all of them.
    fn query_store(&self, conn: &Conn, command: u8, body: &[u8]) -> Reply {
        let with_group = matches!(
            command,
            cmd::QUERY_STORE_WITH_GROUP_ONE | cmd::QUERY_STORE_WITH_GROUP_ALL
        );
        let all = matches!(
            command,
            cmd::QUERY_STORE_WITHOUT_GROUP_ALL | cmd::QUERY_STORE_WITH_GROUP_ALL
        );
        let mut st = self.state.lock();
        let group = if with_group {
            let g = GroupReq::from_bytes(body)?.group;
            let grp = st.group(&g).ok_or(errno::ENOENT)?;
            if grp.writable().is_empty() {
                return Err(errno::ENOENT.into());
            }
            if !grp.has_room(self.cfg.reserved_storage_space) {
                return Err(errno::ENOSPC.into());
            }
            g
        } else {
            if !body.is_empty() {
                return Err(errno::EINVAL.into());
            }
            select::store_group(&mut st, &self.cfg)?
        };
        let width = self.width();
        let g = st.groups.get_mut(&group).ok_or(errno::ENOENT)?;
        if all {
            let w = g.writable();
            let first = *w.first().ok_or(errno::ENOENT)?;
            let path = select::store_path(g, first, &self.cfg)?;
            let servers = w
                .iter()
                .map(|&i| self.addr_for(&g.storages[i], conn))
                .collect();
            return Ok(StoreAllReply {
                group,
                servers,
                store_path_index: path,
                width,
            }
            .to_bytes());
        }
        let idx = select::store_server(g, &self.cfg)?;
        let path = select::store_path(g, idx, &self.cfg)?;
        Ok(StoreReply {
            group,
            server: self.addr_for(&g.storages[idx], conn),
            store_path_index: path,
            width,
        }
        .to_bytes())
    }

    fn file_req(body: &[u8]) -> Result<GroupFileReq, Refusal> {
        let req = GroupFileReq::from_bytes(body)?;
        if req.filename.len() < 22 || req.filename.len() >= 128 {
            let why = format!("length {} not in 22..128", req.filename.len());
            return Err(DecodeError::invalid("filename", why).into());
        }
        Ok(req)
    }

    /// QUERY_FETCH_ONE and QUERY_FETCH_ALL (every member that can serve the file).
    fn query_fetch(&self, conn: &Conn, command: u8, body: &[u8]) -> Reply {
        let all = command == cmd::QUERY_FETCH_ALL;
        let req = Self::file_req(body)?;
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&req.group).ok_or(errno::ENOENT)?;
        let name = RemoteName::decode(&req.filename).map_err(DecodeError::from)?;
        let idx = select::fetch_servers(g, &name, all, fdfs_common::now(), &self.cfg)?;
        let servers = idx
            .iter()
            .map(|&i| self.addr_for(&g.storages[i], conn))
            .collect();
        Ok(FetchReply {
            group: req.group,
            servers,
            width: self.width(),
        }
        .to_bytes())
    }

    fn query_update(&self, conn: &Conn, body: &[u8]) -> Reply {
        let req = Self::file_req(body)?;
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&req.group).ok_or(errno::ENOENT)?;
        let name = RemoteName::decode(&req.filename).map_err(DecodeError::from)?;
        let i = select::update_server(g, &name, &self.cfg)?;
        Ok(FetchReply {
            group: req.group,
            servers: vec![self.addr_for(&g.storages[i], conn)],
            width: self.width(),
        }
        .to_bytes())
    }

    fn server_list_one_group(&self, body: &[u8]) -> Reply {
        if body.len() != GROUP_NAME_MAX {
            return Err(errno::EINVAL.into());
        }
        let name = GroupReq::from_bytes(body)?.group;
        let st = self.state.lock();
        let g = st.group(&name).ok_or(errno::ENOENT)?;
        Ok(
            g.to_stat(self.cfg.reserved_storage_space, self.cfg.use_trunk_file)
                .to_bytes(),
        )
    }

    fn server_list_all_groups(&self, body: &[u8]) -> Reply {
        if !body.is_empty() {
            return Err(errno::EINVAL.into());
        }
        let st = self.state.lock();
        let mut out = Vec::new();
        for g in st.groups.values() {
            g.to_stat(self.cfg.reserved_storage_space, self.cfg.use_trunk_file)
                .encode(&mut out);
        }
        if out.len() > self.cfg.server.buff_size {
            return Err(errno::ENOSPC.into());
        }
        Ok(out)
    }

    fn server_list_storage(&self, body: &[u8]) -> Reply {
        if body.len() < GROUP_NAME_MAX || body.len() >= GROUP_NAME_MAX + STORAGE_ID_MAX {
            return Err(errno::EINVAL.into());
        }
        let req = ListStorageReq::from_bytes(body)?;
        let st = self.state.lock();
        let g = st.group(&req.group).ok_or(errno::ENOENT)?;
        let mut out = Vec::new();
        for i in g.sorted() {
            let s = &g.storages[i];
            if req.storage_id.as_ref().is_some_and(|id| *id != s.id) {
                continue;
            }
            s.to_stat(
                self.cfg.reserved_storage_space,
                self.width(),
                g.trunk_server == s.id,
            )
            .encode(&mut out);
        }
        if out.is_empty() && req.storage_id.is_some() {
            return Err(errno::ENOENT.into());
        }
        Ok(out)
    }

    fn server_delete_storage(&self, body: &[u8]) -> Reply {
        if body.len() <= GROUP_NAME_MAX || body.len() >= GROUP_NAME_MAX + STORAGE_ID_MAX {
            return Err(errno::EINVAL.into());
        }
        let req = DeleteStorageReq::from_bytes(body)?;
        let id = req.storage_id.ok_or(errno::EINVAL)?;
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&req.group).ok_or(errno::ENOENT)?;
        let s = g.storage_mut(&id).ok_or(errno::ENOENT)?;
        match s.status {
            status::ONLINE | status::ACTIVE | status::RECOVERY => return Err(errno::EBUSY.into()),
            status::DELETED => return Err(errno::EALREADY.into()),
            status::IP_CHANGED => return Err(errno::ENOENT.into()),
            _ => {}
        }
        s.status = status::DELETED;
        s.stat = StatBlock::default();
        s.sync_src_id.clear();
        s.sync_until_timestamp = 0;
        s.total_mb = 0;
        s.free_mb = 0;
        s.paths.clear();
        s.upload_priority = 0;
        s.store_path_count = 0;
        s.subdir_count_per_path = 0;
        for other in g.storages.iter_mut() {
            if other.sync_src_id == id {
                other.sync_src_id.clear();
            }
        }
        g.bump();
        let line = ChangelogLine::deleted(fdfs_common::now(), &req.group, &id);
        if let Err(e) = self.changelog.lock().append(&line.to_line()) {
            log::error!("write changelog fail: {e}");
        }
        st.dirty = true;
        log::info!("storage server {}::{id} deleted", req.group);
        Ok(Vec::new())
    }

    fn server_delete_group(&self, body: &[u8]) -> Reply {
        if body.len() != GROUP_NAME_MAX {
            return Err(errno::EINVAL.into());
        }
        let name = GroupReq::from_bytes(body)?.group;
        let mut st = self.state.lock();
        let g = st.group(&name).ok_or(errno::ENOENT)?;
        // deleted members do not count: upstream keeps their records until a restart and
        // answers EBUSY meanwhile, which leaves an operator no way to remove the group
        if g.storages
            .iter()
            .any(|s| !matches!(s.status, status::DELETED | status::IP_CHANGED))
        {
            return Err(errno::EBUSY.into());
        }
        st.groups.remove(&name);
        st.dirty = true;
        Ok(Vec::new())
    }

    /// SET_TRUNK_SERVER (94): without an id, make sure the group has a trunk server; with one,
    /// make that storage the trunk server unless another is alive in the role.
    fn server_set_trunk_server(&self, body: &[u8]) -> Reply {
        let req = ListStorageReq::from_bytes(body)?;
        if !self.cfg.use_trunk_file || !self.am_leader() {
            return Err(errno::EOPNOTSUPP.into());
        }
        let (current_alive, target) = {
            let st = self.state.lock();
            let g = st.group(&req.group).ok_or(errno::ENOENT)?;
            let alive = g
                .storages
                .iter()
                .any(|s| s.id == g.trunk_server && s.status == status::ACTIVE);
            let target = match &req.storage_id {
                None => None,
                Some(id) => {
                    if *id == g.trunk_server && alive {
                        return Err(errno::EALREADY.into());
                    }
                    if alive {
                        return Err(errno::EEXIST.into());
                    }
                    let s = g
                        .storages
                        .iter()
                        .find(|s| s.id == *id)
                        .ok_or(errno::ENOENT)?;
                    if s.status != status::ACTIVE {
                        return Err(errno::ENONET.into());
                    }
                    if !s.writable() {
                        return Err(errno::EACCES.into());
                    }
                    Some(id.clone())
                }
            };
            (alive.then(|| g.trunk_server.clone()), target)
        };
        let id = match (target, current_alive) {
            (Some(id), _) => {
                self.set_trunk_server(&req.group, &id)?;
                id
            }
            (None, Some(id)) => id,
            (None, None) => {
                self.select_trunk_servers();
                let st = self.state.lock();
                let g = st.group(&req.group).ok_or(errno::ENOENT)?;
                if g.trunk_server.is_empty() {
                    return Err(errno::ENOENT.into());
                }
                g.trunk_server.clone()
            }
        };
        Ok(TrunkServerId { id }.to_bytes())
    }

    /// FETCH_TRUNK_FID: the group's current trunk file id, for a new trunk server.
    fn storage_fetch_trunk_fid(&self, session: &Session, body: &[u8]) -> Reply {
        let j = self.require_login(session)?.clone();
        if !body.is_empty() {
            return Err(DecodeError::Trailing { len: body.len() }.into());
        }
        let st = self.state.lock();
        let g = st.group(&j.group).ok_or(errno::ENOENT)?;
        Ok(TrunkFileId {
            id: g.current_trunk_file_id as i32,
        }
        .to_bytes())
    }

    /// REPORT_TRUNK_FID: the trunk server's current trunk file id; the group keeps the largest.
    fn storage_report_trunk_fid(&self, session: &Session, body: &[u8]) -> Reply {
        let j = self.require_login(session)?.clone();
        let id = TrunkFileId::from_bytes(body)?.id;
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&j.group).ok_or(errno::ENOENT)?;
        if id < 0 || g.trunk_server != j.id {
            return Err(errno::EINVAL.into());
        }
        if i64::from(id) > g.current_trunk_file_id {
            g.current_trunk_file_id = id.into();
            st.dirty = true;
        }
        Ok(Vec::new())
    }

    /// REPORT_TRUNK_FREE: the trunk server's free trunk space in MB.
    fn storage_report_trunk_free(&self, session: &Session, body: &[u8]) -> Reply {
        let j = self.require_login(session)?.clone();
        let mb = TrunkFreeMb::from_bytes(body)?.mb;
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&j.group).ok_or(errno::ENOENT)?;
        if mb < 0 || g.trunk_server != j.id {
            return Err(errno::EINVAL.into());
        }
        g.trunk_free_mb = mb;
        Ok(Vec::new())
    }

    fn server_get_leader(&self, body: &[u8]) -> Reply {
        if !body.is_empty() {
            return Err(errno::EINVAL.into());
        }
        self.relation
            .lock()
            .leader
            .clone()
            .map(String::into_bytes)
            .ok_or_else(|| errno::ENOENT.into())
    }

    fn own_address(&self, conn: &Conn) -> String {
        let ip = conn.local.ip();
        if ip.is_ipv6() {
            format!("[{ip}]:{}", self.cfg.server.port)
        } else {
            format!("{ip}:{}", self.cfg.server.port)
        }
    }

    fn server_tracker_cluster_stat(&self, conn: &Conn, body: &[u8]) -> Reply {
        let req = TrackerClusterStatReq::from_bytes(body)?;
        if !self.am_leader() {
            return Err(errno::EOPNOTSUPP.into());
        }
        let (filter, want_active, want_leader) =
            (req.filter_by, req.is_active != 0, req.is_leader != 0);
        let now = fdfs_common::now();
        let me = self.me().unwrap_or_else(|| self.own_address(conn));
        let followers = self.relation.lock().followers.clone();
        let trackers = self.state.lock().trackers.clone();
        let mut recs = Vec::new();
        for t in trackers
            .iter()
            .chain((!trackers.contains(&me)).then_some(&me))
        {
            let leader = *t == me;
            let f = followers.get(t);
            let active = leader || f.is_some_and(|f| now - f.last_heartbeat <= 3);
            if (filter & 1 != 0 && active != want_active)
                || (filter & 2 != 0 && leader != want_leader)
            {
                continue;
            }
            recs.push(TrackerClusterStat {
                host: t.clone(),
                is_leader: leader as u8,
                is_active: active as u8,
                connections: if leader {
                    self.conn_counts()
                } else {
                    f.map(|f| f.connections).unwrap_or_default()
                },
                version: if leader {
                    fdfs_common::proto::VERSION.into()
                } else {
                    f.map(|f| f.version.clone()).unwrap_or_default()
                },
                up_time: if leader {
                    self.up_time
                } else {
                    f.map(|f| f.up_time).unwrap_or(0)
                },
                last_heartbeat_time: if leader {
                    0
                } else {
                    f.map(|f| f.last_heartbeat).unwrap_or(0)
                },
            });
        }
        Ok(TrackerClusterStat::encode_list(&recs))
    }

    fn server_storage_cluster_stat(&self, body: &[u8]) -> Reply {
        let req = StorageClusterStatReq::from_bytes(body)?;
        let (filter, op, want_status, want_trunk) = (
            req.filter_by,
            req.status_op,
            req.status,
            req.is_trunk_server,
        );
        let st = self.state.lock();
        let mut recs = Vec::new();
        for g in st.groups.values() {
            for i in g.sorted() {
                let s = &g.storages[i];
                let is_trunk = (g.trunk_server == s.id) as u8;
                if filter & 1 != 0 && self.cfg.use_trunk_file && is_trunk != want_trunk {
                    continue;
                }
                if filter & 2 != 0 {
                    let keep = match op {
                        b'=' => s.status == want_status,
                        b'!' => s.status != want_status,
                        _ => false,
                    };
                    if !keep {
                        continue;
                    }
                }
                recs.push(StorageClusterStat {
                    id: s.id.clone(),
                    host: format!("{}:{}", s.ip, s.port),
                    is_trunk_server: is_trunk,
                    status: s.status,
                    connections: s.stat.connections,
                    version: s.version.clone(),
                    up_time: s.up_time,
                    last_heartbeat_time: s.last_heart_beat_time,
                });
            }
        }
        Ok(StorageClusterStat::encode_list(
            self.cfg.use_storage_id,
            self.cfg.use_trunk_file,
            &recs,
        ))
    }

    fn server_storage_volumn_stat(&self, body: &[u8]) -> Reply {
        let req = VolumeStatReq::from_bytes(body)?;
        let filter = req.filter_by;
        let st = self.state.lock();
        let mut recs = Vec::new();
        for g in st.groups.values() {
            let (total, free) = g.space();
            let reserved = if total > 0 {
                self.cfg.reserved_storage_space.reserved_mb(total)
            } else {
                0
            };
            let disk = g.has_room(self.cfg.reserved_storage_space);
            let trunk = false;
            let space = disk || trunk;
            if (filter & 1 != 0 && disk != (req.is_disk_available != 0))
                || (filter & 2 != 0 && trunk != (req.is_trunk_available != 0))
                || (filter & 4 != 0 && space != (req.is_space_available != 0))
            {
                continue;
            }
            recs.push(VolumeStat {
                group: g.name.clone(),
                total_mb: total,
                free_mb: free,
                reserved_mb: reserved,
                avail_mb: if disk { (free - reserved).max(0) } else { 0 },
                trunk_free_mb: 0,
                is_disk_available: disk as u8,
                is_trunk_available: trunk as u8,
            });
        }
        Ok(VolumeStat::encode_list(self.cfg.use_trunk_file, &recs))
    }
}

impl Service for Tracker {
    type Session = Session;

    fn metrics(&self) -> Option<&fdfs_common::metrics::Metrics> {
        Some(&self.metrics)
    }

    fn max_body(&self) -> usize {
        self.cfg
            .server
            .buff_size
            .saturating_sub(fdfs_common::proto::HEADER_LEN)
    }

    fn handle(&self, conn: &mut Conn, session: &mut Session, h: Header, body: Body<'_>) -> Flow {
        let r = match self.dispatch(conn, session, h, body.bytes()) {
            Ok(b) => conn.respond(0, &b),
            Err(refusal) => {
                if let Some(e) = &refusal.malformed {
                    log_malformed(conn, h.cmd, e);
                }
                conn.respond_status(refusal.status)
            }
        };
        fdfs_common::server::flow_after(r)
    }

    fn closed(&self, _conn: &Conn, session: &mut Session) {
        let Some(j) = session.joined.take() else {
            return;
        };
        let mut st = self.state.lock();
        if let Some(g) = st.groups.get_mut(&j.group) {
            if let Some(s) = g.storage_mut(&j.id) {
                if s.join_generation == j.generation && s.go_offline() {
                    log::info!(
                        "storage server {}::{} offline (connection closed)",
                        j.group,
                        j.id
                    );
                    g.bump();
                }
            }
        }
        st.dirty = true;
    }
}

/// Upstream's address classes for choosing among a storage's IPs: the three private IPv4
/// ranges, and everything else ("outer").
fn address_class(ip: &str) -> u8 {
    match ip.parse::<std::net::Ipv4Addr>().map(|a| a.octets()) {
        Ok([10, ..]) => 1,
        Ok([172, b, ..]) if (16..32).contains(&b) => 2,
        Ok([192, 168, ..]) => 3,
        _ => 0,
    }
}
