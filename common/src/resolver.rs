//! Host names of the config files (`tracker_server` lines, storage_ids.conf), resolved again as
//! their addresses move.
//!
//! Upstream resolves a name once, when it reads the config; a tracker or storage that comes back
//! under a new address (a restarted pod, a DHCP lease) is then lost until every daemon and tool
//! that names it restarts. Here a name's address is kept for `dns_refresh_interval` seconds
//! (rfdfs's key in tracker.conf, storage.conf and client.conf; default [`DEFAULT_REFRESH`], 0 =
//! never again, as upstream) and asked again at once when a connection to it fails or a
//! storage's address is not found, but at most once per [`RETRY_GAP`] per name, so a dead host
//! is not a DNS query per connection attempt.
//!
//! The cache is the process's: names are few (trackers, storages of one id table), and every
//! connection of the process should agree on where a name points.

use crate::sync::Mutex;
use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `dns_refresh_interval`'s default: a minute, as long as a pod's name is commonly cached.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);

/// The least time between two lookups of one name forced by failures.
pub const RETRY_GAP: Duration = Duration::from_secs(1);

static REFRESH_SECS: AtomicU64 = AtomicU64::new(DEFAULT_REFRESH.as_secs());

struct Entry {
    ip: String,
    asked: Instant,
}

static NAMES: Mutex<BTreeMap<String, Entry>> = Mutex::new(BTreeMap::new());

/// Set the process's `dns_refresh_interval` (0: a name is resolved once).
pub fn set_refresh_interval(every: Duration) {
    REFRESH_SECS.store(every.as_secs(), Ordering::Relaxed);
}

/// Whether `host` is a name to resolve (not an address written out).
pub fn is_name(host: &str) -> bool {
    host.parse::<IpAddr>().is_err()
}

/// The address `name` stands for now: the cached one while it is fresh, else asked again (the
/// old answer kept when the lookup fails: a resolver that is down does not lose a host).
pub fn address_of(name: &str) -> Option<String> {
    let every = REFRESH_SECS.load(Ordering::Relaxed);
    {
        let names = NAMES.lock();
        if let Some(e) = names.get(name) {
            if every == 0 || e.asked.elapsed() < Duration::from_secs(every) {
                return Some(e.ip.clone());
            }
        }
    }
    lookup(name)
}

/// Ask again after a failure to reach `name` at `was` (or to find a storage by its address):
/// the new address when it moved, `None` when it did not or was asked less than [`RETRY_GAP`]
/// ago.
pub fn moved(name: &str, was: &str) -> Option<String> {
    if NAMES
        .lock()
        .get(name)
        .is_some_and(|e| e.asked.elapsed() < RETRY_GAP)
    {
        return None;
    }
    lookup(name).filter(|now| now != was)
}

/// A host of a config file: its address, and the name it was written as when it was one (its
/// address noted, so that the resolver can tell when it moves).
pub fn resolve_config_host(host: &str) -> Result<(String, Option<String>), String> {
    let ip = resolve_host(host)?.to_string();
    if !is_name(host) {
        return Ok((ip, None));
    }
    seed(host, &ip);
    Ok((ip, Some(host.to_string())))
}

/// Where a config file's host is now: a name's present address (`read`, the address found when
/// the config was read, while the name cannot be resolved), an address as written.
pub fn present(read: &str, name: Option<&str>) -> String {
    name.and_then(address_of)
        .unwrap_or_else(|| read.to_string())
}

/// Note the address a name was resolved to when the config was read.
fn seed(name: &str, ip: &str) {
    NAMES.lock().entry(name.to_string()).or_insert(Entry {
        ip: ip.to_string(),
        asked: Instant::now(),
    });
}

/// A host's address: an IP as written, else the name asked of the system's resolver (IPv4
/// preferred, as upstream's getIpaddrByName), or the error upstream prints.
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

fn lookup(name: &str) -> Option<String> {
    let fresh = resolve_host(name).ok().map(|ip| ip.to_string());
    let mut names = NAMES.lock();
    match fresh {
        Some(ip) => {
            if let Some(old) = names.get(name).filter(|e| e.ip != ip) {
                log::info!("host {name} moved from {} to {ip}", old.ip);
            }
            names.insert(
                name.to_string(),
                Entry {
                    ip: ip.clone(),
                    asked: Instant::now(),
                },
            );
            Some(ip)
        }
        None => {
            let e = names.get_mut(name)?;
            log::warn!("host {name} cannot be resolved; {} kept", e.ip);
            e.asked = Instant::now();
            Some(e.ip.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_keeps_its_address_until_asked_again() {
        // "localhost" resolves on every machine; a seeded stale address stands in for a move
        seed("localhost", "10.9.9.9");
        assert_eq!(address_of("localhost").as_deref(), Some("10.9.9.9"));
        // a failure asks again, but not within the gap after the last answer
        assert_eq!(moved("localhost", "10.9.9.9"), None);
        // once the refresh interval has passed, the next use asks again (the failure path is
        // tests/tests/addresses.rs's: a tracker that moves)
        set_refresh_interval(Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(1100));
        let now = address_of("localhost").expect("localhost resolves");
        set_refresh_interval(DEFAULT_REFRESH);
        assert_ne!(now, "10.9.9.9");
        assert!(!is_name("10.0.0.1") && !is_name("::1") && is_name("tracker-1"));
    }
}
