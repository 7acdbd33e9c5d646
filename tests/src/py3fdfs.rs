//! The PyPI client py3fdfs, a real third-party client the tests drive: the virtualenv
//! `scripts/test.sh` provides, and `tests/py3fdfs/check.py`, which uploads, downloads, appends,
//! modifies, truncates, uploads a slave and deletes, checking the bytes. Without the
//! virtualenv a test fails; it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python that has py3fdfs (`RFDFS_PY3FDFS_PYTHON`, else `target/py3fdfs-venv`).
pub fn python() -> PathBuf {
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

/// Run check.py against the tracker at `host:port`: whether every check passed, and its
/// output.
pub fn check(host: &str, port: u16) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py3fdfs/check.py");
    let out = Command::new(python())
        .arg(script)
        .arg(host)
        .arg(port.to_string())
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.success() && stdout.contains("py3fdfs: all checks passed"),
        format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)),
    )
}

/// Upload `n` small files (`<what> <k>`, extension txt) through py3fdfs to the tracker at
/// `host:port`: their file IDs, in order.
pub fn upload_many(host: &str, port: u16, n: usize, what: &str) -> Vec<String> {
    const SCRIPT: &str = r#"
import sys
from fdfs_client.client import Fdfs_client
ip, port, n, what = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
c = Fdfs_client({"host_tuple": (ip,), "port": port, "timeout": 30, "name": "Tracker Pool"})
for k in range(n):
    r = c.upload_by_buffer(("%s %d" % (what, k)).encode(), file_ext_name="txt")
    print(r["Remote file_id"].decode())
"#;
    let out = Command::new(python())
        .args(["-c", SCRIPT, host, &port.to_string(), &n.to_string(), what])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "py3fdfs uploads failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(ids.len(), n, "py3fdfs printed {ids:?}");
    ids
}
