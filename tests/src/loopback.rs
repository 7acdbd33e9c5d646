//! An address of the test's own on the loopback interface, for a dead address that must be
//! refused at once (nothing listens there) rather than routed off the machine: a 10/8 address
//! as the other half of a dual-address line, whose two addresses upstream wants of different
//! classes. Removed when the value is dropped.

/// An address on the loopback interface while the value lives.
pub struct LoopbackAddress(String);

impl LoopbackAddress {
    pub fn add(ip: &str) -> LoopbackAddress {
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
