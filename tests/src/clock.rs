//! A daemon whose wall clock is off, as a wrong NTP server, a restored VM or a hand-set clock
//! leaves it: libfaketime (`LD_PRELOAD`, Debian's `faketime`) offsets CLOCK_REALTIME of that
//! process only, read from a file the test can rewrite (a jump). A time namespace would be
//! cleaner, but it shifts only the monotonic and boot clocks, and what rfdfs compares between
//! machines (binlog lines, tombstones, reconcile) is stamped with the wall clock. The
//! monotonic clock is left alone, as NTP leaves it.

use std::path::{Path, PathBuf};

/// Where Debian's faketime package puts the multi-threaded library.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

pub struct SkewedClock {
    file: PathBuf,
}

impl SkewedClock {
    /// A clock `offset` seconds off (negative: behind), kept in `dir`.
    pub fn new(dir: &Path, offset: i64) -> SkewedClock {
        assert!(
            Path::new(LIBFAKETIME).exists(),
            "{LIBFAKETIME} is missing: install Debian's faketime (scripts/test.sh does)"
        );
        let c = SkewedClock {
            file: dir.join("faketime-offset"),
        };
        c.set(offset);
        c
    }

    /// Set the offset now: the daemons read it again within a second (a jump).
    pub fn set(&self, offset: i64) {
        std::fs::write(&self.file, format!("{offset:+}\n")).expect("write the clock offset");
    }

    /// The environment that puts a daemon on this clock.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("LD_PRELOAD", LIBFAKETIME.to_string()),
            ("FAKETIME_TIMESTAMP_FILE", self.file.display().to_string()),
            ("FAKETIME_CACHE_DURATION", "1".to_string()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}
