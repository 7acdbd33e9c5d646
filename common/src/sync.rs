//! The daemons' locks: std's futex locks behind the calling convention the code was written
//! for (no poisoning; a condition variable waits on `&mut` guard).
//!
//! Why not parking_lot's: a contended parking_lot lock spins by calling `sched_yield` up to
//! seven times before it sleeps. On two cores shared by a daemon's workers and its clients a
//! yield hands the core to whichever thread is next, for a whole time slice: with 1 MiB S3
//! PUTs from 16 clients the storage made 29,000 `sched_yield` calls in 4 s, single calls took
//! 10-16 ms, at the binlog, the listing index and a file's metadata lock. std's locks spin a
//! hundred pause instructions, then sleep on the futex until the holder wakes them
//! (docs/decisions/std-locks.md).
//!
//! A panic while a lock is held does not poison it for the other workers: the daemon's state
//! under every lock stays usable (each holder leaves it whole or not at all), and one failed
//! request must not take every later one with it.

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

/// A mutual-exclusion lock.
#[derive(Default, Debug)]
pub struct Mutex<T: ?Sized>(std::sync::Mutex<T>);

/// The holder of a [`Mutex`]; the inner guard is only ever absent inside a [`Condvar`] wait.
pub struct MutexGuard<'a, T: ?Sized>(Option<std::sync::MutexGuard<'a, T>>);

impl<T> Mutex<T> {
    pub const fn new(value: T) -> Mutex<T> {
        Mutex(std::sync::Mutex::new(value))
    }

    pub fn into_inner(self) -> T {
        self.0.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

impl<T: ?Sized> Mutex<T> {
    pub fn lock(&self) -> MutexGuard<'_, T> {
        MutexGuard(Some(self.0.lock().unwrap_or_else(|p| p.into_inner())))
    }

    /// The lock if nobody holds it now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        match self.0.try_lock() {
            Ok(g) => Some(MutexGuard(Some(g))),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(MutexGuard(Some(p.into_inner()))),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    pub fn get_mut(&mut self) -> &mut T {
        self.0.get_mut().unwrap_or_else(|p| p.into_inner())
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0
            .as_deref()
            .expect("a guard outside a wait holds its lock")
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0
            .as_deref_mut()
            .expect("a guard outside a wait holds its lock")
    }
}

/// A reader-writer lock.
#[derive(Default, Debug)]
pub struct RwLock<T: ?Sized>(std::sync::RwLock<T>);

impl<T> RwLock<T> {
    pub const fn new(value: T) -> RwLock<T> {
        RwLock(std::sync::RwLock::new(value))
    }
}

impl<T: ?Sized> RwLock<T> {
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Shared access if no writer holds the lock now.
    pub fn try_read(&self) -> Option<std::sync::RwLockReadGuard<'_, T>> {
        match self.0.try_read() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

/// A condition variable over a [`Mutex`].
#[derive(Default, Debug)]
pub struct Condvar(std::sync::Condvar);

/// Whether a timed wait ended by its time running out.
#[derive(Clone, Copy, Debug)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    pub fn timed_out(self) -> bool {
        self.0
    }
}

impl Condvar {
    pub const fn new() -> Condvar {
        Condvar(std::sync::Condvar::new())
    }

    pub fn notify_one(&self) {
        self.0.notify_one();
    }

    pub fn notify_all(&self) {
        self.0.notify_all();
    }

    /// Release the guard's lock until notified, then hold it again.
    pub fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
        let g = guard
            .0
            .take()
            .expect("a guard outside a wait holds its lock");
        guard.0 = Some(self.0.wait(g).unwrap_or_else(|p| p.into_inner()));
    }

    /// [`Condvar::wait`] for at most `timeout`.
    pub fn wait_for<T>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        timeout: Duration,
    ) -> WaitTimeoutResult {
        let g = guard
            .0
            .take()
            .expect("a guard outside a wait holds its lock");
        let (g, r) = self
            .0
            .wait_timeout(g, timeout)
            .unwrap_or_else(|p| p.into_inner());
        guard.0 = Some(g);
        WaitTimeoutResult(r.timed_out())
    }

    /// [`Condvar::wait`] until `deadline` at the latest.
    pub fn wait_until<T>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        deadline: Instant,
    ) -> WaitTimeoutResult {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return WaitTimeoutResult(true);
        }
        self.wait_for(guard, left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_wait_gives_the_lock_up_and_takes_it_back() {
        let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
        let p = pair.clone();
        let t = std::thread::spawn(move || {
            *p.0.lock() = 7;
            p.1.notify_all();
        });
        let mut g = pair.0.lock();
        while *g != 7 {
            pair.1.wait_for(&mut g, Duration::from_secs(5));
        }
        *g += 1;
        drop(g);
        t.join().unwrap();
        assert_eq!(*pair.0.lock(), 8);
    }

    #[test]
    fn a_panicking_holder_leaves_the_lock_usable() {
        let m = Arc::new(Mutex::new(1u32));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = m2.lock();
            panic!("holder fails");
        })
        .join();
        assert_eq!(*m.lock(), 1);
        assert!(m.try_lock().is_some());
    }

    #[test]
    fn a_deadline_passed_times_out_at_once() {
        let m = Mutex::new(());
        let c = Condvar::new();
        let mut g = m.lock();
        assert!(c
            .wait_until(&mut g, Instant::now() - Duration::from_millis(1))
            .timed_out());
    }
}
