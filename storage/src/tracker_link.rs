//! What the sync threads need of the reporter: connections to the trackers (bound as
//! `client_bind` says), the trackers leader first, and the daemon's stop flag. The reporter
//! keeps the leader current; the sync threads only read it.

use crate::storage::Storage;
use fdfs_common::config::HostPort;
use fdfs_common::net;
use parking_lot::Mutex;
use std::net::{IpAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct TrackerLink {
    pub storage: Arc<Storage>,
    /// the tracker leader as the change lists name it
    pub leader: Arc<Mutex<Option<HostPort>>>,
    pub stop: Arc<AtomicBool>,
}

impl TrackerLink {
    fn bind_ip(&self) -> Option<IpAddr> {
        let cfg = &self.storage.cfg;
        if cfg.client_bind && !cfg.server.bind_addr.is_empty() {
            cfg.server.bind_addr.parse().ok()
        } else {
            None
        }
    }

    pub fn connect(&self, t: &HostPort) -> std::io::Result<TcpStream> {
        let c = &self.storage.cfg.server;
        net::connect(
            &t.host,
            t.port,
            self.bind_ip(),
            Duration::from_secs(c.connect_timeout),
            Duration::from_secs(c.network_timeout),
        )
    }

    /// The configured trackers, the leader first.
    pub fn leader_first(&self) -> Vec<HostPort> {
        let mut list = self.storage.cfg.tracker_servers.clone();
        if let Some(l) = self.leader.lock().as_ref() {
            if let Some(i) = list.iter().position(|t| t == l) {
                let t = list.remove(i);
                list.insert(0, t);
            }
        }
        list
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}
