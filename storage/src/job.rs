//! A background job of the daemon's main loop (a recovery, a re-record): started in a thread of
//! its own when it is due, one at a time, and not again before the pause its last run asked for.
//! The main loop never waits on it; at exit it is joined (a job watches the stop flag).

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Job {
    name: &'static str,
    running: Option<JoinHandle<Duration>>,
    not_before: Instant,
    /// whether it is due is asked at most this often
    ask_every: Duration,
}

impl Job {
    pub fn new(name: &'static str, ask_every: Duration) -> Job {
        Job {
            name,
            running: None,
            not_before: Instant::now(),
            ask_every,
        }
    }

    /// Start `work` with what `due` gives, unless a run is going on or its pause is not over,
    /// or `due` gives nothing. `work` returns how long to wait before the next run may start.
    pub fn poll<T: Send + 'static>(
        &mut self,
        due: impl FnOnce() -> Option<T>,
        work: impl FnOnce(T) -> Duration + Send + 'static,
    ) {
        if self.running.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        if let Some(h) = self.running.take() {
            let pause = h.join().unwrap_or(Duration::from_secs(5));
            self.not_before = Instant::now() + pause;
        }
        if Instant::now() < self.not_before {
            return;
        }
        self.not_before = Instant::now() + self.ask_every;
        let Some(what) = due() else {
            return;
        };
        match std::thread::Builder::new()
            .name(self.name.into())
            .spawn(move || work(what))
        {
            Ok(h) => self.running = Some(h),
            Err(e) => log::error!("start {} fail: {e}", self.name),
        }
    }

    /// Wait for a run that is going on (at exit).
    pub fn finish(&mut self) {
        if let Some(h) = self.running.take() {
            let _ = h.join();
        }
    }
}
