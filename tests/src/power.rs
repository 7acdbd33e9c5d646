//! Power cuts for the power-loss tests: a daemon's directory mounted through `rfdfs-cutfs`
//! (tests/cutfs), which loses every write not fsynced when its power is cut.
//!
//! A cut, for a set of daemons, goes: every file system cut (no operation is served from then
//! on, each file put back as its last fsync left it), the daemons sent SIGKILL, the file systems
//! ended (which fails the requests the daemons were blocked in, so they die), the daemons
//! reaped. Then `power_on` mounts each directory again and the daemons can be started.

use crate::bin;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

/// A directory whose writes are lost unless fsynced, when its power is cut.
pub struct PowerFs {
    pub dir: PathBuf,
    backing: PathBuf,
    expire: Option<Duration>,
    child: Option<(Child, ChildStdin, BufReader<ChildStdout>)>,
}

/// What one cut dropped on one file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct Dropped {
    pub files: u64,
    pub pages: u64,
}

impl PowerFs {
    /// Put `dir`'s contents behind a cutfs mounted at `dir` (stop the daemons using it first).
    /// `expire`: write back files dirty for that long, as the kernel does; `None`: nothing
    /// unsynced survives a cut.
    pub fn over(dir: &Path, expire: Option<Duration>) -> PowerFs {
        let backing = dir.with_extension("disk");
        std::fs::rename(dir, &backing).expect("move the directory behind the mount");
        std::fs::create_dir(dir).expect("mount point");
        let mut p = PowerFs {
            dir: dir.to_path_buf(),
            backing,
            expire,
            child: None,
        };
        p.mount();
        p
    }

    fn mount(&mut self) {
        let mut cmd = Command::new(bin("rfdfs-cutfs"));
        cmd.arg(&self.backing).arg(&self.dir);
        if let Some(e) = self.expire {
            cmd.arg("--expire").arg(e.as_secs_f64().to_string());
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start rfdfs-cutfs (cargo build --workspace --bins)");
        let stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let _ = out.read_line(&mut line);
        assert_eq!(
            line.trim(),
            "mounted",
            "rfdfs-cutfs did not mount {} (these tests need root and /dev/fuse)",
            self.dir.display()
        );
        self.child = Some((child, stdin, out));
    }

    /// The power goes: nothing more reaches the disk; unsynced writes are dropped.
    pub fn cut(&mut self) -> Dropped {
        let (_, stdin, out) = self.child.as_mut().expect("mounted");
        writeln!(stdin, "cut").expect("tell rfdfs-cutfs");
        let mut line = String::new();
        out.read_line(&mut line).expect("rfdfs-cutfs answers");
        let num = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("rfdfs-cutfs answered {line:?}"))
        };
        Dropped {
            files: num("files="),
            pages: num("pages="),
        }
    }

    /// End the file system process (after a cut: once the daemons using it were sent SIGKILL).
    pub fn end(&mut self) {
        if let Some((mut child, mut stdin, _)) = self.child.take() {
            let _ = writeln!(stdin, "exit");
            drop(stdin);
            let _ = child.wait();
        }
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .stderr(Stdio::null())
            .status();
    }

    /// The power is back: the directory mounted again over what its disk kept.
    pub fn power_on(&mut self) {
        self.end();
        self.mount();
    }
}

impl Drop for PowerFs {
    fn drop(&mut self) {
        self.end();
    }
}

/// Cut the power of `fs` and of the daemons (`pids`) using them, as one event; returns what
/// each file system dropped. The daemons are dead when this returns; reap them with `wait`.
pub fn cut(fs: &mut [&mut PowerFs], pids: &[u32]) -> Vec<Dropped> {
    let dropped: Vec<Dropped> = fs.iter_mut().map(|f| f.cut()).collect();
    for &pid in pids {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    for f in fs.iter_mut() {
        f.end();
    }
    dropped
}
