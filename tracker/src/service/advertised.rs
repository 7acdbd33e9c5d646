//! Advertised addresses (rfdfs's own; `fdfs_common::proto::advertise`): STORAGE_ADVERTISE, by
//! which a logged-in storage says what to hand clients instead of the address it joined from,
//! and LIST_ADVERTISED, what `fdfs_monitor` shows beside each storage. The rules live with the
//! storage's record until its next JOIN, which forgets them (a storage restarted without
//! `advertise_address` lines is handed out at its joined address again).

use super::{Reply, Session};
use crate::tracker::Tracker;
use fdfs_common::codec::Message;
use fdfs_common::proto::advertise::AdvertiseReq;
use fdfs_common::proto::client::GroupReq;
use fdfs_common::proto::errno;
use fdfs_common::refusal::Refusal;

impl Tracker {
    pub(super) fn storage_advertise(&self, session: &Session, body: &[u8]) -> Reply {
        let j = self.require_login(session)?.clone();
        let req = AdvertiseReq::from_bytes(body)?;
        if req.group != j.group {
            return Err(Refusal::invalid(
                "group_name",
                format!("{} is not the joined group {}", req.group, j.group),
            ));
        }
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&j.group).ok_or(errno::ENOENT)?;
        let s = g.storage_mut(&j.id).ok_or(errno::ENOENT)?;
        if s.advertise != req.rules {
            let text: Vec<String> = req.rules.iter().map(|r| r.to_string()).collect();
            log::info!(
                "storage server {}::{} ({}) advertises {}",
                j.group,
                j.id,
                s.ip,
                text.join("; ")
            );
            s.advertise = req.rules;
        }
        Ok(Vec::new())
    }

    pub(super) fn list_advertised(&self, body: &[u8]) -> Reply {
        let GroupReq { group } = GroupReq::from_bytes(body)?;
        let st = self.state.lock();
        let g = st.groups.get(&group).ok_or(errno::ENOENT)?;
        let mut text = String::new();
        for s in g.storages.iter().filter(|s| !s.advertise.is_empty()) {
            let rules: Vec<String> = s.advertise.iter().map(|r| r.to_string()).collect();
            text += &format!("{} {}\n", s.id, rules.join(";"));
        }
        Ok(text.into_bytes())
    }
}
