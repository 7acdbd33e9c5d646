//! DOWNLOAD_FILE and QUERY_FILE_INFO (docs/protocol/client-protocol.md 3.8, 3.12): bytes sent
//! zero-copy (`crate::zero_copy`), a file's size, time, CRC and source.

use crate::storage::{io_errno, Outcome, Storage};
use crate::zero_copy;
use fdfs_common::codec::Message;
use fdfs_common::file_id::{classify, FileKind, RemoteName, Source};
use fdfs_common::proto::client::GroupFileReq;
use fdfs_common::proto::cluster::stat;
use fdfs_common::proto::storage::{DownloadReq, FileInfoReply};
use fdfs_common::proto::{errno, Header};
use fdfs_common::refusal::Refusal;
use fdfs_common::server::Conn;
use std::io::{self};
use std::os::unix::fs::MetadataExt;

impl Storage {
    // ---- reads and deletes -------------------------------------------------------------------

    pub(super) fn download_file(&self, conn: &mut Conn, body: &[u8]) -> Result<(), Refusal> {
        let req = DownloadReq::from_bytes(body)?;
        self.check_group(&req.group)?;
        let fail = |c| {
            self.count(stat::TOTAL_DOWNLOAD_COUNT, false, None);
            Refusal::done(c)
        };
        let ln = self
            .parse_download_name(&req.filename)
            .map_err(|f| fail(f.status))?;
        if self.expired(&req.filename) {
            return Err(fail(errno::ENOENT));
        }
        let opened = self.store.open_stored(&ln, &req.filename);
        self.count_io(stat::TOTAL_FILE_OPEN_COUNT, opened.is_ok());
        let stored = opened.map_err(|e| fail(io_errno(&e)))?;
        let size = stored.size as i64;
        if req.offset < 0
            || req.count < 0
            || (req.offset >= size && !(req.offset == 0 && size == 0))
        {
            return Err(fail(errno::EINVAL));
        }
        let remain = size - req.offset;
        let len = if req.count == 0 || req.count > remain {
            remain
        } else {
            req.count
        };
        let header = Header::response(0, len as usize).to_bytes();
        let r = zero_copy::send_with_header(
            conn.stream_mut(),
            &header,
            &stored.file,
            stored.start + req.offset as u64,
            len as u64,
        );
        if r.is_ok() {
            conn.note_sent(0, header.len() as u64 + len as u64);
        }
        self.count(
            stat::TOTAL_DOWNLOAD_COUNT,
            r.is_ok(),
            Some((stat::TOTAL_DOWNLOAD_BYTES, len)),
        );
        self.count_io(stat::TOTAL_FILE_READ_COUNT, r.is_ok());
        r.map_err(|e| {
            log::warn!(
                "client ip: {}, send file {} fail: {e}",
                conn.peer_ip(),
                req.filename
            );
            Refusal::early(0)
        })
    }

    pub(super) fn query_file_info(&self, flags: u8, body: &[u8]) -> Outcome {
        let req = GroupFileReq::from_bytes(body)?;
        self.check_group(&req.group)?;
        let ln = self.parse_name(&req.filename)?;
        let rn = RemoteName::decode(&req.filename)?;
        if self.expired(&req.filename) {
            return Err(Refusal::done(errno::ENOENT));
        }
        let path = self.store.local_path(&ln);
        let not_there = |e: &io::Error| {
            if flags & 2 == 0 {
                log::error!("file: {} not exist", path.display());
            }
            Refusal::done(io_errno(e))
        };
        let (file_size, create_timestamp) = if rn.kind == FileKind::Trunk {
            // the slot's header, checked against the name, has the size and the time
            let stored = self
                .store
                .open_stored(&ln, &req.filename)
                .map_err(|e| not_there(&e))?;
            let (_, header) = stored.trunk.expect("a trunk name opens a slot");
            (stored.size as i64, i64::from(header.mtime))
        } else {
            let lmd = std::fs::symlink_metadata(&path).map_err(|e| not_there(&e))?;
            let md = std::fs::metadata(&path).map_err(|e| Refusal::done(io_errno(&e)))?;
            (md.len() as i64, lmd.mtime())
        };
        let kind = classify(req.filename.len(), &rn.payload);
        let crc = match kind {
            FileKind::Appender | FileKind::Slave if flags & 1 != 0 => 0,
            FileKind::Appender | FileKind::Slave => {
                crate::store::file_crc(&path, |_| {})
                    .map_err(|e| Refusal::done(io_errno(&e)))?
                    .1
            }
            _ => rn.payload.crc32,
        };
        Ok(FileInfoReply {
            file_size,
            create_timestamp,
            crc32: crc,
            source_ip: match rn.payload.source {
                Source::Id(n) => self
                    .storage_ids
                    .read()
                    .by_id(&n.to_string())
                    .map(|e| e.ips[0].clone())
                    .unwrap_or_default(),
                _ => rn.payload.source.ip_text().unwrap_or_default(),
            },
            width: self.params.read().width,
        }
        .to_bytes())
    }
}
