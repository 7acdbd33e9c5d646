//! A real third-party client: the PyPI package py3fdfs drives our daemons (upload, download,
//! appender append/modify/truncate, slave upload, delete) and checks the bytes.
//! `scripts/test.sh` provides the virtualenv; without it this test fails, it never skips.

use rfdfs_tests::{Cluster, ClusterOpts};
use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> PathBuf {
    let p = std::env::var_os("RFDFS_PY3FDFS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/py3fdfs-venv/bin/python")
        });
    let ok = Command::new(&p)
        .args(["-c", "import fdfs_client.client"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "no Python with py3fdfs at {} (run scripts/test.sh, which creates it, or set RFDFS_PY3FDFS_PYTHON)",
        p.display()
    );
    p
}

#[test]
fn py3fdfs_client_works_against_our_daemons() {
    let py = python();
    let c = Cluster::start(ClusterOpts::default());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py3fdfs/check.py");
    let out = Command::new(py)
        .arg(script)
        .arg(&c.tracker_addr.host)
        .arg(c.tracker_addr.port.to_string())
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("py3fdfs: all checks passed"),
        "py3fdfs check failed:\n{stdout}\n{}\nstorage log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.storages[0].daemon.log()
    );
}
