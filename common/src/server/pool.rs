//! The worker pool of one listener: `work_threads` threads serve connections that have bytes to
//! read; a connection that goes quiet between requests is parked with the readiness watcher and
//! comes back to the pool when bytes arrive. While every worker is busy and connections wait,
//! up to `OVERFLOW_WORKERS` more are started (they retire after a minute without work), so a few
//! slow transfers cannot hold every worker; the thread count never depends on how many
//! connections are open.

use super::conn::{Conn, TICK};
use super::watcher::{Connection, Watcher};
use super::{ConnStats, Flow, Handler, ServerOptions};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Workers beyond `work_threads` while requests wait for one.
pub const OVERFLOW_WORKERS: usize = 16;

const WORKER_STACK: usize = 512 * 1024;
const IDLE_RETIRE: Duration = Duration::from_secs(60);

type Job<H> = Box<Connection<<H as Handler>::Session>>;

pub(super) struct Pool<H: Handler> {
    handler: Arc<H>,
    tx: Sender<Job<H>>,
    rx: Receiver<Job<H>>,
    watcher: Watcher<H::Session>,
    idle: AtomicUsize,
    workers: AtomicUsize,
    min_workers: usize,
    max_workers: usize,
    network_timeout: Duration,
    pub shutdown: Arc<AtomicBool>,
    pub active: Arc<AtomicUsize>,
    pub stats: Arc<ConnStats>,
}

impl<H: Handler> Pool<H> {
    /// Start the workers and the watcher thread.
    pub fn start(
        handler: Arc<H>,
        opts: &ServerOptions,
        shutdown: Arc<AtomicBool>,
        stats: Arc<ConnStats>,
    ) -> std::io::Result<Arc<Pool<H>>> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let work_threads = opts.work_threads.max(1);
        let pool = Arc::new(Pool {
            handler,
            tx,
            rx,
            watcher: Watcher::new()?,
            idle: AtomicUsize::new(0),
            workers: AtomicUsize::new(0),
            min_workers: work_threads,
            max_workers: work_threads + OVERFLOW_WORKERS,
            network_timeout: opts.network_timeout,
            shutdown,
            active: Arc::new(AtomicUsize::new(0)),
            stats,
        });
        for _ in 0..work_threads {
            pool.spawn_worker();
        }
        let p = Arc::clone(&pool);
        thread::Builder::new()
            .name(format!("{}-watch", opts.name))
            .spawn(move || p.watch_loop())?;
        Ok(pool)
    }

    /// Take a connection the listener accepted: served now if its first request is here,
    /// otherwise parked until it is.
    pub fn admit(self: &Arc<Self>, stream: TcpStream) {
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
        let mut c = Connection::new(conn, H::Session::default());
        if c.conn.quiet() {
            self.park(c);
        } else {
            self.dispatch(c);
        }
    }

    /// Connections open on this listener (served, waiting for a worker, or parked).
    pub fn open_connections(&self) -> usize {
        self.stats.current.load(Ordering::SeqCst).max(0) as usize
    }

    fn dispatch(self: &Arc<Self>, c: Job<H>) {
        if self.idle.load(Ordering::SeqCst) <= self.rx.len()
            && self.workers.load(Ordering::SeqCst) < self.max_workers
        {
            self.spawn_worker();
        }
        let _ = self.tx.send(c);
    }

    fn spawn_worker(self: &Arc<Self>) {
        self.workers.fetch_add(1, Ordering::SeqCst);
        self.idle.fetch_add(1, Ordering::SeqCst);
        let pool = Arc::clone(self);
        let r = thread::Builder::new()
            .name("worker".into())
            .stack_size(WORKER_STACK)
            .spawn(move || pool.worker_loop());
        if let Err(e) = r {
            log::error!("spawn worker thread fail: {e}");
            self.workers.fetch_sub(1, Ordering::SeqCst);
            self.idle.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn worker_loop(self: Arc<Self>) {
        let mut idle_since = Instant::now();
        loop {
            match self.rx.recv_timeout(TICK) {
                Ok(c) => {
                    self.idle.fetch_sub(1, Ordering::SeqCst);
                    self.serve(c);
                    self.idle.fetch_add(1, Ordering::SeqCst);
                    idle_since = Instant::now();
                }
                Err(RecvTimeoutError::Timeout) => {
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
                        self.idle.fetch_sub(1, Ordering::SeqCst);
                        return;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Serve `c` while it has requests, then park or close it.
    fn serve(self: &Arc<Self>, mut c: Job<H>) {
        let flow = self.handler.serve(&mut c.conn, &mut c.session);
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
        self.handler.closed(&c.conn, &mut c.session);
        let _ = c.conn.stream.shutdown(Shutdown::Both);
        self.stats.current.fetch_sub(1, Ordering::SeqCst);
    }

    /// The watcher thread: hand connections with bytes to the workers; close those that never
    /// sent a request within `network_timeout`, and, once the server stops, every parked one.
    fn watch_loop(self: Arc<Self>) {
        let mut ready = Vec::new();
        let mut last_sweep = Instant::now();
        loop {
            self.watcher.wait_ready(TICK, &mut ready);
            for c in ready.drain(..) {
                self.dispatch(c);
            }
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
