//! The trunk server's reports (docs/protocol/cluster-protocol.md 5.6): FETCH_TRUNK_FID,
//! REPORT_TRUNK_FID and REPORT_TRUNK_FREE.

use super::{Reply, Session};
use crate::tracker::Tracker;
use fdfs_common::codec::Message;
use fdfs_common::codec::Reader;
use fdfs_common::proto::errno;
use fdfs_common::proto::trunk::{TrunkFileId, TrunkFreeMb};
use fdfs_common::refusal::Refusal;

impl Tracker {
    /// FETCH_TRUNK_FID: the group's current trunk file id, for a new trunk server.
    pub(super) fn storage_fetch_trunk_fid(&self, session: &Session, body: &[u8]) -> Reply {
        let j = self.require_login(session)?.clone();
        Reader::new(body).finish()?;
        let st = self.state.lock();
        let g = st.group(&j.group).ok_or(errno::ENOENT)?;
        Ok(TrunkFileId {
            id: g.current_trunk_file_id as i32,
        }
        .to_bytes())
    }

    /// REPORT_TRUNK_FID: the trunk server's current trunk file id; the group keeps the largest.
    pub(super) fn storage_report_trunk_fid(&self, session: &Session, body: &[u8]) -> Reply {
        let j = self.require_login(session)?.clone();
        let id = TrunkFileId::from_bytes(body)?.id;
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&j.group).ok_or(errno::ENOENT)?;
        if id < 0 || g.trunk_server != j.id {
            return Err(Refusal::invalid(
                "trunk_file_id",
                format!("{id} from {}, not the trunk server", j.id),
            ));
        }
        if i64::from(id) > g.current_trunk_file_id {
            g.current_trunk_file_id = id.into();
            st.dirty = true;
        }
        Ok(Vec::new())
    }

    /// REPORT_TRUNK_FREE: the trunk server's free trunk space in MB.
    pub(super) fn storage_report_trunk_free(&self, session: &Session, body: &[u8]) -> Reply {
        let j = self.require_login(session)?.clone();
        let mb = TrunkFreeMb::from_bytes(body)?.mb;
        let mut st = self.state.lock();
        let g = st.groups.get_mut(&j.group).ok_or(errno::ENOENT)?;
        if mb < 0 || g.trunk_server != j.id {
            return Err(Refusal::invalid(
                "free_mb",
                format!("{mb} from {}, not the trunk server", j.id),
            ));
        }
        g.trunk_free_mb = mb;
        Ok(Vec::new())
    }
}
