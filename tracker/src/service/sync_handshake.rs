//! The initial-sync handshake of a new member (docs/protocol/cluster-protocol.md 2.7-2.10):
//! SYNC_DEST_REQ picks the member it copies from, SYNC_NOTIFY tells the other trackers,
//! SYNC_DEST_QUERY and SYNC_SRC_REQ answer who syncs whom.

use super::{Reply, Session};
use crate::tracker::Tracker;
use fdfs_common::codec::Message;
use fdfs_common::codec::Reader;
use fdfs_common::proto::cluster::{GroupStorageReq, SyncSource};
use fdfs_common::proto::{errno, status};

impl Tracker {
    pub(super) fn storage_sync_dest_req(&self, session: &Session, body: &[u8]) -> Reply {
        let j = self.require_login(session)?.clone();
        Reader::new(body).finish()?;
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

    pub(super) fn storage_sync_notify(&self, session: &Session, body: &[u8]) -> Reply {
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

    pub(super) fn storage_sync_dest_query(&self, session: &Session, body: &[u8]) -> Reply {
        let j = self.require_login(session)?.clone();
        Reader::new(body).finish()?;
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

    pub(super) fn storage_sync_src_req(&self, body: &[u8]) -> Reply {
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
}
