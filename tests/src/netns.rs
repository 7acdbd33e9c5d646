//! A second network for a test: a network namespace joined to this one by a veth pair, the
//! host side `10.<net>.1`, the namespace side `10.<net>.2` (a /24 of the test's own net numbers,
//! so tests side by side do not meet). A program run in it sees only that link and its own
//! loopback: the daemons' 127.x addresses are out of its reach, as a client's network is out of
//! reach of a storage's internal address. Dropping the value deletes both.

use std::process::{Command, Output};

pub struct SecondNetwork {
    pub name: String,
    /// this side's address on the link
    pub host_ip: String,
    /// the namespace's address on the link
    pub inner_ip: String,
    link: String,
}

fn ip(args: &[&str]) {
    let st = Command::new("ip")
        .args(args)
        .status()
        .expect("ip (iproute2)");
    assert!(st.success(), "ip {}", args.join(" "));
}

impl SecondNetwork {
    pub fn new(net: (u8, u8)) -> SecondNetwork {
        let name = format!("rfdfs-{}-{}", net.0, net.1);
        let link = format!("rv{}x{}", net.0, net.1);
        let peer = format!("{link}b");
        let n = SecondNetwork {
            host_ip: format!("10.{}.{}.1", net.0, net.1),
            inner_ip: format!("10.{}.{}.2", net.0, net.1),
            name,
            link,
        };
        ip(&["netns", "add", &n.name]);
        ip(&[
            "link", "add", &n.link, "type", "veth", "peer", "name", &peer,
        ]);
        ip(&["link", "set", &peer, "netns", &n.name]);
        ip(&["addr", "add", &format!("{}/24", n.host_ip), "dev", &n.link]);
        ip(&["link", "set", &n.link, "up"]);
        let inside = |args: &[&str]| {
            let mut v = vec!["netns", "exec", &n.name, "ip"];
            v.extend_from_slice(args);
            ip(&v);
        };
        inside(&["addr", "add", &format!("{}/24", n.inner_ip), "dev", &peer]);
        inside(&["link", "set", &peer, "up"]);
        inside(&["link", "set", "lo", "up"]);
        n
    }

    /// Run `program` with `args` inside the namespace.
    pub fn run(&self, program: &std::path::Path, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(program)
            .args(args)
            .output()
            .expect("ip netns exec")
    }
}

impl Drop for SecondNetwork {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.link])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
