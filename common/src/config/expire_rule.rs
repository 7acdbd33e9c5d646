//! `expire_rule` lines of storage.conf (rfdfs's own): files that expire by their name, with no
//! metadata. `expire_rule = ext=tmp ttl=1d`, `expire_rule = prefix=M00/00/ ttl=12h`,
//! `expire_rule = ttl=30d` (every file); the conditions of a line must all hold, the first line
//! that holds gives the file's expiry, its create time (from its file ID) plus the ttl. A
//! file's own `fdfs-expires` metadata comes first.

/// One `expire_rule` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpireRule {
    /// the file's extension, without the dot (`tmp`)
    pub ext: Option<String>,
    /// the start of the logical name (`M00/00/`)
    pub prefix: Option<String>,
    /// seconds after the create time
    pub ttl: i64,
}

/// `30`, `30s`, `15m`, `12h`, `7d`: seconds.
fn seconds(v: &str) -> Option<i64> {
    let (num, unit) = match v.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&v[..i], c.to_ascii_lowercase()),
        _ => (v, 's'),
    };
    let n: i64 = num.parse().ok().filter(|n| *n > 0)?;
    n.checked_mul(match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => return None,
    })
}

impl ExpireRule {
    pub fn parse(line: &str) -> Result<ExpireRule, String> {
        let mut rule = ExpireRule {
            ext: None,
            prefix: None,
            ttl: 0,
        };
        for part in line.split_whitespace() {
            match part.split_once('=') {
                Some(("ext", v)) if !v.is_empty() => {
                    rule.ext = Some(v.trim_start_matches('.').to_string())
                }
                Some(("prefix", v)) if !v.is_empty() => rule.prefix = Some(v.to_string()),
                Some(("ttl", v)) => {
                    rule.ttl = seconds(v)
                        .ok_or_else(|| format!("ttl \"{v}\" is not a time (30s, 15m, 12h, 7d)"))?
                }
                _ => {
                    return Err(format!(
                        "\"{part}\" is not ext=<ext>, prefix=<M00/..> or ttl=<time>"
                    ))
                }
            }
        }
        if rule.ttl == 0 {
            return Err("a rule needs ttl=<time>".into());
        }
        Ok(rule)
    }

    /// Whether the rule holds for the logical name `name`.
    pub fn holds(&self, name: &str) -> bool {
        let ext = name
            .rsplit_once('/')
            .map_or(name, |(_, f)| f)
            .rsplit_once('.')
            .map(|(_, e)| e);
        self.prefix
            .as_ref()
            .is_none_or(|p| name.starts_with(p.as_str()))
            && self.ext.as_ref().is_none_or(|e| ext == Some(e.as_str()))
    }
}

/// A file's expiry: its own (`fdfs-expires` metadata) first, else the first rule's that holds.
pub fn file_expiry(
    own: Option<i64>,
    rules: &[ExpireRule],
    name: &str,
    created: i64,
) -> Option<i64> {
    own.or_else(|| expiry_by_rules(rules, name, created))
}

/// The expiry the first rule that holds gives a file created at `created`.
pub fn expiry_by_rules(rules: &[ExpireRule], name: &str, created: i64) -> Option<i64> {
    rules
        .iter()
        .find(|r| r.holds(name))
        .map(|r| created.saturating_add(r.ttl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_and_hold() {
        let rules = [
            ExpireRule::parse("ext=tmp ttl=1d").unwrap(),
            ExpireRule::parse("prefix=M00/01/ ttl=12h").unwrap(),
        ];
        assert_eq!(
            expiry_by_rules(&rules, "M00/00/0A/abc.tmp", 100),
            Some(100 + 86400)
        );
        assert_eq!(
            expiry_by_rules(&rules, "M00/01/0A/abc.jpg", 100),
            Some(100 + 43200)
        );
        assert_eq!(expiry_by_rules(&rules, "M00/00/0A/abc.jpg", 100), None);
        assert_eq!(ExpireRule::parse("ttl=90").unwrap().ttl, 90);
        assert!(ExpireRule::parse("ext=tmp").unwrap_err().contains("ttl"));
        assert!(ExpireRule::parse("ttl=3w")
            .unwrap_err()
            .contains("not a time"));
        assert!(ExpireRule::parse("size=3 ttl=1").is_err());
    }
}
