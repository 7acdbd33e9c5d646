//! What the client asks a tracker (docs/protocol/client-protocol.md 2): where to upload, download
//! or update a file, the groups and storages and their statistics, and the administrative
//! commands of `fdfs_monitor`.

use crate::client::Client;
use crate::file_id::FileId;
use fdfs_common::codec::Message;
use fdfs_common::config::HostPort;
use fdfs_common::net::{NetError, NetResult};
use fdfs_common::proto::client::{
    decode_group_stats, decode_storage_stats, DeleteStorageReq, FetchReply, GroupFileReq, GroupReq,
    GroupStat, ListStorageReq, StorageStat, StoreAllReply, StoreReply,
};
use fdfs_common::proto::{cmd, errno};

pub use fdfs_common::http::anti_steal_token;

impl Client {
    // ---- tracker queries -------------------------------------------------------------------

    pub fn query_store(&self, group: Option<&str>) -> NetResult<StoreReply> {
        let body = match group {
            Some(g) => self.tracker_request(
                cmd::QUERY_STORE_WITH_GROUP_ONE,
                &GroupReq { group: g.into() }.to_bytes(),
            )?,
            None => self.tracker_request(cmd::QUERY_STORE_WITHOUT_GROUP_ONE, &[])?,
        };
        StoreReply::from_bytes(&body).map_err(NetError::from)
    }

    pub fn query_store_all(&self, group: Option<&str>) -> NetResult<StoreAllReply> {
        let body = match group {
            Some(g) => self.tracker_request(
                cmd::QUERY_STORE_WITH_GROUP_ALL,
                &GroupReq { group: g.into() }.to_bytes(),
            )?,
            None => self.tracker_request(cmd::QUERY_STORE_WITHOUT_GROUP_ALL, &[])?,
        };
        StoreAllReply::from_bytes(&body).map_err(NetError::from)
    }

    fn query_file(&self, command: u8, id: &FileId) -> NetResult<FetchReply> {
        let req = GroupFileReq {
            group: id.group.clone(),
            filename: id.name.clone(),
        };
        let body = self.tracker_request(command, &req.to_bytes())?;
        FetchReply::from_bytes(&body).map_err(NetError::from)
    }

    pub fn query_fetch(&self, id: &FileId) -> NetResult<HostPort> {
        let r = self.query_file(cmd::QUERY_FETCH_ONE, id)?;
        r.servers
            .first()
            .map(Self::addr_of)
            .ok_or(NetError::Protocol("empty fetch reply".into()))
    }

    pub fn query_fetch_all(&self, id: &FileId) -> NetResult<Vec<HostPort>> {
        Ok(self
            .query_file(cmd::QUERY_FETCH_ALL, id)?
            .servers
            .iter()
            .map(Self::addr_of)
            .collect())
    }

    pub fn query_update(&self, id: &FileId) -> NetResult<HostPort> {
        let r = self.query_file(cmd::QUERY_UPDATE, id)?;
        r.servers
            .first()
            .map(Self::addr_of)
            .ok_or(NetError::Protocol("empty update reply".into()))
    }

    pub fn list_groups(&self) -> NetResult<Vec<GroupStat>> {
        let body = self.tracker_request(cmd::SERVER_LIST_ALL_GROUPS, &[])?;
        decode_group_stats(&body).map_err(NetError::from)
    }

    pub fn list_one_group(&self, group: &str) -> NetResult<GroupStat> {
        let body = self.tracker_request(
            cmd::SERVER_LIST_ONE_GROUP,
            &GroupReq {
                group: group.into(),
            }
            .to_bytes(),
        )?;
        GroupStat::from_bytes(&body).map_err(NetError::from)
    }

    pub fn list_storages(&self, group: &str, id: Option<&str>) -> NetResult<Vec<StorageStat>> {
        let req = ListStorageReq {
            group: group.into(),
            storage_id: id.map(String::from),
        };
        let body = self.tracker_request(cmd::SERVER_LIST_STORAGE, &req.to_bytes())?;
        decode_storage_stats(&body).map_err(NetError::from)
    }

    /// What the storages of `group` advertise to clients (rfdfs's trackers only): `(id,
    /// rules)`, the rules as `<network or *> <ip>:<port>` joined by `;`.
    pub fn list_advertised(&self, group: &str) -> NetResult<Vec<(String, String)>> {
        let req = GroupReq {
            group: group.into(),
        };
        let body = self.tracker_request(cmd::LIST_ADVERTISED, &req.to_bytes())?;
        Ok(String::from_utf8_lossy(&body)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(id, rules)| (id.to_string(), rules.to_string()))
            .collect())
    }

    /// On every configured tracker, as the C client does.
    pub fn delete_storage(&self, group: &str, id: &str) -> NetResult<()> {
        let req = DeleteStorageReq {
            group: group.into(),
            storage_id: Some(id.into()),
        }
        .to_bytes();
        let mut enoent = 0;
        let trackers = self.cfg.tracker_servers.clone();
        for t in &trackers {
            let c = self.connect(t)?;
            match self.exchange(c, cmd::SERVER_LIST_STORAGE, &req) {
                Ok(b) => {
                    let list = decode_storage_stats(&b)?;
                    if list.iter().any(|s| {
                        matches!(
                            s.status,
                            fdfs_common::proto::status::ONLINE | fdfs_common::proto::status::ACTIVE
                        )
                    }) {
                        return Err(NetError::Status(errno::EBUSY));
                    }
                }
                Err(NetError::Status(s)) if s == errno::ENOENT => {}
                Err(e) => return Err(e),
            }
        }
        let mut result = Ok(());
        for t in &trackers {
            let c = self.connect(t)?;
            match self.exchange(c, cmd::SERVER_DELETE_STORAGE, &req) {
                Ok(_) => {}
                Err(NetError::Status(s)) if s == errno::ENOENT => enoent += 1,
                Err(NetError::Status(s)) if s == errno::EALREADY => {
                    result = Err(NetError::Status(s))
                }
                Err(e) => return Err(e),
            }
        }
        if enoent == trackers.len() {
            return Err(NetError::Status(errno::ENOENT));
        }
        result
    }

    pub fn delete_group(&self, group: &str) -> NetResult<()> {
        let req = GroupReq {
            group: group.into(),
        }
        .to_bytes();
        for t in self.cfg.tracker_servers.clone() {
            let c = self.connect(&t)?;
            self.exchange(c, cmd::SERVER_DELETE_GROUP, &req)?;
        }
        Ok(())
    }

    /// Returns the new trunk server id.
    pub fn set_trunk_server(&self, group: &str, id: &str) -> NetResult<String> {
        let req = ListStorageReq {
            group: group.into(),
            storage_id: (!id.is_empty()).then(|| id.into()),
        }
        .to_bytes();
        let mut last = NetError::Status(errno::EOPNOTSUPP);
        for t in self.cfg.tracker_servers.clone() {
            let c = self.connect(&t)?;
            match self.exchange(c, cmd::SERVER_SET_TRUNK_SERVER, &req) {
                Ok(b) => return Ok(fdfs_common::codec::text_until_nul(&b)),
                Err(NetError::Status(s)) if s == errno::EOPNOTSUPP => last = NetError::Status(s),
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// TRACKER_CLUSTER_STAT, asked of the leader (found with GET_LEADER on any tracker).
    pub fn tracker_cluster_stat(
        &self,
        filter: fdfs_common::proto::stats::TrackerClusterStatReq,
    ) -> NetResult<Vec<fdfs_common::proto::stats::TrackerClusterStat>> {
        let leader = String::from_utf8_lossy(&self.tracker_request(cmd::SERVER_GET_LEADER, &[])?)
            .into_owned();
        let hp =
            fdfs_common::config::parse_host_port(&leader, 22122).map_err(NetError::Protocol)?;
        let body =
            self.storage_request(&hp, cmd::SERVER_TRACKER_CLUSTER_STAT, &filter.to_bytes())?;
        fdfs_common::proto::stats::TrackerClusterStat::decode_list(&body).map_err(NetError::from)
    }

    /// STORAGE_CLUSTER_STAT: `(use_storage_id, use_trunk_file, records)`.
    pub fn storage_cluster_stat(
        &self,
        filter: fdfs_common::proto::stats::StorageClusterStatReq,
    ) -> NetResult<(
        bool,
        bool,
        Vec<fdfs_common::proto::stats::StorageClusterStat>,
    )> {
        let body = self.tracker_request(cmd::SERVER_STORAGE_CLUSTER_STAT, &filter.to_bytes())?;
        fdfs_common::proto::stats::StorageClusterStat::decode_list(&body).map_err(NetError::from)
    }

    /// STORAGE_VOLUMN_STAT: `(use_trunk_file, groups)`.
    pub fn volume_stat(
        &self,
        filter: fdfs_common::proto::stats::VolumeStatReq,
    ) -> NetResult<(bool, Vec<fdfs_common::proto::stats::VolumeStat>)> {
        let body = self.tracker_request(cmd::SERVER_STORAGE_VOLUMN_STAT, &filter.to_bytes())?;
        fdfs_common::proto::stats::VolumeStat::decode_list(&body).map_err(NetError::from)
    }
}
