//! The readiness watcher: where a connection waits, costing a file descriptor and no thread,
//! between its requests (FastDFS clients keep pooled connections open and idle for minutes).
//! One epoll set per listener, waited on by the idle workers themselves, so that bytes arriving
//! wake exactly one thread, the one that serves them. A connection is armed once per wait
//! (`EPOLLONESHOT`): the worker that takes it out is the only one that touches it.

use super::conn::Conn;
use crate::sync::Mutex;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// An accepted connection with what its handler keeps between requests.
pub(super) struct Connection<S> {
    pub conn: Conn,
    pub session: S,
    /// accepted with its first request already here, and not yet taken by a worker
    pub queued: bool,
    /// its socket is in the epoll set (re-armed, not added, when parked again)
    watched: bool,
    parked_at: Instant,
}

impl<S> Connection<S> {
    pub fn new(conn: Conn, session: S) -> Box<Connection<S>> {
        Box::new(Connection {
            conn,
            session,
            queued: false,
            watched: false,
            parked_at: Instant::now(),
        })
    }
}

/// Locks over the parked connections, by descriptor: a worker parking one connection (its
/// lock held across `epoll_ctl`) must not hold up the worker that an event for another has
/// just woken.
const SHARDS: usize = 16;

type Shard<S> = Mutex<HashMap<RawFd, Box<Connection<S>>>>;

pub(super) struct Watcher<S> {
    epoll: Epoll,
    /// keyed by the socket's descriptor, which stays theirs while they are here
    parked: Box<[Shard<S>]>,
}

impl<S> Watcher<S> {
    pub fn new() -> io::Result<Watcher<S>> {
        Ok(Watcher {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            parked: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        })
    }

    /// Hold `c` until bytes arrive (or the peer hangs up). On failure `c` comes back.
    pub fn park(&self, mut c: Box<Connection<S>>) -> Result<(), Box<Connection<S>>> {
        let fd = c.conn.stream.as_raw_fd();
        let rearm = std::mem::replace(&mut c.watched, true);
        c.parked_at = Instant::now();
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLONESHOT;
        let mut ev = EpollEvent::new(flags, fd as u64);
        // armed under the lock, so that its event, taken under the lock, always finds it
        let mut parked = self.shard(fd).lock();
        let armed = if rearm {
            self.epoll.modify(&c.conn.stream, &mut ev)
        } else {
            self.epoll.add(&c.conn.stream, ev)
        };
        match armed {
            Ok(()) => {
                parked.insert(fd, c);
                Ok(())
            }
            Err(e) => {
                log::warn!("client ip: {}, epoll_ctl fail: {e}", c.conn.peer_ip());
                Err(c)
            }
        }
    }

    /// Wait up to `timeout` for a parked connection with bytes to read (or a hang-up), and
    /// take it out. Several threads may wait at once; each event wakes one of them.
    pub fn take_ready(&self, timeout: Duration) -> Option<Box<Connection<S>>> {
        let mut events = [EpollEvent::empty(); 1];
        let ms = timeout.as_millis().min(u16::MAX as u128) as u16;
        match self.epoll.wait(&mut events, ms) {
            Ok(1) => {
                let fd = events[0].data() as RawFd;
                self.shard(fd).lock().remove(&fd)
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => None,
            Err(e) => {
                log::error!("epoll_wait fail: {e}");
                std::thread::sleep(timeout);
                None
            }
        }
    }

    /// Take out the connections for which `expired` says so.
    pub fn take_if(
        &self,
        mut expired: impl FnMut(&Conn, Duration) -> bool,
    ) -> Vec<Box<Connection<S>>> {
        let mut taken = Vec::new();
        for shard in self.parked.iter() {
            let mut parked = shard.lock();
            let fds: Vec<RawFd> = parked
                .iter()
                .filter(|(_, c)| expired(&c.conn, c.parked_at.elapsed()))
                .map(|(&fd, _)| fd)
                .collect();
            taken.extend(fds.iter().filter_map(|fd| parked.remove(fd)));
        }
        taken
    }

    fn shard(&self, fd: RawFd) -> &Shard<S> {
        &self.parked[fd as usize % SHARDS]
    }
}
