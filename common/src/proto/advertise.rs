//! Advertised addresses (rfdfs's own): the address a storage asks the trackers to hand clients
//! instead of the one it joined from, for a storage behind a port mapping or a NAT
//! (`advertise_address` in storage.conf, docs/addresses.md).
//!
//! | storage.conf line                              | rule                                   |
//! |------------------------------------------------|----------------------------------------|
//! | `advertise_address = 203.0.113.7:24000`        | every client: 203.0.113.7:24000        |
//! | `advertise_address = 10.0.0.0/8 => 10.1.2.3`   | clients in 10/8: 10.1.2.3, storage port |
//! | both lines                                     | 10/8 the second, everyone else the first |
//!
//! The first rule whose network holds the client's address wins; a rule without a network
//! holds every address. A client no rule holds gets the address the storage joined from, as
//! do group members and trackers, which never use the advertised one.
//!
//! STORAGE_ADVERTISE (storage -> tracker, after each JOIN): the group (16 bytes) then one rule
//! a line, `<network or *> <ip>:<port>`; an empty answer. LIST_ADVERTISED (anyone -> tracker):
//! the group (16 bytes); the answer is one line per storage that advertises, `<id> <rule>[;
//! <rule>...]`, for `fdfs_monitor`.

use super::GROUP_NAME_MAX;
use crate::codec::{DecodeError, DecodeResult, Message, Reader, Writer};
use std::net::IpAddr;

/// An IP network, `addr/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Network {
    pub fn parse(s: &str) -> Result<Network, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("\"{s}\" is not a network (a.b.c.d/len)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.trim()
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| format!("\"{s}\": prefix length 0 to {max}"))?
        };
        Ok(Network { addr, prefix })
    }

    /// Whether `ip` is in the network (an IPv4 client seen as `::ffff:a.b.c.d` included).
    pub fn contains(&self, ip: &IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(*ip),
            v4 => *v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// One advertised address: for the clients of `network` (all when `None`), `host:port`. In
/// storage.conf `host` may be a name; on the wire it is an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertiseRule {
    pub network: Option<Network>,
    pub host: String,
    pub port: u16,
}

impl AdvertiseRule {
    /// `host[:port]`, `[v6]:port`, or `network => host[:port]`; the port defaults to
    /// `default_port` (the storage's own).
    pub fn parse(s: &str, default_port: u16) -> Result<AdvertiseRule, String> {
        let (network, target) = match s.split_once("=>") {
            Some((n, t)) => (Some(Network::parse(n.trim())?), t.trim()),
            None => (None, s.trim()),
        };
        let (host, port) = if let Some(rest) = target.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("\"{target}\" is not host[:port]"))?;
            (h, after.strip_prefix(':'))
        } else {
            match target.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h, Some(p)),
                _ => (target, None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("port of \"{target}\" is invalid"))?,
            None => default_port,
        };
        if host.is_empty() || host.len() > 253 {
            return Err(format!("host of \"{target}\" is invalid"));
        }
        Ok(AdvertiseRule {
            network,
            host: host.to_string(),
            port,
        })
    }

    /// Whether this rule answers a client at `ip`.
    pub fn holds(&self, ip: &IpAddr) -> bool {
        self.network.is_none_or(|n| n.contains(ip))
    }
}

/// `<network or *> <host>:<port>` (IPv6 hosts in brackets): one line of the wire text.
impl std::fmt::Display for AdvertiseRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.network {
            Some(n) => write!(f, "{n} ")?,
            None => write!(f, "* ")?,
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The rule that answers a client at `client`: the first that holds it.
pub fn pick<'a>(rules: &'a [AdvertiseRule], client: &str) -> Option<&'a AdvertiseRule> {
    // the common case, every query of a tracker whose storages advertise nothing: no parse
    if rules.is_empty() {
        return None;
    }
    let ip: IpAddr = client.parse().ok()?;
    rules.iter().find(|r| r.holds(&ip))
}

fn rule_of_line(line: &str) -> Result<AdvertiseRule, String> {
    let (net, target) = line
        .split_once(' ')
        .ok_or_else(|| format!("\"{line}\" is not <network> <ip>:<port>"))?;
    let mut r = AdvertiseRule::parse(target, 0)?;
    if r.port == 0 || r.host.parse::<IpAddr>().is_err() {
        return Err(format!("\"{target}\" is not <ip>:<port>"));
    }
    r.network = match net {
        "*" => None,
        n => Some(Network::parse(n)?),
    };
    Ok(r)
}

/// STORAGE_ADVERTISE's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertiseReq {
    pub group: String,
    pub rules: Vec<AdvertiseRule>,
}

impl Message for AdvertiseReq {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_fixed_str(&self.group, GROUP_NAME_MAX);
        for r in &self.rules {
            out.extend_from_slice(format!("{r}\n").as_bytes());
        }
    }
    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let group = r.fixed_str(GROUP_NAME_MAX, "group_name")?;
        let text = std::str::from_utf8(r.rest())
            .map_err(|_| DecodeError::invalid("rules", "not UTF-8 text".to_string()))?;
        let rules = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| rule_of_line(l.trim()).map_err(|why| DecodeError::invalid("rules", why)))
            .collect::<DecodeResult<Vec<_>>>()?;
        if rules.len() > 16 {
            return Err(DecodeError::invalid(
                "rules",
                format!("{} rules, at most 16", rules.len()),
            ));
        }
        Ok(AdvertiseReq { group, rules })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_rule_holding_the_client_wins() {
        let rules = [
            AdvertiseRule::parse("10.0.0.0/8 => 10.1.2.3", 23000).unwrap(),
            AdvertiseRule::parse("203.0.113.7:24000", 23000).unwrap(),
        ];
        assert_eq!(rules[0].port, 23000);
        assert_eq!(pick(&rules, "10.9.8.7").unwrap().host, "10.1.2.3");
        assert_eq!(pick(&rules, "::ffff:10.9.8.7").unwrap().host, "10.1.2.3");
        assert_eq!(pick(&rules, "192.168.1.1").unwrap().port, 24000);
        assert!(pick(&rules[..1], "192.168.1.1").is_none());

        let req = AdvertiseReq {
            group: "group1".into(),
            rules: rules.to_vec(),
        };
        let bytes = req.to_bytes();
        assert_eq!(
            String::from_utf8_lossy(&bytes[GROUP_NAME_MAX..]),
            "10.0.0.0/8 10.1.2.3:23000\n* 203.0.113.7:24000\n"
        );
        assert_eq!(AdvertiseReq::from_bytes(&bytes).unwrap(), req);
    }

    #[test]
    fn bad_rules_say_why() {
        assert!(AdvertiseRule::parse("10.0.0.0/33 => 10.1.2.3", 1)
            .unwrap_err()
            .contains("prefix"));
        assert!(AdvertiseRule::parse("h:0", 1).unwrap_err().contains("port"));
        assert_eq!(
            AdvertiseRule::parse("[fd00::1]:24000", 1).unwrap().host,
            "fd00::1"
        );
        let mut bad = vec![0u8; GROUP_NAME_MAX];
        bad.extend_from_slice(b"* host-name:1\n");
        assert!(AdvertiseReq::from_bytes(&bad).is_err());
    }
}
