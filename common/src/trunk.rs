//! Trunk files (docs/protocol/sync-and-storage-layout.md section 6): where a small file lives
//! inside a trunk file, and the 24-byte header in front of its data.
//!
//! A trunk name carries 16 base64 characters after its payload: the trunk file id, the slot's
//! offset and its allocated size, big-endian u32 each. The slot header is an on-disk image of
//! upstream's C layout (not a protocol body), so it is laid out here with the rest of the
//! format. A slot "holds" a file only if its header equals the one rebuilt from the name.

use crate::file_id::{base64_decode, base64_encode, FileKind, RemoteName};
use crate::proto::trunk::TrunkInfo;

/// Bytes of the header in front of a slot's data.
pub const SLOT_HEADER_LEN: u32 = 24;
/// `file_type` of a slot holding a regular file.
pub const SLOT_REGULAR: u8 = b'F';
/// `file_type` of a slot holding a link (its data is the target's logical name).
pub const SLOT_LINK: u8 = b'L';
/// Characters of trunk information in a trunk name, after the 27 payload characters.
pub const TRUNK_INFO_LEN: usize = 16;

/// A slot of a trunk file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrunkSlot {
    pub trunk_id: u32,
    /// byte offset of the slot (its header) in the trunk file
    pub offset: u32,
    /// bytes reserved for the slot, header included
    pub alloc_size: u32,
}

impl TrunkSlot {
    /// The slot a trunk name points at.
    pub fn of_name(name: &RemoteName) -> Option<TrunkSlot> {
        if name.kind != FileKind::Trunk {
            return None;
        }
        TrunkSlot::decode_b16(name.tail.get(..TRUNK_INFO_LEN)?)
    }

    pub fn decode_b16(s: &str) -> Option<TrunkSlot> {
        let b = base64_decode(s)?;
        if s.len() != TRUNK_INFO_LEN || b.len() != 12 {
            return None;
        }
        let u = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some(TrunkSlot {
            trunk_id: u(0),
            offset: u(4),
            alloc_size: u(8),
        })
    }

    pub fn encode_b16(&self) -> String {
        let mut b = Vec::with_capacity(12);
        for v in [self.trunk_id, self.offset, self.alloc_size] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        base64_encode(&b)
    }

    /// The slot as a block of the trunk server's free-space index: the store path and
    /// directory of the name it came from.
    pub fn block(&self, name: &RemoteName) -> TrunkInfo {
        TrunkInfo {
            store_path_index: name.store_path_index as u8,
            sub_path_high: name.subdir_high as u8,
            sub_path_low: name.subdir_low as u8,
            trunk_id: self.trunk_id,
            offset: self.offset,
            size: self.alloc_size,
        }
    }

    /// The trunk file's name inside its `data/HH/HH` directory: the id, at least 6 digits.
    pub fn file_name(&self) -> String {
        format!("{:06}", self.trunk_id)
    }

    /// Where the file's data starts in the trunk file.
    pub fn data_offset(&self) -> u64 {
        u64::from(self.offset) + u64::from(SLOT_HEADER_LEN)
    }

    /// Whether a slot of this size, at this offset, fits a trunk file of `trunk_len` bytes and
    /// can hold `file_size` bytes of data.
    pub fn holds(&self, file_size: u64, trunk_len: u64) -> bool {
        self.alloc_size >= SLOT_HEADER_LEN
            && file_size <= u64::from(self.alloc_size - SLOT_HEADER_LEN)
            && u64::from(self.offset) + u64::from(self.alloc_size) <= trunk_len
    }
}

/// The 24-byte header in front of a slot's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotHeader {
    /// [`SLOT_REGULAR`], [`SLOT_LINK`], or 0 for a free slot
    pub file_type: u8,
    pub alloc_size: u32,
    pub file_size: u32,
    pub crc32: u32,
    pub mtime: u32,
    /// the name's last 7 characters (its formatted ext)
    pub ext: [u8; 7],
}

impl SlotHeader {
    /// The header a slot must carry to hold the file `name` names.
    pub fn for_name(name: &RemoteName, file_type: u8) -> Option<SlotHeader> {
        let slot = TrunkSlot::of_name(name)?;
        let tail = name.tail.as_bytes();
        let ext: [u8; 7] = tail
            .get(TRUNK_INFO_LEN..TRUNK_INFO_LEN + 7)?
            .try_into()
            .ok()?;
        Some(SlotHeader {
            file_type,
            alloc_size: slot.alloc_size,
            file_size: u32::try_from(name.payload.file_size()?).ok()?,
            crc32: name.payload.crc32,
            mtime: name.payload.timestamp,
            ext,
        })
    }

    pub fn to_bytes(&self) -> [u8; SLOT_HEADER_LEN as usize] {
        let mut b = [0u8; SLOT_HEADER_LEN as usize];
        b[0] = self.file_type;
        b[1..5].copy_from_slice(&self.alloc_size.to_be_bytes());
        b[5..9].copy_from_slice(&self.file_size.to_be_bytes());
        b[9..13].copy_from_slice(&self.crc32.to_be_bytes());
        b[13..17].copy_from_slice(&self.mtime.to_be_bytes());
        b[17..24].copy_from_slice(&self.ext);
        b
    }

    pub fn from_bytes(b: &[u8; SLOT_HEADER_LEN as usize]) -> SlotHeader {
        let u = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        SlotHeader {
            file_type: b[0],
            alloc_size: u(1),
            file_size: u(5),
            crc32: u(9),
            mtime: u(13),
            ext: b[17..24].try_into().expect("7 bytes"),
        }
    }

    /// Whether this header is `other` but for a field or two (a damaged byte): at least four
    /// of its six fields equal. Another file's header, even of the same slot size and second,
    /// shares at most three (type, slot size, time); random bytes share none.
    pub fn resembles(&self, other: &SlotHeader) -> bool {
        let same = [
            self.file_type == other.file_type,
            self.alloc_size == other.alloc_size,
            self.file_size == other.file_size,
            self.crc32 == other.crc32,
            self.mtime == other.mtime,
            self.ext == other.ext,
        ];
        same.iter().filter(|s| **s).count() >= 4
    }

    /// Whether these are the bytes of a file's header (not zeros, not the middle of some data):
    /// a file type, and sizes that fit `alloc_size`, the slot it was read at.
    pub fn is_a_header_for(&self, alloc_size: u32) -> bool {
        matches!(self.file_type, SLOT_REGULAR | SLOT_LINK)
            && self.alloc_size == alloc_size
            && u64::from(self.file_size) + u64::from(SLOT_HEADER_LEN) <= u64::from(alloc_size)
    }

    /// Whether this header, read from a slot, says the slot holds `name` (of either type).
    pub fn names(&self, name: &RemoteName) -> bool {
        matches!(self.file_type, SLOT_REGULAR | SLOT_LINK)
            && SlotHeader::for_name(name, self.file_type).as_ref() == Some(self)
    }
}

/// What a trunk binlog line does to the free-space index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkOp {
    /// `A`: a block joins the index (free, or held during an allocation)
    Add,
    /// `D`: a block leaves it
    Delete,
}

/// One line of `data/trunk/binlog`:
/// `<ts> <A|D> <store_path_index> <sub_path_high> <sub_path_low> <trunk_id> <offset> <size>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrunkBinlogRecord {
    pub timestamp: i64,
    pub op: TrunkOp,
    pub block: TrunkInfo,
}

impl TrunkBinlogRecord {
    /// A line without its newline; `None` unless all eight fields are there and in range.
    pub fn parse(line: &str) -> Option<TrunkBinlogRecord> {
        let mut f = line.split(' ');
        let timestamp = f.next()?.parse().ok()?;
        let op = match f.next()? {
            "A" => TrunkOp::Add,
            "D" => TrunkOp::Delete,
            _ => return None,
        };
        let mut n = || f.next().and_then(|v| v.parse::<u32>().ok());
        let (spi, high, low) = (n()?, n()?, n()?);
        let block = TrunkInfo {
            store_path_index: u8::try_from(spi).ok()?,
            sub_path_high: u8::try_from(high).ok()?,
            sub_path_low: u8::try_from(low).ok()?,
            trunk_id: n()?,
            offset: n()?,
            size: n()?,
        };
        if f.next().is_some() {
            return None;
        }
        Some(TrunkBinlogRecord {
            timestamp,
            op,
            block,
        })
    }

    /// The line, newline included.
    pub fn to_line(&self) -> String {
        let b = &self.block;
        format!(
            "{} {} {} {} {} {} {} {}\n",
            self.timestamp,
            match self.op {
                TrunkOp::Add => 'A',
                TrunkOp::Delete => 'D',
            },
            b.store_path_index,
            b.sub_path_high,
            b.sub_path_low,
            b.trunk_id,
            b.offset,
            b.size
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unhex;

    /// A name and its slot header as upstream wrote them (tests/golden/trunk-fixture.json).
    #[test]
    fn upstream_name_and_header() {
        let name =
            RemoteName::decode("M00/00/00/fwAAq2sPnEuIDdzCAAABLAJrxCwAAAAAQAAAwAAAAIA1361659")
                .unwrap();
        let slot = TrunkSlot::of_name(&name).unwrap();
        assert_eq!(
            slot,
            TrunkSlot {
                trunk_id: 1,
                offset: 768,
                alloc_size: 512
            }
        );
        assert_eq!(slot.encode_b16(), "AAAAAQAAAwAAAAIA");
        assert_eq!(slot.file_name(), "000001");
        let header = SlotHeader::for_name(&name, SLOT_REGULAR).unwrap();
        let on_disk = unhex("46000002000000012c026bc42c6b0f9c4b31333631363539");
        assert_eq!(header.to_bytes().to_vec(), on_disk);
        assert!(SlotHeader::from_bytes(&on_disk.try_into().unwrap()).names(&name));
        assert!(!SlotHeader::from_bytes(&[0; 24]).names(&name));
        assert!(slot.holds(300, 64 << 20));
        assert!(!slot.holds(489, 64 << 20));
        assert!(!slot.holds(300, 1200));
    }

    #[test]
    fn trunk_binlog_lines_as_upstream_writes_them() {
        let line = "1796185163 A 0 0 0 1 256 67108608";
        let r = TrunkBinlogRecord::parse(line).unwrap();
        assert_eq!(
            (r.op, r.block.offset, r.block.size),
            (TrunkOp::Add, 256, 67108608)
        );
        assert_eq!(r.to_line(), format!("{line}\n"));
        for bad in [
            "",
            "1796185163 X 0 0 0 1 0 256",
            "1796185163 A 0 0 0 1 0",
            "1796185163 A 0 0 0 1 0 256 9",
            "1796185163 A 256 0 0 1 0 256",
            "x A 0 0 0 1 0 256",
        ] {
            assert!(TrunkBinlogRecord::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn normal_names_have_no_slot() {
        let name = RemoteName::decode("M00/00/00/fwAAA2sEyyCAT2X8AAAAE2WoGAU042.txt").unwrap();
        assert!(TrunkSlot::of_name(&name).is_none());
        assert!(SlotHeader::for_name(&name, SLOT_REGULAR).is_none());
    }
}
