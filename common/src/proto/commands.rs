//! The command table: every command code rfdfs knows, with its name, who answers it, who may
//! send it, whether its body is streamed rather than read whole, and the word the storage's
//! access log writes for it. The names in logs and metrics ([`name`]), the storage's
//! streamed commands, its member-only commands (`peers`) and its access log actions all come
//! from this one table; the daemons' dispatch is checked against it by `tests/malformed.rs`
//! (every command the table says a daemon answers reaches a handler).

use super::cmd::*;
use Senders::{Anyone, Members, MembersAndTrackers};
use ServedBy::{Both, Neither, Storage, Tracker};

/// Which daemon answers a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServedBy {
    Tracker,
    Storage,
    /// ACTIVE_TEST
    Both,
    /// framing (RESP, QUIT) or a command upstream no longer sends (CREATE_LINK)
    Neither,
}

/// Who may send a command to a storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Senders {
    /// anyone `allow_hosts` lets in (clients' commands)
    Anyone,
    /// members of the group
    Members,
    /// members of the group and the trackers
    MembersAndTrackers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    pub code: u8,
    /// upstream's name for it (`UPLOAD_FILE`)
    pub name: &'static str,
    pub served_by: ServedBy,
    pub senders: Senders,
    /// the handler reads the body from the connection itself (file content)
    pub streams_body: bool,
    /// the storage's access log line's action, for the commands upstream logs
    pub access_action: Option<&'static str>,
}

impl Command {
    /// Whether `daemon` (Tracker or Storage) answers this command.
    pub fn is_served_by(&self, daemon: ServedBy) -> bool {
        self.served_by == daemon || self.served_by == Both
    }
}

const fn c(
    code: u8,
    name: &'static str,
    served_by: ServedBy,
    senders: Senders,
    streams_body: bool,
    access_action: Option<&'static str>,
) -> Command {
    Command {
        code,
        name,
        served_by,
        senders,
        streams_body,
        access_action,
    }
}

/// code, name, answered by, sent by (to a storage), body streamed, access-log action
#[rustfmt::skip]
pub const COMMANDS: [Command; 87] = [
    c(RESP, "RESP", Neither, Anyone, false, None),
    c(QUIT, "QUIT", Neither, Anyone, false, None),
    c(ACTIVE_TEST, "ACTIVE_TEST", Both, Anyone, false, None),
    c(SERVER_LIST_ONE_GROUP, "SERVER_LIST_ONE_GROUP", Tracker, Anyone, false, None),
    c(SERVER_LIST_ALL_GROUPS, "SERVER_LIST_ALL_GROUPS", Tracker, Anyone, false, None),
    c(SERVER_LIST_STORAGE, "SERVER_LIST_STORAGE", Tracker, Anyone, false, None),
    c(SERVER_DELETE_STORAGE, "SERVER_DELETE_STORAGE", Tracker, Anyone, false, None),
    c(SERVER_SET_TRUNK_SERVER, "SERVER_SET_TRUNK_SERVER", Tracker, Anyone, false, None),
    c(TRUNK_ALLOC_SPACE, "TRUNK_ALLOC_SPACE", Storage, Members, false, None),
    c(TRUNK_ALLOC_CONFIRM, "TRUNK_ALLOC_CONFIRM", Storage, Members, false, None),
    c(TRUNK_FREE_SPACE, "TRUNK_FREE_SPACE", Storage, Members, false, None),
    c(TRUNK_SYNC_BINLOG, "TRUNK_SYNC_BINLOG", Storage, Members, false, None),
    c(TRUNK_GET_BINLOG_SIZE, "TRUNK_GET_BINLOG_SIZE", Storage, MembersAndTrackers, false, None),
    c(TRUNK_DELETE_BINLOG_MARKS, "TRUNK_DELETE_BINLOG_MARKS", Storage, MembersAndTrackers, false, None),
    c(TRUNK_TRUNCATE_BINLOG_FILE, "TRUNK_TRUNCATE_BINLOG_FILE", Storage, Members, false, None),
    c(SERVER_GET_LEADER, "SERVER_GET_LEADER", Tracker, Anyone, false, None),
    c(SERVER_TRACKER_CLUSTER_STAT, "SERVER_TRACKER_CLUSTER_STAT", Tracker, Anyone, false, None),
    c(SERVER_STORAGE_CLUSTER_STAT, "SERVER_STORAGE_CLUSTER_STAT", Tracker, Anyone, false, None),
    c(SERVER_STORAGE_VOLUMN_STAT, "SERVER_STORAGE_VOLUMN_STAT", Tracker, Anyone, false, None),
    c(QUERY_STORE_WITHOUT_GROUP_ONE, "QUERY_STORE_WITHOUT_GROUP_ONE", Tracker, Anyone, false, None),
    c(QUERY_FETCH_ONE, "QUERY_FETCH_ONE", Tracker, Anyone, false, None),
    c(QUERY_UPDATE, "QUERY_UPDATE", Tracker, Anyone, false, None),
    c(QUERY_STORE_WITH_GROUP_ONE, "QUERY_STORE_WITH_GROUP_ONE", Tracker, Anyone, false, None),
    c(QUERY_FETCH_ALL, "QUERY_FETCH_ALL", Tracker, Anyone, false, None),
    c(QUERY_STORE_WITHOUT_GROUP_ALL, "QUERY_STORE_WITHOUT_GROUP_ALL", Tracker, Anyone, false, None),
    c(QUERY_STORE_WITH_GROUP_ALL, "QUERY_STORE_WITH_GROUP_ALL", Tracker, Anyone, false, None),
    c(SERVER_DELETE_GROUP, "SERVER_DELETE_GROUP", Tracker, Anyone, false, None),
    c(TRACKER_JOIN_LEADER, "TRACKER_JOIN_LEADER", Tracker, Anyone, false, None),
    c(STORAGE_CHANGE_STATUS, "STORAGE_CHANGE_STATUS", Tracker, Anyone, false, None),
    c(STORAGE_GET_MY_IP, "STORAGE_GET_MY_IP", Tracker, Anyone, false, None),
    c(TRACKER_GET_SYS_FILES_START, "TRACKER_GET_SYS_FILES_START", Tracker, Anyone, false, None),
    c(TRACKER_GET_SYS_FILES_END, "TRACKER_GET_SYS_FILES_END", Tracker, Anyone, false, None),
    c(TRACKER_GET_ONE_SYS_FILE, "TRACKER_GET_ONE_SYS_FILE", Tracker, Anyone, false, None),
    c(TRACKER_GET_STATUS, "TRACKER_GET_STATUS", Tracker, Anyone, false, None),
    c(TRACKER_PING_LEADER, "TRACKER_PING_LEADER", Tracker, Anyone, false, None),
    c(TRACKER_NOTIFY_NEXT_LEADER, "TRACKER_NOTIFY_NEXT_LEADER", Tracker, Anyone, false, None),
    c(TRACKER_COMMIT_NEXT_LEADER, "TRACKER_COMMIT_NEXT_LEADER", Tracker, Anyone, false, None),
    c(TRACKER_NOTIFY_RESELECT_LEADER, "TRACKER_NOTIFY_RESELECT_LEADER", Tracker, Anyone, false, None),
    c(STORAGE_FETCH_STORAGE_IDS, "STORAGE_FETCH_STORAGE_IDS", Tracker, Anyone, false, None),
    c(STORAGE_GET_SERVER_ID, "STORAGE_GET_SERVER_ID", Tracker, Anyone, false, None),
    c(STORAGE_GET_STATUS, "STORAGE_GET_STATUS", Tracker, Anyone, false, None),
    c(STORAGE_FETCH_TRUNK_FID, "STORAGE_FETCH_TRUNK_FID", Tracker, Anyone, false, None),
    c(STORAGE_REPORT_TRUNK_FID, "STORAGE_REPORT_TRUNK_FID", Tracker, Anyone, false, None),
    c(STORAGE_REPORT_TRUNK_FREE, "STORAGE_REPORT_TRUNK_FREE", Tracker, Anyone, false, None),
    c(STORAGE_PARAMETER_REQ, "STORAGE_PARAMETER_REQ", Tracker, Anyone, false, None),
    c(STORAGE_REPORT_STATUS, "STORAGE_REPORT_STATUS", Tracker, Anyone, false, None),
    c(STORAGE_CHANGELOG_REQ, "STORAGE_CHANGELOG_REQ", Tracker, Anyone, false, None),
    c(STORAGE_REPORT_IP_CHANGED, "STORAGE_REPORT_IP_CHANGED", Tracker, Anyone, false, None),
    c(STORAGE_SYNC_DEST_QUERY, "STORAGE_SYNC_DEST_QUERY", Tracker, Anyone, false, None),
    c(STORAGE_JOIN, "STORAGE_JOIN", Tracker, Anyone, false, None),
    c(STORAGE_BEAT, "STORAGE_BEAT", Tracker, Anyone, false, None),
    c(STORAGE_REPORT_DISK_USAGE, "STORAGE_REPORT_DISK_USAGE", Tracker, Anyone, false, None),
    c(STORAGE_REPLICA_CHG, "STORAGE_REPLICA_CHG", Tracker, Anyone, false, None),
    c(STORAGE_SYNC_SRC_REQ, "STORAGE_SYNC_SRC_REQ", Tracker, Anyone, false, None),
    c(STORAGE_SYNC_DEST_REQ, "STORAGE_SYNC_DEST_REQ", Tracker, Anyone, false, None),
    c(STORAGE_SYNC_NOTIFY, "STORAGE_SYNC_NOTIFY", Tracker, Anyone, false, None),
    c(STORAGE_SYNC_REPORT, "STORAGE_SYNC_REPORT", Tracker, Anyone, false, None),
    c(STORAGE_GET_GROUP_NAME, "STORAGE_GET_GROUP_NAME", Tracker, Anyone, false, None),
    c(UPLOAD_FILE, "UPLOAD_FILE", Storage, Anyone, true, Some("upload")),
    c(DELETE_FILE, "DELETE_FILE", Storage, Anyone, false, Some("delete")),
    c(SET_METADATA, "SET_METADATA", Storage, Anyone, false, Some("set_metadata")),
    c(DOWNLOAD_FILE, "DOWNLOAD_FILE", Storage, Anyone, false, Some("download")),
    c(GET_METADATA, "GET_METADATA", Storage, Anyone, false, Some("get_metadata")),
    c(CREATE_LINK, "CREATE_LINK", Neither, Anyone, false, None),
    c(UPLOAD_SLAVE_FILE, "UPLOAD_SLAVE_FILE", Storage, Anyone, true, Some("upload")),
    c(QUERY_FILE_INFO, "QUERY_FILE_INFO", Storage, Anyone, false, Some("status")),
    c(UPLOAD_APPENDER_FILE, "UPLOAD_APPENDER_FILE", Storage, Anyone, true, Some("upload")),
    c(APPEND_FILE, "APPEND_FILE", Storage, Anyone, true, Some("append")),
    c(MODIFY_FILE, "MODIFY_FILE", Storage, Anyone, true, Some("modify")),
    c(TRUNCATE_FILE, "TRUNCATE_FILE", Storage, Anyone, false, Some("truncate")),
    c(REGENERATE_APPENDER_FILENAME, "REGENERATE_APPENDER_FILENAME", Storage, Anyone, false, Some("rename")),
    c(REPORT_SERVER_ID, "REPORT_SERVER_ID", Storage, Members, false, None),
    c(SYNC_CREATE_FILE, "SYNC_CREATE_FILE", Storage, Members, true, None),
    c(SYNC_DELETE_FILE, "SYNC_DELETE_FILE", Storage, Members, false, None),
    c(SYNC_UPDATE_FILE, "SYNC_UPDATE_FILE", Storage, Members, true, None),
    c(SYNC_CREATE_LINK, "SYNC_CREATE_LINK", Storage, Members, false, None),
    c(SYNC_APPEND_FILE, "SYNC_APPEND_FILE", Storage, Members, true, None),
    c(FETCH_ONE_PATH_BINLOG, "FETCH_ONE_PATH_BINLOG", Storage, Members, false, None),
    c(SYNC_MODIFY_FILE, "SYNC_MODIFY_FILE", Storage, Members, true, None),
    c(SYNC_TRUNCATE_FILE, "SYNC_TRUNCATE_FILE", Storage, Members, false, None),
    c(SYNC_RENAME_FILE, "SYNC_RENAME_FILE", Storage, Members, false, None),
    c(RECONCILE_DIGESTS, "RECONCILE_DIGESTS", Storage, Members, false, None),
    c(RECONCILE_LISTING, "RECONCILE_LISTING", Storage, Members, false, None),
    c(RFDFS_STATUS, "RFDFS_STATUS", Storage, Anyone, false, None),
    c(LIST_FILES, "LIST_FILES", Storage, Anyone, false, None),
    c(STORAGE_ADVERTISE, "STORAGE_ADVERTISE", Tracker, Anyone, false, None),
    c(LIST_ADVERTISED, "LIST_ADVERTISED", Tracker, Anyone, false, None),
];

/// Each code's place in [`COMMANDS`] (`u8::MAX`: unknown), built at compile time.
const INDEX: [u8; 256] = {
    let mut index = [u8::MAX; 256];
    let mut i = 0;
    while i < COMMANDS.len() {
        index[COMMANDS[i].code as usize] = i as u8;
        i += 1;
    }
    index
};

/// The table's entry for `code`.
pub fn find(code: u8) -> Option<&'static Command> {
    COMMANDS.get(INDEX[code as usize] as usize)
}

/// The command's name in upstream's header (`UPLOAD_FILE`), for logs and metrics.
pub fn name(code: u8) -> Option<&'static str> {
    find(code).map(|c| c.name)
}

/// The codes `daemon` answers, in table order.
pub fn served_by(daemon: ServedBy) -> impl Iterator<Item = &'static Command> {
    COMMANDS.iter().filter(move |c| c.is_served_by(daemon))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_once_and_found() {
        let mut seen = std::collections::HashSet::new();
        for c in &COMMANDS {
            assert!(seen.insert(c.code), "{} twice", c.name);
            assert_eq!(find(c.code), Some(c));
        }
        assert_eq!(find(0), None);
        assert_eq!(find(UPLOAD_FILE).unwrap().access_action, Some("upload"));
        assert!(find(SYNC_APPEND_FILE).unwrap().streams_body);
        assert_eq!(find(TRUNK_FREE_SPACE).unwrap().senders, Members);
        assert_eq!(find(RESP).unwrap().served_by, Neither);
        assert!(find(ACTIVE_TEST).unwrap().is_served_by(Tracker));
        assert!(find(ACTIVE_TEST).unwrap().is_served_by(Storage));
        assert_eq!(find(DOWNLOAD_FILE).unwrap().senders, Anyone);
        assert_eq!(
            find(TRUNK_GET_BINLOG_SIZE).unwrap().senders,
            MembersAndTrackers
        );
    }
}
