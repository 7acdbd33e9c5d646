//! Latency figures as rfdfs_bench and its fleet print them.

/// The `p` quantile (0..=1) of sorted microsecond latencies, in milliseconds (0 when empty):
/// rfdfs_bench's figures and its fleet's.
pub fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    sorted_us[i] as f64 / 1000.0
}
