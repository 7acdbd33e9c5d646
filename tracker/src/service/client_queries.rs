//! Where a client uploads, downloads or updates (docs/protocol/client-protocol.md, the QUERY_*
//! commands): the storage chosen by `crate::select`, answered with the address the client can
//! reach.

use super::Reply;
use crate::select;
use crate::tracker::Tracker;
use fdfs_common::codec::Reader;
use fdfs_common::codec::{DecodeError, Message};
use fdfs_common::config::address::ip_class;
use fdfs_common::file_id::RemoteName;
use fdfs_common::proto::advertise;
use fdfs_common::proto::client::{
    FetchReply, GroupFileReq, GroupReq, ServerAddr, StoreAllReply, StoreReply,
};
use fdfs_common::proto::{cmd, errno};
use fdfs_common::refusal::Refusal;
use fdfs_common::server::Conn;

impl Tracker {
    // ---- client queries -------------------------------------------------------------------

    /// The address of `s` handed to the client on `conn`: the first of its advertised
    /// addresses whose network holds the client (`advertised.rs`); for a storage listed with
    /// several IPs, the one of the same class as the client's (upstream,
    /// docs/protocol/cluster-protocol.md 7.4), else the first listed; otherwise the address it
    /// joined from.
    fn addr_for(&self, s: &crate::state::StorageServer, conn: &Conn) -> ServerAddr {
        if let Some(r) = advertise::pick(&s.advertise, &conn.peer_ip()) {
            return ServerAddr {
                ip: r.host.clone(),
                port: i64::from(r.port),
            };
        }
        let listed = self
            .cfg
            .use_storage_id
            .then(|| self.cfg.storage_ids.by_id(&s.id))
            .flatten()
            .filter(|e| e.ips.len() > 1);
        let ip = match listed {
            Some(e) => {
                let class = ip_class(&conn.peer_ip());
                e.ips
                    .iter()
                    .find(|ip| ip_class(ip) == class)
                    .unwrap_or(&e.ips[0])
                    .clone()
            }
            None => s.ip.clone(),
        };
        ServerAddr { ip, port: s.port }
    }

    /// The four QUERY_STORE commands: with or without a group, one storage or all of them.
    pub(super) fn query_store(&self, conn: &Conn, command: u8, body: &[u8]) -> Reply {
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
            Reader::new(body).finish()?;
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
    pub(super) fn query_fetch(&self, conn: &Conn, command: u8, body: &[u8]) -> Reply {
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

    pub(super) fn query_update(&self, conn: &Conn, body: &[u8]) -> Reply {
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
}
