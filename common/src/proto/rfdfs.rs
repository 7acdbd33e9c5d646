//! rfdfs's own storage-to-storage and admin bodies (no upstream counterpart): what reconcile
//! (`reconcile_interval`) exchanges, and the status `rfdfs_admin` shows.

use super::GROUP_NAME_MAX;
use crate::codec::{DecodeError, DecodeResult, Message, Reader, Writer};

/// RECONCILE_DIGESTS: one digest per sub directory of a store path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestsReq {
    pub group: String,
    pub store_path_index: u8,
}

impl Message for DigestsReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        out.put_u8(self.store_path_index);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(DigestsReq {
            group: r.fixed_str(GROUP_NAME_MAX, "group_name")?,
            store_path_index: r.u8("store_path_index")?,
        })
    }
}

/// The answer: the sub directory count per level, then a digest of each sub directory's
/// (name, size) list, `XX/YY` in order (`00/00`, `00/01`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub subdir_count: u32,
    pub digests: Vec<u64>,
}

impl Message for Digests {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i32(self.subdir_count as i32);
        for d in &self.digests {
            out.put_i64(*d as i64);
        }
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let n = r.i32("subdir_count")?;
        if !(1..=256).contains(&n) {
            return Err(DecodeError::invalid("subdir_count", n.to_string()));
        }
        let count = (n * n) as usize;
        if r.remaining() != count * 8 {
            return Err(DecodeError::invalid(
                "digests",
                format!("{} bytes for {count} sub directories", r.remaining()),
            ));
        }
        let digests = (0..count)
            .map(|_| r.i64("digest").map(|d| d as u64))
            .collect::<DecodeResult<_>>()?;
        Ok(Digests {
            subdir_count: n as u32,
            digests,
        })
    }
}

/// RECONCILE_LISTING: the files of one sub directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingReq {
    pub group: String,
    pub store_path_index: u8,
    pub high: u8,
    pub low: u8,
}

impl Message for ListingReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        out.put_u8(self.store_path_index);
        out.put_u8(self.high);
        out.put_u8(self.low);
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        Ok(ListingReq {
            group: r.fixed_str(GROUP_NAME_MAX, "group_name")?,
            store_path_index: r.u8("store_path_index")?,
            high: r.u8("subdir_high")?,
            low: r.u8("subdir_low")?,
        })
    }
}

/// The answer: each file as its name's length (1 byte), the name, and its size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listing {
    pub files: Vec<(String, u64)>,
}

impl Message for Listing {
    fn encode(&self, out: &mut Vec<u8>) {
        for (name, size) in &self.files {
            let name = &name.as_bytes()[..name.len().min(255)];
            out.put_u8(name.len() as u8);
            out.put_bytes(name);
            out.put_i64(*size as i64);
        }
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let mut files = Vec::new();
        while r.remaining() > 0 {
            let n = r.u8("name_len")? as usize;
            let name = r.take(n, "name")?;
            let name =
                std::str::from_utf8(name).map_err(|_| DecodeError::invalid("name", "not UTF-8"))?;
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                return Err(DecodeError::invalid("name", name.to_string()));
            }
            let size = r.i64("file_size")?;
            if size < 0 {
                return Err(DecodeError::invalid("file_size", size.to_string()));
            }
            files.push((name.to_string(), size as u64));
        }
        Ok(Listing { files })
    }
}

/// RFDFS_STATUS (empty request): `key=value` lines, for `rfdfs_admin`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    pub items: Vec<(String, String)>,
}

impl Status {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl Message for Status {
    fn encode(&self, out: &mut Vec<u8>) {
        for (k, v) in &self.items {
            out.put_bytes(format!("{k}={v}\n").as_bytes());
        }
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let text = String::from_utf8_lossy(r.rest()).into_owned();
        let items = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(Status { items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_round_trip_and_refuse_paths() {
        let l = Listing {
            files: vec![("wKgAAV.bin".into(), 12), ("x-m".into(), 0)],
        };
        assert_eq!(Listing::from_bytes(&l.to_bytes()).unwrap(), l);
        let bad = Listing {
            files: vec![("../etc".into(), 1)],
        };
        assert!(Listing::from_bytes(&bad.to_bytes()).is_err());
    }

    #[test]
    fn digests_must_fill_the_square() {
        let d = Digests {
            subdir_count: 2,
            digests: vec![1, 2, 3, 4],
        };
        assert_eq!(Digests::from_bytes(&d.to_bytes()).unwrap(), d);
        let mut short = d.to_bytes();
        short.truncate(short.len() - 8);
        assert!(Digests::from_bytes(&short).is_err());
    }
}
