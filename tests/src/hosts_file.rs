//! Host names for the address tests: a line of `/etc/hosts` that a test adds, points elsewhere
//! and removes, as a pod's DNS name moves when the pod comes back. The file is edited in place
//! (it may be a bind mount) under one lock, so tests of one binary can run side by side.

use std::sync::Mutex;

static EDIT: Mutex<()> = Mutex::new(());

const HOSTS: &str = "/etc/hosts";

/// A name in `/etc/hosts` while the value lives.
pub struct HostName {
    pub name: String,
}

impl HostName {
    /// Add `name` pointing at `ip` (`name` should be unique to the test: its net numbers).
    pub fn add(name: &str, ip: &str) -> HostName {
        let h = HostName {
            name: name.to_string(),
        };
        h.point_at(ip);
        h
    }

    /// Point the name at `ip` from now on.
    pub fn point_at(&self, ip: &str) {
        edit(|lines| {
            lines.retain(|l| !self.is_mine(l));
            lines.push(format!("{ip} {}", self.name));
        });
    }

    fn is_mine(&self, line: &str) -> bool {
        line.split_whitespace().nth(1) == Some(self.name.as_str())
    }
}

impl Drop for HostName {
    fn drop(&mut self) {
        edit(|lines| lines.retain(|l| !self.is_mine(l)));
    }
}

fn edit(change: impl FnOnce(&mut Vec<String>)) {
    let _one_at_a_time = EDIT.lock().unwrap_or_else(|e| e.into_inner());
    let text = std::fs::read_to_string(HOSTS).expect("read /etc/hosts");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    change(&mut lines);
    let mut out = lines.join("\n");
    out.push('\n');
    std::fs::write(HOSTS, out).expect("write /etc/hosts (the tests run as root)");
}
