//! Files that expire (issue 32): a file's own `fdfs-expires=<unix seconds>` metadata (set by
//! any client's set_metadata, merge or overwrite), else the first `expire_rule` line of
//! storage.conf that holds for its name (`fdfs_common::config::expire_rule`).
//!
//! An expired file is answered as absent at once: DOWNLOAD_FILE, QUERY_FILE_INFO and the HTTP
//! port answer as for a file that is not there, read from the metadata file itself, so there
//! is no lag. The sweeper (`expire_sweep_interval`, default 300 s) deletes expired files with
//! an ordinary delete, whose line reaches every member as any delete does, C storages
//! included. One member sweeps each file: its source (the storage its file ID names); when the
//! source is not an ACTIVE rfdfs member of the group (a C storage, or gone), the ACTIVE rfdfs
//! member with the smallest id does. A sweep stopped half way deletes nothing twice (a delete
//! of a file already gone is no change) and the next sweep finds what is left.

use crate::storage::{meta_path, Storage};
use fdfs_common::config::expire_rule::file_expiry;
use fdfs_common::file_id::{LogicalName, RemoteName};
use fdfs_common::net;
use fdfs_common::proto::{cmd, status};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The metadata key holding a file's expiry (unix seconds).
pub const EXPIRES_KEY: &str = "fdfs-expires";

/// The `fdfs-expires` time in a metadata file's bytes.
fn expires_in_metadata(meta: &[u8]) -> Option<i64> {
    expires_in_items(&fdfs_common::metadata::unpack(meta))
}

/// The `fdfs-expires` time among metadata items.
pub(crate) fn expires_in_items(items: &[fdfs_common::metadata::MetaItem]) -> Option<i64> {
    items
        .iter()
        .find(|(k, _)| k.as_slice() == EXPIRES_KEY.as_bytes())
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse().ok())
}

impl Storage {
    /// The `fdfs-expires` time in `name`'s own metadata file, if it has one.
    pub fn own_expiry(&self, name: &str) -> Option<i64> {
        let ln = LogicalName::parse(name, self.store.paths.len()).ok()?;
        expires_in_metadata(&std::fs::read(meta_path(&self.store.local_path(&ln))).ok()?)
    }

    /// When `name` expires, if it does (`file_expiry`: its own metadata first, then the
    /// rules); the name is decoded only when a rule may apply.
    pub fn expiry_of(&self, name: &str) -> Option<i64> {
        let own = self.own_expiry(name);
        if own.is_some() || self.cfg.expire_rules.is_empty() {
            return own;
        }
        let created = RemoteName::decode(name).ok()?.payload.timestamp;
        file_expiry(None, &self.cfg.expire_rules, name, i64::from(created))
    }

    /// Whether `name` has expired: then it is answered as absent (counted).
    pub fn expired(&self, name: &str) -> bool {
        let gone = self
            .expiry_of(name)
            .is_some_and(|t| t <= fdfs_common::now());
        if gone {
            self.expiry.answered_absent.fetch_add(1, Ordering::Relaxed);
        }
        gone
    }

    /// Whether this member sweeps files uploaded to `source`.
    fn sweeps_for(&self, source: &str, rfdfs_members: &[String]) -> bool {
        let me = self.my_id.read().clone();
        let my_ip = self.my_ip.read().clone();
        if source == me || source == my_ip {
            return true;
        }
        let source_is_rfdfs_member = self
            .members
            .read()
            .iter()
            .any(|m| (m.id == source || m.ip == source) && rfdfs_members.contains(&m.id));
        !source_is_rfdfs_member && rfdfs_members.iter().min().is_some_and(|m| *m == me)
    }

    /// The ACTIVE members of the group that are rfdfs storages (answer RFDFS_STATUS), this one
    /// included. A member that refused the command (a C storage: it logs an error for each
    /// unknown command) is in `not_rfdfs` and not asked again until this storage restarts, as
    /// reconcile does; one that could not be reached is asked at the next sweep.
    fn rfdfs_members(&self, not_rfdfs: &mut Vec<String>) -> Vec<String> {
        let mut out = vec![self.my_id.read().clone()];
        for peer in self.active_peers() {
            if not_rfdfs.contains(&peer.id) {
                continue;
            }
            let asked = self
                .connect_to(&peer.ip, peer.port as u16)
                .map_err(net::NetError::from)
                .and_then(|mut s| {
                    let r = net::request(&mut s, cmd::RFDFS_STATUS, &[]);
                    net::quit(s);
                    r
                });
            match asked {
                Ok(_) => out.push(peer.id),
                Err(net::NetError::Status(_)) => {
                    log::info!(
                        "expiry: storage {} does not answer rfdfs's RFDFS_STATUS (a C storage?); \
                         this member may sweep its files, and does not ask it again",
                        peer.id
                    );
                    not_rfdfs.push(peer.id);
                }
                Err(_) => {}
            }
        }
        out
    }

    /// One sweep: delete the expired files this member sweeps.
    fn sweep(&self, stop: &AtomicBool, not_rfdfs: &mut Vec<String>) {
        if !self.listing.ready() || self.my_id.read().is_empty() {
            return;
        }
        let members = self.rfdfs_members(not_rfdfs);
        let now = fdfs_common::now();
        let mut mine = Vec::new();
        let mut pending = 0u64;
        // one pass over the index, each name decoded once; the page itself keeps nothing
        let scanned = self
            .listing
            .index
            .read()
            .page("", "", usize::MAX, usize::MAX, |name, e| {
                let Ok(rn) = RemoteName::decode(name) else {
                    return false;
                };
                let created = i64::from(rn.payload.timestamp);
                if file_expiry(e.expires, &self.cfg.expire_rules, name, created)
                    .is_some_and(|t| t <= now)
                {
                    if self.sweeps_for(&rn.payload.source.text(), &members) {
                        mine.push(name.to_string());
                    } else {
                        pending += 1;
                    }
                }
                false
            });
        if let Err(e) = scanned {
            log::error!("expiry sweep: read listing index fail: {e}");
            return;
        }
        let mut swept = 0u64;
        for name in mine {
            if stop.load(Ordering::Relaxed) {
                pending += 1;
                continue;
            }
            // the index may be behind the metadata: ask the file itself
            if self.expiry_of(&name).is_none_or(|t| t > now) {
                continue;
            }
            match self.delete_stored(&name, fdfs_common::now(), false) {
                Ok(_) => {
                    swept += 1;
                    log::info!("expired file {}/{name} deleted", self.group);
                }
                Err(code) if code == fdfs_common::proto::errno::ENOENT => {}
                Err(code) => {
                    pending += 1;
                    log::warn!("delete expired file {name} fail, errno: {code}");
                }
            }
        }
        self.expiry.swept.fetch_add(swept, Ordering::Relaxed);
        self.expiry.pending.store(pending, Ordering::Relaxed);
    }
}

/// The sweeper thread: a sweep every `expire_sweep_interval` seconds until `stop`.
pub fn run(storage: &Storage, stop: &AtomicBool, interval: u64) {
    let mut not_rfdfs = Vec::new();
    loop {
        let next = Instant::now() + Duration::from_secs(interval);
        while !stop.load(Ordering::Relaxed) && Instant::now() < next {
            std::thread::sleep(Duration::from_millis(100));
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // only while this member is ACTIVE: a delete needs the group to take it
        let me = storage.my_id.read().clone();
        let active = storage
            .members
            .read()
            .iter()
            .any(|m| m.id == me && m.status == status::ACTIVE);
        if active {
            storage.sweep(stop, &mut not_rfdfs);
        }
    }
}
