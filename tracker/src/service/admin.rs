//! What `fdfs_monitor` and the statistics tools ask (docs/protocol/client-protocol.md, the SERVER_*
//! commands): groups and storages listed, deleted, the trunk server set by hand, the leader, and
//! the cluster and volume statistics.

use super::Reply;
use crate::tracker::Tracker;
use fdfs_common::codec::Message;
use fdfs_common::codec::Reader;
use fdfs_common::proto::changelog::ChangelogLine;
use fdfs_common::proto::client::{DeleteStorageReq, GroupReq, ListStorageReq};
use fdfs_common::proto::cluster::StatBlock;
use fdfs_common::proto::stats::{
    StorageClusterStat, StorageClusterStatReq, TrackerClusterStat, TrackerClusterStatReq,
    VolumeStat, VolumeStatReq,
};
use fdfs_common::proto::trunk::TrunkServerId;
use fdfs_common::proto::{errno, status, GROUP_NAME_MAX, STORAGE_ID_MAX};
use fdfs_common::refusal::Refusal;
use fdfs_common::server::Conn;

impl Tracker {
    pub(super) fn server_list_one_group(&self, body: &[u8]) -> Reply {
        let name = GroupReq::from_bytes(body)?.group;
        let st = self.state.lock();
        let g = st.group(&name).ok_or(errno::ENOENT)?;
        Ok(
            g.to_stat(self.cfg.reserved_storage_space, self.cfg.use_trunk_file)
                .to_bytes(),
        )
    }

    pub(super) fn server_list_all_groups(&self, body: &[u8]) -> Reply {
        Reader::new(body).finish()?;
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

    pub(super) fn server_list_storage(&self, body: &[u8]) -> Reply {
        if body.len() < GROUP_NAME_MAX || body.len() >= GROUP_NAME_MAX + STORAGE_ID_MAX {
            return Err(Refusal::invalid(
                "storage_id",
                format!("body of {} bytes", body.len()),
            ));
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

    pub(super) fn server_delete_storage(&self, body: &[u8]) -> Reply {
        if body.len() <= GROUP_NAME_MAX || body.len() >= GROUP_NAME_MAX + STORAGE_ID_MAX {
            return Err(Refusal::invalid(
                "storage_id",
                format!("body of {} bytes", body.len()),
            ));
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

    pub(super) fn server_delete_group(&self, body: &[u8]) -> Reply {
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
    pub(super) fn server_set_trunk_server(&self, body: &[u8]) -> Reply {
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

    pub(super) fn server_get_leader(&self, body: &[u8]) -> Reply {
        Reader::new(body).finish()?;
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

    pub(super) fn server_tracker_cluster_stat(&self, conn: &Conn, body: &[u8]) -> Reply {
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

    pub(super) fn server_storage_cluster_stat(&self, body: &[u8]) -> Reply {
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

    pub(super) fn server_storage_volumn_stat(&self, body: &[u8]) -> Reply {
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
