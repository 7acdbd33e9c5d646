//! What a storage asks of the tracker about itself and its cluster (docs/protocol/cluster-protocol.md
//! 2.11-2.18): its parameters, the changelog, its status, id and IP, the storage ids, its group's
//! name, an IP change; and a tracker's GET_STATUS.

use super::{Reply, Session};
use crate::state::StorageServer;
use crate::tracker::Tracker;
use fdfs_common::codec::Reader;
use fdfs_common::codec::{DecodeError, Message};
use fdfs_common::proto::changelog::ChangelogLine;
use fdfs_common::proto::cluster::{
    FetchStorageIdsReq, GetGroupNameReq, GetMyIpReq, GroupName, GroupStorageReq, MyIpReply,
    ReportIpChangedReq, StorageAddrReq, StorageIdsPage,
};
use fdfs_common::proto::parameters::StorageParameters;
use fdfs_common::proto::{errno, rw_mode, status};
use fdfs_common::refusal::Refusal;
use fdfs_common::server::Conn;

const CHANGELOG_PIECE: usize = 8192;

impl Tracker {
    pub(super) fn storage_changelog_req(&self, session: &Session, body: &[u8]) -> Reply {
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

    pub(super) fn storage_report_ip_changed(&self, conn: &Conn, body: &[u8]) -> Reply {
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
            return Err(Refusal::invalid(
                "new_ip",
                format!("{new_ip} is not the connection's {}", conn.peer_ip()),
            ));
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

    pub(super) fn storage_parameter_req(&self, body: &[u8]) -> Reply {
        Reader::new(body).finish()?;
        let c = &self.cfg;
        let parameters = StorageParameters {
            use_storage_id: c.use_storage_id,
            id_in_filename: c.use_storage_id && c.id_type_in_filename_id,
            trust_storage_server_id: c.trust_storage_server_id,
            width: self.width(),
            storage_ip_changed_auto_adjust: c.storage_ip_changed_auto_adjust,
            storage_sync_file_max_delay: c.storage_sync_file_max_delay,
            store_path_mode: c.store_path,
            reserved: Some(c.reserved_storage_space),
            use_trunk_file: c.use_trunk_file,
            slot_min_size: c.slot_min_size.clamp(0, u32::MAX as i64) as u32,
            slot_max_size: c.slot_max_size.clamp(0, u32::MAX as i64) as u32,
            trunk_alloc_alignment_size: c.trunk_alloc_alignment_size,
            trunk_file_size: c.trunk_file_size.max(0) as u64,
            trunk: c.trunk.clone(),
            store_slave_file_use_link: c.store_slave_file_use_link,
        };
        Ok(parameters.to_text().into_bytes())
    }

    /// GET_STATUS and GET_SERVER_ID name a storage by group and `ip:port`.
    fn group_and_addr(body: &[u8]) -> Result<(String, String, i64), Refusal> {
        let req = StorageAddrReq::from_bytes(body)?;
        let hp = fdfs_common::config::parse_host_port(&req.addr, 23000)
            .map_err(|why| DecodeError::invalid("storage_addr", why))?;
        Ok((req.group, hp.host, hp.port as i64))
    }

    pub(super) fn storage_get_status(&self, body: &[u8]) -> Reply {
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

    pub(super) fn storage_get_server_id(&self, body: &[u8]) -> Reply {
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

    pub(super) fn storage_get_my_ip(&self, conn: &Conn, body: &[u8]) -> Reply {
        let req = GetMyIpReq::from_bytes(body)?;
        let ip = conn.peer_ip();
        if self.cfg.use_storage_id {
            let port = u16::try_from(req.port).unwrap_or(0);
            if let Some(e) = self.cfg.storage_ids.by_group_ip_port(&req.group, &ip, port) {
                return Ok(MyIpReply {
                    ips: e.current_ips(),
                }
                .to_bytes());
            }
        }
        Ok(MyIpReply { ips: vec![ip] }.to_bytes())
    }

    pub(super) fn storage_fetch_storage_ids(&self, body: &[u8]) -> Reply {
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
            return Err(Refusal::invalid(
                "start_index",
                format!("{start} of {total}"),
            ));
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
    pub(super) fn storage_get_group_name(&self, conn: &Conn, body: &[u8]) -> Reply {
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

    pub(super) fn tracker_get_status(&self, body: &[u8]) -> Reply {
        Reader::new(body).finish()?;
        if self.state.lock().groups.is_empty() {
            return Err(errno::ENOENT.into());
        }
        Ok(self.running_status().to_bytes())
    }
}
