//! Metadata packing: `name 0x02 value` records joined by `0x01` (docs/protocol/client-protocol.md
//! section 4).

pub const NAME_MAX: usize = 64;
pub const VALUE_MAX: usize = 256;
const RECORD_SEP: u8 = 0x01;
const FIELD_SEP: u8 = 0x02;

pub type MetaItem = (Vec<u8>, Vec<u8>);

/// Split packed metadata. Names and values are cut to 64/256 bytes and records without a field
/// separator are dropped, as the storage does when it parses.
pub fn unpack(b: &[u8]) -> Vec<MetaItem> {
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|&c| c == RECORD_SEP)
        .filter_map(|rec| {
            let p = rec.iter().position(|&c| c == FIELD_SEP)?;
            let name = &rec[..p.min(NAME_MAX)];
            let value = &rec[p + 1..];
            Some((name.to_vec(), value[..value.len().min(VALUE_MAX)].to_vec()))
        })
        .collect()
}

pub fn pack(items: &[MetaItem]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (n, v)) in items.iter().enumerate() {
        if i > 0 {
            out.push(RECORD_SEP);
        }
        out.extend_from_slice(n);
        out.push(FIELD_SEP);
        out.extend_from_slice(v);
    }
    out
}

/// Sort by name, byte-wise, keeping duplicates in their order (stable).
pub fn sorted(mut items: Vec<MetaItem>) -> Vec<MetaItem> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    items
}

/// Union of old and new items; a new value replaces an old one of the same name.
pub fn merge(old: Vec<MetaItem>, new: Vec<MetaItem>) -> Vec<MetaItem> {
    let mut out: Vec<MetaItem> = old
        .into_iter()
        .filter(|(n, _)| !new.iter().any(|(m, _)| m == n))
        .collect();
    out.extend(new);
    sorted(out)
}

/// Parse `name1=value1,name2=value2` as `fdfs_test` takes it on its command line.
pub fn parse_cli_list(s: &str) -> Vec<MetaItem> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (n.as_bytes().to_vec(), v.as_bytes().to_vec()),
            None => (p.as_bytes().to_vec(), Vec::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(v: &[(&str, &str)]) -> Vec<MetaItem> {
        v.iter()
            .map(|(a, b)| (a.as_bytes().to_vec(), b.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn merge_replaces_and_sorts() {
        let m = merge(
            items(&[("a", "1"), ("b", "two")]),
            items(&[("c", "3"), ("a", "ONE")]),
        );
        assert_eq!(m, items(&[("a", "ONE"), ("b", "two"), ("c", "3")]));
    }

    #[test]
    fn pack_unpack() {
        let v = items(&[("ext_name", "jpg"), ("width", "160")]);
        let p = pack(&v);
        assert_eq!(p, b"ext_name\x02jpg\x01width\x02160");
        assert_eq!(unpack(&p), v);
        assert_eq!(unpack(b"noseparator\x01a\x02b"), items(&[("a", "b")]));
    }
}
