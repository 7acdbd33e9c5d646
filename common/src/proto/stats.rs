//! Monitoring replies 96/97/98 (docs/protocol/client-protocol.md 2.10). Text fields are zero-filled
//! after the NUL (upstream leaks stale buffer bytes there; readers stop at the NUL either way).

use super::{GROUP_NAME_MAX, STORAGE_ID_MAX, VERSION_SIZE};
use crate::codec::{DecodeError, DecodeResult, Message, Reader, Writer};

const HOST_SIZE: usize = 52;

/// The tail both cluster-stat records share: connection counts, version, up time, last beat.
fn put_conn_tail(
    out: &mut Vec<u8>,
    connections: [i32; 3],
    version: &str,
    up_time: i64,
    last_heartbeat_time: i64,
) {
    for c in connections {
        out.put_i32(c);
    }
    out.put_fixed_str(version, VERSION_SIZE);
    out.put_i64(up_time);
    out.put_i64(last_heartbeat_time);
}

type ConnTail = ([i32; 3], String, i64, i64);

fn get_conn_tail(r: &mut Reader<'_>) -> DecodeResult<ConnTail> {
    Ok((
        [
            r.i32("alloc_count")?,
            r.i32("current_count")?,
            r.i32("max_count")?,
        ],
        r.fixed_str(VERSION_SIZE, "version")?,
        r.i64("up_time")?,
        r.i64("last_heartbeat_time")?,
    ))
}

/// One 90-byte tracker record of TRACKER_CLUSTER_STAT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrackerClusterStat {
    pub host: String,
    pub is_leader: u8,
    pub is_active: u8,
    pub connections: [i32; 3],
    pub version: String,
    pub up_time: i64,
    pub last_heartbeat_time: i64,
}

impl TrackerClusterStat {
    pub const LEN: usize = 90;

    pub fn encode_list(recs: &[Self]) -> Vec<u8> {
        let mut out = vec![recs.len() as u8];
        for r in recs {
            out.put_fixed_str(&r.host, HOST_SIZE);
            out.put_u8(r.is_leader);
            out.put_u8(r.is_active);
            put_conn_tail(
                &mut out,
                r.connections,
                &r.version,
                r.up_time,
                r.last_heartbeat_time,
            );
        }
        out
    }

    pub fn decode_list(b: &[u8]) -> DecodeResult<Vec<Self>> {
        let mut r = Reader::new(b);
        let n = r.u8("count")? as usize;
        if r.remaining() != n * Self::LEN {
            return Err(DecodeError::invalid("body", "tracker stat length"));
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let host = r.fixed_str(HOST_SIZE, "host")?;
            let is_leader = r.u8("is_leader")?;
            let is_active = r.u8("is_active")?;
            let (connections, version, up_time, last_heartbeat_time) = get_conn_tail(&mut r)?;
            v.push(TrackerClusterStat {
                host,
                is_leader,
                is_active,
                connections,
                version,
                up_time,
                last_heartbeat_time,
            });
        }
        Ok(v)
    }
}

/// One 106-byte storage record of STORAGE_CLUSTER_STAT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StorageClusterStat {
    pub id: String,
    pub host: String,
    pub is_trunk_server: u8,
    pub status: u8,
    pub connections: [i32; 3],
    pub version: String,
    pub up_time: i64,
    pub last_heartbeat_time: i64,
}

impl StorageClusterStat {
    pub const LEN: usize = 106;

    pub fn encode_list(use_storage_id: bool, use_trunk_file: bool, recs: &[Self]) -> Vec<u8> {
        let mut out = vec![use_storage_id as u8, use_trunk_file as u8];
        out.put_i32(recs.len() as i32);
        for r in recs {
            out.put_fixed_str(&r.id, STORAGE_ID_MAX);
            out.put_fixed_str(&r.host, HOST_SIZE);
            out.put_u8(r.is_trunk_server);
            out.put_u8(r.status);
            put_conn_tail(
                &mut out,
                r.connections,
                &r.version,
                r.up_time,
                r.last_heartbeat_time,
            );
        }
        out
    }

    /// `(use_storage_id, use_trunk_file, records)`
    pub fn decode_list(b: &[u8]) -> DecodeResult<(bool, bool, Vec<Self>)> {
        let mut r = Reader::new(b);
        let ids = r.u8("use_storage_id")? != 0;
        let trunk = r.u8("use_trunk_file")? != 0;
        let n = r.i32("count")?;
        if n < 0 || r.remaining() != n as usize * Self::LEN {
            return Err(DecodeError::invalid("body", "storage stat length"));
        }
        let mut v = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let id = r.fixed_str(STORAGE_ID_MAX, "id")?;
            let host = r.fixed_str(HOST_SIZE, "host")?;
            let is_trunk_server = r.u8("is_trunk_server")?;
            let status = r.u8("status")?;
            let (connections, version, up_time, last_heartbeat_time) = get_conn_tail(&mut r)?;
            v.push(StorageClusterStat {
                id,
                host,
                is_trunk_server,
                status,
                connections,
                version,
                up_time,
                last_heartbeat_time,
            });
        }
        Ok((ids, trunk, v))
    }
}

/// One 59-byte group record of STORAGE_VOLUMN_STAT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VolumeStat {
    pub group: String,
    pub total_mb: i64,
    pub free_mb: i64,
    pub reserved_mb: i64,
    pub avail_mb: i64,
    pub trunk_free_mb: i64,
    pub is_disk_available: u8,
    pub is_trunk_available: u8,
}

impl VolumeStat {
    pub const LEN: usize = 59;

    pub fn encode_list(use_trunk_file: bool, recs: &[Self]) -> Vec<u8> {
        let mut out = vec![use_trunk_file as u8];
        out.put_i32(recs.len() as i32);
        for r in recs {
            out.put_fixed_str(&r.group, GROUP_NAME_MAX + 1);
            for v in [
                r.total_mb,
                r.free_mb,
                r.reserved_mb,
                r.avail_mb,
                r.trunk_free_mb,
            ] {
                out.put_i64(v);
            }
            out.put_u8(r.is_disk_available);
            out.put_u8(r.is_trunk_available);
        }
        out
    }

    pub fn decode_list(b: &[u8]) -> DecodeResult<(bool, Vec<Self>)> {
        let mut r = Reader::new(b);
        let trunk = r.u8("use_trunk_file")? != 0;
        let n = r.i32("count")?;
        if n < 0 || r.remaining() != n as usize * Self::LEN {
            return Err(DecodeError::invalid("body", "volume stat length"));
        }
        let mut v = Vec::with_capacity(n as usize);
        for _ in 0..n {
            v.push(VolumeStat {
                group: r.fixed_str(GROUP_NAME_MAX + 1, "group_name")?,
                total_mb: r.i64("total_mb")?,
                free_mb: r.i64("free_mb")?,
                reserved_mb: r.i64("reserved_mb")?,
                avail_mb: r.i64("avail_mb")?,
                trunk_free_mb: r.i64("trunk_free_mb")?,
                is_disk_available: r.u8("is_disk_available")?,
                is_trunk_available: r.u8("is_trunk_available")?,
            });
        }
        Ok((trunk, v))
    }
}

/// TRACKER_CLUSTER_STAT request: which trackers to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerClusterStatReq {
    /// bit 0: filter on `is_active`, bit 1: filter on `is_leader`
    pub filter_by: u8,
    pub is_active: u8,
    pub is_leader: u8,
}

impl Message for TrackerClusterStatReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.filter_by);
        out.put_u8(self.is_active);
        out.put_u8(self.is_leader);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(TrackerClusterStatReq {
            filter_by: r.u8("filter_by")?,
            is_active: r.u8("is_active")?,
            is_leader: r.u8("is_leader")?,
        })
    }
}

/// STORAGE_CLUSTER_STAT request: which storages to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageClusterStatReq {
    /// bit 0: filter on `is_trunk_server`, bit 1: filter on the status
    pub filter_by: u8,
    /// `b'='` keeps the storages in `status`, `b'!'` the others
    pub status_op: u8,
    pub status: u8,
    pub is_trunk_server: u8,
}

impl Message for StorageClusterStatReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.filter_by);
        out.put_u8(self.status_op);
        out.put_u8(self.status);
        out.put_u8(self.is_trunk_server);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(StorageClusterStatReq {
            filter_by: r.u8("filter_by")?,
            status_op: r.u8("status_op")?,
            status: r.u8("status")?,
            is_trunk_server: r.u8("is_trunk_server")?,
        })
    }
}

/// STORAGE_VOLUMN_STAT request: which groups to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VolumeStatReq {
    /// bit 0: `is_disk_available`, bit 1: `is_trunk_available`, bit 2: `is_space_available`
    pub filter_by: u8,
    pub is_disk_available: u8,
    pub is_trunk_available: u8,
    pub is_space_available: u8,
}

impl Message for VolumeStatReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.filter_by);
        out.put_u8(self.is_disk_available);
        out.put_u8(self.is_trunk_available);
        out.put_u8(self.is_space_available);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(VolumeStatReq {
            filter_by: r.u8("filter_by")?,
            is_disk_available: r.u8("is_disk_available")?,
            is_trunk_available: r.u8("is_trunk_available")?,
            is_space_available: r.u8("is_space_available")?,
        })
    }
}
