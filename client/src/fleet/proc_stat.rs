//! CPU, memory and disk writes of a tracker process, from /proc, for the steady-state report.

/// A tracker process's CPU seconds, RSS bytes, threads and bytes written to disk.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ProcSample {
    pub(super) cpu_s: f64,
    pub(super) rss: u64,
    pub(super) threads: u64,
    pub(super) write_bytes: u64,
}

pub(super) fn proc_sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // fields after the command name, which may hold spaces
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let cpu_s = (f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / ticks;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let write_bytes = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("write_bytes: "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0);
    Some(ProcSample {
        cpu_s,
        rss: field("VmRSS:") * 1024,
        threads: field("Threads:"),
        write_bytes,
    })
}
