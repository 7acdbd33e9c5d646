//! rfdfs-cutfs: a directory mounted through FUSE that loses, when its "power" is cut, every
//! write not yet fsynced (what LazyFS does), so that the power-loss tests can cut the power
//! under running daemons on a machine with no device-mapper.
//!
//! ```text
//! rfdfs-cutfs BACKING_DIR MOUNT_POINT [--expire SECONDS]
//! ```
//!
//! With `--expire`, a file's unsynced changes are kept (written back) once it has been dirty
//! that long, checked every second: Linux's writeback (`dirty_expire_centisecs`, 30 s by
//! default). Without it nothing unsynced survives a cut however old (LazyFS's rule, the worst
//! case a disk cache allows).
//!
//! Mounts, prints `mounted`, then takes one command per line on stdin:
//!
//! | command | what it does | answer |
//! |---|---|---|
//! | `cut` | the power goes: no operation is served from now on; every file is put back as its last fsync left it | `cut files=N pages=M` |
//! | `exit` (or end of input) | unmount (lazily) and exit; requests still parked fail | — |
//!
//! After a cut, kill the processes that used the mount before sending `exit`: their parked
//! requests end only when this process does. Without a cut, `exit` keeps every write (a clean
//! shutdown). The rules of what is lost are in `passthrough.rs`; why FUSE is in
//! docs/decisions/power-cut-harness.md.

#![forbid(unsafe_code)]

mod passthrough;
mod unsynced;

use std::io::BufRead;
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let expire = match args.get(3).map(String::as_str) {
        None if args.len() == 3 => None,
        Some("--expire") if args.len() == 5 => match args[4].parse::<f64>() {
            Ok(s) if s >= 0.0 => Some(std::time::Duration::from_secs_f64(s)),
            _ => None,
        },
        _ => {
            eprintln!("usage: rfdfs-cutfs BACKING_DIR MOUNT_POINT [--expire SECONDS]");
            std::process::exit(2);
        }
    };
    let (backing, mount_point) = (PathBuf::from(&args[1]), PathBuf::from(&args[2]));
    // every unsynced file keeps a handle until the cut: thousands, in page-cache mode
    let _ = nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_NOFILE,
        1 << 20,
        1 << 20,
    );
    let fs = match passthrough::CutFs::new(&backing) {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("rfdfs-cutfs: {}: {e}", backing.display());
            std::process::exit(1);
        }
    };
    let mut config = fuser::Config::default();
    config.mount_options = vec![fuser::MountOption::FSName("rfdfs-cutfs".into())];
    config.n_threads = Some(2);
    let power = fs.cutter();
    let session = match fuser::spawn_mount(fs, &mount_point, &config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rfdfs-cutfs: mounting {}: {e}", mount_point.display());
            std::process::exit(1);
        }
    };
    if let Some(expire) = expire {
        let flusher = power.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            flusher.write_back(expire);
        });
    }
    println!("mounted");
    let mut cut = false;
    for line in std::io::stdin().lock().lines() {
        match line.as_deref().map(str::trim) {
            Ok("cut") if !cut => {
                let d = power.cut();
                cut = true;
                println!("cut files={} pages={}", d.files, d.pages);
            }
            Ok("exit") | Err(_) => break,
            Ok(other) => eprintln!("rfdfs-cutfs: unknown command {other:?}"),
        }
    }
    let _ = nix::mount::umount2(&mount_point, nix::mount::MntFlags::MNT_DETACH);
    if cut {
        // parked threads never return: end the process, which fails their requests
        std::process::exit(0);
    }
    drop(session);
}
