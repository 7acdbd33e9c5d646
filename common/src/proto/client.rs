//! Tracker queries a client sends and the records the tracker answers with
//! (docs/protocol/client-protocol.md section 2).

use super::cluster::StatBlock;
use super::{GROUP_NAME_MAX, IPV4_ADDR_SIZE, IPV6_ADDR_SIZE, STORAGE_ID_MAX, VERSION_SIZE};
use crate::codec::{DecodeError, DecodeResult, Message, Reader, Writer};

/// Width of the IP fields in tracker replies (`response_ip_addr_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpWidth {
    #[default]
    V4,
    V6,
}

impl IpWidth {
    /// The full field size W (16 or 46).
    pub fn size(self) -> usize {
        match self {
            IpWidth::V4 => IPV4_ADDR_SIZE,
            IpWidth::V6 => IPV6_ADDR_SIZE,
        }
    }
}

/// A body that is only a group name, exactly 16 bytes (104, 107, 90, 108).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupReq {
    pub group: String,
}

impl Message for GroupReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(GroupReq {
            group: r.fixed_str(GROUP_NAME_MAX, "group_name")?,
        })
    }
}

/// Group name plus a remote file name as the rest of the body: tracker 102/103/105 and storage
/// DELETE_FILE / GET_METADATA / QUERY_FILE_INFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFileReq {
    pub group: String,
    pub filename: String,
}

impl Message for GroupFileReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        out.put_bytes(self.filename.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let group = r.fixed_str(GROUP_NAME_MAX, "group_name")?;
        let filename = String::from_utf8_lossy(r.rest()).into_owned();
        Ok(GroupFileReq { group, filename })
    }
}

/// One storage address inside a query reply: an IP field of W-1 bytes then an i64 port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddr {
    pub ip: String,
    pub port: i64,
}

fn put_addr(out: &mut Vec<u8>, a: &ServerAddr, w: IpWidth) {
    out.put_fixed_str(&a.ip, w.size() - 1);
    out.put_i64(a.port);
}

fn get_addr(r: &mut Reader<'_>, w: IpWidth) -> DecodeResult<ServerAddr> {
    let ip = r.fixed_str(w.size() - 1, "ip_addr")?;
    let port = r.i64("port")?;
    Ok(ServerAddr { ip, port })
}

/// Reply to QUERY_STORE_*_ONE: 40 or 70 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreReply {
    pub group: String,
    pub server: ServerAddr,
    pub store_path_index: u8,
    pub width: IpWidth,
}

impl StoreReply {
    pub fn from_bytes(b: &[u8]) -> DecodeResult<Self> {
        let width = match b.len() {
            40 => IpWidth::V4,
            70 => IpWidth::V6,
            n => {
                return Err(DecodeError::invalid(
                    "body",
                    format!("store reply length {n}"),
                ))
            }
        };
        let mut r = Reader::new(b);
        let group = r.fixed_str(GROUP_NAME_MAX, "group_name")?;
        let server = get_addr(&mut r, width)?;
        let store_path_index = r.u8("store_path_index")?;
        r.finish()?;
        Ok(StoreReply {
            group,
            server,
            store_path_index,
            width,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(70);
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        put_addr(&mut out, &self.server, self.width);
        out.put_u8(self.store_path_index);
        out
    }
}

/// Reply to QUERY_STORE_*_ALL: group, n addresses, store path index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreAllReply {
    pub group: String,
    pub servers: Vec<ServerAddr>,
    pub store_path_index: u8,
    pub width: IpWidth,
}

impl StoreAllReply {
    pub fn from_bytes(b: &[u8]) -> DecodeResult<Self> {
        let (group, servers, width, mut r) = decode_server_list(b, 1)?;
        let store_path_index = r.u8("store_path_index")?;
        r.finish()?;
        Ok(StoreAllReply {
            group,
            servers,
            store_path_index,
            width,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        for s in &self.servers {
            put_addr(&mut out, s, self.width);
        }
        out.put_u8(self.store_path_index);
        out
    }
}

/// Group name, then `n` addresses, then `tail` more bytes (the store path index for store
/// replies); the IP width follows from the length.
fn decode_server_list(
    b: &[u8],
    tail: usize,
) -> DecodeResult<(String, Vec<ServerAddr>, IpWidth, Reader<'_>)> {
    let width = list_width(b.len(), GROUP_NAME_MAX + tail)?;
    let n = (b.len() - GROUP_NAME_MAX - tail) / (width.size() + 7);
    let mut r = Reader::new(b);
    let group = r.fixed_str(GROUP_NAME_MAX, "group_name")?;
    let mut servers = Vec::with_capacity(n);
    for _ in 0..n {
        servers.push(get_addr(&mut r, width)?);
    }
    Ok((group, servers, width, r))
}

fn list_width(len: usize, fixed: usize) -> DecodeResult<IpWidth> {
    if len > fixed && (len - fixed).is_multiple_of(IPV4_ADDR_SIZE + 7) {
        Ok(IpWidth::V4)
    } else if len > fixed && (len - fixed).is_multiple_of(IPV6_ADDR_SIZE + 7) {
        Ok(IpWidth::V6)
    } else {
        Err(DecodeError::invalid(
            "body",
            format!("server list length {len}"),
        ))
    }
}

/// Reply to QUERY_FETCH_ONE / QUERY_UPDATE (one server) and QUERY_FETCH_ALL (6.16 shape: every
/// server with its own port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReply {
    pub group: String,
    pub servers: Vec<ServerAddr>,
    pub width: IpWidth,
}

impl FetchReply {
    pub fn from_bytes(b: &[u8]) -> DecodeResult<Self> {
        let (group, servers, width, r) = decode_server_list(b, 0)?;
        r.finish()?;
        Ok(FetchReply {
            group,
            servers,
            width,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        for s in &self.servers {
            put_addr(&mut out, s, self.width);
        }
        out
    }
}

/// One 113-byte group record of SERVER_LIST_ONE_GROUP / SERVER_LIST_ALL_GROUPS.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupStat {
    pub group: String,
    pub total_mb: i64,
    pub free_mb: i64,
    pub reserved_mb: i64,
    pub trunk_free_mb: i64,
    pub storage_count: i64,
    pub storage_port: i64,
    pub readable_server_count: i64,
    pub writable_server_count: i64,
    pub current_write_server: i64,
    pub store_path_count: i64,
    pub subdir_count_per_path: i64,
    pub current_trunk_file_id: i64,
}

pub const GROUP_STAT_LEN: usize = 113;

impl Message for GroupStat {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX + 1);
        for v in [
            self.total_mb,
            self.free_mb,
            self.reserved_mb,
            self.trunk_free_mb,
            self.storage_count,
            self.storage_port,
            self.readable_server_count,
            self.writable_server_count,
            self.current_write_server,
            self.store_path_count,
            self.subdir_count_per_path,
            self.current_trunk_file_id,
        ] {
            out.put_i64(v);
        }
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(GroupStat {
            group: r.fixed_str(GROUP_NAME_MAX + 1, "group_name")?,
            total_mb: r.i64("total_mb")?,
            free_mb: r.i64("free_mb")?,
            reserved_mb: r.i64("reserved_mb")?,
            trunk_free_mb: r.i64("trunk_free_mb")?,
            storage_count: r.i64("storage_count")?,
            storage_port: r.i64("storage_port")?,
            readable_server_count: r.i64("readable_server_count")?,
            writable_server_count: r.i64("writable_server_count")?,
            current_write_server: r.i64("current_write_server")?,
            store_path_count: r.i64("store_path_count")?,
            subdir_count_per_path: r.i64("subdir_count_per_path")?,
            current_trunk_file_id: r.i64("current_trunk_file_id")?,
        })
    }
}

/// Decode a body of back-to-back group records.
pub fn decode_group_stats(b: &[u8]) -> DecodeResult<Vec<GroupStat>> {
    if !b.len().is_multiple_of(GROUP_STAT_LEN) {
        return Err(DecodeError::invalid(
            "body",
            format!("group list length {}", b.len()),
        ));
    }
    b.chunks(GROUP_STAT_LEN)
        .map(GroupStat::from_bytes)
        .collect()
}

/// SERVER_LIST_STORAGE request: group and an optional, unpadded storage id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStorageReq {
    pub group: String,
    pub storage_id: Option<String>,
}

impl Message for ListStorageReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        if let Some(id) = &self.storage_id {
            out.put_bytes(id.as_bytes());
        }
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let group = r.fixed_str(GROUP_NAME_MAX, "group_name")?;
        let rest = r.rest();
        if rest.len() >= STORAGE_ID_MAX {
            return Err(DecodeError::invalid("storage_id", "too long"));
        }
        let id = crate::codec::text_until_nul(rest);
        Ok(ListStorageReq {
            group,
            storage_id: (!id.is_empty()).then_some(id),
        })
    }
}

/// SERVER_DELETE_STORAGE / SERVER_SET_TRUNK_SERVER request: group and an unpadded storage id.
pub type DeleteStorageReq = ListStorageReq;

/// One storage record of SERVER_LIST_STORAGE (487 bytes with IPv4 width, 517 with IPv6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StorageStat {
    pub status: u8,
    pub rw_mode: u8,
    pub id: String,
    pub ip: String,
    pub src_id: String,
    pub version: String,
    pub join_time: i64,
    pub up_time: i64,
    pub total_mb: i64,
    pub free_mb: i64,
    pub reserved_mb: i64,
    pub upload_priority: i64,
    pub store_path_count: i64,
    pub subdir_count_per_path: i64,
    pub current_write_path: i64,
    pub storage_port: i64,
    pub stat: StatBlock,
    pub if_trunk_server: u8,
    pub width: IpWidth,
}

impl StorageStat {
    pub fn record_len(w: IpWidth) -> usize {
        2 + STORAGE_ID_MAX + w.size() + STORAGE_ID_MAX + VERSION_SIZE + 10 * 8 + 348 + 1
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.status);
        out.put_u8(self.rw_mode);
        out.put_fixed_str(&self.id, STORAGE_ID_MAX);
        out.put_fixed_str(&self.ip, self.width.size());
        out.put_fixed_str(&self.src_id, STORAGE_ID_MAX);
        out.put_fixed_str(&self.version, VERSION_SIZE);
        for v in [
            self.join_time,
            self.up_time,
            self.total_mb,
            self.free_mb,
            self.reserved_mb,
            self.upload_priority,
            self.store_path_count,
            self.subdir_count_per_path,
            self.current_write_path,
            self.storage_port,
        ] {
            out.put_i64(v);
        }
        self.stat.encode(out);
        out.put_u8(self.if_trunk_server);
    }

    pub fn decode(r: &mut Reader<'_>, width: IpWidth) -> DecodeResult<Self> {
        Ok(StorageStat {
            status: r.u8("status")?,
            rw_mode: r.u8("rw_mode")?,
            id: r.fixed_str(STORAGE_ID_MAX, "id")?,
            ip: r.fixed_str(width.size(), "ip_addr")?,
            src_id: r.fixed_str(STORAGE_ID_MAX, "src_id")?,
            version: r.fixed_str(VERSION_SIZE, "version")?,
            join_time: r.i64("join_time")?,
            up_time: r.i64("up_time")?,
            total_mb: r.i64("total_mb")?,
            free_mb: r.i64("free_mb")?,
            reserved_mb: r.i64("reserved_mb")?,
            upload_priority: r.i64("upload_priority")?,
            store_path_count: r.i64("store_path_count")?,
            subdir_count_per_path: r.i64("subdir_count_per_path")?,
            current_write_path: r.i64("current_write_path")?,
            storage_port: r.i64("storage_port")?,
            stat: StatBlock::decode(r)?,
            if_trunk_server: r.u8("if_trunk_server")?,
            width,
        })
    }
}

/// Decode a SERVER_LIST_STORAGE body; like the C client, the 487-byte shape is tried first.
pub fn decode_storage_stats(b: &[u8]) -> DecodeResult<Vec<StorageStat>> {
    let width = if b.len().is_multiple_of(StorageStat::record_len(IpWidth::V4)) {
        IpWidth::V4
    } else if b.len().is_multiple_of(StorageStat::record_len(IpWidth::V6)) {
        IpWidth::V6
    } else {
        return Err(DecodeError::invalid(
            "body",
            format!("storage list length {}", b.len()),
        ));
    };
    let mut r = Reader::new(b);
    let mut out = Vec::new();
    while r.remaining() > 0 {
        out.push(StorageStat::decode(&mut r, width)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lengths() {
        assert_eq!(StorageStat::record_len(IpWidth::V4), 487);
        assert_eq!(StorageStat::record_len(IpWidth::V6), 517);
        assert_eq!(GroupStat::default().to_bytes().len(), GROUP_STAT_LEN);
    }
}
