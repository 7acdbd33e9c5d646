//! What every load of `rfdfs_bench` shares: threads that repeat one operation for a while,
//! and the figure they make (ops/s, MB/s, latency percentiles).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct BenchResult {
    pub ops: u64,
    pub errors: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub latencies_us: Vec<u64>,
}

impl BenchResult {
    fn percentile(&self, p: f64) -> f64 {
        crate::latency::percentile_ms(&self.latencies_us, p)
    }

    pub fn line(&self, op: &str, size: usize, threads: usize) -> String {
        let secs = self.elapsed.as_secs_f64();
        format!(
            "{op:<8} {size:>9} B x {threads:>2} threads: {:>9.0} ops/s {:>9.1} MB/s  p50 {:.2} ms  p99 {:.2} ms  ({} ops, {} errors)",
            self.ops as f64 / secs,
            self.bytes as f64 / secs / 1e6,
            self.percentile(0.50),
            self.percentile(0.99),
            self.ops,
            self.errors
        )
    }
}

pub fn run_threads(
    threads: usize,
    duration: Duration,
    work: Arc<dyn Fn(usize, u64) -> Result<u64, ()> + Send + Sync>,
) -> BenchResult {
    let stop = Arc::new(AtomicBool::new(false));
    let results = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (stop, results, work) =
                (Arc::clone(&stop), Arc::clone(&results), Arc::clone(&work));
            std::thread::spawn(move || {
                let (mut ops, mut errors, mut bytes, mut lat) = (0u64, 0u64, 0u64, Vec::new());
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
                    match work(t, i) {
                        Ok(n) => {
                            ops += 1;
                            bytes += n;
                            lat.push(t0.elapsed().as_micros() as u64);
                        }
                        Err(()) => errors += 1,
                    }
                    i += 1;
                }
                results.lock().unwrap().push((ops, errors, bytes, lat));
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let elapsed = start.elapsed();
    let mut r = BenchResult {
        ops: 0,
        errors: 0,
        bytes: 0,
        elapsed,
        latencies_us: Vec::new(),
    };
    for (o, e, b, l) in results.lock().unwrap().drain(..) {
        r.ops += o;
        r.errors += e;
        r.bytes += b;
        r.latencies_us.extend(l);
    }
    r.latencies_us.sort_unstable();
    r
}
