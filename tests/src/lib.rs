//! Test support: a [`Cluster`] of real `fdfs_trackerd` / `fdfs_storaged` processes on loopback
//! addresses of their own, in temp directories of their own, stopped by pid when dropped (also
//! when the test panics). Readiness is established by asking the tracker, never by sleeping.

#![forbid(unsafe_code)]

pub mod clock;
pub mod delay;
pub mod forwarder;
pub mod fuzz;
pub mod hosts_file;
pub mod load;
pub mod loopback;
pub mod netns;
pub mod partition;
pub mod power;
pub mod py3fdfs;
pub mod s3;

use fdfs_client::Client;
use fdfs_client::Upload;
use fdfs_common::config::{ClientConfig, HostPort, IniFile};
use fdfs_common::proto::status;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Directory holding the built binaries (`target/debug`), found from the test executable.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    assert!(
        dir.join("fdfs_trackerd").exists(),
        "{} has no fdfs_trackerd: build the daemons first (cargo build --workspace --bins)",
        dir.display()
    );
    dir
}

pub fn bin(name: &str) -> PathBuf {
    // the daemons of another build (upstream's, for a side-by-side run by hand)
    if let Some(dir) = std::env::var_os("RFDFS_DAEMON_DIR") {
        if matches!(name, "fdfs_trackerd" | "fdfs_storaged") {
            return PathBuf::from(dir).join(name);
        }
    }
    bin_dir().join(name)
}

static NEXT: AtomicU32 = AtomicU32::new(1);

/// A loopback network `127.<a>.<b>.x` that no other test, of this process or of any other
/// running at the same time (the suite beside the crash harness, copies of a test run in
/// parallel), uses: each is claimed with an flock on `<tmp>/rfdfs-nets/<a>.<b>`, held until
/// the process ends, however it ends. Without it two processes could pick the same addresses
/// and each talk to the other's daemons.
pub fn unique_net() -> (u8, u8) {
    use nix::fcntl::{Flock, FlockArg};
    static HELD: std::sync::Mutex<Vec<Flock<std::fs::File>>> = std::sync::Mutex::new(Vec::new());
    const NETS: u32 = 200 * 250;
    let dir = std::env::temp_dir().join("rfdfs-nets");
    std::fs::create_dir_all(&dir).expect("create the net lock dir");
    let start = (std::process::id() % 200) * 250 + NEXT.fetch_add(1, Ordering::SeqCst);
    for k in 0..NETS {
        let i = (start + k) % NETS;
        let (a, b) = (10 + (i / 250) as u8, (i % 250) as u8);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{a}.{b}")))
            .expect("open a net lock file");
        if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            HELD.lock().unwrap_or_else(|e| e.into_inner()).push(lock);
            return (a, b);
        }
    }
    panic!("every test network 127.10-209.x.y is in use");
}

/// The leader a tracker names (SERVER_GET_LEADER), if any.
pub fn leader_of(t: &HostPort) -> Option<String> {
    let mut s = TcpStream::connect((t.host.as_str(), t.port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    match raw::exchange(
        &mut s,
        &raw::frame(fdfs_common::proto::cmd::SERVER_GET_LEADER, 0, &[]),
    ) {
        Some((0, b)) => Some(String::from_utf8_lossy(&b).into_owned()),
        _ => None,
    }
}

/// A temp directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        Self::new_in(&std::env::temp_dir(), tag)
    }

    pub fn new_in(root: &Path, tag: &str) -> TempDir {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let p = root.join(format!("rfdfs-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("RFDFS_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A tmpfs of a given size mounted by the test (as root), unmounted on drop: a real file
/// system that fills up, or that hides what is under its mount point.
pub struct Tmpfs {
    pub dir: PathBuf,
    /// `dir` was made for the mount and is removed with it
    made: bool,
}

impl Tmpfs {
    /// Mount a new tmpfs of `size_mb` on a fresh directory under the temp dir.
    pub fn new(tag: &str, size_mb: u64) -> Tmpfs {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("rfdfs-tmpfs-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create mount point");
        let mut t = Tmpfs::over(&dir, size_mb, false);
        t.made = true;
        t
    }

    /// Mount a tmpfs over the existing directory `dir` (hiding its contents; read-only if
    /// asked) until dropped.
    pub fn over(dir: &Path, size_mb: u64, read_only: bool) -> Tmpfs {
        let opts = format!("size={size_mb}m{}", if read_only { ",ro" } else { "" });
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(dir)
            .status();
        assert!(
            st.is_ok_and(|s| s.success()),
            "mounting a tmpfs at {} failed: these tests need root (CAP_SYS_ADMIN) to make \
             a real file system of a chosen size",
            dir.display()
        );
        Tmpfs {
            dir: dir.to_path_buf(),
            made: false,
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // lazily: a test that failed may leave a daemon with files open there
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
        if self.made {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// One daemon process run in the foreground (`-N`).
pub struct Daemon {
    pub child: Option<Child>,
    pub conf: PathBuf,
    pub program: &'static str,
    pub base: PathBuf,
}

impl Daemon {
    /// Files the daemon is receiving into `store_path`: its open descriptors of unnamed
    /// (`O_TMPFILE`) files there, or of named ones in the temp directory.
    pub fn files_being_received(&self, store_path: &Path) -> Vec<PathBuf> {
        let Some(pid) = self.pid() else {
            return Vec::new();
        };
        let data = store_path.join("data");
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return Vec::new();
        };
        fds.flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter(|t| {
                let text = t.to_string_lossy();
                t.starts_with(&data)
                    && ((text.contains("/#") && text.ends_with(" (deleted)"))
                        || t.starts_with(data.join(".rfdfs_tmp")))
            })
            .collect()
    }

    pub fn start(program: &'static str, conf: &Path, base: &Path) -> Daemon {
        Self::start_with_nofile(program, conf, base, None)
    }

    /// Start with RLIMIT_NOFILE set first (through the shell's `ulimit`), as systemd's
    /// `LimitNOFILE` does: `(soft, hard)`, the hard limit left as it is when `None`.
    pub fn start_with_nofile(
        program: &'static str,
        conf: &Path,
        base: &Path,
        nofile: Option<(u64, Option<u64>)>,
    ) -> Daemon {
        Self::start_with(program, conf, base, nofile, &[])
    }

    /// Start with RLIMIT_NOFILE as in `start_with_nofile` and more environment variables.
    pub fn start_with(
        program: &'static str,
        conf: &Path,
        base: &Path,
        nofile: Option<(u64, Option<u64>)>,
        env: &[(String, String)],
    ) -> Daemon {
        let log =
            std::fs::File::create(base.join(format!("{program}.stderr"))).expect("stderr file");
        let mut cmd = match nofile {
            None => Command::new(bin(program)),
            Some((soft, hard)) => {
                // the soft limit first: a hard limit below the soft one is refused
                let hard = hard
                    .map(|h| format!("ulimit -Hn {h} && "))
                    .unwrap_or_default();
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -Sn {soft} && {hard}exec \"$0\" \"$@\""))
                    .arg(bin(program));
                c
            }
        };
        let child = cmd
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("-N")
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn daemon");
        Daemon {
            child: Some(child),
            conf: conf.to_path_buf(),
            program,
            base: base.to_path_buf(),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// A line of `/proc/<pid>/<file>` starting with `key`, its first number.
    fn proc_number(&self, file: &str, key: &str) -> u64 {
        let pid = self.pid().expect("daemon running");
        let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).expect("proc file");
        let line = text
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/{file}"));
        line[key.len()..]
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no number in {line:?}"))
    }

    /// The daemon's thread count.
    pub fn threads(&self) -> u64 {
        self.proc_number("status", "Threads:")
    }

    /// The daemon's soft RLIMIT_NOFILE.
    pub fn nofile_soft(&self) -> u64 {
        self.proc_number("limits", "Max open files")
    }

    /// SIGTERM and wait for the exit status.
    pub fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                return c.wait().ok().and_then(|s| s.code());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn log(&self) -> String {
        let name = if self.program == "fdfs_trackerd" {
            "trackerd"
        } else {
            "storaged"
        };
        let mut s = std::fs::read_to_string(self.base.join("logs").join(format!("{name}.log")))
            .unwrap_or_default();
        s += &std::fs::read_to_string(self.base.join(format!("{}.stderr", self.program)))
            .unwrap_or_default();
        s
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Wait until a TCP port accepts connections.
pub fn wait_port(host: &str, port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect((host, port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} at {host}:{port} did not start listening within 30 s");
}

/// `GET path` over a fresh connection closed by the server after the answer: (status, head,
/// body).
pub fn http_get(host: &str, port: u16, path: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect((host, port)).expect("HTTP port");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_string(), body.to_string())
}

/// Settings of a test cluster.
#[derive(Debug, Clone)]
pub struct ClusterOpts {
    pub storages: usize,
    /// trackers in the cluster (the first is `Cluster::tracker`, the others `more_trackers`)
    pub trackers: usize,
    pub subdir_count: u32,
    pub store_paths: usize,
    /// storage `i` joins `group<i % groups + 1>`
    pub groups: usize,
    /// run with `use_storage_id` and `id_type_in_filename=id`: storage `i` (and spares up to
    /// `i = 9`) is listed as id `100001 + i` at its fixture address
    pub storage_ids: bool,
    /// the loopback network `127.a.b.x` to use (default: a fresh one)
    pub net: Option<(u8, u8)>,
    /// `(group, dir)`: that group's store paths live under `dir` (another file system)
    pub group_store_roots: Vec<(String, PathBuf)>,
    /// storage `i`'s store paths live under `member_store_roots[i]` (a file system of its own)
    pub member_store_roots: Vec<PathBuf>,
    /// extra `key=value` lines for tracker.conf / storage.conf
    pub tracker_extra: String,
    pub storage_extra: String,
    /// RLIMIT_NOFILE `(soft, hard)` the daemons start with (default: the test's own; a `None`
    /// hard limit stays as it is)
    pub nofile: Option<(u64, Option<u64>)>,
}

impl Default for ClusterOpts {
    fn default() -> Self {
        ClusterOpts {
            storages: 1,
            trackers: 1,
            subdir_count: 4,
            store_paths: 1,
            groups: 1,
            storage_ids: false,
            group_store_roots: Vec::new(),
            member_store_roots: Vec::new(),
            net: None,
            tracker_extra: String::new(),
            storage_extra: String::new(),
            nofile: None,
        }
    }
}

pub struct Storage {
    pub daemon: Daemon,
    pub group: String,
    pub ip: String,
    pub port: u16,
    pub base: PathBuf,
    pub store_paths: Vec<PathBuf>,
}

/// One tracker and N storages of `group1`.
pub struct Cluster {
    pub dir: TempDir,
    pub tracker: Daemon,
    pub tracker_addr: HostPort,
    pub more_trackers: Vec<(Daemon, HostPort)>,
    pub storages: Vec<Storage>,
    pub client_conf: PathBuf,
    pub net: (u8, u8),
    /// store paths placed outside `dir` (`group_store_roots`)
    pub outside_dirs: Vec<TempDir>,
}

pub fn tracker_conf_text(ip: &str, port: u16, base: &Path, extra: &str) -> String {
    format!(
        "bind_addr={ip}\nport={port}\nbase_path={}\nreserved_storage_space=1%\ncheck_active_interval=30\n\
         log_level=info\n{extra}\n",
        base.display()
    )
}

pub fn storage_conf_text(
    ip: &str,
    port: u16,
    base: &Path,
    paths: &[PathBuf],
    subdirs: u32,
    trackers: &[HostPort],
    extra: &str,
) -> String {
    let mut s = format!(
        "bind_addr={ip}\nport={port}\nbase_path={}\nstore_path_count={}\n\
         subdir_count_per_path={subdirs}\nthread_stack_size=512KB\n\
         heart_beat_interval=1\nstat_report_interval=1\nsync_stat_file_interval=1\nsync_binlog_buff_interval=1\n",
        base.display(),
        paths.len()
    );
    for (i, p) in paths.iter().enumerate() {
        s += &format!("store_path{i}={}\n", p.display());
    }
    for t in trackers {
        s += &format!("tracker_server={t}\n");
    }
    // an extra group_name line wins: the last value of a key counts
    "group_name=group1\n".to_string() + &s + extra + "\n"
}

impl Cluster {
    pub fn start(opts: ClusterOpts) -> Cluster {
        let dir = TempDir::new("cluster");
        let net = opts.net.unwrap_or_else(unique_net);
        let tip = format!("127.{}.{}.2", net.0, net.1);
        let tracker_addr = HostPort::new(tip.clone(), 22122);
        let mut opts = opts;
        if opts.storage_ids {
            let ids = dir.path().join("storage_ids.conf");
            let mut text = String::from("# fixture storage ids\n");
            for i in 0..10 {
                text += &format!(
                    "{} group{} 127.{}.{}.{}\n",
                    100001 + i,
                    i % opts.groups.max(1) + 1,
                    net.0,
                    net.1,
                    10 + i
                );
            }
            std::fs::write(&ids, text).unwrap();
            opts.tracker_extra += &format!(
                "\nuse_storage_id=true\nid_type_in_filename=id\nstorage_ids_filename={}\n",
                ids.display()
            );
        }
        let tbase = dir.path().join("tracker");
        std::fs::create_dir_all(&tbase).unwrap();
        let tconf = tbase.join("tracker.conf");
        std::fs::write(
            &tconf,
            tracker_conf_text(&tip, 22122, &tbase, &opts.tracker_extra),
        )
        .unwrap();
        let tracker = Daemon::start_with_nofile("fdfs_trackerd", &tconf, &tbase, opts.nofile);
        wait_port(&tip, 22122, "tracker");
        let mut more_trackers = Vec::new();
        for k in 1..opts.trackers.max(1) {
            let ip = format!("127.{}.{}.{}", net.0, net.1, 2 + k);
            let base = dir.path().join(format!("tracker{k}"));
            std::fs::create_dir_all(&base).unwrap();
            let conf = base.join("tracker.conf");
            std::fs::write(
                &conf,
                tracker_conf_text(&ip, 22122, &base, &opts.tracker_extra),
            )
            .unwrap();
            let d = Daemon::start("fdfs_trackerd", &conf, &base);
            wait_port(&ip, 22122, "tracker");
            more_trackers.push((d, HostPort::new(ip, 22122)));
        }
        let client_conf = dir.path().join("client.conf");
        let mut cc = String::from("network_timeout=30\nconnect_timeout=2\n");
        for t in std::iter::once(&tracker_addr).chain(more_trackers.iter().map(|t| &t.1)) {
            cc += &format!("tracker_server={t}\n");
        }
        std::fs::write(&client_conf, cc).unwrap();
        let mut c = Cluster {
            dir,
            tracker,
            tracker_addr,
            more_trackers,
            storages: Vec::new(),
            client_conf,
            net,
            outside_dirs: Vec::new(),
        };
        for _ in 0..opts.storages {
            c.add_storage(&opts);
        }
        c.wait_active(opts.storages);
        c
    }

    /// Start one more storage in group1 (not waited for).
    pub fn add_storage(&mut self, opts: &ClusterOpts) -> usize {
        let i = self.storages.len();
        let group = format!("group{}", i % opts.groups.max(1) + 1);
        let ip = format!("127.{}.{}.{}", self.net.0, self.net.1, 10 + i);
        let base = self.dir.path().join(format!("storage{i}"));
        std::fs::create_dir_all(&base).unwrap();
        let root = opts.member_store_roots.get(i).or(opts
            .group_store_roots
            .iter()
            .find(|(g, _)| *g == group)
            .map(|(_, r)| r));
        let store_base = match root {
            Some(root) => {
                let d = TempDir::new_in(root, "store");
                let p = d.path().to_path_buf();
                self.outside_dirs.push(d);
                p
            }
            None => base.clone(),
        };
        let mut paths = Vec::new();
        for p in 0..opts.store_paths {
            let sp = store_base.join(format!("store{p}"));
            std::fs::create_dir_all(&sp).unwrap();
            paths.push(sp);
        }
        let conf = base.join("storage.conf");
        std::fs::write(
            &conf,
            storage_conf_text(
                &ip,
                23000,
                &base,
                &paths,
                opts.subdir_count,
                &self.tracker_addrs(),
                &format!("group_name={group}\n{}", opts.storage_extra),
            ),
        )
        .unwrap();
        let daemon = Daemon::start_with_nofile("fdfs_storaged", &conf, &base, opts.nofile);
        self.storages.push(Storage {
            daemon,
            group,
            ip,
            port: 23000,
            base,
            store_paths: paths,
        });
        i
    }

    pub fn tracker_addrs(&self) -> Vec<HostPort> {
        std::iter::once(self.tracker_addr.clone())
            .chain(self.more_trackers.iter().map(|t| t.1.clone()))
            .collect()
    }

    pub fn client(&self) -> Client {
        Client::new(ClientConfig::from_ini(&IniFile::load(&self.client_conf).unwrap()).unwrap())
    }

    /// Wait until `n` storages (of all groups) are ACTIVE on the tracker.
    pub fn wait_active(&self, n: usize) {
        if let Err(why) = self.wait_active_for(n, Duration::from_secs(60)) {
            let logs: Vec<String> = self.storages.iter().map(|s| s.daemon.log()).collect();
            panic!(
                "{why}\ntracker log:\n{}\nstorage logs:\n{}",
                self.tracker.log(),
                logs.join("\n----\n")
            );
        }
    }

    /// Wait up to `limit` until `n` storages (of all groups) are ACTIVE on every tracker; the
    /// counts seen when not.
    pub fn wait_active_for(&self, n: usize, limit: Duration) -> Result<(), String> {
        // every running tracker must see them: each keeps its own view, and a client may ask any
        let per_tracker: Vec<Client> = self
            .tracker_addrs()
            .iter()
            .map(|t| {
                let text = format!("connect_timeout=2\nnetwork_timeout=10\ntracker_server={t}\n");
                let ini = IniFile::parse_str("client.conf", &text).unwrap();
                Client::new(ClientConfig::from_ini(&ini).unwrap())
            })
            .collect();
        let deadline = Instant::now() + limit;
        loop {
            let counts: Vec<Option<usize>> = per_tracker
                .iter()
                .map(|client| {
                    let groups = client.list_groups().ok()?;
                    Some(
                        groups
                            .iter()
                            .map(|g| {
                                client
                                    .list_storages(&g.group, None)
                                    .map(|v| {
                                        v.iter().filter(|s| s.status == status::ACTIVE).count()
                                    })
                                    .unwrap_or(0)
                            })
                            .sum(),
                    )
                })
                .collect();
            // a tracker that does not answer (stopped by the test) has no say
            let active = counts.iter().flatten().min().copied().unwrap_or(0);
            if active >= n {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "only {active} of {n} storages ACTIVE after {limit:?} (per tracker: {counts:?})"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The log of tracker `k` (0: the first, then `more_trackers` in order).
    pub fn tracker_log_of(&self, k: usize) -> String {
        match k {
            0 => self.tracker.log(),
            k => self.more_trackers[k - 1].0.log(),
        }
    }

    /// kill -9 the tracker listening at `addr` (`ip:port`); returns its address.
    pub fn kill9_tracker(&mut self, addr: &str) -> HostPort {
        if addr == self.tracker_addr.to_string() {
            self.tracker.kill9();
            return self.tracker_addr.clone();
        }
        let k = self
            .more_trackers
            .iter()
            .position(|t| t.1.to_string() == addr)
            .unwrap_or_else(|| panic!("no tracker at {addr}"));
        self.more_trackers[k].0.kill9();
        self.more_trackers[k].1.clone()
    }

    pub fn storage_addr(&self, i: usize) -> HostPort {
        HostPort::new(self.storages[i].ip.clone(), self.storages[i].port)
    }

    /// Start storage `i` again (after a stop or a kill) on its config; returns once it listens.
    /// Rewrite storage `i`'s storage.conf with `change` (read at its next start).
    pub fn edit_storage_conf(&self, i: usize, change: impl FnOnce(String) -> String) {
        let conf = &self.storages[i].daemon.conf;
        let text = std::fs::read_to_string(conf).unwrap();
        std::fs::write(conf, change(text)).unwrap();
    }

    pub fn start_storage(&mut self, i: usize) {
        let s = &mut self.storages[i];
        s.daemon = Daemon::start("fdfs_storaged", &s.daemon.conf.clone(), &s.base.clone());
        wait_port(&s.ip.clone(), s.port, "storage");
    }

    /// Start storage `i` again with more environment variables (a clock shifted by
    /// libfaketime, say); returns once it listens.
    pub fn start_storage_with_env(&mut self, i: usize, env: &[(String, String)]) {
        let s = &mut self.storages[i];
        s.daemon = Daemon::start_with(
            "fdfs_storaged",
            &s.daemon.conf.clone(),
            &s.base.clone(),
            None,
            env,
        );
        wait_port(&s.ip.clone(), s.port, "storage");
    }

    /// Restart storage `i` on the same config and wait until it is ACTIVE again.
    pub fn restart_storage(&mut self, i: usize) {
        let code = self.storages[i].daemon.stop();
        assert_eq!(code, Some(0), "storage exit code");
        let s = &mut self.storages[i];
        s.daemon = Daemon::start("fdfs_storaged", &s.daemon.conf.clone(), &s.base.clone());
        wait_port(&s.ip.clone(), s.port, "storage");
        self.wait_active(self.storages.len());
    }

    /// Run one of our client tools with the cluster's client.conf; returns (code, stdout, stderr).
    pub fn tool(&self, name: &str, args: &[&str]) -> (i32, String, String) {
        run_tool(
            name,
            &[&[self.client_conf.to_str().unwrap()], args].concat(),
        )
    }
}

/// Run a bash `script` in a network namespace of its own (`unshare --net`: only a loopback,
/// down until the script brings it up); its stdout and stderr, after asserting it succeeded.
pub fn run_in_netns(script: &str, what: &str) -> String {
    let out = Command::new("unshare")
        .args(["--net", "bash", "-c", script])
        .output()
        .expect("unshare (util-linux)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

/// Run a built binary and capture everything.
pub fn run_tool(name: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin(name))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run tool");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// xorshift64*: reproducible pseudo-random numbers from a seed, for load and input generators.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }

    /// Uniform-enough in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Raw protocol access for malformed-input tests.
pub mod raw {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    pub fn connect(host: &str, port: u16) -> TcpStream {
        let s = TcpStream::connect((host, port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// A connection from the local address `from` (a member's, for the commands only members
    /// may send; or an address of no member).
    pub fn connect_from(from: &str, host: &str, port: u16) -> TcpStream {
        fdfs_common::net::connect(
            host,
            port,
            Some(from.parse().expect("an IP")),
            Duration::from_secs(5),
            Duration::from_secs(20),
        )
        .expect("connect")
    }

    pub fn frame(cmd: u8, status: u8, body: &[u8]) -> Vec<u8> {
        fdfs_common::proto::Header::frame(cmd, status, body)
    }

    /// Send bytes and read one response (header + body). `None` when the server closed.
    pub fn exchange(s: &mut TcpStream, bytes: &[u8]) -> Option<(u8, Vec<u8>)> {
        s.write_all(bytes).ok()?;
        read_response(s)
    }

    pub fn read_response(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
        let mut h = [0u8; 10];
        s.read_exact(&mut h).ok()?;
        let len = i64::from_be_bytes(h[..8].try_into().unwrap());
        assert_eq!(h[8], 100, "response cmd");
        let mut body = vec![0u8; len as usize];
        s.read_exact(&mut body).ok()?;
        Some((h[9], body))
    }

    /// Whether the server closed the connection (EOF within the timeout).
    pub fn is_closed(s: &mut TcpStream) -> bool {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 1];
        matches!(s.read(&mut b), Ok(0) | Err(_))
    }
}

/// Poll `f` every 100 ms until it gives a value; after 30 s, panic with `what` and `log()`.
pub fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>, log: impl Fn() -> String) -> T {
    wait_for_up_to(Duration::from_secs(30), what, f, log)
}

/// `wait_for` with a limit of its own.
pub fn wait_for_up_to<T>(
    limit: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
    log: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}:\n{}", log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Upload `data` as a normal file with extension `ext`; panics naming the failure.
pub fn upload(client: &Client, data: &[u8], ext: &str) -> fdfs_client::FileId {
    upload_as(client, data, ext, Upload::File, None)
}

/// Upload `data` as a normal file to store path 0 of the storage at `storage` (no tracker
/// query); panics naming the failure.
pub fn upload_via(
    client: &Client,
    data: &[u8],
    ext: &str,
    storage: &HostPort,
) -> fdfs_client::FileId {
    upload_as(client, data, ext, Upload::File, Some((storage.clone(), 0)))
}

/// Upload `data` as an appender file with extension `ext`; panics naming the failure.
pub fn upload_appender(client: &Client, data: &[u8], ext: &str) -> fdfs_client::FileId {
    upload_as(client, data, ext, Upload::Appender, None)
}

fn upload_as(
    client: &Client,
    data: &[u8],
    ext: &str,
    kind: Upload,
    target: Option<(HostPort, u8)>,
) -> fdfs_client::FileId {
    client
        .upload(fdfs_client::Content::Buffer(data), ext, kind, target, None)
        .unwrap_or_else(|e| panic!("upload of {} bytes: {e}", data.len()))
}

/// The whole content of `id`; panics naming the failure.
pub fn read_back(client: &Client, id: &fdfs_client::FileId) -> Vec<u8> {
    client
        .download_to_vec(id, 0, 0)
        .unwrap_or_else(|e| panic!("download of {id}: {e}"))
}

/// Upload `data`, check that it reads back identical, and return its ID.
pub fn round_trip(client: &Client, data: &[u8], ext: &str) -> fdfs_client::FileId {
    let id = upload(client, data, ext);
    assert!(read_back(client, &id) == data, "{id} reads back different");
    id
}

/// Every stored file (data, `-m`, slaves) of a store path with its content hash.
pub fn snapshot(store: &Path) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let data = store.join("data");
    for h in std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().len() == 2)
    {
        for l in std::fs::read_dir(h.path()).unwrap().flatten() {
            for f in std::fs::read_dir(l.path()).unwrap().flatten() {
                let rel = f
                    .path()
                    .strip_prefix(&data)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let bytes = std::fs::read(f.path()).unwrap_or_default();
                out.insert(rel, content_digest(&bytes));
            }
        }
    }
    out
}

/// Wait until every storage holds the same files as storage 0; returns the common snapshot.
pub fn wait_converged(
    c: &Cluster,
    members: &[usize],
    timeout: Duration,
) -> std::collections::BTreeMap<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let snaps: Vec<_> = members
            .iter()
            .map(|&i| snapshot(&c.storages[i].store_paths[0]))
            .collect();
        if snaps.windows(2).all(|w| w[0] == w[1]) {
            return snaps.into_iter().next().unwrap();
        }
        if Instant::now() > deadline {
            for (i, s) in members.iter().zip(&snaps) {
                eprintln!("storage {i}: {} files", s.len());
            }
            let a = &snaps[0];
            for (k, s) in members.iter().zip(&snaps).skip(1) {
                let missing: Vec<_> = a.keys().filter(|x| !s.contains_key(*x)).take(5).collect();
                let extra: Vec<_> = s.keys().filter(|x| !a.contains_key(*x)).take(5).collect();
                let differ: Vec<_> = a
                    .keys()
                    .filter(|x| s.get(*x).is_some_and(|v| v != &a[*x]))
                    .take(5)
                    .collect();
                eprintln!("storage {k}: missing {missing:?} extra {extra:?} differ {differ:?}");
                eprintln!("log:\n{}", c.storages[*k].daemon.log());
            }
            panic!("storages did not converge within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One sample of a storage's `/metrics` (`fdfs_storage_<name>`), -1 when absent.
pub fn storage_metric(ip: &str, port: u16, name: &str) -> f64 {
    let (status, _, body) = http_get(ip, port, "/metrics");
    assert_eq!(status, 200);
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("fdfs_storage_{name} ")))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(-1.0)
}

/// How [`snapshot`] names a file's content: its length and CRC32.
pub fn content_digest(b: &[u8]) -> String {
    format!("{}:{:08x}", b.len(), crc32fast::hash(b))
}

/// Wait until storage `i` has heard that another member is ACTIVE and sends it its changes
/// (the tracker knows a member is ACTIVE before the other members do).
pub fn wait_sees_a_peer(c: &Cluster, i: usize) {
    let client = c.client();
    wait_for(
        "the storage to see a peer ACTIVE",
        || {
            let st = client.rfdfs_status(&c.storage_addr(i)).ok()?;
            st.get("active_peers")
                .is_some_and(|p| !p.is_empty())
                .then_some(())
        },
        || c.storages[i].daemon.log(),
    );
}

/// The whole content of `id` as the storage at `storage` itself serves it (no tracker query).
pub fn read_from(
    client: &Client,
    storage: &HostPort,
    id: &fdfs_client::FileId,
) -> Result<Vec<u8>, fdfs_common::net::NetError> {
    let mut v = Vec::new();
    client.download_from(storage, id, 0, 0, || Ok(&mut v))?;
    Ok(v)
}

/// Wait until member `i` serves `id` with exactly `data`; panics naming the file after 30 s.
pub fn wait_member_has(c: &Cluster, i: usize, id: &fdfs_client::FileId, data: &[u8]) {
    let client = c.client();
    let addr = c.storage_addr(i);
    wait_for(
        &format!("storage {i} never served {id} as acknowledged"),
        || {
            read_from(&client, &addr, id)
                .ok()
                .filter(|got| got == data)
                .map(|_| ())
        },
        || c.storages[i].daemon.log(),
    );
}

/// Stop storage `i` with SIGSTOP (a process that hangs: its connections stay open, nothing is
/// answered) or let it go on with SIGCONT.
pub fn signal_storage(c: &Cluster, i: usize, sig: Signal) {
    let pid = c.storages[i].daemon.pid().expect("storage running");
    kill(Pid::from_raw(pid as i32), sig).expect("signal the storage");
}

/// `dir`'s contents moved onto a tmpfs of `size_mb` mounted over `dir` (whose own contents it
/// hides until it is dropped): a daemon's files there then live on a file system that fills up.
/// Stop the daemon before, and before the tmpfs is dropped.
pub fn onto_tmpfs(dir: &Path, size_mb: u64) -> Tmpfs {
    let saved = dir.with_extension("saved");
    let _ = std::fs::remove_dir_all(&saved);
    copy_tree(dir, &saved);
    let t = Tmpfs::over(dir, size_mb, false);
    copy_tree(&saved, dir);
    std::fs::remove_dir_all(&saved).unwrap();
    t
}

/// Copy what is in `from` into `to` (made if missing), owners, modes and times kept (`cp -a`).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

/// Fill the file system holding `dir` with `dir/filler` until a write fails.
pub fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x5au8; 64 << 10];
    while f.write_all(&chunk).is_ok() {}
    // what is left of a partly written chunk
    while f.write_all(&chunk[..512]).is_ok() {}
    path
}

/// A file system of its own in a sparse image file, mounted through a loop device on a fresh
/// directory (as root), unmounted and removed on drop. Made with btrfs, which checksums file
/// data: a byte changed in the image under a file makes reads of that block fail with EIO, a
/// latent sector error as the kernel reports it. This machine's kernel has no device-mapper
/// (no `error` or `flakey` target), so this is how the tests make a block unreadable.
pub struct LoopFs {
    pub dir: PathBuf,
    image: PathBuf,
}

impl LoopFs {
    /// `fs` is `btrfs` or `ext4` (mkfs.`fs` must be installed: scripts/test.sh does).
    pub fn new(tag: &str, fs: &str, size_mb: u64) -> LoopFs {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let stem =
            std::env::temp_dir().join(format!("rfdfs-loop-{tag}-{}-{n}", std::process::id()));
        let image = stem.with_extension("img");
        let dir = stem.clone();
        std::fs::create_dir_all(&dir).expect("mount point");
        let f = std::fs::File::create(&image).expect("image file");
        f.set_len(size_mb << 20).expect("size the image");
        drop(f);
        let mkfs = Command::new(format!("mkfs.{fs}"))
            .arg("-q")
            .arg(&image)
            .stdout(Stdio::null())
            .status();
        assert!(
            mkfs.is_ok_and(|s| s.success()),
            "mkfs.{fs} failed: install it (scripts/test.sh does)"
        );
        let mount = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&dir)
            .status();
        assert!(
            mount.is_ok_and(|s| s.success()),
            "mounting {} on a loop device failed: these tests need root and loop devices",
            image.display()
        );
        LoopFs { dir, image }
    }

    /// Make 4 KiB block `block` of `file` (a file of this file system, at least that long)
    /// unreadable: one byte of it is changed in the image, and the page cache is dropped so
    /// that the next read goes to the "disk". On btrfs that read fails with EIO.
    pub fn break_block(&self, file: &Path, block: u64) {
        use std::os::unix::fs::FileExt;
        let mut want = vec![0u8; 4096];
        let f = std::fs::File::open(file).expect("the file to break");
        f.read_exact_at(&mut want, block * 4096)
            .expect("the block exists");
        // on the "disk" (the image) before it is looked for there
        f.sync_all().expect("fsync the file to break");
        drop(f);
        // the data is where its bytes are in the image (file data is not compressed); the
        // same bytes may also stand in freed extents (an older copy of the file, renamed over
        // or moved aside): every place they stand is changed, so the live one surely is
        let img = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.image)
            .unwrap();
        let len = img.metadata().unwrap().len();
        let mut places = Vec::new();
        let mut chunk = vec![0u8; 1 << 20];
        let mut pos = 0u64;
        while pos < len {
            let n = img.read_at(&mut chunk, pos).unwrap();
            if n == 0 {
                break;
            }
            places.extend(
                chunk[..n]
                    .chunks(512)
                    .enumerate()
                    .filter(|(_, c)| c.len() >= 64 && c[..64] == want[..64])
                    .map(|(k, _)| pos + (k * 512) as u64),
            );
            pos += n as u64;
        }
        assert!(
            !places.is_empty(),
            "block {block} of {} not in the image",
            file.display()
        );
        for at in places {
            // looked at again just before: a freed place the file system wrote another file's
            // block into since the scan is left alone (else that file would be broken instead)
            let mut now = [0u8; 128];
            img.read_exact_at(&mut now, at).unwrap();
            if now[..64] == want[..64] {
                img.write_all_at(&[now[100] ^ 0xff], at + 100).unwrap();
            }
        }
        img.sync_all().unwrap();
        drop(img);
        // the good copy leaves the page cache; a page some reader holds at that moment (a
        // daemon's scrub) stays, so drop again until a read of the block goes to the "disk"
        for _ in 0..100 {
            std::fs::write("/proc/sys/vm/drop_caches", "3").expect("drop the page cache (root)");
            let mut got = vec![0u8; 4096];
            let read =
                std::fs::File::open(file).and_then(|f| f.read_exact_at(&mut got, block * 4096));
            if read.is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "block {block} of {} still reads after its byte was changed",
            file.display()
        );
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
        let _ = std::fs::remove_file(&self.image);
    }
}

/// tracker.conf lines for a group with small trunk files: 4 MiB files, slots of 256 bytes to
/// 64 KiB in steps of 256.
pub const SMALL_TRUNKS: &str = "use_trunk_file=true\nslot_min_size=256\nslot_max_size=64KB\n\
                                trunk_file_size=4MB\ntrunk_alloc_alignment_size=256\n";

/// A cluster of `storages` members in one group with small trunk files ([`SMALL_TRUNKS`]),
/// started once every member knows its trunk server.
pub fn trunk_cluster(storages: usize) -> Cluster {
    let c = Cluster::start(ClusterOpts {
        storages,
        tracker_extra: SMALL_TRUNKS.into(),
        ..Default::default()
    });
    wait_trunk_server_known(&c);
    c
}

/// The trunk block of a file in a trunk slot, as TRUNK_FREE_SPACE names it (store path 0);
/// `None` for a name that is no file ID of a trunk slot.
pub fn trunk_block_of(id: &fdfs_client::FileId) -> Option<fdfs_common::proto::trunk::TrunkInfo> {
    use fdfs_common::file_id::RemoteName;
    use fdfs_common::trunk::TrunkSlot;
    let slot = TrunkSlot::of_name(&RemoteName::decode(&id.name).ok()?)?;
    let hex = |at: usize| u8::from_str_radix(id.name.get(at..at + 2)?, 16).ok();
    Some(fdfs_common::proto::trunk::TrunkInfo {
        store_path_index: 0,
        sub_path_high: hex(4)?,
        sub_path_low: hex(7)?,
        trunk_id: slot.trunk_id,
        offset: slot.offset,
        size: slot.alloc_size,
    })
}

/// Where the file `id` lies on storage `member` of `c` when it is in a trunk slot (store path
/// 0): its trunk file and its slot; `None` for a file ID of no trunk slot.
pub fn trunk_slot_of(
    c: &Cluster,
    member: usize,
    id: &fdfs_client::FileId,
) -> Option<(PathBuf, fdfs_common::trunk::TrunkSlot)> {
    use fdfs_common::file_id::RemoteName;
    let slot = fdfs_common::trunk::TrunkSlot::of_name(&RemoteName::decode(&id.name).ok()?)?;
    let file = c.storages[member].store_paths[0]
        .join("data")
        .join(id.name.get(4..9)?)
        .join(slot.file_name());
    Some((file, slot))
}

/// Wait until every storage of `c` was told its group's trunk server (a member takes small
/// uploads into trunk slots only from then on).
pub fn wait_trunk_server_known(c: &Cluster) {
    // another build's daemons (upstream's) say it otherwise: the tracker's listing names the
    // trunk server once it has told the members
    if std::env::var_os("RFDFS_DAEMON_DIR").is_some() {
        let client = c.client();
        wait_for(
            "the tracker to name a trunk server",
            || {
                let l = client.list_storages(&c.storages[0].group, None).ok()?;
                l.iter().any(|s| s.if_trunk_server != 0).then_some(())
            },
            || c.tracker.log(),
        );
        return;
    }
    for s in &c.storages {
        wait_for(
            "a member was not told the trunk server",
            || s.daemon.log().contains("trunk server: ").then_some(()),
            || s.daemon.log(),
        );
    }
}
