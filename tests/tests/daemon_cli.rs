//! `fdfs_trackerd` / `fdfs_storaged` command lines: start (daemonize + pid file), status, stop,
//! restart, usage and version, config errors naming file, line and key.

use rfdfs_tests::{run_tool, storage_conf_text, tracker_conf_text, unique_net, wait_port, TempDir};
use std::path::Path;
use std::time::{Duration, Instant};

fn pid_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn read_pid(p: &Path) -> i32 {
    std::fs::read_to_string(p).unwrap().parse().unwrap()
}

#[test]
fn tracker_start_status_stop_restart() {
    let dir = TempDir::new("tcli");
    let net = unique_net();
    let ip = format!("127.{}.{}.2", net.0, net.1);
    let conf = dir.path().join("tracker.conf");
    std::fs::write(&conf, tracker_conf_text(&ip, 22122, dir.path(), "")).unwrap();
    let c = conf.to_str().unwrap();
    let pid_file = dir.path().join("data/fdfs_trackerd.pid");

    let (code, _, _) = run_tool("fdfs_trackerd", &[c, "start"]);
    assert_eq!(code, 0);
    // the launcher returns only once the daemon listens and its pid file exists
    let pid = read_pid(&pid_file);
    assert!(pid_alive(pid));
    wait_port(&ip, 22122, "tracker");
    assert!(!std::fs::read_to_string(&pid_file).unwrap().ends_with('\n'));
    assert_eq!(
        run_tool("fdfs_trackerd", &[c, "status"]),
        (0, format!("Running, pid: {pid}\n"), String::new())
    );
    let (code, _, err) = run_tool("fdfs_trackerd", &[c, "start"]);
    assert_eq!(code, 17, "{err}");
    assert!(err.contains("already running"));

    let (code, _, err) = run_tool("fdfs_trackerd", &[c, "restart"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("waiting for pid [{pid}] exit ...")));
    let pid2 = read_pid(&pid_file);
    assert_ne!(pid, pid2);
    assert!(!pid_alive(pid));

    let (code, _, err) = run_tool("fdfs_trackerd", &[c, "stop"]);
    assert_eq!(code, 0);
    assert!(err.contains(&format!("pid [{pid2}] exit.")));
    assert!(!pid_alive(pid2));
    assert!(!pid_file.exists(), "pid file removed at clean exit");
    assert_eq!(run_tool("fdfs_trackerd", &[c, "status"]).0, 2);
    assert_eq!(run_tool("fdfs_trackerd", &[c, "stop"]).0, 2);
    let log = std::fs::read_to_string(dir.path().join("logs/trackerd.log")).unwrap();
    assert!(log.contains("INFO - exit normally."));
    let line = log.lines().next().unwrap();
    assert!(
        line.starts_with('[') && line.as_bytes()[20] == b']' && line[22..].starts_with("INFO - "),
        "{line}"
    );
}

#[test]
fn usage_version_and_bad_arguments() {
    let (code, out, _) = run_tool("fdfs_trackerd", &["-V"]);
    assert_eq!((code, out.as_str()), (0, "\nfdfs_trackerd V6.16.1\n\n"));
    let (code, out, _) = run_tool("fdfs_storaged", &["--version"]);
    assert_eq!((code, out.as_str()), (0, "\nfdfs_storaged V6.16.1\n\n"));
    let (code, _, err) = run_tool("fdfs_trackerd", &[]);
    assert_eq!(code, 1);
    assert!(err.contains(
        "Usage: fdfs_trackerd [options] <config_file> [start | stop | restart | status]"
    ));
    assert_eq!(run_tool("fdfs_trackerd", &["-h"]).0, 0);
    let (code, _, err) = run_tool("fdfs_trackerd", &["/nonexistent.conf", "foo"]);
    assert_eq!(code, 22);
    assert!(err.contains("invalid action: foo"));
}

#[test]
fn config_errors_name_file_line_and_key() {
    let dir = TempDir::new("cfgerr");
    let conf = dir.path().join("tracker.conf");
    std::fs::write(
        &conf,
        format!(
            "base_path={}\nport=22122\nwork_threads=abc\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let (code, _, err) = run_tool("fdfs_trackerd", &["-N", conf.to_str().unwrap()]);
    assert_eq!(code, 22);
    assert!(
        err.contains(&format!(
            "\"{}\", line 3, item \"work_threads\"",
            conf.display()
        )),
        "{err}"
    );

    std::fs::write(
        &conf,
        format!(
            "base_path={}\nreserved_storage_space=150%\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let (code, _, err) = run_tool("fdfs_trackerd", &[conf.to_str().unwrap(), "start"]);
    assert_eq!(
        code, 22,
        "daemon mode reports the error through the launcher too"
    );
    assert!(
        err.contains("line 2, item \"reserved_storage_space\""),
        "{err}"
    );

    std::fs::write(&conf, "port=22122\n").unwrap();
    let (code, _, err) = run_tool("fdfs_trackerd", &["-N", conf.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("must have item \"base_path\""), "{err}");

    std::fs::write(
        &conf,
        format!("disabled=true\nbase_path={}\n", dir.path().display()),
    )
    .unwrap();
    assert_eq!(
        run_tool("fdfs_trackerd", &["-N", conf.to_str().unwrap()]).0,
        125
    );

    std::fs::write(
        &conf,
        format!(
            "base_path={}\n#include missing.conf\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let (code, _, err) = run_tool("fdfs_trackerd", &["-N", conf.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("include file \"missing.conf\" not exists"),
        "{err}"
    );

    let sconf = dir.path().join("storage.conf");
    let tracker = fdfs_common::config::HostPort::new("127.0.0.1", 22122);
    std::fs::write(
        &sconf,
        storage_conf_text(
            "127.0.0.9",
            23000,
            dir.path(),
            &[dir.path().to_path_buf()],
            4,
            &[tracker],
            "",
        ),
    )
    .unwrap();
    let (code, _, err) = run_tool("fdfs_storaged", &["-N", sconf.to_str().unwrap()]);
    assert_eq!(code, 22);
    assert!(
        err.contains("tracker server ip can't be loopback address"),
        "{err}"
    );
    assert!(err.contains("item \"tracker_server\""), "{err}");
}

#[test]
fn the_sample_configs_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("conf");
    let t = fdfs_common::config::TrackerConfig::load(&root.join("tracker.conf")).unwrap();
    assert_eq!((t.server.port, t.store_lookup), (22122, 2));
    let s = fdfs_common::config::StorageConfig::load(&root.join("storage.conf")).unwrap();
    assert_eq!(
        (
            s.server.port,
            s.group_name.as_str(),
            s.tracker_servers.len()
        ),
        (23000, "group1", 2)
    );
    let c = fdfs_common::config::ClientConfig::load(&root.join("client.conf"));
    // the sample client.conf points base_path at /opt/fastdfs, which need not exist here
    match c {
        Ok(c) => assert_eq!(c.tracker_servers.len(), 2),
        Err(e) => assert_eq!(e.key, "base_path"),
    }
}

/// The keys a `key_warnings` line is about, in order.
fn warned_keys(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l.split('"').nth(3).unwrap_or(l))
        .collect()
}

/// Upstream's sample configs (conf/ holds the same keys and values): one WARNING for each key
/// rfdfs accepts and ignores while it asks for something, none for the keys it honours.
#[test]
fn the_sample_configs_warn_once_per_ignored_key() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("conf");
    let t = fdfs_common::config::TrackerConfig::load(&root.join("tracker.conf")).unwrap();
    assert_eq!(warned_keys(&t.key_warnings), Vec::<&str>::new());
    let s = fdfs_common::config::StorageConfig::load(&root.join("storage.conf")).unwrap();
    assert_eq!(
        warned_keys(&s.key_warnings),
        [
            "disk_rw_separated",
            "disk_reader_threads",
            "disk_writer_threads",
            "sync_min_threads",
            "sync_max_threads",
            "disk_recovery_threads",
        ]
    );
    assert!(
        s.key_warnings[0].contains("storage.conf\", line "),
        "{}",
        s.key_warnings[0]
    );
    // client.conf with http.conf included
    let dir = TempDir::new("client-keys");
    let text = std::fs::read_to_string(root.join("client.conf"))
        .unwrap()
        .replace("/opt/fastdfs", dir.path().to_str().unwrap());
    std::fs::write(
        dir.path().join("client.conf"),
        text + "\n#include http.conf\n",
    )
    .unwrap();
    std::fs::copy(root.join("http.conf"), dir.path().join("http.conf")).unwrap();
    std::fs::copy(root.join("mime.types"), dir.path().join("mime.types")).unwrap();
    let c = fdfs_common::config::ClientConfig::load(&dir.path().join("client.conf")).unwrap();
    assert_eq!(c.key_warnings, Vec::<String>::new());
}

/// A running daemon says it in its log: an ignored key that asks for something, and a misspelt
/// key with its file, line and the key it was probably meant to be.
#[test]
fn daemons_log_ignored_and_misspelt_keys() {
    let c = rfdfs_tests::Cluster::start(rfdfs_tests::ClusterOpts {
        tracker_extra: "stor_lookup=2\n".into(),
        storage_extra: "check_file_duplicate=1\nsync_wait_mesc=50\n".into(),
        ..Default::default()
    });
    let storage_log = c.storages[0].daemon.log();
    assert!(
        storage_log.contains(
            "item \"check_file_duplicate\" is accepted but ignored: de-duplication needs FastDHT"
        ),
        "{storage_log}"
    );
    let misspelt = storage_log
        .lines()
        .find(|l| l.contains("unknown item \"sync_wait_mesc\""))
        .unwrap_or_else(|| panic!("{storage_log}"));
    assert!(misspelt.contains("WARNING"), "{misspelt}");
    assert!(misspelt.contains("storage.conf\", line "), "{misspelt}");
    assert!(
        misspelt.ends_with("did you mean \"sync_wait_msec\"?"),
        "{misspelt}"
    );
    let tracker_log = c.tracker.log();
    assert!(
        tracker_log
            .contains("unknown item \"stor_lookup\" is ignored, did you mean \"store_lookup\"?"),
        "{tracker_log}"
    );
}

#[test]
fn sigterm_stops_storage_cleanly() {
    let c = rfdfs_tests::Cluster::start(rfdfs_tests::ClusterOpts::default());
    let mut c = c;
    let t0 = Instant::now();
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert!(!c.storages[0].base.join("data/fdfs_storaged.pid").exists());
    let stat = std::fs::read_to_string(c.storages[0].base.join("data/storage_stat.dat")).unwrap();
    assert!(
        stat.starts_with("total_upload_count=") && stat.ends_with("dist_write_file_count=0\n"),
        "{stat}"
    );
    assert!(c.storages[0].daemon.log().contains("exit normally."));
}

/// Upstream's log_file_* keys: rotated files older than log_file_keep_days go, old ones are
/// gzipped, SIGHUP and log_file_rotate_on_size set the log aside (date_time suffix with size
/// rotation), and logging goes on in a fresh file.
#[test]
fn log_files_rotate_compress_and_expire() {
    let (a, b) = unique_net();
    let ip = format!("127.{a}.{b}.10");
    let dir = TempDir::new("logrotate");
    let base = dir.path().join("t");
    let logs = base.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let day = Duration::from_secs(86400);
    let aged = |name: &str, age: Duration| {
        let p = logs.join(name);
        std::fs::write(&p, b"old lines\n").unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(std::time::SystemTime::now() - age).unwrap();
        p
    };
    let expired = aged("trackerd.log.20200101", 30 * day);
    let to_compress = aged("trackerd.log.20990101_000000", 3 * day);
    let recent = aged("trackerd.log.20991231", Duration::ZERO);
    let conf = dir.path().join("tracker.conf");
    std::fs::write(
        &conf,
        tracker_conf_text(
            &ip,
            22122,
            &base,
            "log_file_rotate_on_size=2K\nlog_file_keep_days=15\nlog_file_compress_old=true\n\
             log_file_compress_days_before=1\n",
        ),
    )
    .unwrap();
    let mut d = rfdfs_tests::Daemon::start("fdfs_trackerd", &conf, &base);
    wait_port(&ip, 22122, "tracker");
    let gz = logs.join("trackerd.log.20990101_000000.gz");
    let deadline = Instant::now() + Duration::from_secs(20);
    while expired.exists() || !gz.exists() || to_compress.exists() {
        assert!(
            Instant::now() < deadline,
            "old logs not expired / compressed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(recent.exists(), "a recent rotated log was deleted");

    // set aside with a date_time stamp by the daemon (not the 2099 file made above)
    let rotated_now = || {
        std::fs::read_dir(&logs)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.strip_prefix("trackerd.log.").is_some_and(|stamp| {
                    stamp.len() == 15 && stamp.as_bytes()[8] == b'_' && !stamp.starts_with("2099")
                })
            })
            .count()
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.pid().unwrap() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    while rotated_now() < 1 {
        assert!(Instant::now() < deadline, "SIGHUP did not rotate the log");
        std::thread::sleep(Duration::from_millis(50));
    }
    // warnings until the new file passes 2 KiB and is set aside too
    let deadline = Instant::now() + Duration::from_secs(30);
    while rotated_now() < 2 {
        assert!(Instant::now() < deadline, "the log never rotated by size");
        let mut s = rfdfs_tests::raw::connect(&ip, 22122);
        let _ = std::io::Write::write_all(&mut s, &[0xFF; 10]);
        let _ = rfdfs_tests::raw::read_response(&mut s);
    }
    // the log is opened again right after it is set aside: wait out that instant
    while !logs.join("trackerd.log").exists() {
        assert!(
            Instant::now() < deadline,
            "no trackerd.log after the rotation"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(d.stop(), Some(0));
}

/// `log_to_stderr = true` (rfdfs's own key, for containers): with `-N` every log line goes to
/// standard error, from the first to the last, and nothing is written under `base_path/logs`.
#[test]
fn log_to_stderr_keeps_the_log_on_standard_error() {
    use std::process::{Command, Stdio};
    let dir = TempDir::new("stderrlog");
    let net = unique_net();
    let ip = format!("127.{}.{}.2", net.0, net.1);
    let conf = dir.path().join("tracker.conf");
    let text = tracker_conf_text(&ip, 22122, dir.path(), "log_to_stderr = true");
    std::fs::write(&conf, text).unwrap();
    let child = Command::new(rfdfs_tests::bin("fdfs_trackerd"))
        .args(["-N", conf.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_port(&ip, 22122, "tracker");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("INFO - rfdfs tracker v"), "{err}");
    assert!(err.contains("exit normally"), "{err}");
    assert!(
        !err.contains("log_to_stderr"),
        "the key was warned about:\n{err}"
    );
    assert!(
        !dir.path().join("logs").join("trackerd.log").exists(),
        "a log file was written"
    );
}
