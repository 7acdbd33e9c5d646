//! A real third-party client: the PyPI package py3fdfs drives our daemons (upload, download,
//! appender append/modify/truncate, slave upload, delete) and checks the bytes.
//! `scripts/test.sh` provides the virtualenv; without it this test fails, it never skips.

use rfdfs_tests::{py3fdfs, Cluster, ClusterOpts};

#[test]
fn py3fdfs_client_works_against_our_daemons() {
    let c = Cluster::start(ClusterOpts::default());
    let (ok, out) = py3fdfs::check(&c.tracker_addr.host, c.tracker_addr.port);
    assert!(
        ok,
        "py3fdfs check failed:\n{out}\nstorage log:\n{}",
        c.storages[0].daemon.log()
    );
}
