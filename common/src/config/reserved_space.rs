//! `reserved_storage_space` (tracker.conf): how much of each store path stays free.

use super::ini;

/// `reserved_storage_space`: a ratio of each store path, or an absolute budget in MB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReservedSpace {
    Ratio(f64),
    Mb(i64),
}

impl ReservedSpace {
    pub fn parse(s: &str) -> Option<ReservedSpace> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p.trim().parse().ok()?;
            (v > 0.0 && v < 100.0).then_some(ReservedSpace::Ratio(v / 100.0))
        } else {
            ini::parse_bytes(s).map(|b| ReservedSpace::Mb(b / (1 << 20)))
        }
    }

    /// As the tracker reports it in the parameter reply and logs.
    pub fn to_text(self) -> String {
        match self {
            ReservedSpace::Ratio(r) => format!("{:.2}%", r * 100.0),
            ReservedSpace::Mb(mb) => format!("{mb}MB"),
        }
    }

    /// Reserved MB of a group or storage with `total_mb`.
    pub fn reserved_mb(self, total_mb: i64) -> i64 {
        match self {
            ReservedSpace::Ratio(r) => (total_mb as f64 * r) as i64,
            ReservedSpace::Mb(mb) => mb,
        }
    }

    /// Whether a store path (or, with `path_count` 1, a group) has room above the reserve.
    pub fn has_room(self, total_mb: i64, free_mb: i64, path_count: i64) -> bool {
        match self {
            ReservedSpace::Ratio(r) => total_mb > 0 && (free_mb as f64 / total_mb as f64) > r,
            ReservedSpace::Mb(mb) => free_mb > mb / path_count.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_space() {
        assert_eq!(ReservedSpace::parse("20%"), Some(ReservedSpace::Ratio(0.2)));
        assert_eq!(ReservedSpace::parse("10.5%").unwrap().to_text(), "10.50%");
        assert_eq!(ReservedSpace::parse("1G"), Some(ReservedSpace::Mb(1024)));
        assert_eq!(ReservedSpace::parse("100%"), None);
    }
}
