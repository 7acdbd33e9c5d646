//! Storage -> storage replication requests (docs/protocol/sync-and-storage-layout.md 4.4). Every
//! request carries the binlog record's timestamp; file content, when present, follows the fixed
//! part.

use super::{GROUP_NAME_MAX, STORAGE_ID_MAX};
use crate::codec::{DecodeError, DecodeResult, Message, Reader, Writer};

/// REPORT_SERVER_ID: the sender's storage id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportServerId {
    pub id: String,
}

impl Message for ReportServerId {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.id, STORAGE_ID_MAX);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let id = r.fixed_str(STORAGE_ID_MAX, "storage_id")?;
        if id.is_empty() {
            return Err(DecodeError::invalid("storage_id", "empty"));
        }
        Ok(ReportServerId { id })
    }
}

fn get_name(r: &mut Reader<'_>, len: i64, field: &'static str) -> DecodeResult<String> {
    if len <= 0 || len as usize >= super::FILENAME_MAX {
        return Err(DecodeError::invalid(field, len.to_string()));
    }
    Ok(String::from_utf8_lossy(r.take(len as usize, field)?).into_owned())
}

/// Fixed part of SYNC_CREATE_FILE / SYNC_UPDATE_FILE; `file_size` content bytes follow unless
/// the header status is non-zero (a header-only "same file" create).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFileHead {
    pub file_size: i64,
    pub timestamp: i32,
    pub group: String,
    pub filename: String,
}

impl SyncFileHead {
    /// Bytes before the name.
    pub const FIXED_LEN: usize = 8 + 8 + 4 + GROUP_NAME_MAX;
}

impl Message for SyncFileHead {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(self.filename.len() as i64);
        out.put_i64(self.file_size);
        out.put_i32(self.timestamp);
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        out.put_bytes(self.filename.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let name_len = r.i64("filename_len")?;
        let file_size = r.i64("file_size")?;
        let timestamp = r.i32("timestamp")?;
        let group = r.fixed_str(GROUP_NAME_MAX, "group_name")?;
        let filename = get_name(r, name_len, "filename")?;
        Ok(SyncFileHead {
            file_size,
            timestamp,
            group,
            filename,
        })
    }
}

/// SYNC_DELETE_FILE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncDeleteReq {
    pub timestamp: i32,
    pub group: String,
    pub filename: String,
}

impl Message for SyncDeleteReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i32(self.timestamp);
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        out.put_bytes(self.filename.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let timestamp = r.i32("timestamp")?;
        let group = r.fixed_str(GROUP_NAME_MAX, "group_name")?;
        let filename = String::from_utf8_lossy(r.rest()).into_owned();
        Ok(SyncDeleteReq {
            timestamp,
            group,
            filename,
        })
    }
}

/// Fixed part of SYNC_APPEND_FILE / SYNC_MODIFY_FILE (`length` data bytes follow), and the
/// whole of SYNC_TRUNCATE_FILE (where `offset` is the old size and `length` the new one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRangeReq {
    pub offset: i64,
    pub length: i64,
    pub timestamp: i32,
    pub group: String,
    pub filename: String,
}

impl SyncRangeReq {
    pub const FIXED_LEN: usize = 8 + 8 + 8 + 4 + GROUP_NAME_MAX;
}

impl Message for SyncRangeReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(self.filename.len() as i64);
        out.put_i64(self.offset);
        out.put_i64(self.length);
        out.put_i32(self.timestamp);
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        out.put_bytes(self.filename.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let name_len = r.i64("filename_len")?;
        let offset = r.i64("start_offset")?;
        let length = r.i64("append_bytes")?;
        let timestamp = r.i32("timestamp")?;
        let group = r.fixed_str(GROUP_NAME_MAX, "group_name")?;
        let filename = get_name(r, name_len, "filename")?;
        Ok(SyncRangeReq {
            offset,
            length,
            timestamp,
            group,
            filename,
        })
    }
}

/// SYNC_CREATE_LINK (link, target) and SYNC_RENAME_FILE (new, old): two names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncTwoNamesReq {
    pub timestamp: i32,
    pub group: String,
    pub first: String,
    pub second: String,
}

impl Message for SyncTwoNamesReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(self.first.len() as i64);
        out.put_i64(self.second.len() as i64);
        out.put_i32(self.timestamp);
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        out.put_bytes(self.first.as_bytes());
        out.put_bytes(self.second.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let l1 = r.i64("dest_filename_len")?;
        let l2 = r.i64("src_filename_len")?;
        let timestamp = r.i32("timestamp")?;
        let group = r.fixed_str(GROUP_NAME_MAX, "group_name")?;
        let first = get_name(r, l1, "dest_filename")?;
        let second = get_name(r, l2, "src_filename")?;
        Ok(SyncTwoNamesReq {
            timestamp,
            group,
            first,
            second,
        })
    }
}

/// The length of the name that follows a streamed sync request's fixed part (its first i64),
/// checked as the decoders check it, so that the name can be read before the content.
pub fn leading_name_len(fixed: &[u8]) -> DecodeResult<usize> {
    let len = Reader::new(fixed).i64("filename_len")?;
    if len <= 0 || len as usize >= super::FILENAME_MAX {
        return Err(DecodeError::invalid("filename_len", len.to_string()));
    }
    Ok(len as usize)
}

/// FETCH_ONE_PATH_BINLOG: a recovering member asks for the binlog lines of one store path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPathBinlogReq {
    pub group: String,
    pub store_path_index: u8,
}

impl Message for FetchPathBinlogReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        out.put_u8(self.store_path_index);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(FetchPathBinlogReq {
            group: r.fixed_str(GROUP_NAME_MAX, "group_name")?,
            store_path_index: r.u8("store_path_index")?,
        })
    }
}

/// FETCH_ONE_PATH_BINLOG's answer, after a header of unknown length: binlog lines, then their
/// byte count as an i64, then the sender closes.
pub struct PathBinlogStream;

impl PathBinlogStream {
    /// The header's announced length: the stream's end is the connection's close.
    pub const ANNOUNCED_LEN: i64 = 1 << 58;

    /// The trailer that ends a stream of `lines_len` bytes of lines.
    pub fn trailer(lines_len: u64) -> [u8; 8] {
        (lines_len as i64).to_be_bytes()
    }

    /// The lines of a whole received stream, once its trailer agrees with their length.
    pub fn lines(stream: &[u8]) -> DecodeResult<&[u8]> {
        let lines_len = stream
            .len()
            .checked_sub(8)
            .ok_or(DecodeError::Short { field: "trailer" })?;
        let mut r = Reader::new(&stream[lines_len..]);
        let count = r.i64("trailer")?;
        if count as u64 != lines_len as u64 {
            return Err(DecodeError::invalid(
                "trailer",
                format!("{count} bytes announced, {lines_len} received"),
            ));
        }
        Ok(&stream[..lines_len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_binlog_request_and_stream() {
        let q = FetchPathBinlogReq {
            group: "group1".into(),
            store_path_index: 1,
        };
        assert_eq!(q.to_bytes().len(), 17);
        assert_eq!(FetchPathBinlogReq::from_bytes(&q.to_bytes()).unwrap(), q);
        let mut s = b"1 C M01/00/00/x\n".to_vec();
        s.extend_from_slice(&PathBinlogStream::trailer(s.len() as u64));
        assert_eq!(PathBinlogStream::lines(&s).unwrap(), b"1 C M01/00/00/x\n");
        assert!(PathBinlogStream::lines(&s[1..]).is_err());
        assert!(PathBinlogStream::lines(b"1234567").is_err());
    }

    #[test]
    fn leading_name_len_checks_as_the_decoders_do() {
        let h = SyncFileHead {
            file_size: 5,
            timestamp: 1,
            group: "group1".into(),
            filename: "M00/00/00/abc".into(),
        };
        let b = h.to_bytes();
        assert_eq!(leading_name_len(&b[..SyncFileHead::FIXED_LEN]).unwrap(), 13);
        assert!(leading_name_len(&0i64.to_be_bytes()).is_err());
        assert!(leading_name_len(&(-1i64).to_be_bytes()).is_err());
        assert!(leading_name_len(&[0u8; 4]).is_err());
    }
}
