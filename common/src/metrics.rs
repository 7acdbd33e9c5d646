//! A daemon's own metrics in Prometheus text format (exposition format 0.0.4), and the
//! `/metrics` and `/health` endpoints served on `metrics.server_port` (rfdfs's own key; 0, the
//! default, serves nothing). Upstream ships a separate exporter that polls the tracker; these
//! come from inside each daemon, per command and per peer.

use crate::proto::commands;

use std::fmt::Write;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the request latency histogram's buckets.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct CommandStats {
    count: AtomicU64,
    errors: AtomicU64,
    micros: AtomicU64,
    /// per bucket, not cumulative (summed when rendered)
    buckets: [AtomicU64; BUCKETS.len()],
}

/// Counters of one daemon's request loop.
pub struct Metrics {
    commands: Vec<CommandStats>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            commands: (0..256).map(|_| CommandStats::default()).collect(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// One request of command `code`, answered with `status` (0: success) after `elapsed`.
    pub fn observe(&self, code: u8, status: u8, elapsed: Duration) {
        let c = &self.commands[code as usize];
        c.count.fetch_add(1, Ordering::Relaxed);
        if status != 0 {
            c.errors.fetch_add(1, Ordering::Relaxed);
        }
        c.micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            c.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn add_bytes(&self, received: u64, sent: u64) {
        self.bytes_in.fetch_add(received, Ordering::Relaxed);
        self.bytes_out.fetch_add(sent, Ordering::Relaxed);
    }

    /// The request-loop families, prefixed `fdfs_<daemon>_`.
    pub fn render(&self, out: &mut Exposition, conns: Option<&ConnStats>) {
        let name = |code: u8| commands::name(code).map_or_else(|| code.to_string(), str::to_string);
        let seen: Vec<(u8, &CommandStats)> = self
            .commands
            .iter()
            .enumerate()
            .filter(|(_, c)| c.count.load(Ordering::Relaxed) > 0)
            .map(|(i, c)| (i as u8, c))
            .collect();
        let names: Vec<String> = seen.iter().map(|(code, _)| name(*code)).collect();
        type Counter = fn(&CommandStats) -> &AtomicU64;
        let counters: [(&str, &str, Counter); 2] = [
            ("requests_total", "Requests served, by command.", |c| {
                &c.count
            }),
            (
                "request_errors_total",
                "Requests answered with a non-zero status, by command.",
                |c| &c.errors,
            ),
        ];
        for (family, help, counter) in counters {
            let samples = seen.iter().zip(&names).map(|((_, c), command)| {
                let v = counter(c).load(Ordering::Relaxed);
                ([("command", command.as_str())], v as f64)
            });
            out.family_of(family, "counter", help, samples);
        }
        out.family(
            "request_duration_seconds",
            "histogram",
            "Time from a request's header to its answer, by command.",
        );
        for ((_, c), command) in seen.iter().zip(&names) {
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += c.buckets[i].load(Ordering::Relaxed);
                out.sample(
                    "request_duration_seconds_bucket",
                    &[("command", command), ("le", &b.to_string())],
                    cumulative as f64,
                );
            }
            let count = c.count.load(Ordering::Relaxed);
            out.sample(
                "request_duration_seconds_bucket",
                &[("command", command), ("le", "+Inf")],
                count as f64,
            );
            out.sample(
                "request_duration_seconds_sum",
                &[("command", command)],
                c.micros.load(Ordering::Relaxed) as f64 / 1e6,
            );
            out.sample(
                "request_duration_seconds_count",
                &[("command", command)],
                count as f64,
            );
        }
        let received = self.bytes_in.load(Ordering::Relaxed) as f64;
        let help = "Bytes received on the service port.";
        out.single("received_bytes_total", "counter", help, received);
        let sent = self.bytes_out.load(Ordering::Relaxed) as f64;
        let help = "Bytes sent on the service port.";
        out.single("sent_bytes_total", "counter", help, sent);
        if let Some(s) = conns {
            let cur = s.current.load(Ordering::Relaxed) as f64;
            let help = "Open connections on the service port.";
            out.single("connections", "gauge", help, cur);
            let acc = s.accepted.load(Ordering::Relaxed) as f64;
            let help = "Connections accepted on the service port.";
            out.single("connections_accepted_total", "counter", help, acc);
        }
    }
}

/// Text being built in the exposition format, every name prefixed `fdfs_<daemon>_`.
pub struct Exposition {
    prefix: String,
    pub text: String,
}

impl Exposition {
    pub fn new(daemon: &str) -> Exposition {
        Exposition {
            prefix: format!("fdfs_{daemon}_"),
            text: String::with_capacity(8192),
        }
    }

    /// `# HELP` and `# TYPE` of a family; its samples follow.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let p = &self.prefix;
        let _ = writeln!(self.text, "# HELP {p}{name} {help}");
        let _ = writeln!(self.text, "# TYPE {p}{name} {kind}");
    }

    /// A family and its samples, each a label set and a value.
    pub fn family_of<'a, L: AsRef<[(&'a str, &'a str)]>>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        samples: impl IntoIterator<Item = (L, f64)>,
    ) {
        self.family(name, kind, help);
        for (labels, value) in samples {
            self.sample(name, labels.as_ref(), value);
        }
    }

    /// A family of one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let _ = write!(self.text, "{}{name}", self.prefix);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Connection counters reported in the storage statistics block.
#[derive(Debug, Default)]
pub struct ConnStats {
    pub current: AtomicI32,
    pub max: AtomicI32,
    pub alloc: AtomicI32,
    /// connections accepted since start
    pub accepted: std::sync::atomic::AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::cmd;

    #[test]
    fn samples_escape_labels_and_histograms_accumulate() {
        let m = Metrics::default();
        m.observe(cmd::ACTIVE_TEST, 0, Duration::from_micros(50));
        m.observe(cmd::ACTIVE_TEST, 2, Duration::from_millis(3));
        let mut e = Exposition::new("storage");
        m.render(&mut e, None);
        let t = &e.text;
        assert!(t.contains("fdfs_storage_requests_total{command=\"ACTIVE_TEST\"} 2\n"));
        assert!(t.contains("fdfs_storage_request_errors_total{command=\"ACTIVE_TEST\"} 1\n"));
        assert!(t.contains(
            "fdfs_storage_request_duration_seconds_bucket{command=\"ACTIVE_TEST\",le=\"0.0001\"} 1\n"
        ));
        assert!(t.contains(
            "fdfs_storage_request_duration_seconds_bucket{command=\"ACTIVE_TEST\",le=\"+Inf\"} 2\n"
        ));
        let mut e = Exposition::new("x");
        e.sample("a", &[("p", "q\"\\\n")], 1.5);
        assert_eq!(e.text, "fdfs_x_a{p=\"q\\\"\\\\\\n\"} 1.5\n");
    }
}
