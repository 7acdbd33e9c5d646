//! Trunk servers (issue 15): with `use_trunk_file`, the tracker leader elects one storage of
//! each group as its trunk server, tells the members, logs the change, and moves the role when
//! its holder goes away.

use rfdfs_tests::{Cluster, ClusterOpts};
use std::time::{Duration, Instant};

/// The id of group1's trunk server as the tracker lists it, once there is one.
fn trunk_server(c: &Cluster) -> Option<String> {
    c.client()
        .list_storages("group1", None)
        .ok()?
        .into_iter()
        .find(|s| s.if_trunk_server != 0)
        .map(|s| s.id)
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>, log: impl Fn() -> String) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}:\n{}", log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn trunk_server_elected_announced_and_moved() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        tracker_extra: "use_trunk_file=true\ncheck_active_interval=2\n".into(),
        ..Default::default()
    });
    c.wait_active(2);
    let tracker_log = || c.tracker.log();
    let first = wait_for("no trunk server elected", || trunk_server(&c), tracker_log);
    let change_log = c.tracker.base.join("logs/trunk_server_change.log");
    let holder = c
        .storages
        .iter()
        .position(|s| s.ip == first)
        .expect("the trunk server is one of the group");
    let addrs: Vec<String> = c
        .storages
        .iter()
        .map(|s| format!("{}:{}", s.ip, s.port))
        .collect();
    let addr = |i: usize| addrs[i].clone();
    let text = std::fs::read_to_string(&change_log).unwrap();
    assert!(
        text.ends_with(&format!(" group1  -  =>  {}\n", addr(holder))),
        "{text}"
    );
    // every member hears it from its change list
    for s in &c.storages {
        let line = format!("trunk server: {} ({first})", addr(holder));
        wait_for(
            "a member was not told the trunk server",
            || s.daemon.log().contains(&line).then_some(()),
            || s.daemon.log(),
        );
    }
    // the holder goes away: the role moves to the other member, logged with both
    let other = 1 - holder;
    c.storages[holder].daemon.kill9();
    let second = wait_for(
        "the trunk server role did not move",
        || trunk_server(&c).filter(|id| *id != first),
        || c.tracker.log(),
    );
    assert_eq!(second, c.storages[other].ip);
    let text = std::fs::read_to_string(&change_log).unwrap();
    assert!(
        text.ends_with(&format!(" group1  {}  =>  {}\n", addr(holder), addr(other))),
        "{text}"
    );
    // asked again by hand: the live holder is the answer
    let (code, out, err) = c.tool("fdfs_monitor", &["set_trunk_server", "group1"]);
    assert_eq!(code, 0, "{out}{err}");
}
