//! Addresses that move (issue 31): dual-address `tracker_server` lines, and more to come.

use rfdfs_tests::{run_tool, Cluster, ClusterOpts};
use std::time::Duration;

/// A `tracker_server` line with two addresses of one tracker, `inner,outer:port` (upstream
/// 6.00's form; upstream refuses two addresses of the same class): the tools and the storage
/// reach the tracker through the second address when the first does not answer, and the
/// tracker finds itself in the storages' list by its second address. The dead first address is
/// a 10/8 address put on the loopback interface for the test (nothing listens there: refused
/// at once, and no packet leaves the machine).
#[test]
fn a_tracker_reached_through_the_second_address_of_its_line() {
    let mut c = Cluster::start(ClusterOpts::default());
    let live = c.tracker_addr.clone();
    let dead = format!("10.{}.{}.250", c.net.0, c.net.1);
    let _lo = LoopbackAddress::add(&dead);
    let dual = format!("tracker_server={dead},{}:{}", live.host, live.port);

    // the storage: its only tracker line is the dual one
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    let conf = c.storages[0].daemon.conf.clone();
    let text = std::fs::read_to_string(&conf)
        .unwrap()
        .replace(&format!("tracker_server={live}"), &dual);
    assert!(text.contains(&dual), "{text}");
    std::fs::write(&conf, text).unwrap();
    c.start_storage(0);
    c.wait_active_for(1, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", c.storages[0].daemon.log()));

    // a client.conf with only the dual line: upload, download, info
    let client_conf = c.dir.path().join("client-dual.conf");
    std::fs::write(
        &client_conf,
        format!("connect_timeout=2\nnetwork_timeout=30\n{dual}\n"),
    )
    .unwrap();
    let conf = client_conf.to_str().unwrap();
    let local = c.dir.path().join("dual.txt");
    std::fs::write(&local, b"through the second address").unwrap();
    let (code, id, err) = run_tool("fdfs_upload_file", &[conf, local.to_str().unwrap()]);
    assert_eq!(code, 0, "{id}{err}");
    let id = id.trim().to_string();
    let back = c.dir.path().join("back.txt");
    let (code, out, err) = run_tool("fdfs_download_file", &[conf, &id, back.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read(&back).unwrap(), b"through the second address");
    // the tracker kept the storages' dual entry and knows itself by its second address
    // fdfs_monitor names the address it reached, as upstream's does
    let (code, out, _) = run_tool("fdfs_monitor", &[conf]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("tracker server is {live}\n")),
        "{out}"
    );
    assert!(out.contains("ACTIVE"), "{out}");
}

/// An address on the loopback interface while the value lives.
struct LoopbackAddress(String);

impl LoopbackAddress {
    fn add(ip: &str) -> LoopbackAddress {
        let st = std::process::Command::new("ip")
            .args(["addr", "add", &format!("{ip}/32"), "dev", "lo"])
            .status()
            .expect("ip (iproute2)");
        assert!(st.success(), "ip addr add {ip} dev lo");
        LoopbackAddress(ip.to_string())
    }
}

impl Drop for LoopbackAddress {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["addr", "del", &format!("{}/32", self.0), "dev", "lo"])
            .status();
    }
}
