//! Addresses in the config files: `host[:port]` of trackers and storages, the `tracker_server`
//! lines, `bind_addr` and `address_family`.

use super::ini::{ConfigError, IniFile};
use crate::resolver::resolve_config_host;

/// `host[:port]` of a tracker or storage. A `tracker_server` line may name two addresses of one
/// tracker, `inner,outer:port` (upstream 6.00's dual IPs); the second is tried when the first
/// cannot be reached (`crate::net::connect_host_port`). An address written as a host name
/// keeps the name, which is resolved again as the host moves (`crate::resolver`); `host` and
/// `alt` are the addresses found when the config was read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
    /// the second address of a dual-address entry
    pub alt: Option<String>,
    /// the host names `host` and `alt` were written as, where they were
    pub names: [Option<String>; 2],
}

impl HostPort {
    pub fn new(host: impl Into<String>, port: u16) -> HostPort {
        HostPort {
            host: host.into(),
            port,
            alt: None,
            names: [None, None],
        }
    }

    /// Its addresses as they are now, the first one first: a host name's present address
    /// (`crate::resolver`), an IP as written.
    pub fn current_hosts(&self) -> Vec<String> {
        self.hosts()
            .zip(&self.names)
            .map(|(ip, name)| crate::resolver::present(ip, name.as_deref()))
            .collect()
    }

    /// The same entry at its present addresses (what to tell a peer, which cannot resolve
    /// our names).
    pub fn current(&self) -> HostPort {
        let mut now = self.current_hosts().into_iter();
        HostPort {
            host: now.next().unwrap_or_default(),
            port: self.port,
            alt: now.next(),
            names: self.names.clone(),
        }
    }

    /// Whether `ip` is one of its addresses, as read or as now.
    pub fn is_at(&self, ip: &str) -> bool {
        self.hosts().any(|h| h == ip) || self.current_hosts().iter().any(|h| h == ip)
    }

    /// The name its `i`th address was written as, if it was one.
    pub fn name_of(&self, i: usize) -> Option<&str> {
        self.names.get(i)?.as_deref()
    }

    /// Its addresses, the first one first.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.host.as_str()).chain(self.alt.as_deref())
    }
}

/// `ip:port`, `ip1,ip2:port`, or with an IPv6 address among them `[ip1,ip2]:port`: the text
/// upstream writes for a tracker entry (JOIN bodies, logs).
impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hosts = self.hosts().collect::<Vec<_>>().join(",");
        if self.hosts().any(|h| h.contains(':')) {
            write!(f, "[{hosts}]:{}", self.port)
        } else {
            write!(f, "{hosts}:{}", self.port)
        }
    }
}

/// Parse `host[:port]`, `ip1,ip2:port` or `[v6]:port` / `[ip1,ip2]:port`; names are resolved.
/// More than two addresses is an error, as upstream's.
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
    let names: Vec<&str> = hosts.split(',').map(str::trim).collect();
    if names.len() > 2 || names.iter().any(|h| h.is_empty()) {
        return Err(format!("host \"{s}\" is invalid"));
    }
    let (ip, name) = resolve_config_host(names[0])?;
    let (alt, alt_name) = match names.get(1) {
        Some(h) => {
            let (ip, name) = resolve_config_host(h)?;
            (Some(ip), name)
        }
        None => (None, None),
    };
    if let Some(alt) = &alt {
        check_dual(&ip, alt)?;
    }
    Ok(HostPort {
        host: ip,
        port,
        alt,
        names: [name, alt_name],
    })
}

/// `dns_refresh_interval` (rfdfs's key, any config file): how long a host name's address is
/// kept before it is asked again (`crate::resolver`); 0 = once, as upstream.
pub(crate) fn dns_refresh_interval(ini: &IniFile) -> Result<std::time::Duration, ConfigError> {
    let key = "dns_refresh_interval";
    match ini.get(key) {
        None => Ok(crate::resolver::DEFAULT_REFRESH),
        Some(item) => item
            .value
            .trim()
            .parse::<u64>()
            .map(std::time::Duration::from_secs)
            .map_err(|_| {
                ini.error(
                    Some(item),
                    key,
                    format!("\"{}\" is not a number of seconds (0 or more)", item.value),
                )
            }),
    }
}

/// Upstream's rule for the two addresses of one server: one inner and one outer, or two kinds
/// of inner. Upstream applies it to IPv6 addresses too, where every address is "outer", and so
/// refuses the IPv6 example of its own sample configs
/// (`[2409:8a20:42d:2f40:587a:4c47:72c0:ad8e,fe80::1ee9:90a8:1351:436c]:22122`); rfdfs applies
/// it to two IPv4 addresses only, so that example works as the sample says.
pub(crate) fn check_dual(a: &str, b: &str) -> Result<(), String> {
    let v4 = |ip: &str| ip.parse::<std::net::Ipv4Addr>().is_ok();
    if v4(a) && v4(b) && ip_class(a) == ip_class(b) {
        return Err(format!(
            "invalid ip addresses {a} and {b}, one MUST be an inner IP and another is a \
             outer IP, or two different types of inner IP addresses"
        ));
    }
    Ok(())
}

/// Upstream's address classes, which the two addresses of a dual entry must differ in: the
/// three private IPv4 ranges (10/8, 192.168/16, 172.16/12) and everything else ("outer").
pub fn ip_class(ip: &str) -> u8 {
    match ip.parse::<std::net::Ipv4Addr>().map(|a| a.octets()) {
        Ok([10, ..]) => 1,
        Ok([192, 168, ..]) => 2,
        Ok([172, b, ..]) if (16..32).contains(&b) => 3,
        _ => 0,
    }
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
        let dual = parse_host_port("10.0.0.1,192.168.0.1:23000", 1).unwrap();
        // upstream's rule: one inner and one outer address, or two kinds of inner ones
        let same = parse_host_port("10.0.0.1,10.0.0.2:22122", 1).unwrap_err();
        assert!(same.contains("one MUST be an inner IP"), "{same}");
        assert!(parse_host_port("10.0.0.1,122.244.141.46:22122", 1).is_ok());
        assert_eq!(
            dual.hosts().collect::<Vec<_>>(),
            ["10.0.0.1", "192.168.0.1"]
        );
        assert_eq!(dual.to_string(), "10.0.0.1,192.168.0.1:23000");
        let v6 = parse_host_port("[10.0.0.1,::2]:22122", 1).unwrap();
        assert_eq!(v6.alt.as_deref(), Some("::2"));
        assert_eq!(v6.to_string(), "[10.0.0.1,::2]:22122");
        assert!(parse_host_port("10.0.0.1,10.0.0.2,10.0.0.3:1", 1).is_err());
        assert!(parse_host_port("10.0.0.1,:1", 1).is_err());
        assert_eq!(
            parse_host_port("[::1]:80", 1).unwrap().to_string(),
            "[::1]:80"
        );
        assert!(parse_host_port("nosuchhost.invalid", 1).is_err());
        // the IPv6 example of upstream's sample configs (which upstream itself refuses)
        let sample = "[2409:8a20:42d:2f40:587a:4c47:72c0:ad8e,fe80::1ee9:90a8:1351:436c]:22122";
        let v6 = parse_host_port(sample, 1).unwrap();
        assert_eq!(v6.alt.as_deref(), Some("fe80::1ee9:90a8:1351:436c"));
        assert_eq!(v6.to_string(), sample);
    }
}
