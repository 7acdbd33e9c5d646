//! Lines of the tracker's `storage_changelog.dat`, which storages read through CHANGELOG_REQ
//! (docs/protocol/cluster-protocol.md 2.13 and 6.5).
//!
//! A line is `time group old_id status new_id\n`, space separated. The tracker writes a
//! DELETED line with an empty `new_id` (`ts group id 4 \n`: four fields and a trailing
//! space, as upstream writes it) and an IP_CHANGED line with the new address. A reader must
//! take both shapes; [`ChangelogLine::parse`] does, and [`ChangelogLine::to_line`] writes
//! upstream's bytes.

use super::status;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogLine {
    /// unix seconds when the tracker wrote the line
    pub time: i64,
    pub group: String,
    /// the storage the line is about (its id, or its IP without storage ids)
    pub old_id: String,
    /// `status::DELETED` or `status::IP_CHANGED`
    pub status: u8,
    /// the new address of an IP_CHANGED storage; empty for DELETED
    pub new_id: String,
}

impl ChangelogLine {
    pub fn deleted(time: i64, group: &str, id: &str) -> ChangelogLine {
        ChangelogLine {
            time,
            group: group.to_string(),
            old_id: id.to_string(),
            status: status::DELETED,
            new_id: String::new(),
        }
    }

    pub fn ip_changed(time: i64, group: &str, old_ip: &str, new_ip: &str) -> ChangelogLine {
        ChangelogLine {
            time,
            group: group.to_string(),
            old_id: old_ip.to_string(),
            status: status::IP_CHANGED,
            new_id: new_ip.to_string(),
        }
    }

    /// The line as the tracker appends it, newline included.
    pub fn to_line(&self) -> String {
        format!(
            "{} {} {} {} {}\n",
            self.time, self.group, self.old_id, self.status, self.new_id
        )
    }

    /// One line without its newline; `None` for a line of another shape (a reader skips it).
    pub fn parse(line: &str) -> Option<ChangelogLine> {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 4 && f.len() != 5 {
            return None;
        }
        Some(ChangelogLine {
            time: f[0].parse().ok()?,
            group: f[1].to_string(),
            old_id: f[2].to_string(),
            status: f[3].parse().ok()?,
            new_id: f.get(4).unwrap_or(&"").to_string(),
        })
    }

    /// Every well-formed line of a CHANGELOG_REQ answer, in order.
    pub fn parse_all(text: &str) -> Vec<ChangelogLine> {
        text.lines().filter_map(ChangelogLine::parse).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_the_tracker_writes_round_trip() {
        let deleted = ChangelogLine::deleted(1_700_000_000, "group1", "10.0.0.5");
        assert_eq!(deleted.to_line(), "1700000000 group1 10.0.0.5 4 \n");
        let moved = ChangelogLine::ip_changed(1_700_000_001, "group1", "10.0.0.5", "10.0.0.6");
        assert_eq!(moved.to_line(), "1700000001 group1 10.0.0.5 3 10.0.0.6\n");
        let text = format!("{}{}", deleted.to_line(), moved.to_line());
        assert_eq!(ChangelogLine::parse_all(&text), vec![deleted, moved]);
    }

    #[test]
    fn other_shapes_are_skipped() {
        for bad in [
            "",
            "1 group1",
            "x group1 a 4",
            "1 group1 a b",
            "1 g a 4 b c",
        ] {
            assert_eq!(ChangelogLine::parse(bad), None, "{bad:?}");
        }
    }
}
