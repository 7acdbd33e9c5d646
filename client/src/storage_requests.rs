//! What the client asks a storage (docs/protocol/client-protocol.md 3): uploads (normal, appender,
//! slave), downloads, deletes, metadata, file info, the appender commands, and rfdfs's status
//! command and ACTIVE_TEST.

use crate::client::{status_err, Client};
use crate::content::Content;
use crate::file_id::{FileId, FileInfo};
use crate::progress;
use fdfs_common::codec::Message;
use fdfs_common::config::HostPort;
use fdfs_common::file_id::{FileKind, RemoteName, Source};
use fdfs_common::metadata::{self, MetaItem};
use fdfs_common::net::{self, NetError, NetResult};
use fdfs_common::proto::client::GroupFileReq;
use fdfs_common::proto::storage::{
    AppendHead, DownloadReq, FileIdReply, FileInfoReply, ModifyHead, SetMetadataReq, TruncateReq,
    UploadReq, UploadSlaveHead,
};
use fdfs_common::proto::{cmd, errno, Header};
use std::io::{self, Read, Write};

pub use fdfs_common::http::anti_steal_token;

/// Which upload command [`Client::upload`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// UPLOAD_FILE: a file that is written once
    File,
    /// UPLOAD_APPENDER_FILE: a file that can be appended to, modified and truncated later
    Appender,
}

impl Client {
    /// RFDFS_STATUS of an rfdfs storage (a C storage refuses it).
    pub fn rfdfs_status(&self, addr: &HostPort) -> NetResult<fdfs_common::proto::rfdfs::Status> {
        let c = self.connect(addr)?;
        let body = self.exchange(c, cmd::RFDFS_STATUS, &[])?;
        fdfs_common::proto::rfdfs::Status::from_bytes(&body).map_err(NetError::from)
    }

    /// LIST_FILES on an rfdfs storage: a page of its group's files (or their counts) as text
    /// (`fdfs_common::proto::listing`).
    pub fn list_files(
        &self,
        addr: &HostPort,
        req: &fdfs_common::proto::listing::ListFilesReq,
    ) -> NetResult<String> {
        let c = self.connect(addr)?;
        let body = self.exchange(c, cmd::LIST_FILES, &req.to_bytes())?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    pub fn active_test(&self, addr: &HostPort) -> NetResult<()> {
        let c = self.connect(addr)?;
        self.exchange(c, cmd::ACTIVE_TEST, &[]).map(|_| ())
    }

    // ---- storage operations ----------------------------------------------------------------

    /// Send a request whose body is `head` followed by `content`, then read a whole reply.
    pub(crate) fn streamed(
        &self,
        addr: &HostPort,
        command: u8,
        head: &[u8],
        content: &Content,
    ) -> NetResult<Vec<u8>> {
        let len = content.len()?;
        let mut c = self.connect(addr)?;
        let mut frame = Header::new(command, head.len() + len as usize)
            .to_bytes()
            .to_vec();
        frame.extend_from_slice(head);
        let r = self
            .with_progress(|report| content.send(&mut c.stream, &frame, report))
            .map_err(NetError::Io)
            .and_then(|_| net::recv_header(&mut c.stream))
            .and_then(|h| net::recv_body(&mut c.stream, &h));
        match r {
            Ok(v) => {
                self.release(c);
                Ok(v)
            }
            Err(e) => {
                status_err(addr, &e);
                Err(e)
            }
        }
    }

    /// Upload to a storage chosen by the tracker (or to `target` with a store path index).
    pub fn upload(
        &self,
        content: Content,
        ext: &str,
        kind: Upload,
        target: Option<(HostPort, u8)>,
        group: Option<&str>,
    ) -> NetResult<FileId> {
        let (addr, path_index) = match target {
            Some(t) => t,
            None => {
                let r = self.query_store(group)?;
                (Self::addr_of(&r.server), r.store_path_index)
            }
        };
        let head = UploadReq {
            store_path_index: path_index,
            file_size: content.len()? as i64,
            ext: ext.into(),
        };
        let command = match kind {
            Upload::File => cmd::UPLOAD_FILE,
            Upload::Appender => cmd::UPLOAD_APPENDER_FILE,
        };
        let body = self.streamed(&addr, command, &head.to_bytes(), &content)?;
        let r = FileIdReply::from_bytes(&body)?;
        Ok(FileId {
            group: r.group,
            name: r.filename,
        })
    }

    pub fn upload_slave(
        &self,
        master: &FileId,
        prefix: &str,
        ext: &str,
        content: Content,
    ) -> NetResult<FileId> {
        let addr = self.query_update(master)?;
        let mut head = UploadSlaveHead {
            master_len: master.name.len() as i64,
            file_size: content.len()? as i64,
            prefix: prefix.into(),
            ext: ext.into(),
        }
        .to_bytes();
        head.extend_from_slice(master.name.as_bytes());
        let body = self.streamed(&addr, cmd::UPLOAD_SLAVE_FILE, &head, &content)?;
        let r = FileIdReply::from_bytes(&body)?;
        Ok(FileId {
            group: r.group,
            name: r.filename,
        })
    }

    /// Download a range into `out`; returns the number of bytes. Nothing is written to `out`
    /// unless the storage accepted the request.
    pub fn download_to<W: Write>(
        &self,
        id: &FileId,
        offset: i64,
        count: i64,
        out: impl FnOnce() -> io::Result<W>,
    ) -> NetResult<u64> {
        let addr = self.query_fetch(id)?;
        self.download_from(&addr, id, offset, count, out)
    }

    pub fn download_from<W: Write>(
        &self,
        addr: &HostPort,
        id: &FileId,
        offset: i64,
        count: i64,
        out: impl FnOnce() -> io::Result<W>,
    ) -> NetResult<u64> {
        let mut c = self.connect(addr)?;
        let req = DownloadReq {
            offset,
            count,
            group: id.group.clone(),
            filename: id.name.clone(),
        };
        net::send_request(&mut c.stream, cmd::DOWNLOAD_FILE, 0, &req.to_bytes())?;
        let h = net::recv_header(&mut c.stream).inspect_err(|e| status_err(addr, e))?;
        let mut w = out()?;
        let total = h.pkg_len as u64;
        let body = &mut (&mut c.stream).take(total);
        let n = self.with_progress(|report| progress::copy(body, &mut w, total, report))?;
        if n != h.pkg_len as u64 {
            return Err(NetError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "short download",
            )));
        }
        w.flush()?;
        self.release(c);
        Ok(n)
    }

    pub fn download_to_vec(&self, id: &FileId, offset: i64, count: i64) -> NetResult<Vec<u8>> {
        let mut v = Vec::new();
        self.download_to(id, offset, count, || Ok(&mut v))?;
        Ok(v)
    }

    pub fn delete(&self, id: &FileId) -> NetResult<()> {
        let addr = self.query_update(id)?;
        self.delete_on(&addr, id)
    }

    /// Delete `id` on the storage at `addr` (no tracker query).
    pub fn delete_on(&self, addr: &HostPort, id: &FileId) -> NetResult<()> {
        let req = GroupFileReq {
            group: id.group.clone(),
            filename: id.name.clone(),
        };
        self.storage_request(addr, cmd::DELETE_FILE, &req.to_bytes())
            .map(|_| ())
    }

    /// `op` is `b'O'` (overwrite) or `b'M'` (merge).
    pub fn set_metadata(&self, id: &FileId, items: &[MetaItem], op: u8) -> NetResult<()> {
        let addr = self.query_update(id)?;
        self.set_metadata_on(&addr, id, items, op)
    }

    pub fn set_metadata_on(
        &self,
        addr: &HostPort,
        id: &FileId,
        items: &[MetaItem],
        op: u8,
    ) -> NetResult<()> {
        let req = SetMetadataReq {
            op,
            group: id.group.clone(),
            filename: id.name.clone(),
            metadata: metadata::pack(items),
        };
        self.storage_request(addr, cmd::SET_METADATA, &req.to_bytes())
            .map(|_| ())
    }

    pub fn get_metadata(&self, id: &FileId) -> NetResult<Vec<MetaItem>> {
        let addr = self.query_update(id)?;
        let req = GroupFileReq {
            group: id.group.clone(),
            filename: id.name.clone(),
        };
        Ok(metadata::unpack(&self.storage_request(
            &addr,
            cmd::GET_METADATA,
            &req.to_bytes(),
        )?))
    }

    /// QUERY_FILE_INFO on the storage that has the file (flags: 1 no CRC, 2 keep silent).
    pub fn query_file_info(&self, id: &FileId, flags: u8) -> NetResult<FileInfoReply> {
        let addr = self.query_fetch(id)?;
        let mut c = self.connect(&addr)?;
        let req = GroupFileReq {
            group: id.group.clone(),
            filename: id.name.clone(),
        };
        net::send_request(&mut c.stream, cmd::QUERY_FILE_INFO, flags, &req.to_bytes())?;
        let h = net::recv_header(&mut c.stream).inspect_err(|e| status_err(&addr, e))?;
        let body = net::recv_body(&mut c.stream, &h)?;
        self.release(c);
        FileInfoReply::from_bytes(&body).map_err(NetError::from)
    }

    /// What `fdfs_file_info` prints: decoded from the name for normal files, asked from the
    /// storage for appender and slave files and names carrying a server id.
    pub fn file_info(&self, id: &FileId, flags: u8) -> NetResult<FileInfo> {
        let rn = RemoteName::decode(&id.name).map_err(|_| NetError::Status(errno::EINVAL))?;
        // a name with a server id is resolved in the id table, when there is one (upstream)
        let (source_id, ip) = match &rn.payload.source {
            Source::Id(v) => (
                *v,
                self.cfg
                    .storage_ids
                    .by_id(&v.to_string())
                    .and_then(|e| e.ips.first().cloned()),
            ),
            Source::Ipv4(_) => (0, rn.payload.source.ip_text()),
        };
        let needs_server = matches!(rn.kind, FileKind::Appender | FileKind::Slave) || ip.is_none();
        if !needs_server {
            return Ok(FileInfo {
                from_server: false,
                kind: rn.kind,
                source_id,
                source_ip: ip.unwrap_or_default(),
                create_timestamp: rn.payload.timestamp as i64,
                file_size: rn.payload.file_size().unwrap_or(0),
                crc32: rn.payload.crc32,
            });
        }
        let r = self.query_file_info(id, flags)?;
        Ok(FileInfo {
            from_server: true,
            kind: rn.kind,
            source_id,
            source_ip: r.source_ip,
            create_timestamp: r.create_timestamp,
            file_size: r.file_size,
            crc32: r.crc32,
        })
    }

    pub fn append(&self, id: &FileId, content: Content) -> NetResult<()> {
        let addr = self.query_update(id)?;
        let mut head = AppendHead {
            name_len: id.name.len() as i64,
            file_size: content.len()? as i64,
        }
        .to_bytes();
        head.extend_from_slice(id.name.as_bytes());
        self.streamed(&addr, cmd::APPEND_FILE, &head, &content)
            .map(|_| ())
    }

    pub fn modify(&self, id: &FileId, offset: i64, content: Content) -> NetResult<()> {
        let addr = self.query_update(id)?;
        let mut head = ModifyHead {
            name_len: id.name.len() as i64,
            offset,
            file_size: content.len()? as i64,
        }
        .to_bytes();
        head.extend_from_slice(id.name.as_bytes());
        self.streamed(&addr, cmd::MODIFY_FILE, &head, &content)
            .map(|_| ())
    }

    pub fn truncate(&self, id: &FileId, new_size: i64) -> NetResult<()> {
        let addr = self.query_update(id)?;
        let req = TruncateReq {
            new_size,
            filename: id.name.clone(),
        };
        self.storage_request(&addr, cmd::TRUNCATE_FILE, &req.to_bytes())
            .map(|_| ())
    }

    pub fn regenerate_appender_filename(&self, id: &FileId) -> NetResult<FileId> {
        let addr = self.query_update(id)?;
        let body =
            self.storage_request(&addr, cmd::REGENERATE_APPENDER_FILENAME, id.name.as_bytes())?;
        let r = FileIdReply::from_bytes(&body)?;
        Ok(FileId {
            group: r.group,
            name: r.filename,
        })
    }
}
