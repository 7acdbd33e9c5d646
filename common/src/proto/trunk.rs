//! Trunk messages (docs/protocol/sync-and-storage-layout.md 6.5, docs/protocol/cluster-protocol.md
//! 2.20): slot allocation through the trunk server (27-29), the trunk binlog pushed to the members
//! (30, 33), the binlog size the tracker elects by (31), and the trunk file id and free space the
//! trunk server reports to the tracker (72-74).

use super::GROUP_NAME_MAX;
use crate::codec::{DecodeError, DecodeResult, Message, Reader, Writer};

/// Where a slot is: the 15 bytes of TRUNK_ALLOC_SPACE's reply, also inside 28 and 29.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrunkInfo {
    pub store_path_index: u8,
    pub sub_path_high: u8,
    pub sub_path_low: u8,
    pub trunk_id: u32,
    pub offset: u32,
    pub size: u32,
}

impl TrunkInfo {
    pub const LEN: usize = 15;
}

impl Message for TrunkInfo {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.store_path_index);
        out.put_u8(self.sub_path_high);
        out.put_u8(self.sub_path_low);
        out.put_i32(self.trunk_id as i32);
        out.put_i32(self.offset as i32);
        out.put_i32(self.size as i32);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(TrunkInfo {
            store_path_index: r.u8("store_path_index")?,
            sub_path_high: r.u8("sub_path_high")?,
            sub_path_low: r.u8("sub_path_low")?,
            trunk_id: r.i32("trunk_id")? as u32,
            offset: r.i32("offset")? as u32,
            size: r.i32("size")? as u32,
        })
    }
}

/// TRUNK_ALLOC_SPACE: a slot of `size` bytes (header included) on store path
/// `store_path_index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkAllocReq {
    pub group: String,
    pub size: i32,
    pub store_path_index: u8,
}

impl Message for TrunkAllocReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        out.put_i32(self.size);
        out.put_u8(self.store_path_index);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let group = r.fixed_str(GROUP_NAME_MAX, "group_name")?;
        let size = r.i32("size")?;
        if size <= 0 {
            return Err(DecodeError::invalid("size", size.to_string()));
        }
        Ok(TrunkAllocReq {
            group,
            size,
            store_path_index: r.u8("store_path_index")?,
        })
    }
}

/// TRUNK_ALLOC_CONFIRM (the header status carries the upload's result) and TRUNK_FREE_SPACE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkSlotReq {
    pub group: String,
    pub info: TrunkInfo,
}

impl Message for TrunkSlotReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        self.info.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(TrunkSlotReq {
            group: r.fixed_str(GROUP_NAME_MAX, "group_name")?,
            info: TrunkInfo::decode(r)?,
        })
    }
}

/// TRUNK_GET_BINLOG_SIZE's reply: bytes of `data/trunk/binlog`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrunkBinlogSize {
    pub size: i64,
}

impl Message for TrunkBinlogSize {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(self.size);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(TrunkBinlogSize {
            size: r.i64("binlog_size")?,
        })
    }
}

/// FETCH_TRUNK_FID's reply and REPORT_TRUNK_FID's request: the group's current trunk file id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrunkFileId {
    pub id: i32,
}

impl Message for TrunkFileId {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i32(self.id);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(TrunkFileId {
            id: r.i32("trunk_file_id")?,
        })
    }
}

/// REPORT_TRUNK_FREE: the trunk server's free trunk space, in MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrunkFreeMb {
    pub mb: i64,
}

impl Message for TrunkFreeMb {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(self.mb);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(TrunkFreeMb {
            mb: r.i64("trunk_free_mb")?,
        })
    }
}

/// SET_TRUNK_SERVER's reply: the id of the group's trunk server, NUL-terminated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkServerId {
    pub id: String,
}

impl Message for TrunkServerId {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_bytes(self.id.as_bytes());
        out.put_u8(0);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(TrunkServerId {
            id: crate::codec::text_until_nul(r.rest()),
        })
    }
}

/// TRUNK_SYNC_BINLOG's body: whole trunk binlog lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkBinlogLines {
    pub text: String,
}

impl Message for TrunkBinlogLines {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_bytes(self.text.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let b = r.rest();
        if !b.is_empty() && b.last() != Some(&b'\n') {
            return Err(DecodeError::invalid("binlog_lines", "a torn last line"));
        }
        let text =
            std::str::from_utf8(b).map_err(|_| DecodeError::invalid("binlog_lines", "not text"))?;
        Ok(TrunkBinlogLines { text: text.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unhex;

    /// Bodies upstream sent (tests/golden/trunk-commands.json).
    #[test]
    fn upstream_bodies() {
        let alloc = unhex("67726f757031000000000000000000000000001800");
        let a = TrunkAllocReq::from_bytes(&alloc).unwrap();
        assert_eq!(
            (a.group.as_str(), a.size, a.store_path_index),
            ("group1", 24, 0)
        );
        assert_eq!(a.to_bytes(), alloc);
        let info = unhex("000000000000010000050000000100");
        let i = TrunkInfo::from_bytes(&info).unwrap();
        assert_eq!((i.trunk_id, i.offset, i.size), (1, 1280, 256));
        assert_eq!(i.to_bytes(), info);
        let confirm = unhex("67726f75703100000000000000000000000000000000010000050000000100");
        assert_eq!(
            TrunkSlotReq::from_bytes(&confirm).unwrap().to_bytes(),
            confirm
        );
        let server = unhex("3132372e302e302e31373100");
        assert_eq!(
            TrunkServerId::from_bytes(&server).unwrap().id,
            "127.0.0.171"
        );
        assert_eq!(
            TrunkServerId {
                id: "127.0.0.171".into()
            }
            .to_bytes(),
            server
        );
        assert!(TrunkBinlogLines::from_bytes(b"1 A 0 0 0 1 0 256").is_err());
        assert!(
            TrunkAllocReq::from_bytes(&unhex("67726f757031000000000000000000000000000000"))
                .is_err()
        );
    }
}
