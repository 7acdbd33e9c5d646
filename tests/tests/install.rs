//! What an operator touches: scripts/install.sh into a PREFIX, the installed daemons run the
//! way their systemd units say, and the seed document's setup steps replayed verbatim.

use fdfs_client::Upload;
use fdfs_client::{Client, Content};
use fdfs_common::proto::{cmd, Header};
use rfdfs_tests::{bin_dir, raw, unique_net, TempDir, Tmpfs};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

/// Set `key=value` in a config file: the first line of `key` gets the value, later ones go.
fn set_key(path: &Path, key: &str, value: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut done = false;
    let mut out = String::new();
    for line in text.lines() {
        let is_key = line
            .split_once('=')
            .is_some_and(|(k, _)| k.trim() == key && !line.starts_with('#'));
        if is_key {
            if !done {
                out += &format!("{key}={value}\n");
                done = true;
            }
            continue;
        }
        out += line;
        out += "\n";
    }
    assert!(done, "{key} not in {}", path.display());
    std::fs::write(path, out).unwrap();
}

/// A unit's `Key=` value.
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key}= missing"))
        .to_string()
}

/// Run one of a unit's commands with the installed paths under `prefix`.
fn unit_command(prefix: &Path, line: &str) -> String {
    run(&mut installed_command(prefix, line))
}

/// A unit's command line with the installed paths under `prefix`.
fn installed_command(prefix: &Path, line: &str) -> Command {
    let mapped = line
        .replace("/usr/bin/", &format!("{}/usr/bin/", prefix.display()))
        .replace("/etc/fdfs/", &format!("{}/etc/fdfs/", prefix.display()));
    let mut words = mapped.split_whitespace();
    let mut cmd = Command::new(words.next().unwrap());
    cmd.args(words);
    cmd
}

fn pid_in(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// Running (a daemonized process that exited may linger as a zombie of whoever adopted it).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// Kills the daemons the PID files name when the test ends, passed or failed: they fork
/// away from the test, and a failed assertion would leave them running.
struct PidFileReaper(Vec<PathBuf>);

impl Drop for PidFileReaper {
    fn drop(&mut self) {
        for pid in self
            .0
            .iter()
            .filter_map(|f| pid_in(f))
            .filter(|&p| alive(p))
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[test]
fn installed_daemons_start_restart_under_load_and_stop() {
    let (a, b) = unique_net();
    let (tip, sip) = (format!("127.{a}.{b}.10"), format!("127.{a}.{b}.11"));
    let dir = TempDir::new("install");
    let prefix = dir.path().join("root");
    run(Command::new(repo().join("scripts/install.sh"))
        .arg(&prefix)
        .env("RFDFS_BIN_DIR", bin_dir()));
    let etc = prefix.join("etc/fdfs");
    for f in ["tracker.conf", "storage.conf", "client.conf", "http.conf"] {
        assert!(etc.join(f).is_file() && etc.join(format!("{f}.sample")).is_file());
    }
    // a second install keeps the operator's configs
    set_key(&etc.join("tracker.conf"), "bind_addr", &tip);
    let again = run(Command::new(repo().join("scripts/install.sh"))
        .arg(&prefix)
        .env("RFDFS_BIN_DIR", bin_dir()));
    assert!(again.contains("kept existing"), "{again}");
    assert!(std::fs::read_to_string(etc.join("tracker.conf"))
        .unwrap()
        .contains(&format!("bind_addr={tip}\n")));

    // the installed configs, pointed at loopback and a temp dir
    let (tbase, sbase) = (dir.path().join("tracker"), dir.path().join("storage"));
    std::fs::create_dir_all(&tbase).unwrap();
    std::fs::create_dir_all(&sbase).unwrap();
    // the installed tracker.conf reserves 20% of the store path: a file system of its own
    // keeps the host's own disk fill out of the test
    let _store = Tmpfs::over(&sbase, 256, false);
    set_key(
        &etc.join("tracker.conf"),
        "base_path",
        &tbase.to_string_lossy(),
    );
    let s = etc.join("storage.conf");
    set_key(&s, "base_path", &sbase.to_string_lossy());
    set_key(&s, "store_path0", &sbase.to_string_lossy());
    set_key(&s, "bind_addr", &sip);
    set_key(&s, "tracker_server", &format!("{tip}:22122"));
    let c = etc.join("client.conf");
    set_key(&c, "base_path", &dir.path().to_string_lossy());
    set_key(&c, "tracker_server", &format!("{tip}:22122"));

    let units = prefix.join("usr/lib/systemd/system");
    let tunit = std::fs::read_to_string(units.join("fdfs_trackerd.service")).unwrap();
    let sunit = std::fs::read_to_string(units.join("fdfs_storaged.service")).unwrap();
    assert_eq!(unit_value(&tunit, "Type"), "forking");
    let pid_file = |unit: &str, base: &Path| {
        PathBuf::from(unit_value(unit, "PIDFile").replace("/opt/fastdfs", &base.to_string_lossy()))
    };
    let (tpid, spid) = (pid_file(&tunit, &tbase), pid_file(&sunit, &sbase));
    let _reaper = PidFileReaper(vec![tpid.clone(), spid.clone()]);

    // systemctl start
    unit_command(&prefix, &unit_value(&tunit, "ExecStart"));
    unit_command(&prefix, &unit_value(&sunit, "ExecStart"));
    let t0 = pid_in(&tpid).expect("tracker PIDFile");
    let s0 = pid_in(&spid).expect("storage PIDFile");
    assert!(alive(t0) && alive(s0));

    let client = Arc::new(Client::from_conf(&c).unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .upload(Content::Buffer(b"first"), "txt", Upload::File, None, None)
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the installed cluster never served"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // upload load from 4 threads for the whole restart; failed attempts are retried
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let load: Vec<_> = (0..4)
        .map(|t| {
            let (client, stop, acked) = (client.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let mut k = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let data = format!("thread {t} upload {k} ").repeat(1 + (k as usize % 50));
                    if let Ok(id) = client.upload(
                        Content::Buffer(data.as_bytes()),
                        "txt",
                        Upload::File,
                        None,
                        None,
                    ) {
                        acked.lock().unwrap().push((id, data.into_bytes()));
                        k += 1;
                    }
                    // a steady stream rather than a flood: every file is checked afterwards
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        })
        .collect();

    // an upload in flight when the restart begins: half its body before, half after
    let body = vec![7u8; 200_000];
    let mut s = raw::connect(&sip, 23000);
    let mut req = vec![0xFFu8];
    req.extend_from_slice(&(body.len() as i64).to_be_bytes());
    req.extend_from_slice(b"bin\0\0\0");
    let mut frame = Header::new(cmd::UPLOAD_FILE, req.len() + body.len())
        .to_bytes()
        .to_vec();
    frame.extend_from_slice(&req);
    frame.extend_from_slice(&body[..100_000]);
    s.write_all(&frame).unwrap();
    let log = sbase.join("logs/storaged.log");
    let exits = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("program exiting")
            .count()
    };
    let before = exits();
    let prefix2 = prefix.clone();
    let reload = unit_value(&sunit, "ExecReload");
    let restart = std::thread::spawn(move || unit_command(&prefix2, &reload));
    let deadline = Instant::now() + Duration::from_secs(30);
    while exits() == before {
        assert!(
            Instant::now() < deadline,
            "the restart never stopped the storage"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    s.write_all(&body[100_000..]).unwrap();
    let (status, reply) = raw::read_response(&mut s).expect("an answer to the in-flight upload");
    assert_eq!(status, 0, "the in-flight upload failed across the restart");
    restart.join().unwrap();
    let s1 = pid_in(&spid).expect("storage PIDFile after restart");
    assert_ne!(s1, s0);
    assert!(alive(s1) && !alive(s0));
    let inflight = fdfs_client::FileId {
        group: String::from_utf8_lossy(&reply[..16])
            .trim_end_matches('\0')
            .to_string(),
        name: String::from_utf8_lossy(&reply[16..]).to_string(),
    };

    // and the tracker's restart under the same load
    unit_command(&prefix, &unit_value(&tunit, "ExecReload"));
    let t1 = pid_in(&tpid).expect("tracker PIDFile after restart");
    assert!(t1 != t0 && alive(t1));
    let n = acked.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < n + 20 {
        assert!(
            Instant::now() < deadline,
            "uploads did not resume after the restarts"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }

    // nothing acknowledged is lost
    assert_eq!(rfdfs_tests::read_back(&client, &inflight), body);
    let acked = acked.lock().unwrap();
    for (id, data) in acked.iter() {
        assert_eq!(&client.download_to_vec(id, 0, 0).unwrap(), data, "{id}");
    }

    // systemctl stop
    unit_command(&prefix, &unit_value(&sunit, "ExecStop"));
    unit_command(&prefix, &unit_value(&tunit, "ExecStop"));
    assert!(!alive(s1) && !alive(t1));
    assert!(!spid.exists() && !tpid.exists(), "pid files left behind");

    // the Type=simple form the units' comments give: -N in the foreground, SIGTERM stops it
    let simple = unit_value(&tunit, "ExecStart")
        .replace(" start", "")
        .replace("fdfs_trackerd ", "fdfs_trackerd -N ");
    let mut fg = installed_command(&prefix, &simple).spawn().unwrap();
    rfdfs_tests::wait_port(&tip, 22122, "foreground tracker");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(fg.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(fg.wait().unwrap().success());

    // uninstall keeps the changed configs only
    run(Command::new(repo().join("scripts/uninstall.sh")).arg(&prefix));
    assert!(!prefix.join("usr/bin/fdfs_trackerd").exists());
    assert!(!units.join("fdfs_storaged.service").exists());
    assert!(etc.join("storage.conf").exists());
    assert!(!etc.join("storage.conf.sample").exists());
    assert!(!etc.join("mime.types").exists());
}

/// The project's founding document sets a cluster up with these steps. Replayed verbatim on
/// copies of conf/ (as install.sh puts them in /etc/fdfs), with only its address and
/// /data/fastdfs replaced, in a network namespace of its own: the samples listen on every
/// address, on the standard ports (HTTP on 80), which would collide with the other tests.
#[test]
fn the_seed_setup_steps_give_a_working_cluster() {
    let dir = TempDir::new("seed");
    let etc = dir.path().join("etc/fdfs");
    let data = dir.path().join("data/fastdfs");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    // the sample tracker.conf reserves 20% of the store path: a file system of its own keeps
    // the host's own disk fill out of the test
    let _store = Tmpfs::over(&data, 256, false);
    for f in ["tracker.conf", "storage.conf", "client.conf"] {
        std::fs::copy(repo().join("conf").join(f), etc.join(format!("{f}.sample"))).unwrap();
    }
    std::fs::write(
        dir.path().join("pom.xml"),
        "<project><modelVersion>4.0.0</modelVersion></project>\n",
    )
    .unwrap();
    let script = format!(
        r#"set -e
ip link set lo up
export PATH="{bin}:$PATH"
cd {etc}
cp tracker.conf.sample tracker.conf
cp storage.conf.sample storage.conf
cp client.conf.sample client.conf
cp {fastdfs}/conf/http.conf . ; cp {fastdfs}/conf/mime.types .
sed -i 's:base_path=.*:base_path={data}:g' tracker.conf
sed -i 's:http.server_port=.*:http.server_port=80:g' tracker.conf
sed -i 's:base_path=.*:base_path={data}:g' storage.conf
sed -i 's:store_path0=.*:store_path0={data}:g' storage.conf
sed -i 's/tracker_server=.*/tracker_server=127.0.0.2:22122/g' storage.conf
sed -i 's:http.server_port=.*:http.server_port=80:g' storage.conf
sed -i 's:base_path=.*:base_path={data}:g' client.conf
sed -i 's/tracker_server=.*/tracker_server=127.0.0.2:22122/g' client.conf
fdfs_trackerd {etc}/tracker.conf
fdfs_storaged {etc}/storage.conf
trap 'fdfs_storaged {etc}/storage.conf stop; fdfs_trackerd {etc}/tracker.conf stop' EXIT
for i in $(seq 1 300); do
    fdfs_monitor {etc}/client.conf 2>/dev/null | grep -q ACTIVE && break
    sleep 0.1
done
fdfs_monitor {etc}/client.conf | head -1
cd {work}
id=$(fdfs_upload_file {etc}/client.conf pom.xml)
echo "ID $id"
fdfs_file_info {etc}/client.conf "$id"
fdfs_download_file {etc}/client.conf "$id" downtest.xml
cmp pom.xml downtest.xml
echo DOWNLOAD_OK
curl -sf -o http.xml "http://127.0.0.2:80/$id"
cmp pom.xml http.xml
echo HTTP_OK
"#,
        bin = bin_dir().display(),
        etc = etc.display(),
        data = data.display(),
        fastdfs = repo().display(),
        work = dir.path().display(),
    );
    let text = rfdfs_tests::run_in_netns(&script, "the seed's steps");
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("ID "))
        .expect("a file ID");
    assert!(id.starts_with("group1/M00/"), "{id}");
    assert!(text.contains("file size: 54"), "{text}");
    // the two identical tracker_server lines the seds leave are one tracker
    assert!(text.contains("tracker server count=1,"), "{text}");
    assert!(
        text.contains("DOWNLOAD_OK") && text.contains("HTTP_OK"),
        "{text}"
    );
}
