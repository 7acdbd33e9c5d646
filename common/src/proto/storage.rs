//! Storage commands a client sends (docs/protocol/client-protocol.md section 3). For the streamed
//! commands (uploads, append, modify) these types are the fixed part in front of the file content.

use super::client::IpWidth;
use super::{FILE_EXT_MAX, GROUP_NAME_MAX, SLAVE_PREFIX_MAX};
use crate::codec::{DecodeError, DecodeResult, Message, Reader, Writer};

/// Fixed part of UPLOAD_FILE / UPLOAD_APPENDER_FILE; `file_size` content bytes follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadReq {
    /// 0xFF lets the storage choose.
    pub store_path_index: u8,
    pub file_size: i64,
    pub ext: String,
}

impl UploadReq {
    pub const LEN: usize = 15;
}

impl Message for UploadReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.store_path_index);
        out.put_i64(self.file_size);
        out.put_fixed_str(&self.ext, FILE_EXT_MAX);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(UploadReq {
            store_path_index: r.u8("store_path_index")?,
            file_size: r.i64("file_size")?,
            ext: r.fixed_str(FILE_EXT_MAX, "ext_name")?,
        })
    }
}

/// Fixed part of UPLOAD_SLAVE_FILE (without the master name, whose length is in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSlaveHead {
    pub master_len: i64,
    pub file_size: i64,
    pub prefix: String,
    pub ext: String,
}

impl UploadSlaveHead {
    pub const LEN: usize = 38;
}

impl Message for UploadSlaveHead {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(self.master_len);
        out.put_i64(self.file_size);
        out.put_fixed_str(&self.prefix, SLAVE_PREFIX_MAX);
        out.put_fixed_str(&self.ext, FILE_EXT_MAX);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(UploadSlaveHead {
            master_len: r.i64("master_filename_len")?,
            file_size: r.i64("file_size")?,
            prefix: r.fixed_str(SLAVE_PREFIX_MAX, "prefix_name")?,
            ext: r.fixed_str(FILE_EXT_MAX, "ext_name")?,
        })
    }
}

/// DOWNLOAD_FILE request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadReq {
    pub offset: i64,
    pub count: i64,
    pub group: String,
    pub filename: String,
}

impl Message for DownloadReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(self.offset);
        out.put_i64(self.count);
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        out.put_bytes(self.filename.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(DownloadReq {
            offset: r.i64("file_offset")?,
            count: r.i64("download_bytes")?,
            group: r.fixed_str(GROUP_NAME_MAX, "group_name")?,
            filename: String::from_utf8_lossy(r.rest()).into_owned(),
        })
    }
}

/// SET_METADATA request: `'O'` overwrite or `'M'` merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetMetadataReq {
    pub op: u8,
    pub group: String,
    pub filename: String,
    pub metadata: Vec<u8>,
}

impl Message for SetMetadataReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(self.filename.len() as i64);
        out.put_i64(self.metadata.len() as i64);
        out.put_u8(self.op);
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        out.put_bytes(self.filename.as_bytes());
        out.put_bytes(&self.metadata);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let name_len = r.i64("filename_len")?;
        let meta_len = r.i64("meta_size")?;
        let op = r.u8("op_flag")?;
        let group = r.fixed_str(GROUP_NAME_MAX, "group_name")?;
        if name_len <= 0 || name_len as usize >= super::FILENAME_MAX {
            return Err(DecodeError::invalid("filename_len", name_len.to_string()));
        }
        if meta_len < 0 || meta_len as usize != r.remaining().saturating_sub(name_len as usize) {
            return Err(DecodeError::invalid("meta_size", meta_len.to_string()));
        }
        let filename = String::from_utf8_lossy(r.take(name_len as usize, "filename")?).into_owned();
        let metadata = r.take(meta_len as usize, "metadata")?.to_vec();
        Ok(SetMetadataReq {
            op,
            group,
            filename,
            metadata,
        })
    }
}

/// Fixed part of APPEND_FILE (name length, content size, name); content follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendHead {
    pub name_len: i64,
    pub file_size: i64,
}

impl AppendHead {
    pub const LEN: usize = 16;
}

impl Message for AppendHead {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(self.name_len);
        out.put_i64(self.file_size);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(AppendHead {
            name_len: r.i64("filename_len")?,
            file_size: r.i64("file_size")?,
        })
    }
}

/// Fixed part of MODIFY_FILE (name length, offset, content size); name and content follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifyHead {
    pub name_len: i64,
    pub offset: i64,
    pub file_size: i64,
}

impl ModifyHead {
    pub const LEN: usize = 24;
}

impl Message for ModifyHead {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(self.name_len);
        out.put_i64(self.offset);
        out.put_i64(self.file_size);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(ModifyHead {
            name_len: r.i64("filename_len")?,
            offset: r.i64("file_offset")?,
            file_size: r.i64("file_size")?,
        })
    }
}

/// TRUNCATE_FILE request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruncateReq {
    pub new_size: i64,
    pub filename: String,
}

impl Message for TruncateReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(self.filename.len() as i64);
        out.put_i64(self.new_size);
        out.put_bytes(self.filename.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let name_len = r.i64("filename_len")?;
        let new_size = r.i64("truncated_file_size")?;
        if name_len < 0 || name_len as usize != r.remaining() {
            return Err(DecodeError::invalid("filename_len", name_len.to_string()));
        }
        let filename = String::from_utf8_lossy(r.rest()).into_owned();
        Ok(TruncateReq { new_size, filename })
    }
}

/// Reply of every upload-type command and of REGENERATE: group plus the new remote name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIdReply {
    pub group: String,
    pub filename: String,
}

impl Message for FileIdReply {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        out.put_bytes(self.filename.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let group = r.fixed_str(GROUP_NAME_MAX, "group_name")?;
        let rest = r.rest();
        if rest.is_empty() {
            return Err(DecodeError::Short { field: "filename" });
        }
        Ok(FileIdReply {
            group,
            filename: String::from_utf8_lossy(rest).into_owned(),
        })
    }
}

/// QUERY_FILE_INFO reply (40 or 70 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfoReply {
    pub file_size: i64,
    pub create_timestamp: i64,
    pub crc32: u32,
    pub source_ip: String,
    pub width: IpWidth,
}

impl FileInfoReply {
    pub fn from_bytes(b: &[u8]) -> DecodeResult<Self> {
        let width = match b.len() {
            40 => IpWidth::V4,
            70 => IpWidth::V6,
            n => {
                return Err(DecodeError::invalid(
                    "body",
                    format!("file info length {n}"),
                ))
            }
        };
        let mut r = Reader::new(b);
        let file_size = r.i64("file_size")?;
        let create_timestamp = r.i64("create_timestamp")?;
        let crc32 = r.i64("crc32")? as u32;
        let source_ip = r.fixed_str(width.size(), "source_ip_addr")?;
        r.finish()?;
        Ok(FileInfoReply {
            file_size,
            create_timestamp,
            crc32,
            source_ip,
            width,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.width.size());
        out.put_i64(self.file_size);
        out.put_i64(self.create_timestamp);
        // upstream sign-extends the CRC through a signed int; some SDKs read the whole i64
        out.put_i64(self.crc32 as i32 as i64);
        out.put_fixed_str(&self.source_ip, self.width.size());
        out
    }
}
