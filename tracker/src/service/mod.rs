//! One function per tracker command, named after it. Each returns the reply body or an errno;
//! the tracker keeps the connection open after an error (upstream behaviour), except for
//! requests it cannot even frame.
//!
//! This file dispatches and answers; the commands are grouped by who sends them: `membership`
//! (a storage joining and beating), `sync_handshake` (a new member's initial sync),
//! `storage_queries` (what a storage asks about itself), `trunk_reports`, `client_queries`
//! (QUERY_*), `admin` (SERVER_*).

mod admin;
mod advertised;
mod client_queries;
mod membership;
mod storage_queries;
mod sync_handshake;
mod trunk_reports;

use crate::tracker::Tracker;
use fdfs_common::codec::Reader;
use fdfs_common::proto::{cmd, errno, Header};
use fdfs_common::refusal::Refusal;
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
            cmd::STORAGE_ADVERTISE => self.storage_advertise(session, body),
            cmd::LIST_ADVERTISED => self.list_advertised(body),
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
                Reader::new(body).finish()?;
                Ok(Vec::new())
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
