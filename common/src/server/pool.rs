//! The worker pool of one listener. `work_threads` workers wait on the readiness watcher's
//! epoll set; the one woken by a connection's bytes serves it while it has requests and parks
//! it again when it goes quiet, or after one request when no worker is idle (others may be
//! waiting: `Conn::turn_over`). Accepted connections are parked at once: epoll reports the ones
//! whose first request is already here. One thread wakes per request, and none is held by an
//! idle connection.
//!
//! When connections wait with no idle worker and none has been taken for `STALL` (every
//! worker held by a slow transfer, not merely busy), the sweeper starts one more worker with
//! such a connection, up to `OVERFLOW_WORKERS`; they retire after a minute without work. Busy
//! workers alone start none: more threads than cores only lengthen the tail. The thread count
//! never depends on how many connections are open.

use super::conn::{Conn, TICK};
use super::handler::{Flow, Handler};
use super::options::ServerOptions;
use super::watcher::{Connection, Watcher};
use crate::metrics::ConnStats;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Workers beyond `work_threads` while connections wait on stalled workers.
pub const OVERFLOW_WORKERS: usize = 16;

/// Accepted connections whose first request waits for a worker, beyond which the listener
/// pauses: accepting faster than requests are served only moves the queue from the kernel's
/// backlog into the daemon, where a burst of short connections counts against
/// `max_connections` and gets the next client refused.
const ACCEPT_AHEAD: usize = 64;

/// How long connections may wait with no worker taking one before another worker starts.
const STALL: Duration = Duration::from_millis(50);

const WORKER_STACK: usize = 512 * 1024;
const IDLE_RETIRE: Duration = Duration::from_secs(60);

type Job<H> = Box<Connection<<H as Handler>::Session>>;

pub(super) struct Pool<H: Handler> {
    handler: Arc<H>,
    watcher: Watcher<H::Session>,
    /// workers waiting on the watcher (each connection holds it too: `Conn::turn_over`)
    idle: Arc<AtomicUsize>,
    /// accepted connections with a request that no worker has taken yet
    queued: AtomicUsize,
    workers: AtomicUsize,
    min_workers: usize,
    max_workers: usize,
    /// when a worker last took a connection (microseconds since `started`)
    last_taken: AtomicU64,
    started: Instant,
    network_timeout: Duration,
    pub shutdown: Arc<AtomicBool>,
    pub active: Arc<AtomicUsize>,
    pub stats: Arc<ConnStats>,
}

impl<H: Handler> Pool<H> {
    /// Start the workers and the sweeper thread.
    pub fn start(
        handler: Arc<H>,
        opts: &ServerOptions,
        shutdown: Arc<AtomicBool>,
        stats: Arc<ConnStats>,
    ) -> std::io::Result<Arc<Pool<H>>> {
        let work_threads = opts.work_threads.max(1);
        let pool = Arc::new(Pool {
            handler,
            watcher: Watcher::new()?,
            idle: Arc::new(AtomicUsize::new(0)),
            queued: AtomicUsize::new(0),
            workers: AtomicUsize::new(0),
            min_workers: work_threads,
            max_workers: work_threads + OVERFLOW_WORKERS,
            last_taken: AtomicU64::new(0),
            started: Instant::now(),
            network_timeout: opts.network_timeout,
            shutdown,
            active: Arc::new(AtomicUsize::new(0)),
            stats,
        });
        for _ in 0..work_threads {
            pool.spawn_worker(None);
        }
        let p = Arc::clone(&pool);
        thread::Builder::new()
            .name(format!("{}-sweep", opts.name))
            .spawn(move || p.sweep_loop())?;
        Ok(pool)
    }

    /// Take a connection the listener accepted.
    pub fn admit(&self, stream: TcpStream) {
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        let cur = self.stats.current.fetch_add(1, Ordering::SeqCst) + 1;
        self.stats.max.fetch_max(cur, Ordering::SeqCst);
        let mut conn = match Conn::new(stream, self.network_timeout, Arc::clone(&self.shutdown)) {
            Ok(c) => c,
            Err(e) => {
                log::debug!("accepted connection unusable: {e}");
                self.stats.current.fetch_sub(1, Ordering::SeqCst);
                return;
            }
        };
        conn.active = Arc::clone(&self.active);
        conn.idle_workers = Arc::clone(&self.idle);
        let mut c = Connection::new(conn, H::Session::default());
        if c.conn.bytes_waiting() {
            c.queued = true;
            self.queued.fetch_add(1, Ordering::SeqCst);
        }
        self.park(c);
    }

    /// Wait, before accepting more, until workers have taken most accepted connections that
    /// have a request waiting (see `ACCEPT_AHEAD`).
    pub fn wait_for_workers(&self) {
        while self.queued.load(Ordering::SeqCst) >= ACCEPT_AHEAD
            && !self.shutdown.load(Ordering::SeqCst)
        {
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn unqueue(&self, c: &mut Connection<H::Session>) {
        if std::mem::take(&mut c.queued) {
            self.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Connections open on this listener (served or parked).
    pub fn open_connections(&self) -> usize {
        self.stats.current.load(Ordering::SeqCst).max(0) as usize
    }

    fn micros(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    fn spawn_worker(self: &Arc<Self>, first: Option<Job<H>>) {
        self.workers.fetch_add(1, Ordering::SeqCst);
        let pool = Arc::clone(self);
        let r = thread::Builder::new()
            .name("worker".into())
            .stack_size(WORKER_STACK)
            .spawn(move || pool.worker_loop(first));
        if let Err(e) = r {
            log::error!("spawn worker thread fail: {e}");
            self.workers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn worker_loop(self: Arc<Self>, first: Option<Job<H>>) {
        if let Some(c) = first {
            self.serve(c);
        }
        let mut idle_since = Instant::now();
        loop {
            self.idle.fetch_add(1, Ordering::SeqCst);
            let taken = self.watcher.take_ready(TICK);
            self.idle.fetch_sub(1, Ordering::SeqCst);
            if let Some(c) = taken {
                self.last_taken.store(self.micros(), Ordering::Relaxed);
                self.serve(c);
                idle_since = Instant::now();
                continue;
            }
            let stopping = self.shutdown.load(Ordering::SeqCst);
            if !stopping && idle_since.elapsed() < IDLE_RETIRE {
                continue;
            }
            let w = self.workers.load(Ordering::SeqCst);
            if (stopping || w > self.min_workers)
                && self
                    .workers
                    .compare_exchange(w, w - 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                return;
            }
        }
    }

    /// Serve `c` while it has requests, then park or close it. A handler that panics loses
    /// its connection, not the worker: with a fixed pool, each panic would otherwise take a
    /// thread for good until none served.
    fn serve(&self, mut c: Job<H>) {
        self.unqueue(&mut c);
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.handler.serve(&mut c.conn, &mut c.session)
        }));
        let flow = served.unwrap_or_else(|_| {
            log::error!(
                "client ip: {}, request handler panicked, connection closed",
                c.conn.peer_ip()
            );
            Flow::Close
        });
        if flow == Flow::Continue && !self.shutdown.load(Ordering::SeqCst) {
            self.park(c);
        } else {
            self.close(&mut c);
        }
    }

    fn park(&self, c: Job<H>) {
        if let Err(mut c) = self.watcher.park(c) {
            self.close(&mut c);
        }
    }

    /// Close `c` (dropped afterwards).
    fn close(&self, c: &mut Connection<H::Session>) {
        self.unqueue(c);
        self.handler.closed(&c.conn, &mut c.session);
        let _ = c.conn.stream.shutdown(Shutdown::Both);
        self.stats.current.fetch_sub(1, Ordering::SeqCst);
    }

    /// Start one more worker, with a waiting connection, if workers have taken none for
    /// `STALL` while none is idle.
    fn relieve_stall(self: &Arc<Self>) {
        let since_taken = self
            .micros()
            .saturating_sub(self.last_taken.load(Ordering::Relaxed));
        if self.idle.load(Ordering::SeqCst) > 0
            || since_taken < STALL.as_micros() as u64
            || self.workers.load(Ordering::SeqCst) >= self.max_workers
        {
            return;
        }
        if let Some(c) = self.watcher.take_ready(Duration::ZERO) {
            log::debug!(
                "client ip: {}, no worker free for {} ms: one more started",
                c.conn.peer_ip(),
                since_taken / 1000
            );
            self.last_taken.store(self.micros(), Ordering::Relaxed);
            self.spawn_worker(Some(c));
        }
    }

    /// The sweeper thread: relieve stalled workers; close connections that sent no request
    /// within `network_timeout`, and, once the server stops, every parked one.
    fn sweep_loop(self: Arc<Self>) {
        let mut last_sweep = Instant::now();
        loop {
            let busy = self.idle.load(Ordering::SeqCst) == 0;
            thread::sleep(if busy { STALL } else { TICK });
            self.relieve_stall();
            if last_sweep.elapsed() < TICK {
                continue;
            }
            last_sweep = Instant::now();
            let stopping = self.shutdown.load(Ordering::SeqCst);
            let timeout = self.network_timeout;
            let expired = self.watcher.take_if(|conn, parked_for| {
                stopping || (conn.requests == 0 && parked_for >= timeout)
            });
            for mut c in expired {
                if !stopping {
                    log::warn!(
                        "client ip: {}, connection closed: network timeout (no request in {}s)",
                        c.conn.peer_ip(),
                        timeout.as_secs()
                    );
                }
                self.close(&mut c);
            }
        }
    }
}
