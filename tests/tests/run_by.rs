//! `run_by_user` / `run_by_group`: the daemons bind (a privileged port too) and prepare their
//! files as root, hand what they made to the configured user, then run as that user only.
//! Needs root, as the daemons do for this setting.

use fdfs_client::Content;
use fdfs_common::proto::cmd;
use rfdfs_tests::{
    raw, run_tool, tracker_conf_text, unique_net, wait_port, Cluster, ClusterOpts, Daemon, TempDir,
};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const NOBODY: u32 = 65534;

/// `Uid`, `Gid` and `Groups` lines of a process.
fn ids_of(pid: u32) -> (String, String, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    (field("Uid:"), field("Gid:"), field("Groups:"))
}

fn assert_runs_as_nobody(pid: u32, what: &str) {
    let all = format!("{NOBODY} {NOBODY} {NOBODY} {NOBODY}");
    assert_eq!(
        ids_of(pid),
        (all.clone(), all, NOBODY.to_string()),
        "{what}: real, effective, saved and fs ids, and supplementary groups"
    );
}

fn owned_by_nobody(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.uid() == NOBODY && m.gid() == NOBODY)
}

#[test]
fn daemons_switch_to_run_by_user_after_binding() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test starts the daemons as root to see them switch users"
    );
    let run_by = "run_by_group=nogroup\nrun_by_user=nobody";
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        tracker_extra: run_by.into(),
        storage_extra: run_by.into(),
        ..Default::default()
    });
    c.wait_active(2);
    assert_runs_as_nobody(c.tracker.pid().unwrap(), "tracker");
    for s in &c.storages {
        assert_runs_as_nobody(s.daemon.pid().unwrap(), "storage");
    }
    // what they write as nobody: uploads, replicas, binlogs, marks, logs
    let client = c.client();
    let mut ids = Vec::new();
    for k in 0..10u8 {
        let data = vec![k; 1000 + k as usize];
        let id = client
            .upload(
                Content::Buffer(&data),
                "bin",
                if k % 2 == 0 {
                    fdfs_client::Upload::Appender
                } else {
                    fdfs_client::Upload::File
                },
                None,
                None,
            )
            .unwrap();
        ids.push((id, data));
    }
    client
        .append(&ids[0].0, Content::Buffer(b"more"))
        .expect("append as nobody");
    ids[0].1.extend_from_slice(b"more");
    for (id, data) in &ids {
        for i in 0..2 {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                let mut got = Vec::new();
                let r = client.download_from(&c.storage_addr(i), id, 0, 0, || Ok(&mut got));
                if r.is_ok() && got == *data {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{id:?} on storage {i}"
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
    for s in &c.storages {
        let store = &s.store_paths[0];
        assert!(owned_by_nobody(&store.join("data/00/00")));
        assert!(owned_by_nobody(&s.base.join("data/sync/binlog.000")));
        assert!(owned_by_nobody(&s.base.join("logs/storaged.log")));
    }
    // the tracker writes its data files shortly after a change, not while answering it
    let servers = c.tracker.base.join("data/storage_servers_new.dat");
    rfdfs_tests::wait_for(
        "the tracker's servers file",
        || servers.exists().then_some(()),
        || c.tracker.log(),
    );
    assert!(owned_by_nobody(&servers));
    // a restart finds everything still its own
    c.restart_storage(0);
    c.wait_active(2);
    assert_runs_as_nobody(c.storages[0].daemon.pid().unwrap(), "restarted storage");
    let data = b"after the restart".to_vec();
    let id = rfdfs_tests::upload(&client, &data, "txt");
    assert_eq!(rfdfs_tests::read_back(&client, &id), data);
}

/// A lone tracker's config on a fresh address: (its dir, conf file, base path, ip).
fn lone_tracker(tag: &str, port: u16, extra: &str) -> (TempDir, PathBuf, PathBuf, String) {
    let net = unique_net();
    let ip = format!("127.{}.{}.2", net.0, net.1);
    let dir = TempDir::new(tag);
    let base = dir.path().join("tracker");
    std::fs::create_dir_all(&base).unwrap();
    let conf = dir.path().join("tracker.conf");
    std::fs::write(&conf, tracker_conf_text(&ip, port, &base, extra)).unwrap();
    (dir, conf, base, ip)
}

#[test]
fn a_privileged_port_is_bound_before_the_switch() {
    let (_dir, conf, base, ip) = lone_tracker(
        "run-by-port",
        122,
        "run_by_group=nogroup\nrun_by_user=nobody",
    );
    let d = Daemon::start("fdfs_trackerd", &conf, &base);
    wait_port(&ip, 122, "tracker on port 122");
    // an answer comes only once the daemon serves, which it does after the switch
    let mut s = raw::connect(&ip, 122);
    assert_eq!(
        raw::exchange(&mut s, &raw::frame(cmd::ACTIVE_TEST, 0, &[])),
        Some((0, Vec::new()))
    );
    assert_runs_as_nobody(d.pid().unwrap(), "tracker on port 122");
}

#[test]
fn an_unknown_run_by_user_is_refused_before_binding() {
    let (_dir, conf, base, ip) =
        lone_tracker("run-by-unknown", 22122, "run_by_user=no-such-user-rfdfs");
    let (code, out, err) = run_tool("fdfs_trackerd", &[conf.to_str().unwrap(), "-N"]);
    assert_ne!(code, 0, "{out}{err}");
    let text = format!(
        "{out}{err}{}",
        std::fs::read_to_string(base.join("logs/trackerd.log")).unwrap_or_default()
    );
    assert!(
        text.contains("run_by_user") && text.contains("no-such-user-rfdfs"),
        "{text}"
    );
    assert!(std::net::TcpStream::connect((ip.as_str(), 22122)).is_err());
}
