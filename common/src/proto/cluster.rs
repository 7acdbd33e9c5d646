//! Storage <-> tracker messages (docs/protocol/cluster-protocol.md sections 0 and 2).

use super::{GROUP_NAME_MAX, IPV6_ADDR_SIZE, STORAGE_ID_MAX, VERSION_SIZE};
use crate::codec::{DecodeError, DecodeResult, Message, Reader, Writer};

/// Names of the 42 i64 counters of the statistics block, in wire order (also the order
/// `fdfs_monitor` prints them in).
pub const STAT_NAMES: [&str; 42] = [
    "total_upload_count",
    "success_upload_count",
    "total_append_count",
    "success_append_count",
    "total_modify_count",
    "success_modify_count",
    "total_truncate_count",
    "success_truncate_count",
    "total_set_meta_count",
    "success_set_meta_count",
    "total_delete_count",
    "success_delete_count",
    "total_download_count",
    "success_download_count",
    "total_get_meta_count",
    "success_get_meta_count",
    "total_create_link_count",
    "success_create_link_count",
    "total_delete_link_count",
    "success_delete_link_count",
    "total_upload_bytes",
    "success_upload_bytes",
    "total_append_bytes",
    "success_append_bytes",
    "total_modify_bytes",
    "success_modify_bytes",
    "total_download_bytes",
    "success_download_bytes",
    "total_sync_in_bytes",
    "success_sync_in_bytes",
    "total_sync_out_bytes",
    "success_sync_out_bytes",
    "total_file_open_count",
    "success_file_open_count",
    "total_file_read_count",
    "success_file_read_count",
    "total_file_write_count",
    "success_file_write_count",
    "last_source_update",
    "last_sync_update",
    "last_synced_timestamp",
    "last_heart_beat_time",
];

/// Index of each counter in [`StatBlock::counters`].
pub mod stat {
    pub const TOTAL_UPLOAD_COUNT: usize = 0;
    pub const TOTAL_APPEND_COUNT: usize = 2;
    pub const TOTAL_MODIFY_COUNT: usize = 4;
    pub const TOTAL_TRUNCATE_COUNT: usize = 6;
    pub const TOTAL_SET_META_COUNT: usize = 8;
    pub const TOTAL_DELETE_COUNT: usize = 10;
    pub const TOTAL_DOWNLOAD_COUNT: usize = 12;
    pub const TOTAL_GET_META_COUNT: usize = 14;
    pub const TOTAL_CREATE_LINK_COUNT: usize = 16;
    pub const TOTAL_DELETE_LINK_COUNT: usize = 18;
    pub const TOTAL_UPLOAD_BYTES: usize = 20;
    pub const TOTAL_APPEND_BYTES: usize = 22;
    pub const TOTAL_MODIFY_BYTES: usize = 24;
    pub const TOTAL_DOWNLOAD_BYTES: usize = 26;
    pub const TOTAL_SYNC_IN_BYTES: usize = 28;
    pub const TOTAL_SYNC_OUT_BYTES: usize = 30;
    pub const TOTAL_FILE_OPEN_COUNT: usize = 32;
    pub const TOTAL_FILE_READ_COUNT: usize = 34;
    pub const TOTAL_FILE_WRITE_COUNT: usize = 36;
    pub const LAST_SOURCE_UPDATE: usize = 38;
    pub const LAST_SYNC_UPDATE: usize = 39;
    pub const LAST_SYNCED_TIMESTAMP: usize = 40;
    pub const LAST_HEART_BEAT_TIME: usize = 41;
}

/// The 348-byte statistics block of a storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatBlock {
    /// connection alloc, current and max counts
    pub connections: [i32; 3],
    pub counters: [i64; 42],
}

impl Default for StatBlock {
    fn default() -> Self {
        StatBlock {
            connections: [0; 3],
            counters: [0; 42],
        }
    }
}

impl StatBlock {
    pub const LEN: usize = 348;
}

impl Message for StatBlock {
    fn encode(&self, out: &mut Vec<u8>) {
        for c in self.connections {
            out.put_i32(c);
        }
        for c in self.counters {
            out.put_i64(c);
        }
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let mut s = StatBlock::default();
        for c in s.connections.iter_mut() {
            *c = r.i32("connection_count")?;
        }
        for c in s.counters.iter_mut() {
            *c = r.i64("stat_counter")?;
        }
        Ok(s)
    }
}

/// The 67-byte storage brief (change lists, REPORT_STATUS, REPLICA_CHG, GET_STATUS).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Brief {
    pub status: u8,
    pub port: i32,
    pub id: String,
    pub ip: String,
}

impl Brief {
    pub const LEN: usize = 67;
}

impl Message for Brief {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.status);
        out.put_i32(self.port);
        out.put_fixed_str(&self.id, STORAGE_ID_MAX);
        out.put_fixed_str(&self.ip, IPV6_ADDR_SIZE);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(Brief {
            status: r.u8("status")?,
            port: r.i32("port")?,
            id: r.fixed_str(STORAGE_ID_MAX, "id")?,
            ip: r.fixed_str(IPV6_ADDR_SIZE, "ip_addr")?,
        })
    }
}

/// STORAGE_JOIN request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinReq {
    pub group: String,
    pub storage_port: i64,
    pub store_path_count: i64,
    pub subdir_count_per_path: i64,
    pub upload_priority: i64,
    pub join_time: i64,
    pub up_time: i64,
    pub version: String,
    pub init_flag: u8,
    pub status: i8,
    pub storage_id: String,
    pub current_tracker_ip: String,
    /// `ip:port` texts, each sent followed by a newline.
    pub trackers: Vec<String>,
}

impl JoinReq {
    pub const FIXED_LEN: usize = 145;
}

impl Message for JoinReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX + 1);
        out.put_i64(self.storage_port);
        out.put_i64(self.store_path_count);
        out.put_i64(self.subdir_count_per_path);
        out.put_i64(self.upload_priority);
        out.put_i64(self.join_time);
        out.put_i64(self.up_time);
        out.put_fixed_str(&self.version, VERSION_SIZE);
        out.put_u8(self.init_flag);
        out.put_u8(self.status as u8);
        out.put_fixed_str(&self.storage_id, STORAGE_ID_MAX);
        out.put_fixed_str(&self.current_tracker_ip, IPV6_ADDR_SIZE);
        out.put_i64(self.trackers.len() as i64);
        for t in &self.trackers {
            out.put_bytes(t.as_bytes());
            out.put_u8(b'\n');
        }
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let mut j = JoinReq {
            group: r.fixed_str(GROUP_NAME_MAX + 1, "group_name")?,
            storage_port: r.i64("storage_port")?,
            store_path_count: r.i64("store_path_count")?,
            subdir_count_per_path: r.i64("subdir_count_per_path")?,
            upload_priority: r.i64("upload_priority")?,
            join_time: r.i64("join_time")?,
            up_time: r.i64("up_time")?,
            version: r.fixed_str(VERSION_SIZE, "version")?,
            init_flag: r.u8("init_flag")?,
            status: r.u8("status")? as i8,
            storage_id: r.fixed_str(STORAGE_ID_MAX, "storage_id")?,
            current_tracker_ip: r.fixed_str(IPV6_ADDR_SIZE, "current_tracker_ip")?,
            trackers: Vec::new(),
        };
        let count = r.i64("tracker_count")?;
        if !(1..=16).contains(&count) {
            return Err(DecodeError::invalid("tracker_count", count.to_string()));
        }
        let text = r.rest();
        if text.len() > count as usize * 100 || !text.ends_with(b"\n") {
            return Err(DecodeError::invalid("tracker_list", "malformed"));
        }
        for line in text[..text.len() - 1].split(|&c| c == b'\n') {
            j.trackers.push(String::from_utf8_lossy(line).into_owned());
        }
        if j.trackers.len() != count as usize {
            return Err(DecodeError::invalid("tracker_list", "count mismatch"));
        }
        Ok(j)
    }
}

/// STORAGE_JOIN reply: the tracker's status for the storage and its recorded sync source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinReply {
    pub status: u8,
    pub src_id: String,
}

impl Message for JoinReply {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.status);
        out.put_fixed_str(&self.src_id, STORAGE_ID_MAX);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(JoinReply {
            status: r.u8("my_status")?,
            src_id: r.fixed_str(STORAGE_ID_MAX, "src_id")?,
        })
    }
}

/// Sync source record (SYNC_DEST_REQ / SYNC_SRC_REQ / SYNC_DEST_QUERY replies, SYNC_NOTIFY).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncSource {
    pub src_id: String,
    pub until_timestamp: i64,
}

impl SyncSource {
    pub const LEN: usize = 24;
}

impl Message for SyncSource {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.src_id, STORAGE_ID_MAX);
        out.put_i64(self.until_timestamp);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(SyncSource {
            src_id: r.fixed_str(STORAGE_ID_MAX, "src_id")?,
            until_timestamp: r.i64("until_timestamp")?,
        })
    }
}

/// Flags of the change list that answers beats and reports.
pub mod change_flag {
    pub const TRACKER_LEADER: u8 = 1;
    pub const TRUNK_SERVER: u8 = 2;
    pub const GROUP_SERVER: u8 = 4;
}

/// Reply of BEAT, REPORT_DISK_USAGE and SYNC_REPORT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeList {
    pub leader: Option<Brief>,
    pub trunk_server: Option<Brief>,
    pub group_servers: Option<Vec<Brief>>,
}

impl Message for ChangeList {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut flags = 0;
        if self.leader.is_some() {
            flags |= change_flag::TRACKER_LEADER;
        }
        if self.trunk_server.is_some() {
            flags |= change_flag::TRUNK_SERVER;
        }
        if self.group_servers.is_some() {
            flags |= change_flag::GROUP_SERVER;
        }
        out.put_u8(flags);
        for b in self.leader.iter().chain(self.trunk_server.iter()) {
            b.encode(out);
        }
        for b in self.group_servers.iter().flatten() {
            b.encode(out);
        }
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let flags = r.u8("flags")?;
        if !r.remaining().is_multiple_of(Brief::LEN) {
            return Err(DecodeError::invalid("change_list", "length"));
        }
        let mut c = ChangeList::default();
        if flags & change_flag::TRACKER_LEADER != 0 {
            c.leader = Some(Brief::decode(r)?);
        }
        if flags & change_flag::TRUNK_SERVER != 0 {
            c.trunk_server = Some(Brief::decode(r)?);
        }
        if flags & change_flag::GROUP_SERVER != 0 {
            let mut v = Vec::new();
            while r.remaining() > 0 {
                v.push(Brief::decode(r)?);
            }
            c.group_servers = Some(v);
        }
        Ok(c)
    }
}

/// Per store path disk figures of REPORT_DISK_USAGE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PathUsage {
    pub total_mb: i64,
    pub free_mb: i64,
}

pub fn encode_disk_usage(paths: &[PathUsage]) -> Vec<u8> {
    let mut out = Vec::with_capacity(paths.len() * 16);
    for p in paths {
        out.put_i64(p.total_mb);
        out.put_i64(p.free_mb);
    }
    out
}

pub fn decode_disk_usage(b: &[u8]) -> DecodeResult<Vec<PathUsage>> {
    if b.is_empty() || !b.len().is_multiple_of(16) {
        return Err(DecodeError::invalid(
            "disk_usage",
            format!("length {}", b.len()),
        ));
    }
    let mut r = Reader::new(b);
    let mut v = Vec::new();
    while r.remaining() > 0 {
        v.push(PathUsage {
            total_mb: r.i64("total_mb")?,
            free_mb: r.i64("free_mb")?,
        });
    }
    Ok(v)
}

/// One entry of SYNC_REPORT: source storage id and the newest source timestamp received from it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncReportEntry {
    pub src_id: String,
    pub timestamp: i32,
}

pub fn encode_sync_report(entries: &[SyncReportEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.put_fixed_str(&e.src_id, STORAGE_ID_MAX);
        out.put_i32(e.timestamp);
    }
    out
}

pub fn decode_sync_report(b: &[u8]) -> DecodeResult<Vec<SyncReportEntry>> {
    if b.is_empty() || !b.len().is_multiple_of(20) {
        return Err(DecodeError::invalid(
            "sync_report",
            format!("length {}", b.len()),
        ));
    }
    let mut r = Reader::new(b);
    let mut v = Vec::new();
    while r.remaining() > 0 {
        v.push(SyncReportEntry {
            src_id: r.fixed_str(STORAGE_ID_MAX, "src_id")?,
            timestamp: r.i32("sync_timestamp")?,
        });
    }
    Ok(v)
}

/// GET_MY_IP request: group name (17 bytes) and the storage port as an i32.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetMyIpReq {
    pub group: String,
    pub port: i32,
}

impl Message for GetMyIpReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX + 1);
        out.put_i32(self.port);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(GetMyIpReq {
            group: r.fixed_str(GROUP_NAME_MAX + 1, "group_name")?,
            port: r.i32("storage_port")?,
        })
    }
}

/// GET_MY_IP reply: the address the tracker sees the storage connect from, or, with storage
/// ids, every address of its storage_ids.conf entry, comma separated, inner first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyIpReply {
    pub ips: Vec<String>,
}

impl Message for MyIpReply {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_bytes(self.ips.join(",").as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let text = std::str::from_utf8(r.rest())
            .map_err(|_| DecodeError::invalid("ip_addr", "not text"))?;
        let ips: Vec<String> = text
            .split(',')
            .map(|s| s.trim_end_matches('\0').trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if ips.is_empty() {
            return Err(DecodeError::invalid("ip_addr", "empty"));
        }
        Ok(MyIpReply { ips })
    }
}

/// FETCH_STORAGE_IDS request: the first entry wanted and whether an id-less tracker may answer
/// with an empty page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchStorageIdsReq {
    pub start_index: i32,
    pub allow_empty: u8,
}

impl Message for FetchStorageIdsReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i32(self.start_index);
        out.put_u8(self.allow_empty);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(FetchStorageIdsReq {
            start_index: r.i32("start_index")?,
            allow_empty: r.u8("allow_empty")?,
        })
    }
}

/// FETCH_STORAGE_IDS reply: `total` entries exist, `count` of them are in `lines`
/// (storage_ids.conf lines, port always written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageIdsPage {
    pub total: i32,
    pub count: i32,
    pub lines: String,
}

impl Message for StorageIdsPage {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i32(self.total);
        out.put_i32(self.count);
        out.put_bytes(self.lines.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(StorageIdsPage {
            total: r.i32("total")?,
            count: r.i32("count")?,
            lines: String::from_utf8_lossy(r.rest()).into_owned(),
        })
    }
}

/// Which tracker data file TRACKER_GET_ONE_SYS_FILE asks for, in copy order.
pub const SYS_FILES: [&str; 4] = [
    "storage_groups_new.dat",
    "storage_servers_new.dat",
    "storage_sync_timestamp.dat",
    "storage_changelog.dat",
];

/// Most file bytes in one TRACKER_GET_ONE_SYS_FILE reply (upstream's 8 KB buffer less headers).
pub const SYS_FILE_CHUNK: usize = 8173;

/// TRACKER_GET_ONE_SYS_FILE request: an index into [`SYS_FILES`] and where to read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysFileReq {
    pub index: u8,
    pub offset: i64,
}

impl Message for SysFileReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.index);
        out.put_i64(self.offset);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(SysFileReq {
            index: r.u8("index")?,
            offset: r.i64("offset")?,
        })
    }
}

/// TRACKER_GET_ONE_SYS_FILE reply: the whole file's size and the bytes from the offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysFileChunk {
    pub file_size: i64,
    pub data: Vec<u8>,
}

impl Message for SysFileChunk {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(self.file_size);
        out.put_bytes(&self.data);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(SysFileChunk {
            file_size: r.i64("file_size")?,
            data: r.rest().to_vec(),
        })
    }
}

/// REPORT_STATUS request: group and one brief.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportStatusReq {
    pub group: String,
    pub brief: Brief,
}

impl Message for ReportStatusReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        self.brief.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(ReportStatusReq {
            group: r.fixed_str(GROUP_NAME_MAX, "group_name")?,
            brief: Brief::decode(r)?,
        })
    }
}

/// SYNC_SRC_REQ and the not-logged-in CHANGELOG_REQ: group and a storage id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStorageReq {
    pub group: String,
    pub storage_id: String,
}

impl Message for GroupStorageReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        out.put_fixed_str(&self.storage_id, STORAGE_ID_MAX);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(GroupStorageReq {
            group: r.fixed_str(GROUP_NAME_MAX, "group_name")?,
            storage_id: r.fixed_str(STORAGE_ID_MAX, "storage_id")?,
        })
    }
}

/// REPORT_IP_CHANGED: a storage that ran at `old_ip` now runs at `new_ip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportIpChangedReq {
    pub group: String,
    pub old_ip: String,
    pub new_ip: String,
}

impl Message for ReportIpChangedReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        out.put_fixed_str(&self.old_ip, IPV6_ADDR_SIZE);
        out.put_fixed_str(&self.new_ip, IPV6_ADDR_SIZE);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(ReportIpChangedReq {
            group: r.fixed_str(GROUP_NAME_MAX, "group_name")?,
            old_ip: r.fixed_str(IPV6_ADDR_SIZE, "old_ip_addr")?,
            new_ip: r.fixed_str(IPV6_ADDR_SIZE, "new_ip_addr")?,
        })
    }
}

/// GET_STATUS and GET_SERVER_ID: a group and a storage's `ip:port` text (no NUL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageAddrReq {
    pub group: String,
    pub addr: String,
}

impl StorageAddrReq {
    /// Longest address text a tracker accepts.
    pub const ADDR_MAX: usize = 52;
}

impl Message for StorageAddrReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        out.put_bytes(self.addr.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let group = r.fixed_str(GROUP_NAME_MAX, "group_name")?;
        let text = r.rest();
        if text.is_empty() || text.len() > Self::ADDR_MAX {
            return Err(DecodeError::invalid(
                "storage_addr",
                format!("{} bytes", text.len()),
            ));
        }
        Ok(StorageAddrReq {
            group,
            addr: crate::codec::text_until_nul(text),
        })
    }
}

/// GET_GROUP_NAME: a storage's address text (empty: the connection's peer IP) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetGroupNameReq {
    pub ip: String,
    pub port: i32,
}

impl GetGroupNameReq {
    /// A request whose address part reaches this length is answered ENAMETOOLONG, not EINVAL.
    pub const IP_MAX: usize = IPV6_ADDR_SIZE;
}

impl Message for GetGroupNameReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_bytes(self.ip.as_bytes());
        out.put_i32(self.port);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let ip_len = r
            .remaining()
            .checked_sub(4)
            .ok_or(DecodeError::Short { field: "port" })?;
        let ip = crate::codec::text_until_nul(r.take(ip_len, "ip_addr")?);
        Ok(GetGroupNameReq {
            ip,
            port: r.i32("port")?,
        })
    }
}

/// GET_GROUP_NAME's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupName {
    pub group: String,
}

impl Message for GroupName {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(GroupName {
            group: r.fixed_str(GROUP_NAME_MAX, "group_name")?,
        })
    }
}

/// CHANGE_STATUS: the status the leader has for the sending storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeStatusReq {
    pub status: u8,
}

impl Message for ChangeStatusReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.status);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(ChangeStatusReq {
            status: r.u8("status")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_bodies() {
        let r = ReportIpChangedReq {
            group: "group1".into(),
            old_ip: "127.0.0.33".into(),
            new_ip: "127.0.0.38".into(),
        };
        assert_eq!(r.to_bytes().len(), 108);
        assert_eq!(ReportIpChangedReq::from_bytes(&r.to_bytes()).unwrap(), r);
        let a = StorageAddrReq {
            group: "group1".into(),
            addr: "127.0.0.37:23000".into(),
        };
        assert_eq!(StorageAddrReq::from_bytes(&a.to_bytes()).unwrap(), a);
        assert!(StorageAddrReq::from_bytes(&[0u8; 16]).is_err());
        let g = GetGroupNameReq {
            ip: String::new(),
            port: 23000,
        };
        assert_eq!(g.to_bytes().len(), 4);
        assert_eq!(GetGroupNameReq::from_bytes(&g.to_bytes()).unwrap(), g);
        let g = GetGroupNameReq {
            ip: "127.0.0.36".into(),
            port: 23000,
        };
        assert_eq!(GetGroupNameReq::from_bytes(&g.to_bytes()).unwrap(), g);
        assert!(GetGroupNameReq::from_bytes(&[0u8; 3]).is_err());
    }

    #[test]
    fn stat_block_len() {
        assert_eq!(StatBlock::default().to_bytes().len(), StatBlock::LEN);
    }

    #[test]
    fn my_ip_reply_one_or_both_addresses() {
        let one = MyIpReply::from_bytes(b"10.0.0.5").unwrap();
        assert_eq!(one.ips, ["10.0.0.5"]);
        let both = MyIpReply {
            ips: vec!["10.0.0.5".into(), "122.244.141.46".into()],
        };
        assert_eq!(both.to_bytes(), b"10.0.0.5,122.244.141.46");
        assert_eq!(MyIpReply::from_bytes(&both.to_bytes()).unwrap(), both);
        assert_eq!(
            MyIpReply::from_bytes(b"").unwrap_err(),
            DecodeError::invalid("ip_addr", "empty")
        );
    }

    #[test]
    fn join_roundtrip() {
        let j = JoinReq {
            group: "group1".into(),
            storage_port: 23000,
            store_path_count: 1,
            subdir_count_per_path: 256,
            upload_priority: 10,
            join_time: 1,
            up_time: 2,
            version: "6.16.1".into(),
            init_flag: 1,
            status: -1,
            storage_id: String::new(),
            current_tracker_ip: "127.0.0.2".into(),
            trackers: vec!["127.0.0.2:22122".into(), "127.0.0.3:22122".into()],
        };
        let b = j.to_bytes();
        assert_eq!(b.len(), 145 + 32);
        assert_eq!(JoinReq::from_bytes(&b).unwrap(), j);
    }
}
