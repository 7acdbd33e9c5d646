//! A member's side of a small upload: a slot asked of the trunk server (or allocated here when
//! this storage is the trunk server), the data written, the slot confirmed and then made visible by
//! its header; a slot given back when its file is deleted; a replica's slot written as the source
//! wrote it.

use crate::binlog::op;
use crate::storage::{io_errno, AtOffset, Storage};
use fdfs_common::codec::Message;
use fdfs_common::file_id::{FilePayload, RemoteName, Source, TRUNK_FILE_FLAG};
use fdfs_common::net::{self};
use fdfs_common::proto::trunk::{TrunkAllocReq, TrunkInfo, TrunkSlotReq};
use fdfs_common::proto::{cmd, errno};
use fdfs_common::refusal::Refusal;
use fdfs_common::server::Conn;
use fdfs_common::trunk::{SlotHeader, TrunkSlot, SLOT_HEADER_LEN, SLOT_REGULAR};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Uploads up to this size are taken into memory and written with their slot header in one
/// `pwrite` after the confirm; bigger ones go into the slot as they arrive.
const SLOT_IN_ONE_WRITE: i64 = 64 << 10;

/// An upload received for its slot, not yet visible: the trunk file, the new file's name, the
/// header that will make it visible, and a small upload's slot image.
struct ReceivedSlot {
    file: Arc<File>,
    name: String,
    header: SlotHeader,
    timestamp: i64,
    image: Option<SlotImage>,
}

/// A small upload's slot as it will be written: room for the header, then the data.
struct SlotImage(Vec<u8>);

impl Write for SlotImage {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl crate::storage::DataSink for SlotImage {
    fn sync_data(&self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Storage {
    /// The slot bytes an upload of `size` needs, or `None` for a plain file: trunks take only
    /// normal uploads whose slot (24-byte header included) fits `slot_max_size`.
    pub(crate) fn trunk_slot_size(&self, size: i64) -> Option<u32> {
        let p = self.params.read();
        if !p.use_trunk_file || size < 0 || self.trunk_server.read().is_none() {
            return None;
        }
        let want = u64::try_from(size).ok()? + u64::from(SLOT_HEADER_LEN);
        (want <= u64::from(p.slot_max_size)).then_some(want as u32)
    }

    /// One request to the trunk server; the answer's body.
    fn ask_trunk_server(&self, command: u8, status: u8, body: &[u8]) -> Result<Vec<u8>, u8> {
        let Some(ts) = self.trunk_server.read().clone() else {
            return Err(errno::EAGAIN);
        };
        let port = u16::try_from(ts.port).map_err(|_| errno::EINVAL)?;
        self.pooled_request(&ts.ip, port, |s| {
            net::send_request(s, command, status, body)?;
            let h = net::recv_header(s)?;
            net::recv_body(s, &h)
        })
        .map_err(|e| e.errno() as u8)
    }

    fn alloc_slot(&self, spi: u8, requested: u32) -> Result<TrunkInfo, u8> {
        if self.is_trunk_server() {
            return self.alloc_here(spi, requested);
        }
        let req = TrunkAllocReq {
            group: self.group.clone(),
            size: requested as i32,
            store_path_index: spi,
        };
        let b = self.ask_trunk_server(cmd::TRUNK_ALLOC_SPACE, 0, &req.to_bytes())?;
        TrunkInfo::from_bytes(&b).map_err(|_| errno::EIO)
    }

    fn confirm_slot(&self, info: &TrunkInfo, status: u8) -> Result<(), u8> {
        let r = if self.is_trunk_server() {
            self.confirm_here(info, status)
        } else {
            let req = TrunkSlotReq {
                group: self.group.clone(),
                info: *info,
            };
            self.ask_trunk_server(cmd::TRUNK_ALLOC_CONFIRM, status, &req.to_bytes())
                .map(|_| ())
        };
        if let Err(code) = r {
            log::warn!("trunk alloc confirm of {info:?} fail, errno: {code}");
        }
        r
    }

    /// Give a deleted file's slot back to the trunk server's free list.
    pub(crate) fn free_slot(&self, info: &TrunkInfo) {
        let r = if self.is_trunk_server() {
            self.free_here(info)
        } else {
            let req = TrunkSlotReq {
                group: self.group.clone(),
                info: *info,
            };
            self.ask_trunk_server(cmd::TRUNK_FREE_SPACE, 0, &req.to_bytes())
                .map(|_| ())
        };
        if let Err(code) = r {
            log::warn!("trunk free space of {info:?} fail, errno: {code}");
        }
    }

    /// Store an upload of `size` bytes into a trunk slot: allocate (through the trunk server),
    /// write the data and then the header into this member's copy of the trunk file, confirm,
    /// and record the create. Returns the new file's name.
    pub(crate) fn upload_into_trunk(
        &self,
        conn: &mut Conn,
        info: TrunkInfo,
        size: i64,
        source: &Source,
        x7: &str,
    ) -> Result<String, Refusal> {
        let spi = usize::from(info.store_path_index);
        let slot = TrunkSlot {
            trunk_id: info.trunk_id,
            offset: info.offset,
            alloc_size: info.size,
        };
        // the data first; the slot is taken at the trunk server (confirm) before the header makes
        // the file visible here: a confirm that fails leaves a slot that holds nothing, and a
        // crash after it only a slot nobody uses
        let received = self.receive_slot_data(conn, (spi, &info, &slot), size, source, x7);
        let ReceivedSlot {
            file: f,
            name,
            header,
            timestamp,
            image,
        } = match received {
            Ok(r) => r,
            Err(f) => {
                let status = if f.status == errno::EEXIST {
                    errno::EEXIST
                } else {
                    errno::EIO
                };
                let _ = self.confirm_slot(&info, status);
                return Err(f);
            }
        };
        // the line before the confirm: a change that cannot be recorded gives its slot back
        let _intent = match self.intent(timestamp, op::CREATE, &name, "") {
            Ok(i) => i,
            Err(f) => {
                let _ = self.confirm_slot(&info, errno::EIO);
                return Err(f);
            }
        };
        self.confirm_slot(&info, 0).map_err(Refusal::done)?;
        let written = match image {
            Some(mut image) => {
                image.0[..SLOT_HEADER_LEN as usize].copy_from_slice(&header.to_bytes());
                f.write_all_at(&image.0, u64::from(info.offset))
            }
            None => f.write_all_at(&header.to_bytes(), u64::from(info.offset)),
        };
        if let Err(e) = written.and_then(|()| self.sync_file(f.as_ref())) {
            // not (surely) stored: the slot is emptied and given back, the upload refused
            log::error!("write trunk slot of {name} fail: {e}");
            let _ = f.write_all_at(&[0u8; SLOT_HEADER_LEN as usize], u64::from(info.offset));
            self.free_slot(&info);
            return Err(Refusal::done(io_errno(&e)));
        }
        Ok(name)
    }

    /// A slot of `requested` bytes on store path `spi` for an upload, from the trunk server;
    /// `None` (said once a minute at most) when it gives none: the upload becomes a plain file.
    pub(crate) fn slot_for_upload(&self, spi: usize, requested: u32) -> Option<TrunkInfo> {
        match self.alloc_slot(spi as u8, requested) {
            Ok(info) => Some(info),
            Err(code) => {
                let now = fdfs_common::now();
                let last = self.trunk_alloc_fail_logged.swap(now, Ordering::Relaxed);
                if now - last >= 60 {
                    log::warn!(
                        "no trunk slot from the trunk server (errno {code}): small uploads are \
                         stored as plain files meanwhile"
                    );
                }
                None
            }
        }
    }

    /// The upload's bytes into the slot of this member's trunk file (a small one into memory,
    /// returned, to be written with its header), the slot checked empty first; the file's name
    /// and the header that will make it visible.
    fn receive_slot_data(
        &self,
        conn: &mut Conn,
        (spi, info, slot): (usize, &TrunkInfo, &TrunkSlot),
        size: i64,
        source: &Source,
        x7: &str,
    ) -> Result<ReceivedSlot, Refusal> {
        let path = self.store.trunk_file_of(spi, info);
        let (f, head) = self.open_slot_for_write(&path, slot, size as u64)?;
        if head != [0u8; SLOT_HEADER_LEN as usize] {
            log::error!("trunk slot {slot:?} handed out is not empty");
            return Err(Refusal::early(errno::EEXIST));
        }
        let mut crc = crc32fast::Hasher::new();
        let image = if size <= SLOT_IN_ONE_WRITE {
            let mut image = SlotImage(Vec::with_capacity(SLOT_HEADER_LEN as usize + size as usize));
            image.0.resize(SLOT_HEADER_LEN as usize, 0);
            self.receive_and_sync(conn, &mut image, size as u64, Some(&mut crc))?;
            Some(image)
        } else {
            let mut w = AtOffset {
                file: &f,
                pos: slot.data_offset(),
            };
            self.receive_and_sync(conn, &mut w, size as u64, Some(&mut crc))?;
            None
        };
        let timestamp = fdfs_common::now();
        let payload = FilePayload {
            source: source.clone(),
            timestamp: timestamp as u32,
            size_field: FilePayload::make_size_field(size, false, self.store.random())
                | TRUNK_FILE_FLAG,
            crc32: crc.finalize(),
        };
        let name = format!(
            "M{spi:02X}/{:02X}/{:02X}/{}{}{x7}",
            info.sub_path_high,
            info.sub_path_low,
            payload.encode_b27(),
            slot.encode_b16()
        );
        let rn = RemoteName::decode(&name).map_err(|_| Refusal::done(errno::EINVAL))?;
        let header = SlotHeader::for_name(&rn, SLOT_REGULAR).ok_or(Refusal::done(errno::EINVAL))?;
        Ok(ReceivedSlot {
            file: f,
            name,
            header,
            timestamp,
            image,
        })
    }

    /// Write the bytes of the file `name` names into its trunk slot here (data first, the
    /// header last, as a replica is written), once they match the size and CRC32 the name
    /// carries. A slot that is not empty (it holds this file already, or another one) is left
    /// alone (`false`) unless `over` says otherwise of the header found there: the scrub,
    /// rewriting a corrupt copy of the same file; reconcile, over the bytes of a file deleted
    /// long ago that a power cut brought back in place of this one's.
    pub(crate) fn put_slot(
        &self,
        name: &str,
        bytes: &[u8],
        over: &dyn Fn(&SlotHeader) -> bool,
    ) -> std::io::Result<bool> {
        let bad = |why: &str| std::io::Error::other(format!("{name}: {why}"));
        let rn = RemoteName::decode(name).map_err(|_| bad("not a file ID"))?;
        let slot = TrunkSlot::of_name(&rn).ok_or_else(|| bad("not in a trunk slot"))?;
        let header = SlotHeader::for_name(&rn, SLOT_REGULAR).ok_or_else(|| bad("no size"))?;
        if bytes.len() != header.file_size as usize || crc32fast::hash(bytes) != header.crc32 {
            return Err(bad("the copy does not match its name"));
        }
        let ln = fdfs_common::file_id::LogicalName::parse(name, self.store.paths.len())
            .map_err(|_| bad("not a file ID"))?;
        let path = self.store.trunk_file_path(&ln, &slot);
        let (_, on_disk) = self
            .open_slot_for_write(&path, &slot, bytes.len() as u64)
            .map_err(|f| std::io::Error::from_raw_os_error(f.status.into()))?;
        if on_disk != [0u8; SLOT_HEADER_LEN as usize] {
            let holder = SlotHeader::from_bytes(&on_disk);
            let other = !holder.names(&rn);
            if !over(&holder) {
                if other {
                    log::warn!("{name}: its slot holds another file here; left alone");
                }
                return Ok(false);
            }
            if other {
                log::warn!("{name}: written over what its slot held here ({holder:?})");
            }
        }
        self.write_at(
            &path,
            &[
                (slot.data_offset(), bytes),
                (u64::from(slot.offset), &header.to_bytes()),
            ],
        )?;
        Ok(true)
    }

    /// This member's copy of a trunk file, ready to take `file_size` bytes into `slot`: created
    /// sparse at `trunk_file_size` (or extended to hold the slot) when needed, the slot checked
    /// against the file, and the slot's current header (all zeros when free).
    pub(crate) fn open_slot_for_write(
        &self,
        path: &std::path::Path,
        slot: &TrunkSlot,
        file_size: u64,
    ) -> Result<(Arc<File>, [u8; SLOT_HEADER_LEN as usize]), Refusal> {
        let end = u64::from(slot.offset) + u64::from(slot.alloc_size);
        let trunk_file_size = self.params.read().trunk_file_size;
        let (f, len) = self
            .store
            .open_trunk_file(path, Some((end, trunk_file_size)))
            .map_err(|e| Refusal::early(io_errno(&e)))?;
        if !slot.holds(file_size, len) {
            return Err(Refusal::invalid(
                "file_size",
                format!("{file_size} bytes do not fit the slot {slot:?}"),
            ));
        }
        let mut head = [0u8; SLOT_HEADER_LEN as usize];
        f.read_exact_at(&mut head, u64::from(slot.offset))
            .map_err(|e| Refusal::early(io_errno(&e)))?;
        Ok((f, head))
    }
}
