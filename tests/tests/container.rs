//! What the container files (`scripts/container/`) rely on, without a container runtime (this
//! machine and CI have none): the entrypoint's config from the environment, read back by the
//! daemons' own parser, and a tracker and a storage run by the entrypoint from the environment
//! alone, on data directories that do not exist yet, logging to standard error, healthy by
//! `rfdfs-entrypoint health`, stopped by SIGTERM with exit code 0.

use fdfs_common::config::{IniFile, StorageConfig};
use rfdfs_tests::{run_tool, unique_net, wait_for, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn entrypoint() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/container/entrypoint.sh")
}

/// The entrypoint with only `env` (and PATH) in its environment.
fn entrypoint_cmd(args: &[&str], env: &[(&str, String)]) -> Command {
    let mut c = Command::new("bash");
    c.arg(entrypoint())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    c
}

#[test]
fn the_environment_makes_a_config_the_daemons_read() {
    let env = [
        ("FDFS_GROUP_NAME", "group7".to_string()),
        (
            "FDFS_TRACKER_SERVER",
            "127.0.0.5:22122; 127.0.0.6:22122".to_string(),
        ),
        ("FDFS_HTTP__SERVER_PORT", "8888".to_string()),
        (
            "FDFS_ADVERTISE_ADDRESS",
            "10.0.0.0/8 => 10.1.2.3 ;203.0.113.7:24000".to_string(),
        ),
        ("FDFS_STORE_PATH0", "/data/0".to_string()),
        ("NOT_FDFS", "ignored".to_string()),
    ];
    let out = entrypoint_cmd(&["config", "storage"], &env)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "advertise_address = 10.0.0.0/8 => 10.1.2.3\n",
        "advertise_address = 203.0.113.7:24000\n",
        "http.server_port = 8888\n",
        "tracker_server = 127.0.0.5:22122\n",
        "tracker_server = 127.0.0.6:22122\n",
        "log_to_stderr = true\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
    assert!(!text.contains("ignored"), "{text}");
    // the storage's own parser: the later lines win over the container's defaults
    let cfg = StorageConfig::from_ini(&IniFile::parse_str("storage.conf", &text).unwrap())
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(cfg.group_name, "group7");
    assert_eq!(cfg.store_paths[0].to_str(), Some("/data/0"));
    assert_eq!(cfg.tracker_servers.len(), 2);
    assert_eq!(cfg.advertise.len(), 2);
    assert!(cfg.server.log_to_stderr);

    // a storage without a tracker is refused, saying which variable to set
    let dir = TempDir::new("entrypoint");
    let out = entrypoint_cmd(
        &["storage"],
        &[
            (
                "RFDFS_CONF_DIR",
                dir.path().join("none").display().to_string(),
            ),
            (
                "RFDFS_RUN_DIR",
                dir.path().join("run").display().to_string(),
            ),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FDFS_TRACKER_SERVER"));
}

#[test]
fn a_tracker_and_a_storage_run_from_the_environment_alone() {
    let dir = TempDir::new("container");
    let net = unique_net();
    let (tip, sip) = (
        format!("127.{}.{}.2", net.0, net.1),
        format!("127.{}.{}.10", net.0, net.1),
    );
    let bin_dir = rfdfs_tests::bin("fdfs_trackerd")
        .parent()
        .unwrap()
        .display()
        .to_string();
    // every directory below is missing: the entrypoint and the daemons make them
    let role_env = |role: &str, ip: &str| -> Vec<(&'static str, String)> {
        vec![
            ("RFDFS_BIN_DIR", bin_dir.clone()),
            (
                "RFDFS_CONF_DIR",
                dir.path().join("no-conf").display().to_string(),
            ),
            (
                "RFDFS_RUN_DIR",
                dir.path().join(format!("run-{role}")).display().to_string(),
            ),
            (
                "FDFS_BASE_PATH",
                dir.path()
                    .join(format!("{role}/base"))
                    .display()
                    .to_string(),
            ),
            ("FDFS_BIND_ADDR", ip.to_string()),
            ("FDFS_HEART_BEAT_INTERVAL", "1".to_string()),
        ]
    };
    let spawn = |role: &str, env: Vec<(&'static str, String)>| -> Child {
        entrypoint_cmd(&[role], &env)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join(format!("{role}.stderr"))).unwrap())
            .spawn()
            .unwrap()
    };
    let mut tracker = spawn("tracker", role_env("tracker", &tip));
    let mut storage_env = role_env("storage", &sip);
    storage_env.push(("FDFS_TRACKER_SERVER", format!("{tip}:22122")));
    // upstream's 256 makes 65,536 directories at the first start: seconds the test need not spend
    storage_env.push(("FDFS_SUBDIR_COUNT_PER_PATH", "4".to_string()));
    storage_env.push((
        "FDFS_STORE_PATH0",
        dir.path().join("storage/store").display().to_string(),
    ));
    let mut storage = spawn("storage", storage_env.clone());

    // healthy: the probe a container runtime would run
    let stderr_of = |role: &str| {
        std::fs::read_to_string(dir.path().join(format!("{role}.stderr"))).unwrap_or_default()
    };
    for (role, env) in [
        ("tracker", role_env("tracker", &tip)),
        ("storage", storage_env),
    ] {
        wait_for(
            &format!("{role} healthy"),
            || {
                entrypoint_cmd(&["health"], &env)
                    .status()
                    .unwrap()
                    .success()
                    .then_some(())
            },
            || stderr_of(role),
        );
    }

    let client_conf = dir.path().join("client.conf");
    std::fs::write(&client_conf, format!("tracker_server={tip}:22122\n")).unwrap();
    let conf = client_conf.to_str().unwrap();
    let local = dir.path().join("c.txt");
    std::fs::write(&local, "from a container's entrypoint").unwrap();
    let (code, id, err) = run_tool("fdfs_upload_file", &[conf, local.to_str().unwrap()]);
    assert_eq!(code, 0, "{id}{err}\n{}", stderr_of("storage"));
    let back = dir.path().join("back.txt");
    let (code, out, err) = run_tool(
        "fdfs_download_file",
        &[conf, id.trim(), back.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read_to_string(&back).unwrap(),
        "from a container's entrypoint"
    );

    // SIGTERM (what `docker stop` sends): both drain and exit 0; the log went to stderr only
    for (role, child) in [("storage", &mut storage), ("tracker", &mut tracker)] {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let st = child.wait().unwrap();
        assert_eq!(st.code(), Some(0), "{role}: {}", stderr_of(role));
        assert!(
            stderr_of(role).contains("exit normally"),
            "{}",
            stderr_of(role)
        );
        assert!(!dir.path().join(format!("{role}/base/logs")).exists());
    }
    assert!(stderr_of("storage").contains("join ok"));
}
