//! What the whole simulated fleet shares: the arguments, the trackers, where each storage lives
//! (`Layout`), the leader each one follows, the failures seen, and the latency samples.

use super::args::FleetArgs;
use fdfs_common::config::HostPort;
use fdfs_common::net::{self, NetError};
use fdfs_common::proto::commands;
use std::collections::HashMap;
use std::net::{Ipv4Addr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One exchange; a slow answer is logged (RUST_LOG=debug) with its command.
pub(super) fn request(s: &mut TcpStream, command: u8, body: &[u8]) -> Result<Vec<u8>, NetError> {
    let began = Instant::now();
    let r = net::request(s, command, body);
    if began.elapsed() > Duration::from_millis(200) {
        log::debug!(
            "{} to {:?} took {:?}",
            commands::name(command).unwrap_or("?"),
            s.peer_addr(),
            began.elapsed()
        );
    }
    r
}

/// Seconds since the fleet started, in milliseconds.
pub(super) fn ms_since(t0: Instant) -> u64 {
    t0.elapsed().as_millis() as u64
}

/// Where storage `i` lives: its group, its address, its place in the group.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub(super) per_group: usize,
    pub(super) first: u32,
    /// storages past the fleet (the late joiner) join group1
    pub(super) fleet_n: usize,
}

impl Layout {
    fn group_index(&self, i: usize) -> usize {
        if i >= self.fleet_n {
            0
        } else {
            i / self.per_group
        }
    }

    pub(super) fn group(&self, i: usize) -> String {
        format!("group{}", self.group_index(i) + 1)
    }

    pub(super) fn ip(&self, i: usize) -> Ipv4Addr {
        // skip host parts .0 and .255 of every /24: some tools treat them as special
        let base = self.first;
        let (net, host) = (base >> 8, base & 0xff);
        let k = (host.saturating_sub(1)) as usize + i;
        Ipv4Addr::from(((net + (k / 254) as u32) << 8) | (k % 254 + 1) as u32)
    }

    /// Which storage has address `ip` (the inverse of [`ip`](Self::ip)).
    pub(super) fn index_of(&self, ip: Ipv4Addr) -> Option<usize> {
        let (a, base) = (u32::from(ip), self.first);
        let (host, net) = (a & 0xff, a >> 8);
        if !(1..=254).contains(&host) || net < base >> 8 {
            return None;
        }
        let k = (net - (base >> 8)) as usize * 254 + (host - 1) as usize;
        let i = k.checked_sub((base & 0xff).saturating_sub(1) as usize)?;
        (self.ip(i) == ip).then_some(i)
    }

    /// The members of storage `i`'s group other than itself.
    pub(super) fn peers(&self, i: usize) -> impl Iterator<Item = usize> {
        let g0 = self.group_index(i) * self.per_group;
        (g0..g0 + self.per_group).filter(move |&k| k != i)
    }
}

/// Latencies of one kind, as `(ms since start, us)`.
#[derive(Default)]
pub(super) struct Samples(pub(super) Vec<(u64, u64)>);

impl Samples {
    pub(super) fn push(&mut self, t0: Instant, took: Duration) {
        self.0.push((ms_since(t0), took.as_micros() as u64));
    }

    /// The latencies from `from_ms` on, sorted.
    pub(super) fn since(&self, from_ms: u64) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .0
            .iter()
            .filter(|s| s.0 >= from_ms)
            .map(|s| s.1)
            .collect();
        v.sort_unstable();
        v
    }
}

/// What the whole fleet shares.
pub(super) struct Shared {
    pub(super) args: FleetArgs,
    pub(super) trackers: Vec<HostPort>,
    pub(super) layout: Layout,
    /// storages simulated (the late joiner is one past the fleet)
    pub(super) n: usize,
    pub(super) t0: Instant,
    pub(super) stop: AtomicBool,
    /// sources with new members to report: source index -> the members' indexes
    pub(super) pending_sources: Mutex<HashMap<usize, Vec<usize>>>,
    /// the leader each storage follows (tracker index + 1, 0 = none yet), and since when (ms)
    pub(super) leader: Vec<AtomicU64>,
    /// per tracker: ms of the first failed exchange (0 = none)
    pub(super) first_failure: Vec<AtomicU64>,
    /// `storage_ip_changed_auto_adjust` as the trackers' parameters say
    pub(super) changelog_after_beat: AtomicBool,
    pub(super) beat_bytes: AtomicU64,
    pub(super) beat_count: AtomicU64,
    /// the late joiner may start
    pub(super) late_go: AtomicBool,
}

impl Shared {
    /// Per leader (tracker index + 1, 0 = none yet): how many storages follow it, and when
    /// the last of them took it (ms since the start).
    pub(super) fn leader_counts(&self, fleet_n: usize) -> Vec<(usize, u64)> {
        let mut counts = vec![(0usize, 0u64); self.trackers.len() + 1];
        for cell in &self.leader[..fleet_n] {
            let v = cell.load(Ordering::Relaxed);
            let e = &mut counts[(v >> 40) as usize];
            e.0 += 1;
            e.1 = e.1.max(v & ((1 << 40) - 1));
        }
        counts
    }

    /// Leader `k` of [`leader_counts`](Self::leader_counts) by name.
    pub(super) fn leader_name(&self, k: usize) -> String {
        match k {
            0 => "no leader".into(),
            _ => self.trackers[k - 1].to_string(),
        }
    }

    /// The tracker most storages follow as leader.
    pub(super) fn followed(&self, fleet_n: usize) -> String {
        let counts = self.leader_counts(fleet_n);
        match (1..counts.len()).max_by_key(|&k| counts[k].0) {
            Some(k) if counts[k].0 > 0 => self.leader_name(k),
            _ => self.leader_name(0),
        }
    }

    pub(super) fn failed(&self, t: usize) {
        let now = ms_since(self.t0).max(1);
        let _ =
            self.first_failure[t].compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn a_storage_is_found_again_by_its_address() {
        for first in ["127.64.0.1", "127.19.2.20", "10.0.0.254"] {
            let layout = Layout {
                per_group: 5,
                first: u32::from(first.parse::<Ipv4Addr>().unwrap()),
                fleet_n: 1000,
            };
            for i in 0..1000 {
                assert_eq!(layout.index_of(layout.ip(i)), Some(i), "{first} + {i}");
            }
            let before = Ipv4Addr::from(u32::from(layout.ip(0)) - 1);
            assert_eq!(layout.index_of(before), None, "{first}");
        }
    }
}
