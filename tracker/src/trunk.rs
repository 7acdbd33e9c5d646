//! Trunk servers (docs/protocol/cluster-protocol.md 5.6, 6.8): with `use_trunk_file`, the leader
//! gives each group one storage that allocates trunk space for all its members. The writable member
//! with the largest trunk binlog is chosen (asked with TRUNK_GET_BINLOG_SIZE); a storage taking
//! over from another first gets TRUNK_DELETE_BINLOG_MARKS; every change goes to
//! `logs/trunk_server_change.log`, to the group's storages (their next change list) and to the
//! follower trackers (their next PING_LEADER answer).

use crate::select;
use crate::state::Group;
use crate::tracker::Tracker;
use fdfs_common::codec::Message;
use fdfs_common::config::HostPort;
use fdfs_common::net;
use fdfs_common::proto::trunk::TrunkBinlogSize;
use fdfs_common::proto::{cmd, errno, status};
use std::io::Write;

/// A member the tracker can reach: id and `ip:port`.
#[derive(Debug, Clone)]
struct Member {
    id: String,
    ip: String,
    port: u16,
}

impl Tracker {
    /// Leader duty at every `check_active_interval` tick and when a storage becomes ACTIVE:
    /// groups without a live trunk server get one.
    pub fn select_trunk_servers(&self) {
        if !self.cfg.use_trunk_file || !self.am_leader() {
            return;
        }
        let now = fdfs_common::now();
        let limit = 2 * self.cfg.check_active_interval as i64;
        let wanted: Vec<(String, Vec<Member>)> = {
            let mut st = self.state.lock();
            let mut wanted = Vec::new();
            for g in st.groups.values_mut() {
                if let Some(s) = g.storages.iter().find(|s| s.id == g.trunk_server) {
                    // upstream's rule: the role stays with a holder that beat within the limit,
                    // even while it is offline. A trunk server that restarts keeps its role, and
                    // its own binlog (the others' copies lag behind it)
                    let alive = !status::gone(s.status) && now - s.last_heart_beat_time <= limit;
                    if alive {
                        continue;
                    }
                    log::warn!(
                        "trunk server {} of group {} is gone, selecting another",
                        g.trunk_server,
                        g.name
                    );
                }
                let members = candidates(g, &self.cfg);
                if !members.is_empty() {
                    wanted.push((g.name.clone(), members));
                }
            }
            wanted
        };
        for (group, members) in wanted {
            if let Some(id) = self.choose_by_binlog_size(&members) {
                if let Err(code) = self.set_trunk_server(&group, &id) {
                    log::warn!("set trunk server {id} of group {group} fail, errno: {code}");
                }
            }
        }
    }

    /// Upstream's rule: the group's store server first, then the others in id order; the last
    /// one whose trunk binlog is larger than the store server's wins, else the store server.
    fn choose_by_binlog_size(&self, members: &[Member]) -> Option<String> {
        let first = members.first()?;
        let base = self.trunk_binlog_size(first)?;
        let mut chosen = first.id.clone();
        for m in &members[1..] {
            if self.trunk_binlog_size(m).is_some_and(|size| size > base) {
                chosen = m.id.clone();
            }
        }
        Some(chosen)
    }

    fn trunk_binlog_size(&self, m: &Member) -> Option<i64> {
        let b = self.ask_storage(m, cmd::TRUNK_GET_BINLOG_SIZE).ok()?;
        TrunkBinlogSize::from_bytes(&b).ok().map(|s| s.size)
    }

    fn ask_storage(&self, m: &Member, command: u8) -> Result<Vec<u8>, net::NetError> {
        self.pooled_request(&HostPort::new(m.ip.as_str(), m.port), |s| {
            net::request(s, command, &[])
        })
    }

    /// Make `id` the trunk server of `group`: TRUNK_DELETE_BINLOG_MARKS first when the role
    /// moves from another storage, then the change is recorded, logged and announced.
    pub(crate) fn set_trunk_server(&self, group: &str, id: &str) -> Result<(), u8> {
        let (member, last) = {
            let st = self.state.lock();
            let g = st.group(group).ok_or(errno::ENOENT)?;
            let s = g
                .storages
                .iter()
                .find(|s| s.id == id)
                .ok_or(errno::ENOENT)?;
            let member = Member {
                id: s.id.clone(),
                ip: s.ip.clone(),
                port: u16::try_from(s.port).map_err(|_| errno::EINVAL)?,
            };
            (member, g.last_trunk_server.clone())
        };
        if !last.is_empty() && last != id {
            self.ask_storage(&member, cmd::TRUNK_DELETE_BINLOG_MARKS)
                .map_err(|e| e.errno() as u8)?;
        }
        let mut st = self.state.lock();
        let g = st.groups.get_mut(group).ok_or(errno::ENOENT)?;
        let old = if g.trunk_server.is_empty() {
            g.last_trunk_server.clone()
        } else {
            g.trunk_server.clone()
        };
        let line = format!(
            "[{}] {group}  {}  =>  {}\n",
            fdfs_common::log::format_time(fdfs_common::now()),
            self.trunk_server_text(g, &old),
            self.trunk_server_text(g, id)
        );
        let changed = g.trunk_server != id;
        g.trunk_server = id.to_string();
        g.last_trunk_server = id.to_string();
        // announced again either way: a storage that restarted meanwhile learns it
        g.trunk_change += 1;
        self.trunk_changes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        st.dirty = true;
        drop(st);
        if changed {
            log::info!("group {group}, trunk server: {id}");
            self.log_trunk_change(&line);
        }
        Ok(())
    }

    /// `ip:port`, or `id/ip:port` with storage ids; `-` (`-/-`) for none.
    fn trunk_server_text(&self, g: &Group, id: &str) -> String {
        let addr = g
            .storages
            .iter()
            .find(|s| s.id == id && !id.is_empty())
            .map(|s| format!("{}:{}", s.ip, s.port));
        match (self.cfg.use_storage_id, addr) {
            (true, Some(a)) => format!("{id}/{a}"),
            (true, None) if !id.is_empty() => format!("{id}/-"),
            (true, None) => "-/-".into(),
            (false, Some(a)) => a,
            (false, None) => "-".into(),
        }
    }

    fn log_trunk_change(&self, line: &str) {
        let path = self
            .cfg
            .server
            .base_path
            .join("logs")
            .join("trunk_server_change.log");
        let r = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = r {
            log::error!("write {} fail: {e}", path.display());
        }
    }
}

/// Writable members, the store server first, then the others in id order.
fn candidates(g: &Group, cfg: &fdfs_common::config::TrackerConfig) -> Vec<Member> {
    let Some(first) = select::group_store_server(g, cfg) else {
        return Vec::new();
    };
    let member = |i: usize| {
        let s = &g.storages[i];
        u16::try_from(s.port).ok().map(|port| Member {
            id: s.id.clone(),
            ip: s.ip.clone(),
            port,
        })
    };
    std::iter::once(first)
        .chain(g.writable().into_iter().filter(|&i| i != first))
        .filter_map(member)
        .collect()
}
