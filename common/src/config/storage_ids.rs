//! `storage_ids.conf`: server ids of the storages, read by the tracker when `use_storage_id` is
//! on and handed to storages through FETCH_STORAGE_IDS (docs/protocol/cluster-protocol.md 7.1 and
//! 2.18).
//!
//! A line is `<id> <group> <host>[,<host2>][:<port>] [rw=<mode>]`. The same line shape, with the
//! port always written, is what FETCH_STORAGE_IDS carries, so one parser serves both.

use super::ini::ConfigError;
use crate::proto::rw_mode;
use crate::resolver::resolve_config_host;
use std::path::Path;

/// Largest id: ids travel in file names as a 24-bit number.
pub const MAX_SERVER_ID: u32 = 0xFF_FFFF;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageIdEntry {
    pub id: String,
    pub group: String,
    /// one or two addresses (inner, outer), as found when the table was read
    pub ips: Vec<String>,
    pub port: u16,
    pub rw_mode: u8,
    /// the host name each address was written as, where it was (resolved again as the host
    /// moves: `crate::resolver`)
    pub names: Vec<Option<String>>,
}

impl StorageIdEntry {
    /// The id as the number file names carry.
    pub fn number(&self) -> u32 {
        self.id.parse().unwrap_or(0)
    }

    /// Its addresses as they are now: a name's present address, an IP as written.
    pub fn current_ips(&self) -> Vec<String> {
        self.ips
            .iter()
            .zip(&self.names)
            .map(|(ip, name)| crate::resolver::present(ip, name.as_deref()))
            .collect()
    }

    /// Whether `ip` is one of its addresses: as written, or where a name pointed last.
    fn listed_at(&self, ip: &str) -> bool {
        self.ips
            .iter()
            .zip(&self.names)
            .any(|(was, name)| match name {
                None => was == ip,
                Some(n) => crate::resolver::address_of(n).is_some_and(|now| now == ip),
            })
    }

    /// Whether a name of its moved to `ip` (asked again when its last answer is not `ip`).
    fn named_at(&self, ip: &str) -> bool {
        self.names.iter().zip(&self.ips).any(|(name, was)| {
            name.as_deref().is_some_and(|n| {
                let now = crate::resolver::address_of(n).unwrap_or_else(|| was.clone());
                now == ip || crate::resolver::moved(n, &now).is_some_and(|moved| moved == ip)
            })
        })
    }

    /// The line FETCH_STORAGE_IDS carries: present addresses, since the asking storage or
    /// client cannot know our names.
    fn line(&self) -> String {
        let hosts: Vec<String> = self
            .current_ips()
            .iter()
            .map(|ip| {
                if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.clone()
                }
            })
            .collect();
        let mut s = format!(
            "{} {} {}:{}",
            self.id,
            self.group,
            hosts.join(","),
            self.port
        );
        match self.rw_mode {
            rw_mode::BOTH => {}
            rw_mode::NONE => s += " rw=none",
            rw_mode::READ => s += " rw=read",
            _ => s += " rw=write",
        }
        s.push('\n');
        s
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageIds {
    pub entries: Vec<StorageIdEntry>,
}

/// Whether `s` is an id upstream accepts: a canonical decimal number in 1..=2^24-1.
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('0')
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u32>().is_ok_and(|v| v <= MAX_SERVER_ID)
}

fn parse_rw(v: &str) -> Option<u8> {
    Some(match v.to_ascii_lowercase().as_str() {
        "none" => rw_mode::NONE,
        "read" | "readonly" => rw_mode::READ,
        "write" | "writeonly" => rw_mode::WRITE,
        "both" | "all" => rw_mode::BOTH,
        _ => return None,
    })
}

/// `host[,host2][:port]`, IPv6 hosts in brackets: the addresses, the names they were written
/// as, the port.
type Hosts = (Vec<String>, Vec<Option<String>>, u16);

fn parse_hosts(s: &str) -> Result<Hosts, String> {
    let (hosts, port) = match s.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') && (h.ends_with(']') || !h.contains(':')) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("invalid port in \"{s}\""))?,
        ),
        _ => (s, 23000),
    };
    let mut ips = Vec::new();
    let mut names = Vec::new();
    for h in hosts.split(',') {
        let h = h.trim().trim_start_matches('[').trim_end_matches(']');
        if h.is_empty() {
            return Err(format!("empty host in \"{s}\""));
        }
        let (ip, name) = resolve_config_host(h)?;
        ips.push(ip);
        names.push(name);
    }
    if ips.len() > 2 {
        return Err(format!("at most two hosts, got \"{s}\""));
    }
    if ips.len() == 2 {
        // upstream's rule and order: one inner and one outer (or two kinds of inner), the
        // inner first, as GET_MY_IP answers them
        super::address::check_dual(&ips[0], &ips[1])?;
        if super::address::ip_class(&ips[0]) == 0 && super::address::ip_class(&ips[1]) != 0 {
            ips.swap(0, 1);
            names.swap(0, 1);
        }
    }
    Ok((ips, names, port))
}

fn parse_line(line: &str) -> Result<Option<StorageIdEntry>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 3 {
        return Err("expect \"<id> <group_name> <host>[:<port>]\"".into());
    }
    if !is_valid_id(fields[0]) {
        return Err(format!(
            "invalid server id \"{}\": a number from 1 to {MAX_SERVER_ID}",
            fields[0]
        ));
    }
    if !crate::proto::valid_group_name(fields[1]) {
        return Err(format!("invalid group name \"{}\"", fields[1]));
    }
    let (ips, names, port) = parse_hosts(fields[2])?;
    let mut mode = rw_mode::BOTH;
    for extra in &fields[3..] {
        match extra.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("rw") => {
                mode = parse_rw(v).ok_or_else(|| format!("invalid rw mode \"{v}\""))?;
            }
            _ => return Err(format!("unknown field \"{extra}\"")),
        }
    }
    Ok(Some(StorageIdEntry {
        id: fields[0].to_string(),
        group: fields[1].to_string(),
        ips,
        port,
        rw_mode: mode,
        names,
    }))
}

impl StorageIds {
    /// Parse `text`; errors name `file` and the line.
    pub fn parse(file: &str, text: &str) -> Result<StorageIds, ConfigError> {
        let mut ids = StorageIds::default();
        for (n, line) in text.lines().enumerate() {
            let err = |msg: String| ConfigError {
                file: file.to_string(),
                line: n + 1,
                key: "storage id".into(),
                msg,
                code: 22,
            };
            let Some(e) = parse_line(line).map_err(err)? else {
                continue;
            };
            if ids.by_id(&e.id).is_some() {
                return Err(err(format!("duplicate server id {}", e.id)));
            }
            if let Some(ip) = e.ips.iter().find(|ip| ids.by_ip_port(ip, e.port).is_some()) {
                return Err(err(format!("duplicate address {ip}:{}", e.port)));
            }
            ids.entries.push(e);
        }
        ids.entries.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(ids)
    }

    /// The table `storage_ids_filename` of `ini` names (default `storage_ids.conf`), a relative
    /// name taken beside the config file, as upstream's daemons and client library do.
    pub fn load_named_in(ini: &super::ini::IniFile) -> Result<StorageIds, ConfigError> {
        let name = ini.string_or("storage_ids_filename", "storage_ids.conf");
        let path = Path::new(&ini.path)
            .parent()
            .unwrap_or(Path::new("."))
            .join(&name);
        Self::load(&path)
    }

    pub fn load(path: &Path) -> Result<StorageIds, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: 0,
            key: String::new(),
            msg: format!("read fail: {e}"),
            code: e.raw_os_error().unwrap_or(2),
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    pub fn by_id(&self, id: &str) -> Option<&StorageIdEntry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// The entry listing `ip:port`: by the addresses read, else by where its names point now
    /// (a storage that came back under a new address keeps its id).
    pub fn by_ip_port(&self, ip: &str, port: u16) -> Option<&StorageIdEntry> {
        self.entries
            .iter()
            .find(|e| e.port == port && e.listed_at(ip))
            .or_else(|| {
                self.entries
                    .iter()
                    .find(|e| e.port == port && e.named_at(ip))
            })
    }

    pub fn by_group_ip_port(&self, group: &str, ip: &str, port: u16) -> Option<&StorageIdEntry> {
        self.by_ip_port(ip, port).filter(|e| e.group == group)
    }

    /// The FETCH_STORAGE_IDS page from `start`: `(count, lines)`, at most `max_bytes` of lines.
    pub fn page(&self, start: usize, max_bytes: usize) -> (usize, String) {
        let mut text = String::new();
        let mut count = 0;
        for e in self.entries.iter().skip(start) {
            let line = e.line();
            if !text.is_empty() && text.len() + line.len() > max_bytes {
                break;
            }
            text += &line;
            count += 1;
        }
        (count, text)
    }

    /// Add the lines of one FETCH_STORAGE_IDS page.
    pub fn extend_from_page(&mut self, text: &str) -> Result<(), String> {
        for line in text.lines() {
            if let Some(e) = parse_line(line)? {
                if self.by_id(&e.id).is_none() {
                    self.entries.push(e);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_page() {
        let ids = StorageIds::parse(
            "storage_ids.conf",
            "# comment\n100002 g9 127.0.0.37\n\n100001   g9\t127.0.0.36:23001\n100003 g9 127.0.0.38 rw=readonly\n",
        )
        .unwrap();
        assert_eq!(ids.entries.len(), 3);
        assert_eq!(
            ids.by_group_ip_port("g9", "127.0.0.36", 23001).unwrap().id,
            "100001"
        );
        assert!(ids.by_group_ip_port("g8", "127.0.0.36", 23001).is_none());
        let (n, text) = ids.page(0, 4096);
        assert_eq!(n, 3);
        assert_eq!(
            text,
            "100001 g9 127.0.0.36:23001\n100002 g9 127.0.0.37:23000\n100003 g9 127.0.0.38:23000 rw=read\n"
        );
        let mut back = StorageIds::default();
        back.extend_from_page(&text).unwrap();
        assert_eq!(back, ids);
        assert_eq!(ids.page(1, 30).0, 1);
    }

    #[test]
    fn dual_addresses_follow_upstreams_rule_and_order() {
        let ids = StorageIds::parse("ids", "1 g1 122.244.141.46,192.168.2.100\n").unwrap();
        assert_eq!(ids.entries[0].ips, ["192.168.2.100", "122.244.141.46"]);
        let two_kinds = StorageIds::parse("ids", "1 g1 10.0.0.1,192.168.0.1\n").unwrap();
        assert_eq!(two_kinds.entries[0].ips, ["10.0.0.1", "192.168.0.1"]);
        let e = StorageIds::parse("ids", "1 g1 127.0.0.2,127.0.0.3\n").unwrap_err();
        assert!(e.to_string().contains("one MUST be an inner IP"), "{e}");
    }

    #[test]
    fn errors_name_the_line() {
        for bad in [
            "0100 g1 127.0.0.2",
            "16777216 g1 127.0.0.2",
            "1 g1",
            "1 g1 127.0.0.2 rw=some",
            "1 g1 127.0.0.2\n1 g1 127.0.0.3",
            "1 g1 127.0.0.2\n2 g1 127.0.0.2",
        ] {
            let e = StorageIds::parse("ids.conf", bad).unwrap_err();
            assert_eq!(e.file, "ids.conf");
            assert!(e.line >= 1, "{bad}: {e}");
        }
    }
}
