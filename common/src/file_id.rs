//! File IDs and remote file names, byte-exact with upstream (docs/protocol/client-protocol.md
//! section 5).
//!
//! `group1/M00/00/00/fwAAA2sEyyCAT2X8AAAAE2WoGAU042.txt` is the group, the store path `M00`,
//! two subdirectories, 27 base64 characters of a 20-byte payload (source, timestamp, size with
//! flags, crc32) and a 7-character formatted ext.

use base64::alphabet::Alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use std::fmt;
use std::sync::OnceLock;

/// Length of a normal or appender logical name (`Mxx/HH/HH/` + 27 + 7).
pub const NORMAL_NAME_LEN: usize = 44;
/// Length of a trunk logical name (normal + 16 characters of trunk info).
pub const TRUNK_NAME_LEN: usize = 60;
/// Bit 63 of the size field: the size is in the low 32 bits, the high word is random.
pub const SIZE_RANDOMIZED: i64 = i64::MIN;
pub const TRUNK_FILE_FLAG: i64 = 0x0800_0000_0000_0000;
pub const APPENDER_FILE_FLAG: i64 = 0x0400_0000_0000_0000;

fn engine() -> &'static GeneralPurpose {
    static ENGINE: OnceLock<GeneralPurpose> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let alphabet =
            Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
                .expect("valid alphabet");
        GeneralPurpose::new(
            &alphabet,
            GeneralPurposeConfig::new()
                .with_encode_padding(false)
                .with_decode_padding_mode(DecodePaddingMode::Indifferent)
                .with_decode_allow_trailing_bits(true),
        )
    })
}

/// FastDFS base64: `-` and `_` for 62 and 63, no padding.
pub fn base64_encode(b: &[u8]) -> String {
    engine().encode(b)
}

pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    // upstream pads with '.', which our engine does not know; padding carries no bits
    engine().decode(s.trim_end_matches('.')).ok()
}

/// A file name inside a request body that is not a file ID is a malformed body.
impl From<FileIdError> for crate::codec::DecodeError {
    fn from(e: FileIdError) -> Self {
        crate::codec::DecodeError::invalid("filename", e.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileIdError {
    NoSlash,
    BadGroup,
    TooShort,
    TooLong,
    BadStorePath,
    BadSubdir,
    BadPayload,
}

impl fmt::Display for FileIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            FileIdError::NoSlash => "file id has no '/'",
            FileIdError::BadGroup => "invalid group name",
            FileIdError::TooShort => "file name too short",
            FileIdError::TooLong => "file name too long",
            FileIdError::BadStorePath => "invalid store path",
            FileIdError::BadSubdir => "invalid sub directory",
            FileIdError::BadPayload => "invalid base64 payload",
        };
        f.write_str(s)
    }
}

impl std::error::Error for FileIdError {}

/// Split `group/remote` at the first `/`.
pub fn split_file_id(file_id: &str) -> Result<(&str, &str), FileIdError> {
    let (g, r) = file_id.split_once('/').ok_or(FileIdError::NoSlash)?;
    if g.is_empty() || g.len() > crate::proto::GROUP_NAME_MAX {
        return Err(FileIdError::BadGroup);
    }
    Ok((g, r))
}

/// A logical name split into its store path index and the part under `data/` (the true name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalName<'a> {
    pub store_path_index: usize,
    /// `HH/HH/<name>`
    pub true_name: &'a str,
}

impl<'a> LogicalName<'a> {
    /// Parse as the storage does: `Mxx/` prefix (hex), index below `store_path_count`, then
    /// `HH/HH/` with upper-case hex and no further `/`. Names not starting with `M` are legacy
    /// names on store path 0.
    pub fn parse(name: &'a str, store_path_count: usize) -> Result<Self, FileIdError> {
        if name.len() <= 10 {
            return Err(FileIdError::TooShort);
        }
        if name.len() >= crate::proto::FILENAME_MAX {
            return Err(FileIdError::TooLong);
        }
        let (idx, true_name) = if name.as_bytes()[0] == b'M' {
            if name.as_bytes()[3] != b'/' {
                return Err(FileIdError::BadStorePath);
            }
            let idx =
                usize::from_str_radix(&name[1..3], 16).map_err(|_| FileIdError::BadStorePath)?;
            (idx, &name[4..])
        } else {
            (0, name)
        };
        if idx >= store_path_count {
            return Err(FileIdError::BadStorePath);
        }
        check_true_name(true_name)?;
        Ok(LogicalName {
            store_path_index: idx,
            true_name,
        })
    }

    /// `(high, low)` subdirectory indexes.
    pub fn subdirs(&self) -> (u32, u32) {
        let b = self.true_name.as_bytes();
        (hex2(b[0], b[1]), hex2(b[3], b[4]))
    }

    /// The file name inside its subdirectory.
    pub fn file_name(&self) -> &'a str {
        &self.true_name[6..]
    }
}

fn hex2(a: u8, b: u8) -> u32 {
    let h = |c: u8| (c as char).to_digit(16).unwrap_or(0);
    h(a) * 16 + h(b)
}

fn is_upper_hex(c: u8) -> bool {
    c.is_ascii_digit() || (b'A'..=b'F').contains(&c)
}

/// `HH/HH/<name>`: upper-case hex subdirectories, a non-empty name without `/`, no `..`.
pub fn check_true_name(s: &str) -> Result<(), FileIdError> {
    let b = s.as_bytes();
    if b.len() < 7 {
        return Err(FileIdError::TooShort);
    }
    let subdir_ok = |i: usize| is_upper_hex(b[i]) && is_upper_hex(b[i + 1]) && b[i + 2] == b'/';
    if !subdir_ok(0) || !subdir_ok(3) {
        return Err(FileIdError::BadSubdir);
    }
    let rest = &s[6..];
    if rest.contains('/') || rest.contains('\0') || rest == "." || rest == ".." {
        return Err(FileIdError::BadSubdir);
    }
    Ok(())
}

/// Where a file came from, as encoded in its first 4 payload bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A numeric server id (1..=2^24-1).
    Id(u32),
    Ipv4([u8; 4]),
}

impl Source {
    pub fn from_bytes(b: [u8; 4]) -> Source {
        let v = u32::from_le_bytes(b);
        if v > 0 && v <= 0x00FF_FFFF {
            Source::Id(v)
        } else {
            Source::Ipv4(b)
        }
    }

    pub fn to_bytes(&self) -> [u8; 4] {
        match self {
            Source::Id(v) => v.to_le_bytes(),
            Source::Ipv4(b) => *b,
        }
    }

    /// As listings and rules name a source: the server id, or the IPv4 address.
    pub fn text(&self) -> String {
        match self {
            Source::Id(id) => id.to_string(),
            Source::Ipv4(b) => format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]),
        }
    }

    pub fn ip_text(&self) -> Option<String> {
        match self {
            Source::Ipv4(b) => Some(format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])),
            Source::Id(_) => None,
        }
    }
}

/// The decoded 20-byte payload of a file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePayload {
    pub source: Source,
    pub timestamp: u32,
    pub size_field: i64,
    pub crc32: u32,
}

// The payload is the file-ID format (base64 inside a name), not a protocol body: it is sliced
// here, next to the rest of that format, rather than in the codec.
impl FilePayload {
    pub fn to_bytes(&self) -> [u8; 20] {
        let mut b = [0u8; 20];
        b[0..4].copy_from_slice(&self.source.to_bytes());
        b[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        b[8..16].copy_from_slice(&self.size_field.to_be_bytes());
        b[16..20].copy_from_slice(&self.crc32.to_be_bytes());
        b
    }

    pub fn from_bytes(b: &[u8]) -> Option<FilePayload> {
        if b.len() != 20 {
            return None;
        }
        Some(FilePayload {
            source: Source::from_bytes([b[0], b[1], b[2], b[3]]),
            timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            size_field: i64::from_be_bytes(b[8..16].try_into().ok()?),
            crc32: u32::from_be_bytes([b[16], b[17], b[18], b[19]]),
        })
    }

    /// The 27 base64 characters.
    pub fn encode_b27(&self) -> String {
        base64_encode(&self.to_bytes())
    }

    pub fn decode_b27(s: &str) -> Option<FilePayload> {
        if s.len() != 27 {
            return None;
        }
        FilePayload::from_bytes(&base64_decode(s)?)
    }

    pub fn is_appender(&self) -> bool {
        self.size_field & APPENDER_FILE_FLAG != 0
    }

    pub fn is_trunk(&self) -> bool {
        self.size_field & TRUNK_FILE_FLAG != 0
    }

    /// The size as the C client reads it (None for appenders, whose size is not in the name).
    pub fn file_size(&self) -> Option<i64> {
        if self.is_appender() {
            None
        } else if self.size_field & SIZE_RANDOMIZED != 0 || self.is_trunk() {
            Some(self.size_field & 0xFFFF_FFFF)
        } else {
            Some(self.size_field)
        }
    }

    /// The size field of a new file: random high bits for sizes below 4 GiB, as upstream does.
    pub fn make_size_field(size: i64, appender: bool, random23: u32) -> i64 {
        if appender {
            let high = 0x8000_0000u32 | (random23 & 0x7F_FFFF);
            ((high as i64) << 32) | APPENDER_FILE_FLAG
        } else if size >> 32 == 0 {
            let high = 0x8000_0000u32 | (random23 & 0x7F_FFFF);
            ((high as i64) << 32) | size
        } else {
            size
        }
    }
}

/// What kind of file a logical name denotes (5.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Normal,
    Appender,
    Trunk,
    Slave,
}

/// A remote file name decoded as far as the name allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteName {
    pub store_path_index: usize,
    pub subdir_high: u32,
    pub subdir_low: u32,
    pub payload: FilePayload,
    pub kind: FileKind,
    /// Everything after the 27 payload characters (formatted ext, trunk info, slave suffix).
    pub tail: String,
}

impl RemoteName {
    /// Decode a logical name (`Mxx/HH/HH/...`); needs at least the 44 characters of a normal name.
    pub fn decode(name: &str) -> Result<RemoteName, FileIdError> {
        if name.len() < NORMAL_NAME_LEN {
            return Err(FileIdError::TooShort);
        }
        let logical = LogicalName::parse(name, 256)?;
        let (h, l) = logical.subdirs();
        let file = logical.file_name();
        let b27 = file.get(..27).ok_or(FileIdError::TooShort)?;
        let payload = FilePayload::decode_b27(b27).ok_or(FileIdError::BadPayload)?;
        let kind = classify(name.len(), &payload);
        Ok(RemoteName {
            store_path_index: logical.store_path_index,
            subdir_high: h,
            subdir_low: l,
            payload,
            kind,
            tail: file[27..].to_string(),
        })
    }
}

/// Whether a name is a slave's by upstream's delete rule: longer than a normal name (than a
/// trunk name for a file in a trunk), whatever else its size field says.
pub fn is_slave_name(name: &str) -> bool {
    match RemoteName::decode(name) {
        Ok(rn) if rn.payload.is_trunk() => name.len() > TRUNK_NAME_LEN,
        Ok(_) => name.len() > NORMAL_NAME_LEN,
        Err(_) => false,
    }
}

/// Classification by name length and size flags (5.7).
pub fn classify(len: usize, p: &FilePayload) -> FileKind {
    if p.is_appender() {
        FileKind::Appender
    } else if len > TRUNK_NAME_LEN || (len > NORMAL_NAME_LEN && !p.is_trunk()) {
        FileKind::Slave
    } else if p.is_trunk() && len == TRUNK_NAME_LEN {
        FileKind::Trunk
    } else {
        FileKind::Normal
    }
}

/// The 7-character formatted ext: `6 - len` random digits, `.`, ext; no ext: 7 digits.
pub fn format_ext(ext: &str, mut digit: impl FnMut() -> u8) -> String {
    let mut s = String::with_capacity(7);
    if ext.is_empty() {
        for _ in 0..7 {
            s.push((b'0' + digit() % 10) as char);
        }
    } else {
        for _ in 0..crate::proto::FILE_EXT_MAX.saturating_sub(ext.len()) {
            s.push((b'0' + digit() % 10) as char);
        }
        s.push('.');
        s.push_str(ext);
    }
    s
}

/// Slave name from the master's logical name: the master's `.ext` (searched in its last 7
/// characters) removed, then prefix, then `.ext` when the slave has one.
pub fn slave_name(master: &str, prefix: &str, ext: &str) -> String {
    let tail_start = master.len().saturating_sub(7);
    let base = match master[tail_start..].find('.') {
        Some(p) => &master[..tail_start + p],
        None => master,
    };
    let mut s = format!("{base}{prefix}");
    if !ext.is_empty() {
        s.push('.');
        s.push_str(ext);
    }
    s
}

/// Extension of a local file name as the C tools take it: the text after the last `.`, or the
/// last two dot-separated parts when together they fit in 6 characters.
pub fn ext_from_local_name(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    let Some(dot) = base.rfind('.') else {
        return String::new();
    };
    let ext = &base[dot + 1..];
    if ext.len() > crate::proto::FILE_EXT_MAX || ext.is_empty() {
        return String::new();
    }
    if let Some(prev) = base[..dot].rfind('.') {
        let two = &base[prev + 1..];
        if two.len() <= crate::proto::FILE_EXT_MAX && prev + 1 < dot {
            return two.to_string();
        }
    }
    ext.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_over_4_gib_are_carried_whole() {
        let size = (5i64 << 30) + 123;
        let p = FilePayload {
            source: Source::Ipv4([10, 0, 0, 1]),
            timestamp: 1_796_000_000,
            size_field: FilePayload::make_size_field(size, false, 0x7f_ffff),
            crc32: 0xdead_beef,
        };
        // no random bits above 4 GiB: the size field is the size
        assert_eq!(p.size_field, size);
        let back = FilePayload::decode_b27(&p.encode_b27()).unwrap();
        assert_eq!(back.file_size(), Some(size));
        assert!(!back.is_appender() && !back.is_trunk());
        let small = FilePayload {
            size_field: FilePayload::make_size_field(4096, false, 0x12345),
            ..p
        };
        assert_eq!(
            FilePayload::decode_b27(&small.encode_b27())
                .unwrap()
                .file_size(),
            Some(4096)
        );
    }

    #[test]
    fn decode_spec_example() {
        let n = RemoteName::decode("M00/00/00/fwAAA2sEyyCAT2X8AAAAE2WoGAU042.txt").unwrap();
        assert_eq!(n.payload.source, Source::Ipv4([127, 0, 0, 3]));
        assert_eq!(n.payload.timestamp, 1795476256);
        assert_eq!(n.payload.file_size(), Some(19));
        assert_eq!(n.payload.crc32, 0x65a81805);
        assert_eq!(n.kind, FileKind::Normal);
        assert_eq!(n.payload.encode_b27(), "fwAAA2sEyyCAT2X8AAAAE2WoGAU");
    }

    #[test]
    fn server_id_source() {
        let n = RemoteName::decode("M00/00/00/oYYBAGsEy_OIDbgRAAAAFh3bcYsAAAAAQAAAAAAAAEA008.txt")
            .unwrap();
        assert_eq!(n.payload.source, Source::Id(100001));
        assert_eq!(n.kind, FileKind::Trunk);
        assert_eq!(n.payload.file_size(), Some(22));
    }

    #[test]
    fn slave_names() {
        let m = "M00/00/00/fwAAA2sEyy2AASJFAAAAIg99qUE287.jpg";
        assert_eq!(
            slave_name(m, "_big", "jpg"),
            "M00/00/00/fwAAA2sEyy2AASJFAAAAIg99qUE287_big.jpg"
        );
        let m2 = "M00/00/00/fwAAA2sEyyCAT2X8AAAAE2WoGAU042.txt";
        assert_eq!(
            slave_name(m2, "-s1", ""),
            "M00/00/00/fwAAA2sEyyCAT2X8AAAAE2WoGAU042-s1"
        );
    }

    #[test]
    fn local_ext() {
        assert_eq!(ext_from_local_name("x.tar.gz"), "tar.gz");
        assert_eq!(ext_from_local_name("y.backup.tgz"), "tgz");
        assert_eq!(ext_from_local_name("q.a.b"), "a.b");
        assert_eq!(ext_from_local_name("w.JPEG"), "JPEG");
        assert_eq!(ext_from_local_name("z.longext"), "");
        assert_eq!(ext_from_local_name("noext"), "");
    }

    #[test]
    fn logical_name_rules() {
        assert!(LogicalName::parse("M00/00/00/abc.txt", 1).is_ok());
        assert_eq!(
            LogicalName::parse("M01/00/00/abc.txt", 1),
            Err(FileIdError::BadStorePath)
        );
        assert!(LogicalName::parse("M00/0a/00/abc.txt", 1).is_err());
        assert!(LogicalName::parse("M00/00/00/../x", 1).is_err());
        assert!(LogicalName::parse("M00/00/00/..", 1).is_err());
    }
}
