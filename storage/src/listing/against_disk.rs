//! The index of one sub directory set beside a walk of it: what reconcile (`crate::reconcile`)
//! finds when it compares the index with the files the way it compares the files with a peer's.
//!
//! The index follows the binlog, so it is as right as the binlog: a line lost in a crash, files
//! removed or restored by hand, leave it naming files this member does not hold or missing ones
//! it does. Only names that are file IDs are compared (a trunk file, a `-m` file or a temp name
//! in the directory is not listed), and a size only where the index keeps one (an appender's;
//! any other file's size is in its name).

use super::entry::Entry;
use fdfs_common::file_id::RemoteName;
use std::collections::BTreeMap;

/// How a file's entry and the disk disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Difference {
    /// on disk (of this size), not listed
    NotListed(u64),
    /// listed, on no disk
    NotOnDisk,
    /// an appender listed at another size than the one on disk (this one)
    Size(u64),
}

/// The differences between the index's `listed` entries of the sub directory `prefix`
/// (`M00/0A/1F/`) and `on_disk`, its walk (file name within the directory -> size), in name
/// order.
pub fn compare(
    prefix: &str,
    listed: &[(String, Entry)],
    on_disk: &BTreeMap<String, u64>,
) -> Vec<(String, Difference)> {
    let mut out = Vec::new();
    let listed_here: BTreeMap<&str, &Entry> = listed
        .iter()
        .filter_map(|(n, e)| Some((n.strip_prefix(prefix)?, e)))
        .collect();
    for (file, &size) in on_disk {
        let name = format!("{prefix}{file}");
        match listed_here.get(file.as_str()) {
            Some(Entry {
                size: Some(kept), ..
            }) if *kept != size => out.push((name, Difference::Size(size))),
            Some(_) => {}
            None if is_listable(&name) => out.push((name, Difference::NotListed(size))),
            None => {}
        }
    }
    for file in listed_here.keys() {
        if !on_disk.contains_key(*file) {
            out.push((format!("{prefix}{file}"), Difference::NotOnDisk));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A name the index lists when it holds the file: a file ID's, not a metadata file's.
fn is_listable(name: &str) -> bool {
    !name.ends_with("-m") && RemoteName::decode(name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "fwAAA2sEyyCAT2X8AAAAE2WoGAU042.txt";
    const B: &str = "fwAAA2sEyyCAT2X8AAAAE2WoGAU043.txt";

    fn entry(size: Option<u64>) -> Entry {
        Entry {
            size,
            ..Entry::default()
        }
    }

    #[test]
    fn equal_sides_differ_in_nothing() {
        let p = "M00/00/00/";
        let listed = vec![(format!("{p}{A}"), entry(None))];
        let disk = BTreeMap::from([(A.to_string(), 19)]);
        assert!(compare(p, &listed, &disk).is_empty());
    }

    #[test]
    fn each_side_missing_a_file_and_an_appender_size_are_found() {
        let p = "M00/00/00/";
        let listed = vec![
            (format!("{p}{A}"), entry(Some(5))),
            (format!("{p}{B}"), entry(None)),
        ];
        let disk = BTreeMap::from([
            (A.to_string(), 9),
            ("fwAAA2sEyyCAT2X8AAAAE2WoGAU044.txt".to_string(), 19),
        ]);
        assert_eq!(
            compare(p, &listed, &disk),
            vec![
                (format!("{p}{A}"), Difference::Size(9)),
                (format!("{p}{B}"), Difference::NotOnDisk),
                (
                    format!("{p}fwAAA2sEyyCAT2X8AAAAE2WoGAU044.txt"),
                    Difference::NotListed(19)
                ),
            ]
        );
    }

    #[test]
    fn metadata_trunk_and_temp_files_are_not_listable() {
        let p = "M00/00/00/";
        let disk = BTreeMap::from([
            (format!("{A}-m"), 30),
            ("000001".to_string(), 64 << 20),
            ("upload.tmp".to_string(), 3),
        ]);
        assert!(compare(p, &[], &disk).is_empty());
    }
}
