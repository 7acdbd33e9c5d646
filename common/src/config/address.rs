//! Addresses in the config files: `host[:port]` of trackers and storages, the `tracker_server`
//! lines, `bind_addr` and `address_family`.

use super::ini::{ConfigError, IniFile};
use std::net::{IpAddr, ToSocketAddrs};

/// `host[:port]` of a tracker or storage.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parse `host[:port]`, `ip1,ip2:port` (first address used) or `[v6]:port`; names are resolved.
pub fn parse_host_port(s: &str, default_port: u16) -> Result<HostPort, String> {
    let s = s.trim();
    let (hosts, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("host \"{s}\" is invalid"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p
                .parse()
                .map_err(|_| format!("port of \"{s}\" is invalid"))?,
            None => default_port,
        };
        (h.to_string(), port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse()
                    .map_err(|_| format!("port of \"{s}\" is invalid"))?,
            ),
            None => (s.to_string(), default_port),
        }
    };
    let host = hosts.split(',').next().unwrap_or("").trim().to_string();
    if host.is_empty() {
        return Err(format!("host \"{s}\" is invalid"));
    }
    let ip = resolve_host(&host)?;
    Ok(HostPort {
        host: ip.to_string(),
        port,
    })
}

pub fn resolve_host(host: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    // not a host name at all: refuse without asking DNS
    if host.is_empty()
        || host.len() > 253
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    {
        return Err(format!("host \"{host}\" is invalid"));
    }
    (host, 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| {
            a.find(|a| a.is_ipv4())
                .or_else(|| (host, 0).to_socket_addrs().ok()?.next())
        })
        .map(|a| a.ip())
        .ok_or_else(|| format!("host \"{host}\" is invalid, error info: Unknown host"))
}

/// The `tracker_server` lines (at most 16), de-duplicated and sorted as upstream does. A storage
/// refuses loopback trackers; clients accept them.
pub(crate) fn tracker_servers(
    ini: &IniFile,
    refuse_loopback: bool,
) -> Result<Vec<HostPort>, ConfigError> {
    let mut v: Vec<HostPort> = Vec::new();
    for item in ini.get_all("tracker_server").into_iter().take(16) {
        let hp = parse_host_port(&item.value, 22122)
            .map_err(|m| ini.error(Some(item), "tracker_server", m))?;
        if refuse_loopback && matches!(hp.host.as_str(), "127.0.0.1" | "::1" | "fe80::1") {
            let msg = format!(
                "tracker: \"{hp}\" is invalid, tracker server ip can't be loopback address"
            );
            return Err(ini.error(Some(item), "tracker_server", msg));
        }
        if !v.contains(&hp) {
            v.push(hp);
        }
    }
    if v.is_empty() {
        let mut e = ini.error(None, "tracker_server", String::new());
        e.msg = format!(
            "conf file \"{}\", item \"tracker_server\" not exist",
            ini.path
        );
        return Err(e);
    }
    v.sort();
    Ok(v)
}

/// A `bind_addr` value's addresses, brackets taken off IPv6 ones.
pub fn split_bind_addr(bind_addr: &str) -> Vec<&str> {
    bind_addr
        .split(',')
        .map(|a| a.trim().trim_start_matches('[').trim_end_matches(']'))
        .filter(|a| !a.is_empty())
        .collect()
}

/// `address_family` (both daemons): what an empty `bind_addr` listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressFamily {
    /// from bind_addr, else IPv4
    #[default]
    Auto,
    V4,
    V6,
    Both,
}

impl AddressFamily {
    pub(super) fn from_ini(ini: &IniFile) -> Result<AddressFamily, ConfigError> {
        let Some(item) = ini.get("address_family") else {
            return Ok(AddressFamily::Auto);
        };
        match item.value.to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(AddressFamily::Auto),
            "ipv4" => Ok(AddressFamily::V4),
            "ipv6" => Ok(AddressFamily::V6),
            "both" => Ok(AddressFamily::Both),
            other => Err(ini.error(
                Some(item),
                "address_family",
                format!("invalid value: {other}, must be auto, IPv4, IPv6 or both"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            parse_host_port("127.0.0.2:22122", 1).unwrap().to_string(),
            "127.0.0.2:22122"
        );
        assert_eq!(parse_host_port("127.0.0.2", 22122).unwrap().port, 22122);
        assert_eq!(
            parse_host_port("10.0.0.1,192.168.0.1:23000", 1)
                .unwrap()
                .host,
            "10.0.0.1"
        );
        assert_eq!(
            parse_host_port("[::1]:80", 1).unwrap().to_string(),
            "[::1]:80"
        );
        assert!(parse_host_port("nosuchhost.invalid", 1).is_err());
    }
}
