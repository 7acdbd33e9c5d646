//! Who may send what only a member of the group sends (issue 29): replication (REPORT_SERVER_ID
//! and the SYNC_* commands), the trunk commands, FETCH_ONE_PATH_BINLOG and reconcile are taken
//! only from an address of a member as the tracker lists it (DELETED and IP_CHANGED records
//! aside) or from this storage's own; TRUNK_GET_BINLOG_SIZE and TRUNK_DELETE_BINLOG_MARKS also
//! from a configured tracker, which asks them when it chooses the trunk server. Anyone else is
//! answered EACCES and the connection closed.
//!
//! Upstream takes these commands from whoever connects (`allow_hosts` aside): one SYNC_DELETE_FILE
//! from any host on the network deletes a live file. rfdfs's rule is stricter; C members of a
//! mixed group are listed by the tracker like any member, so they keep replicating.
//!
//! Until the tracker has listed the group (just after a start) members are refused too; their
//! sync threads try again a few seconds later.

use crate::storage::Storage;
use fdfs_common::proto::commands::{self, Senders};
use fdfs_common::proto::status;
use fdfs_common::server::Conn;

/// Who may send `command` (the command table's word for it).
pub fn senders(command: u8) -> Senders {
    commands::find(command).map_or(Senders::Anyone, |c| c.senders)
}

impl Storage {
    /// Whether `conn` may send `command`; a refusal is logged once a minute for each address.
    /// Clients' commands (every upload and download) cost one match, no address text.
    pub(crate) fn may_send(&self, command: u8, conn: &Conn) -> bool {
        let who = senders(command);
        if who == Senders::Anyone {
            return true;
        }
        let ip = conn.peer_ip();
        let ip = ip.as_str();
        let allowed = self.is_member_address(ip)
            || (who == Senders::MembersAndTrackers && self.is_tracker_address(ip));
        if !allowed {
            let now = fdfs_common::now();
            let mut logged = self.refused_peers.lock();
            if logged.get(ip).is_none_or(|&t| now - t >= 60) {
                logged.insert(ip.to_string(), now);
                log::warn!(
                    "client ip: {ip} is no member of group {}: cmd {command} refused (and any \
                     more from it this minute)",
                    self.group
                );
            }
        }
        allowed
    }

    /// An address of a member the tracker lists, of a storage_ids entry of the group, or our own.
    fn is_member_address(&self, ip: &str) -> bool {
        if ip == *self.my_ip.read() {
            return true;
        }
        let listed = self
            .members
            .read()
            .iter()
            .any(|b| b.ip == ip && !matches!(b.status, status::DELETED | status::IP_CHANGED));
        listed
            || self
                .storage_ids
                .read()
                .entries
                .iter()
                .any(|e| e.group == self.group && e.ips.iter().any(|a| a == ip))
    }

    /// An address of a configured tracker (names resolved).
    fn is_tracker_address(&self, ip: &str) -> bool {
        self.cfg.tracker_servers.iter().any(|t| t.is_at(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fdfs_common::proto::cmd;

    #[test]
    fn client_commands_are_anyones_and_replication_is_members() {
        assert_eq!(senders(cmd::UPLOAD_FILE), Senders::Anyone);
        assert_eq!(senders(cmd::DOWNLOAD_FILE), Senders::Anyone);
        assert_eq!(senders(cmd::RFDFS_STATUS), Senders::Anyone);
        assert_eq!(senders(cmd::SYNC_DELETE_FILE), Senders::Members);
        assert_eq!(senders(cmd::TRUNK_FREE_SPACE), Senders::Members);
        assert_eq!(
            senders(cmd::TRUNK_GET_BINLOG_SIZE),
            Senders::MembersAndTrackers
        );
    }
}
