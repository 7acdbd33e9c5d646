//! A progress line for the file tools when a person is watching: drawn on stderr only while
//! both stdout and stderr are terminals and the file is large enough to wait for, and erased
//! when done, so what scripts read from the tools stays upstream's output byte for byte.

use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, Instant};

/// Files smaller than this finish before a line would be worth drawing.
const MIN_SIZE: u64 = 4 << 20;
const REDRAW: Duration = Duration::from_millis(100);

/// How far a transfer is: `(bytes done, bytes in all)`.
pub type Report = Box<dyn FnMut(u64, u64) + Send>;

/// A reporter drawing `label` and the transfer's progress, when stdout and stderr are
/// terminals.
pub fn on_terminal(label: &str) -> Option<Report> {
    if !(std::io::stdout().is_terminal() && std::io::stderr().is_terminal()) {
        return None;
    }
    let label = label.to_string();
    let started = Instant::now();
    let mut last: Option<Instant> = None;
    Some(Box::new(move |done: u64, total: u64| {
        if total < MIN_SIZE {
            return;
        }
        let mut err = std::io::stderr().lock();
        if done >= total {
            if last.is_some() {
                let _ = write!(err, "\r\x1b[K");
                let _ = err.flush();
            }
            return;
        }
        if last.is_some_and(|t| t.elapsed() < REDRAW) {
            return;
        }
        last = Some(Instant::now());
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let mib = |b: u64| b as f64 / 1048576.0;
        let _ = write!(
            err,
            "\r\x1b[K{label}: {:.1} / {:.1} MiB ({}%), {:.1} MiB/s",
            mib(done),
            mib(total),
            done * 100 / total,
            mib(done) / secs
        );
        let _ = err.flush();
    }))
}

/// `io::copy`, telling `report` (when there is one) how many of `total` bytes are through.
pub fn copy<R: Read, W: Write>(
    from: &mut R,
    to: &mut W,
    total: u64,
    report: Option<&mut Report>,
) -> std::io::Result<u64> {
    match report {
        None => std::io::copy(from, to),
        Some(report) => std::io::copy(
            from,
            &mut Counted {
                inner: to,
                done: 0,
                total,
                report,
            },
        ),
    }
}

/// A writer that reports the bytes through it.
struct Counted<'a, W> {
    inner: W,
    done: u64,
    total: u64,
    report: &'a mut Report,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.done += n as u64;
        (self.report)(self.done, self.total);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
