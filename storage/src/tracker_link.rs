//! What the sync threads need of the reporter: connections to the trackers (bound as
//! `client_bind` says), the trackers leader first, and the daemon's stop flag. The reporter
//! keeps the leader current; the sync threads only read it.

use crate::storage::Storage;
use fdfs_common::config::HostPort;
use fdfs_common::sync::Mutex;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Clone)]
pub struct TrackerLink {
    pub storage: Arc<Storage>,
    /// the tracker leader as the change lists name it
    pub leader: Arc<Mutex<Option<HostPort>>>,
    pub stop: Arc<AtomicBool>,
}

impl TrackerLink {
    pub fn connect(&self, t: &HostPort) -> std::io::Result<TcpStream> {
        self.storage.connect_to_host_port(t)
    }

    /// The configured trackers, the leader first.
    pub fn leader_first(&self) -> Vec<HostPort> {
        let mut list = self.storage.cfg.tracker_servers.clone();
        if let Some(l) = self.leader.lock().as_ref() {
            // a dual-address entry is the leader when either of its addresses is
            if let Some(i) = list
                .iter()
                .position(|t| t.port == l.port && t.is_at(&l.host))
            {
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
