//! FastDFS packets: the 10-byte header, command and status codes, and one module per message
//! family. Layouts follow `docs/protocol/*.md`; every integer is big-endian.

pub mod advertise;
pub mod changelog;
pub mod client;
pub mod cluster;
pub mod commands;
pub mod leader;
pub mod listing;
pub mod parameters;
pub mod rfdfs;
pub mod stats;
pub mod storage;
pub mod sync;
pub mod trunk;

use crate::codec::{DecodeResult, Reader};

pub const HEADER_LEN: usize = 10;
pub const GROUP_NAME_MAX: usize = 16;
pub const STORAGE_ID_MAX: usize = 16;
pub const IPV4_ADDR_SIZE: usize = 16;
pub const IPV6_ADDR_SIZE: usize = 46;
pub const VERSION_SIZE: usize = 8;
pub const FILE_EXT_MAX: usize = 6;
pub const SLAVE_PREFIX_MAX: usize = 16;
pub const FILENAME_MAX: usize = 128;
pub const VERSION: &str = "6.16.1";

/// Command codes (tracker_proto.h / storage's own list).
pub mod cmd {
    pub const RESP: u8 = 100;
    pub const QUIT: u8 = 82;
    pub const ACTIVE_TEST: u8 = 111;

    // tracker, client-facing
    pub const SERVER_LIST_ONE_GROUP: u8 = 90;
    pub const SERVER_LIST_ALL_GROUPS: u8 = 91;
    pub const SERVER_LIST_STORAGE: u8 = 92;
    pub const SERVER_DELETE_STORAGE: u8 = 93;
    pub const SERVER_SET_TRUNK_SERVER: u8 = 94;
    pub const SERVER_GET_LEADER: u8 = 95;
    pub const SERVER_TRACKER_CLUSTER_STAT: u8 = 96;
    pub const SERVER_STORAGE_CLUSTER_STAT: u8 = 97;
    pub const SERVER_STORAGE_VOLUMN_STAT: u8 = 98;
    pub const QUERY_STORE_WITHOUT_GROUP_ONE: u8 = 101;
    pub const QUERY_FETCH_ONE: u8 = 102;
    pub const QUERY_UPDATE: u8 = 103;
    pub const QUERY_STORE_WITH_GROUP_ONE: u8 = 104;
    pub const QUERY_FETCH_ALL: u8 = 105;
    pub const QUERY_STORE_WITHOUT_GROUP_ALL: u8 = 106;
    pub const QUERY_STORE_WITH_GROUP_ALL: u8 = 107;
    pub const SERVER_DELETE_GROUP: u8 = 108;

    // storage -> tracker
    pub const TRACKER_JOIN_LEADER: u8 = 58;
    pub const STORAGE_CHANGE_STATUS: u8 = 59;
    pub const STORAGE_GET_MY_IP: u8 = 60;
    pub const TRACKER_GET_SYS_FILES_START: u8 = 61;
    pub const TRACKER_GET_SYS_FILES_END: u8 = 62;
    pub const TRACKER_GET_ONE_SYS_FILE: u8 = 63;
    pub const TRACKER_GET_STATUS: u8 = 64;
    pub const TRACKER_PING_LEADER: u8 = 65;
    pub const TRACKER_NOTIFY_NEXT_LEADER: u8 = 66;
    pub const TRACKER_COMMIT_NEXT_LEADER: u8 = 67;
    pub const TRACKER_NOTIFY_RESELECT_LEADER: u8 = 68;
    pub const STORAGE_FETCH_STORAGE_IDS: u8 = 69;
    pub const STORAGE_GET_SERVER_ID: u8 = 70;
    pub const STORAGE_GET_STATUS: u8 = 71;
    pub const STORAGE_FETCH_TRUNK_FID: u8 = 72;
    pub const STORAGE_REPORT_TRUNK_FID: u8 = 73;
    pub const STORAGE_REPORT_TRUNK_FREE: u8 = 74;
    pub const STORAGE_PARAMETER_REQ: u8 = 75;
    pub const STORAGE_REPORT_STATUS: u8 = 76;
    pub const STORAGE_CHANGELOG_REQ: u8 = 77;
    pub const STORAGE_REPORT_IP_CHANGED: u8 = 78;
    pub const STORAGE_SYNC_DEST_QUERY: u8 = 79;
    pub const STORAGE_JOIN: u8 = 81;
    pub const STORAGE_BEAT: u8 = 83;
    pub const STORAGE_REPORT_DISK_USAGE: u8 = 84;
    pub const STORAGE_REPLICA_CHG: u8 = 85;
    pub const STORAGE_SYNC_SRC_REQ: u8 = 86;
    pub const STORAGE_SYNC_DEST_REQ: u8 = 87;
    pub const STORAGE_SYNC_NOTIFY: u8 = 88;
    pub const STORAGE_SYNC_REPORT: u8 = 89;
    pub const STORAGE_GET_GROUP_NAME: u8 = 109;

    // storage, client-facing
    pub const UPLOAD_FILE: u8 = 11;
    pub const DELETE_FILE: u8 = 12;
    pub const SET_METADATA: u8 = 13;
    pub const DOWNLOAD_FILE: u8 = 14;
    pub const GET_METADATA: u8 = 15;
    pub const CREATE_LINK: u8 = 20;
    pub const UPLOAD_SLAVE_FILE: u8 = 21;
    pub const QUERY_FILE_INFO: u8 = 22;
    pub const UPLOAD_APPENDER_FILE: u8 = 23;
    pub const APPEND_FILE: u8 = 24;
    pub const MODIFY_FILE: u8 = 34;
    pub const TRUNCATE_FILE: u8 = 36;
    pub const REGENERATE_APPENDER_FILENAME: u8 = 38;

    // storage <-> storage
    pub const REPORT_SERVER_ID: u8 = 9;
    pub const SYNC_CREATE_FILE: u8 = 16;
    pub const SYNC_DELETE_FILE: u8 = 17;
    pub const SYNC_UPDATE_FILE: u8 = 18;
    pub const SYNC_CREATE_LINK: u8 = 19;
    pub const SYNC_APPEND_FILE: u8 = 25;
    pub const FETCH_ONE_PATH_BINLOG: u8 = 26;
    // trunk server <-> storages, tracker -> storage (docs/protocol/sync-and-storage-layout.md 6.5)
    pub const TRUNK_ALLOC_SPACE: u8 = 27;
    pub const TRUNK_ALLOC_CONFIRM: u8 = 28;
    pub const TRUNK_FREE_SPACE: u8 = 29;
    pub const TRUNK_SYNC_BINLOG: u8 = 30;
    pub const TRUNK_GET_BINLOG_SIZE: u8 = 31;
    pub const TRUNK_DELETE_BINLOG_MARKS: u8 = 32;
    pub const TRUNK_TRUNCATE_BINLOG_FILE: u8 = 33;
    pub const SYNC_MODIFY_FILE: u8 = 35;
    pub const SYNC_TRUNCATE_FILE: u8 = 37;
    pub const SYNC_RENAME_FILE: u8 = 40;

    // rfdfs's own storage commands (proto::rfdfs); upstream has no such codes and a C storage
    // refuses them, so rfdfs only sends them to members that are rfdfs storages too
    pub const RECONCILE_DIGESTS: u8 = 240;
    pub const RECONCILE_LISTING: u8 = 241;
    pub const RFDFS_STATUS: u8 = 242;
    pub const LIST_FILES: u8 = 245;
    // rfdfs's own tracker commands (proto::advertise); only an rfdfs storage sends
    // STORAGE_ADVERTISE, and only when it has advertise_address lines
    pub const STORAGE_ADVERTISE: u8 = 243;
    pub const LIST_ADVERTISED: u8 = 244;
}

/// Linux errno values that travel in the status byte (the numbers are protocol, whatever the host).
pub mod errno {
    pub const EPERM: u8 = 1;
    pub const ENOENT: u8 = 2;
    pub const EIO: u8 = 5;
    pub const EAGAIN: u8 = 11;
    pub const ENOMEM: u8 = 12;
    pub const EACCES: u8 = 13;
    pub const EFAULT: u8 = 14;
    pub const EBUSY: u8 = 16;
    pub const EEXIST: u8 = 17;
    pub const EISDIR: u8 = 21;
    pub const EINVAL: u8 = 22;
    pub const ENOSPC: u8 = 28;
    pub const ENAMETOOLONG: u8 = 36;
    pub const ENONET: u8 = 64;
    pub const EOPNOTSUPP: u8 = 95;
    pub const ECONNREFUSED: u8 = 111;
    pub const EALREADY: u8 = 114;
    pub const EINPROGRESS: u8 = 115;
    pub const ECONNRESET: u8 = 104;
    pub const ETIMEDOUT: u8 = 110;

    /// The status a failed I/O operation is reported with, on the wire and by the tools: the
    /// OS error number where there is one (all fit a status byte), else the nearest errno
    /// of its kind.
    pub fn of_io(e: &std::io::Error) -> u8 {
        use std::io::ErrorKind;
        match e.raw_os_error() {
            Some(n) if n > 0 && n < 256 => n as u8,
            _ => match e.kind() {
                ErrorKind::NotFound => ENOENT,
                ErrorKind::PermissionDenied => EACCES,
                ErrorKind::AlreadyExists => EEXIST,
                ErrorKind::TimedOut | ErrorKind::WouldBlock => ETIMEDOUT,
                ErrorKind::ConnectionRefused => ECONNREFUSED,
                ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset => ECONNRESET,
                _ => EIO,
            },
        }
    }

    /// The text `strerror` gives on Linux, which the client tools print.
    pub fn message(code: i32) -> String {
        match code {
            0 => "Success".into(),
            1 => "Operation not permitted".into(),
            2 => "No such file or directory".into(),
            5 => "Input/output error".into(),
            11 => "Resource temporarily unavailable".into(),
            12 => "Cannot allocate memory".into(),
            13 => "Permission denied".into(),
            14 => "Bad address".into(),
            16 => "Device or resource busy".into(),
            17 => "File exists".into(),
            20 => "Not a directory".into(),
            21 => "Is a directory".into(),
            22 => "Invalid argument".into(),
            28 => "No space left on device".into(),
            32 => "Broken pipe".into(),
            36 => "File name too long".into(),
            61 => "No data available".into(),
            64 => "Machine is not on the network".into(),
            95 => "Operation not supported".into(),
            98 => "Address already in use".into(),
            103 => "Software caused connection abort".into(),
            104 => "Connection reset by peer".into(),
            107 => "Transport endpoint is not connected".into(),
            110 => "Connection timed out".into(),
            111 => "Connection refused".into(),
            113 => "No route to host".into(),
            114 => "Operation already in progress".into(),
            115 => "Operation now in progress".into(),
            n => format!("Unknown error {n}"),
        }
    }
}

/// Storage server status as the tracker keeps it (tracker_types.h; numeric order matters).
pub mod status {
    pub const INIT: u8 = 0;
    pub const WAIT_SYNC: u8 = 1;
    pub const SYNCING: u8 = 2;
    pub const IP_CHANGED: u8 = 3;
    pub const DELETED: u8 = 4;
    pub const OFFLINE: u8 = 5;
    pub const ONLINE: u8 = 6;
    pub const ACTIVE: u8 = 7;
    pub const RECOVERY: u8 = 9;
    pub const NONE: u8 = 99;

    /// No longer a member under this id: deleted, moved to another address, or not listed.
    pub fn gone(s: u8) -> bool {
        matches!(s, DELETED | IP_CHANGED | NONE)
    }

    pub fn name(s: u8) -> &'static str {
        match s {
            INIT => "INIT",
            WAIT_SYNC => "WAIT_SYNC",
            SYNCING => "SYNCING",
            IP_CHANGED => "IP_CHANGED",
            DELETED => "DELETED",
            OFFLINE => "OFFLINE",
            ONLINE => "ONLINE",
            ACTIVE => "ACTIVE",
            RECOVERY => "RECOVERY",
            _ => "UNKNOWN",
        }
    }
}

/// Read/write mode of a storage in its group (storage_ids.conf `rw=`).
pub mod rw_mode {
    pub const NONE: u8 = 0;
    pub const WRITE: u8 = 2;
    pub const READ: u8 = 4;
    pub const BOTH: u8 = 6;
}

/// The frame header that starts every request and response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub pkg_len: i64,
    pub cmd: u8,
    pub status: u8,
}

impl Header {
    pub fn new(cmd: u8, pkg_len: usize) -> Self {
        Header {
            pkg_len: pkg_len as i64,
            cmd,
            status: 0,
        }
    }

    pub fn response(status: u8, pkg_len: usize) -> Self {
        Header {
            pkg_len: pkg_len as i64,
            cmd: cmd::RESP,
            status,
        }
    }

    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(&self.pkg_len.to_be_bytes());
        b[8] = self.cmd;
        b[9] = self.status;
        b
    }

    pub fn decode(b: &[u8]) -> DecodeResult<Header> {
        let mut r = Reader::new(b);
        let pkg_len = r.i64("pkg_len")?;
        let cmd = r.u8("cmd")?;
        let status = r.u8("status")?;
        r.finish()?;
        Ok(Header {
            pkg_len,
            cmd,
            status,
        })
    }

    /// Header plus body in one buffer, so that the header never goes out in a write of its own
    /// (several clients read the 10 header bytes with a single `recv`).
    pub fn frame(cmd: u8, status: u8, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER_LEN + body.len());
        v.extend_from_slice(
            &Header {
                pkg_len: body.len() as i64,
                cmd,
                status,
            }
            .to_bytes(),
        );
        v.extend_from_slice(body);
        v
    }
}

/// Whether a group name is acceptable: 1..16 ASCII letters and digits.
pub fn valid_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= GROUP_NAME_MAX
        && name.bytes().all(|c| c.is_ascii_alphanumeric())
}

/// Characters upstream allows in ext names and slave prefixes.
pub fn valid_name_chars(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_test_bytes() {
        let h = Header::new(cmd::ACTIVE_TEST, 0);
        assert_eq!(h.to_bytes(), [0, 0, 0, 0, 0, 0, 0, 0, 0x6f, 0]);
        assert_eq!(Header::decode(&h.to_bytes()).unwrap(), h);
    }
}
