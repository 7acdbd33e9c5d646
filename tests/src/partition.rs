//! Network partitions between the test's own loopback addresses, made with nftables: every
//! packet between an address of one side and an address of the other is dropped (as on a link
//! taken down: connections hang, then time out), or, with `Link::Lossy`, a share of them
//! (TCP resends what is lost, as on a bad link), or refused (`Link::Refused`: a reset, as a
//! firewall or a crashed peer answers). Each partition is a table of its own, deleted when the
//! value is dropped (the heal). Only the test's addresses are touched: nothing else on the
//! machine sees a rule.
//!
//! Why not network namespaces and veth pairs: the daemons of every test already live on
//! loopback addresses of their own (`unique_net`); a rule between two of them cuts exactly the
//! link between those two processes, both ways, with no daemon moved into another namespace,
//! and loss comes from the kernel's own packet drops (this machine has no `tc netem`).

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// What happens to the packets between the two sides.
#[derive(Clone, Copy, Debug)]
pub enum Link {
    /// every packet dropped
    Down,
    /// this percentage of packets dropped
    Lossy(u8),
    /// connections refused or reset
    Refused,
}

pub struct Partition {
    table: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

pub(crate) fn nft(script: &str) {
    use std::io::Write;
    let mut child = Command::new("nft")
        .arg("-f")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("nft (Debian's nftables; scripts/test.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "nft refused:\n{script}");
}

impl Partition {
    /// Cut the links between every address of `a` and every address of `b`.
    pub fn new(a: &[&str], b: &[&str], link: Link) -> Partition {
        let table = format!(
            "rfdfs_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let set = |v: &[&str]| v.join(", ");
        let verdict = match link {
            Link::Down => "drop".to_string(),
            Link::Lossy(p) => format!("numgen random mod 100 < {p} drop"),
            Link::Refused => "reject with tcp reset".to_string(),
        };
        let (sa, sb) = (set(a), set(b));
        let script = format!(
            "table ip {table} {{\n  chain out {{\n    type filter hook output priority 0; policy accept;\n    \
             ip saddr {{ {sa} }} ip daddr {{ {sb} }} meta l4proto tcp {verdict}\n    \
             ip saddr {{ {sb} }} ip daddr {{ {sa} }} meta l4proto tcp {verdict}\n  }}\n}}\n"
        );
        nft(&script);
        Partition { table }
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &self.table])
            .status();
    }
}
