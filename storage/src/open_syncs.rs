//! The connections of the sync sessions under way, so that a stopping storage need not wait
//! for a peer that does not answer.
//!
//! A session waits for each reply up to `network_timeout` (60 s at least), and the daemon joins
//! its sync threads before it exits: a peer that stopped answering (paused, cut off by a link
//! that drops packets) held `systemctl stop` for that long. At the stop every registered
//! connection is shut down; the blocked session ends at once, having saved its mark before the
//! record it was sending, which is sent again after the restart.

use fdfs_common::sync::Mutex;
use std::collections::HashMap;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct OpenSyncs {
    open: Mutex<HashMap<u64, TcpStream>>,
    next: AtomicU64,
}

/// A registered connection, forgotten when dropped (the session's end).
pub struct Registered<'a> {
    syncs: &'a OpenSyncs,
    id: u64,
}

impl OpenSyncs {
    /// Register a session's connection until the returned value is dropped.
    pub fn register<'a>(&'a self, sock: &TcpStream) -> Registered<'a> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(s) = sock.try_clone() {
            self.open.lock().insert(id, s);
        }
        Registered { syncs: self, id }
    }

    /// Shut down every registered connection (the daemon is stopping).
    pub fn end_all(&self) {
        for (_, s) in self.open.lock().drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.syncs.open.lock().remove(&self.id);
    }
}
