//! A file ID as the client handles it (`group1/M00/00/00/...`: the group and the name on its
//! storage) and what QUERY_FILE_INFO or the name itself tells of a file.

use fdfs_common::file_id::{split_file_id, FileKind};
use fdfs_common::net::{NetError, NetResult};
use fdfs_common::proto::errno;

/// A file ID split into group and remote name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileId {
    pub group: String,
    pub name: String,
}

impl FileId {
    pub fn parse(id: &str) -> NetResult<FileId> {
        let (g, n) = split_file_id(id).map_err(|_| NetError::Status(errno::EINVAL))?;
        Ok(FileId {
            group: g.to_string(),
            name: n.to_string(),
        })
    }
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.group, self.name)
    }
}

/// What `fdfs_file_info` reports about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub from_server: bool,
    pub kind: FileKind,
    pub source_id: u32,
    pub source_ip: String,
    pub create_timestamp: i64,
    pub file_size: i64,
    pub crc32: u32,
}
