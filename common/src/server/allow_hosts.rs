//! `allow_hosts`: which peers a listener serves.

use std::net::IpAddr;

/// Accepts or refuses peers per `allow_hosts` (`*`, IPs, CIDR, `a.b.c.[1-5,9]` ranges, names).
#[derive(Debug, Clone, Default)]
pub struct AllowHosts {
    any: bool,
    nets: Vec<(IpAddr, u8)>,
}

impl AllowHosts {
    pub fn parse(entries: &[String]) -> AllowHosts {
        if entries.is_empty() {
            return AllowHosts {
                any: true,
                nets: Vec::new(),
            };
        }
        let mut a = AllowHosts::default();
        for e in entries {
            let e = e.trim();
            if e == "*" {
                a.any = true;
                continue;
            }
            for host in expand_ranges(e) {
                if let Some((ip, bits)) = host.split_once('/') {
                    if let (Ok(ip), Ok(bits)) = (ip.parse::<IpAddr>(), bits.parse::<u8>()) {
                        a.nets.push((ip, bits));
                        continue;
                    }
                }
                match crate::resolver::resolve_host(&host) {
                    Ok(ip) => a.nets.push((ip, if ip.is_ipv4() { 32 } else { 128 })),
                    Err(m) => log::warn!("allow_hosts entry \"{host}\" skipped: {m}"),
                }
            }
        }
        a
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        self.any || self.nets.iter().any(|&(net, bits)| in_net(ip, net, bits))
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits.min(32))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits.min(128))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// `10.0.1.[1-3,20]` -> `10.0.1.1`, `10.0.1.2`, `10.0.1.3`, `10.0.1.20`.
fn expand_ranges(e: &str) -> Vec<String> {
    let (Some(l), Some(r)) = (e.find('['), e.find(']')) else {
        return vec![e.to_string()];
    };
    if r < l {
        return vec![e.to_string()];
    }
    let (pre, body, post) = (&e[..l], &e[l + 1..r], &e[r + 1..]);
    let mut out = Vec::new();
    for part in body.split(',') {
        let part = part.trim();
        if let Some((a, b)) = part.split_once('-') {
            let width = a.trim().len();
            if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
                for v in a..=b.min(a + 65535) {
                    out.push(format!("{pre}{v:0width$}{post}"));
                }
            }
        } else if !part.is_empty() {
            out.push(format!("{pre}{part}{post}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_hosts_forms() {
        let a = AllowHosts::parse(&["10.0.1.[1-3,20]".into(), "192.168.0.0/16".into()]);
        assert!(a.allows("10.0.1.2".parse().unwrap()));
        assert!(a.allows("10.0.1.20".parse().unwrap()));
        assert!(!a.allows("10.0.1.4".parse().unwrap()));
        assert!(a.allows("192.168.77.1".parse().unwrap()));
        assert!(AllowHosts::parse(&[]).allows("1.2.3.4".parse().unwrap()));
        assert!(AllowHosts::parse(&["*".into()]).allows("1.2.3.4".parse().unwrap()));
    }
}
