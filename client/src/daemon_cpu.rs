//! What each daemon of the measured cluster spends per operation of a figure: its CPU time
//! (utime + stime from `/proc/<pid>/stat`) over the figure, divided by the operations done.
//! Throughput on a 2-core machine mixes the load generator, the tracker and the storage on the
//! same cores; what a daemon costs per operation does not depend on who shares them, and it
//! is what an operator pays for (issue 34). Any process can be named, upstream's daemons too.

/// The daemons to watch, as `name=pid` said them (`--cpu tracker=123 --cpu storage=456`).
#[derive(Debug, Default, Clone)]
pub struct DaemonCpu {
    daemons: Vec<(String, u32)>,
}

/// Each watched daemon's CPU seconds at one instant (`None`: it could not be read).
pub struct Snapshot(Vec<Option<f64>>);

impl DaemonCpu {
    /// `specs` of the form `name=pid`; the error names the one that is not.
    pub fn parse(specs: &[String]) -> Result<DaemonCpu, String> {
        let daemons = specs
            .iter()
            .map(|s| {
                s.split_once('=')
                    .and_then(|(n, p)| Some((n.to_string(), p.trim().parse().ok()?)))
                    .filter(|(n, _)| !n.is_empty())
                    .ok_or_else(|| format!("--cpu {s}: expected name=pid"))
            })
            .collect::<Result<_, _>>()?;
        Ok(DaemonCpu { daemons })
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot(self.daemons.iter().map(|(_, p)| cpu_seconds(*p)).collect())
    }

    /// `  tracker 7 us CPU/op  storage 40 us CPU/op` since `before`, over `ops` operations
    /// (empty when nothing is watched; a daemon gone meanwhile is left out).
    pub fn per_op(&self, before: &Snapshot, ops: u64) -> String {
        let mut s = String::new();
        for ((name, pid), b) in self.daemons.iter().zip(&before.0) {
            if let (Some(b), Some(now)) = (b, cpu_seconds(*pid)) {
                let us = (now - b) / ops.max(1) as f64 * 1e6;
                s += &format!("  {name} {us:.0} us CPU/op");
            }
        }
        s
    }
}

/// A process's CPU time so far (utime + stime), in seconds: `/proc` counts in USER_HZ, which
/// Linux fixes at 100 for every architecture's user-space interface.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name may hold spaces and parentheses: fields start after the last ')'
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_without_a_pid_is_named() {
        let e = DaemonCpu::parse(&["storage".into()]).unwrap_err();
        assert!(e.contains("--cpu storage"), "{e}");
        assert!(DaemonCpu::parse(&["=12".into()]).is_err());
        assert!(DaemonCpu::parse(&["tracker=x".into()]).is_err());
        assert_eq!(
            DaemonCpu::parse(&["tracker=1".into(), "storage=2".into()])
                .unwrap()
                .daemons,
            vec![("tracker".to_string(), 1), ("storage".to_string(), 2)]
        );
    }

    #[test]
    fn the_cpu_a_process_burns_is_counted_per_operation() {
        let me = DaemonCpu::parse(&[format!("self={}", std::process::id())]).unwrap();
        let before = me.snapshot();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        // 300 ms of CPU: three times the counter's 10 ms resolution, many times over
        while started.elapsed() < std::time::Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let line = me.per_op(&before, 1000);
        let us: f64 = line
            .trim()
            .strip_prefix("self ")
            .and_then(|r| r.strip_suffix(" us CPU/op"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        // 300 ms over 1,000 operations is 300 us each; other test threads may add to it
        assert!(us >= 200.0, "{line}");
        assert!(DaemonCpu::default().per_op(&before, 1).is_empty());
    }
}
