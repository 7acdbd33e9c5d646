//! `<daemon> [options] <config_file> [start | stop | restart | status]` as upstream's daemons
//! take it (docs/protocol/config-cli-http.md 3.1-3.4), daemonizing, the pid file and signals.
//!
//! `start` re-executes the binary as a detached child and waits until that child reports that
//! it is listening and has written its pid file, so `ExecStart=... start` with `Type=forking`
//! and `PIDFile=` returns only once the daemon is really up, and a startup error becomes the
//! launcher's exit code instead of being visible only in the log.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What differs between fdfs_trackerd and fdfs_storaged.
#[derive(Debug, Clone, Copy)]
pub struct DaemonSpec {
    pub program: &'static str,
    /// `trackerd` / `storaged`: the log file name without `.log`
    pub log_name: &'static str,
}

impl DaemonSpec {
    pub fn pid_file(&self, base_path: &Path) -> PathBuf {
        base_path.join("data").join(format!("{}.pid", self.program))
    }
}

const CHILD_FLAG: &str = "--rfdfs-daemon-child";
const READY: &str = "ready";

/// Handed to the daemon's run function.
pub struct RunContext {
    pub spec: DaemonSpec,
    pub conf_file: PathBuf,
    pub foreground: bool,
    is_child: bool,
    pid_file: Option<PathBuf>,
    terminate: Arc<AtomicBool>,
    hup: Arc<AtomicUsize>,
}

impl RunContext {
    /// Call once listening: writes the pid file, tells the launcher we are up, and sends
    /// stdout/stderr into the log file (as upstream does once its log is open).
    pub fn ready(&mut self, base_path: &Path) -> std::io::Result<()> {
        let pid_file = self.spec.pid_file(base_path);
        std::fs::create_dir_all(base_path.join("data"))?;
        let tmp = pid_file.with_extension("pid.tmp");
        std::fs::write(&tmp, std::process::id().to_string())?;
        std::fs::rename(&tmp, &pid_file)?;
        self.pid_file = Some(pid_file);
        if self.is_child {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "{READY}");
            let _ = out.flush();
        }
        if let Some(f) = crate::log::log_file() {
            crate::log::redirect_std_streams(&f);
        }
        Ok(())
    }

    /// Block until SIGTERM/SIGINT/SIGQUIT, calling `tick` about every 100 ms, and rotating,
    /// compressing and deleting log files as `log` says (SIGHUP included).
    pub fn wait_for_shutdown(&self, log: &crate::config::LogConfig, tick: impl FnMut()) {
        self.wait_for_shutdown_with(log, Vec::new(), tick)
    }

    /// [`wait_for_shutdown`](Self::wait_for_shutdown), looking after `more` log files too.
    pub fn wait_for_shutdown_with(
        &self,
        log: &crate::config::LogConfig,
        mut more: Vec<crate::log::Rotation>,
        mut tick: impl FnMut(),
    ) {
        let mut rotation = crate::log::Rotation::new(log);
        let mut hups = self.hup.load(Ordering::SeqCst);
        while !self.terminate.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
            let h = self.hup.load(Ordering::SeqCst);
            if h != hups {
                hups = h;
                log::info!("catch signal 1, rotate log");
                rotation.on_hup();
                more.iter_mut().for_each(crate::log::Rotation::on_hup);
            }
            rotation.tick();
            more.iter_mut().for_each(crate::log::Rotation::tick);
            tick();
        }
        crate::log::line("CRIT", "catch signal 15, program exiting...");
    }

    pub fn terminate_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.terminate)
    }

    /// Remove our pid file if it still names us.
    pub fn finish(&self) {
        if let Some(p) = &self.pid_file {
            if std::fs::read_to_string(p).ok().as_deref() == Some(&std::process::id().to_string()) {
                let _ = std::fs::remove_file(p);
            }
        }
        crate::log::line("INFO", "exit normally.\n");
    }
}

/// Log a fatal startup error as upstream does and return the exit code.
pub fn fail(msg: &str, code: i32) -> i32 {
    crate::log::line("ERROR", msg);
    crate::log::line("CRIT", "exit abnormally!\n");
    code
}

/// Create `base_path` (one level, as upstream) and `base_path/data`, and open the log file
/// `base_path/logs/<log_name>.log` (unless `log_to_stderr`: lines stay on standard error).
/// Returns the data directory, or the exit code.
pub fn prepare_base_path(base: &Path, log_name: &str, log_to_stderr: bool) -> Result<PathBuf, i32> {
    if !base.is_dir() {
        std::fs::create_dir(base).map_err(|e| {
            fail(
                &format!("mkdir \"{}\" fail, error info: {e}", base.display()),
                e.raw_os_error().unwrap_or(2),
            )
        })?;
    }
    let data = base.join("data");
    std::fs::create_dir_all(&data).map_err(|e| {
        fail(
            &format!("mkdir \"{}\" fail, error info: {e}", data.display()),
            e.raw_os_error().unwrap_or(2),
        )
    })?;
    if log_to_stderr {
        return Ok(data);
    }
    crate::log::open_file(base.join("logs").join(format!("{log_name}.log"))).map_err(|e| {
        fail(
            &format!("open log file fail: {e}"),
            e.raw_os_error().unwrap_or(2),
        )
    })?;
    Ok(data)
}

/// Descriptors a daemon needs beyond its client connections: files being received or sent,
/// binlogs, logs, sync and tracker connections, listeners.
const FILE_RESERVE: u64 = 256;

/// Raise the soft RLIMIT_NOFILE to what `max_connections` on the protocol port (and on the
/// HTTP port, `with_http`) and `FILE_RESERVE` need: systemd gives services a soft limit of
/// 1024, and upstream raises it to `max_connections` at startup as well. Up to the hard limit,
/// which only root may raise; short of it, a warning naming both numbers.
pub fn raise_nofile_limit(server: &crate::config::ServerConfig, with_http: bool) {
    use nix::sys::resource::{setrlimit, Resource};
    let listeners = 1 + u64::from(with_http);
    let wanted = server.max_connections as u64 * listeners + FILE_RESERVE;
    let (soft, hard) = crate::server::nofile_limit();
    if soft >= wanted {
        return;
    }
    if hard < wanted && setrlimit(Resource::RLIMIT_NOFILE, wanted, wanted).is_ok() {
        log::info!("max open files raised from {soft} to {wanted}");
        return;
    }
    let new_soft = wanted.min(hard);
    match setrlimit(Resource::RLIMIT_NOFILE, new_soft, hard) {
        Ok(()) if new_soft >= wanted => {
            log::info!("max open files raised from {soft} to {new_soft}")
        }
        Ok(()) => log::warn!(
            "max open files is {new_soft} (the hard limit), below the {wanted} that \
             max_connections needs: raise LimitNOFILE (systemd) or ulimit -Hn"
        ),
        Err(e) => log::warn!(
            "max open files stays {soft}, below the {wanted} that max_connections needs: \
             setrlimit fail: {e}"
        ),
    }
}

/// The protocol port and, with `http_port`, the HTTP port, bound first (as root, so that
/// privileged ports work, and so that a protocol port in use stops the start); on failure the
/// exit code, the reason logged. An HTTP port in use does not stop it: upstream's storages
/// before 6.13 carried `http.server_port` for nginx with fastdfs-nginx-module on the same host,
/// and such a config must still start (without the built-in HTTP server, said in a warning).
pub fn bind_ports(
    server: &crate::config::ServerConfig,
    http_port: Option<u16>,
) -> Result<(crate::server::Listeners, Option<crate::server::Listeners>), i32> {
    use crate::server::bind_listener;
    let code = |e: &std::io::Error| e.raw_os_error().unwrap_or(98);
    let listener = bind_listener(&server.bind_addr, server.address_family, server.port)
        .map_err(|e| fail(&e.to_string(), code(&e)))?;
    let family = server.address_family;
    let http = http_port.and_then(
        |port| match bind_listener(&server.bind_addr, family, port) {
            Ok(l) => Some(l),
            Err(e) => {
                log::warn!(
                    "http.server_port {port} is taken ({e}): most likely nginx with \
                 fastdfs-nginx-module serves it, as upstream's setups did; running without \
                 the built-in HTTP server"
                );
                None
            }
        },
    );
    Ok((listener, http))
}

/// Bind `metrics.server_port`, when set, with the other ports (before any privilege switch).
pub fn bind_metrics(
    server: &crate::config::ServerConfig,
) -> Result<Option<crate::server::Listeners>, i32> {
    if server.metrics_port == 0 {
        return Ok(None);
    }
    crate::server::bind_listener(
        &server.bind_addr,
        server.address_family,
        server.metrics_port,
    )
    .map(Some)
    .map_err(|e| {
        fail(
            &format!("metrics service: {e}"),
            e.raw_os_error().unwrap_or(98),
        )
    })
}

/// Serve `/metrics` and `/health` on a listener from [`bind_metrics`].
pub fn start_metrics(
    listener: Option<crate::server::Listeners>,
    server: &crate::config::ServerConfig,
    endpoint: std::sync::Arc<crate::metrics_endpoint::Endpoint>,
) -> Result<Option<crate::server::Server>, i32> {
    let Some(l) = listener else {
        return Ok(None);
    };
    let opts = crate::server::ServerOptions {
        port: server.metrics_port,
        accept_threads: 1,
        work_threads: 1,
        max_connections: 16,
        ..crate::server::ServerOptions::of("metrics", server)
    };
    match crate::server::Server::start_handler(l, opts, endpoint) {
        Ok(s) => {
            log::info!("metrics service on port {}", server.metrics_port);
            Ok(Some(s))
        }
        Err(e) => Err(fail(
            &format!("start metrics service fail: {e}"),
            e.raw_os_error().unwrap_or(5),
        )),
    }
}

/// The user and group named by `run_by_user` / `run_by_group` (empty: stay as we are).
#[derive(Debug, Clone)]
pub struct RunBy {
    user: Option<nix::unistd::User>,
    group: Option<nix::unistd::Group>,
}

impl RunBy {
    /// `run_by_user` / `run_by_group` of `conf_file`; an unknown one is a configuration error
    /// (exit code 22, the reason logged), found before anything is bound.
    pub fn of(server: &crate::config::ServerConfig, conf_file: &Path) -> Result<RunBy, i32> {
        RunBy::lookup(&server.run_by_group, &server.run_by_user)
            .map_err(|e| fail(&format!("{}: {e}", conf_file.display()), 22))
    }

    pub fn lookup(group: &str, user: &str) -> Result<RunBy, String> {
        use nix::unistd::{Group, User};
        let group = if group.is_empty() {
            None
        } else {
            Some(
                Group::from_name(group)
                    .map_err(|e| format!("run_by_group {group}: {e}"))?
                    .ok_or_else(|| format!("run_by_group: unknown group: {group}"))?,
            )
        };
        let user = if user.is_empty() {
            None
        } else {
            Some(
                User::from_name(user)
                    .map_err(|e| format!("run_by_user {user}: {e}"))?
                    .ok_or_else(|| format!("run_by_user: unknown user: {user}"))?,
            )
        };
        Ok(RunBy { user, group })
    }

    fn ids(&self) -> (Option<nix::unistd::Uid>, Option<nix::unistd::Gid>) {
        (
            self.user.as_ref().map(|u| u.uid),
            self.group
                .as_ref()
                .map(|g| g.gid)
                .or(self.user.as_ref().map(|u| u.gid)),
        )
    }

    /// Hand `root` and everything under it to the run-by user, so that what the daemon made
    /// while it was still root (data files, binlogs, logs, store path trees) stays writable
    /// after the switch. A tree whose top already belongs to it is taken as done (a store path
    /// of millions of files is walked once, not at every start).
    pub fn chown_tree(&self, root: &Path) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        let (uid, gid) = self.ids();
        if uid.is_none() && gid.is_none() || !nix::unistd::geteuid().is_root() {
            return Ok(());
        }
        let owned = |m: &std::fs::Metadata| {
            uid.is_none_or(|u| m.uid() == u.as_raw()) && gid.is_none_or(|g| m.gid() == g.as_raw())
        };
        match std::fs::symlink_metadata(root) {
            Ok(m) if owned(&m) => return Ok(()),
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
        let mut stack = vec![root.to_path_buf()];
        while let Some(p) = stack.pop() {
            nix::unistd::fchownat(None, &p, uid, gid, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| format!("chown {} to the run_by user fail: {e}", p.display()))?;
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                let entries =
                    std::fs::read_dir(&p).map_err(|e| format!("read {} fail: {e}", p.display()))?;
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
        Ok(())
    }

    /// Hand `trees` over (see `chown_tree`), then switch for good.
    pub fn take_over(&self, trees: &[PathBuf]) -> Result<(), String> {
        for t in trees {
            self.chown_tree(t)?;
        }
        self.switch()
    }

    /// Switch to the group, then the user, for good (after binding and writing the pid file):
    /// real, effective and saved ids, all threads, and no supplementary group of root's left.
    pub fn switch(&self) -> Result<(), String> {
        use nix::unistd::{setgid, setgroups, setuid};
        let (uid, gid) = self.ids();
        if let Some(g) = gid {
            if nix::unistd::geteuid().is_root() {
                setgroups(&[g]).map_err(|e| format!("setgroups fail: {e}"))?;
            }
            setgid(g).map_err(|e| format!("setgid fail: {e}"))?;
        }
        if let Some(u) = uid {
            setuid(u).map_err(|e| format!("setuid fail: {e}"))?;
        }
        Ok(())
    }
}

fn usage(program: &str) -> String {
    format!(
        "\nUsage: {program} [options] <config_file> [start | stop | restart | status]\n\n\
         options:\n\t-N | --no-daemon: run in foreground\n\t-V | --version: show version info\n\t-h | --help: for this usage\n"
    )
}

/// Only `base_path`, as upstream's actions read it to find the pid file.
fn base_path_of(conf: &Path) -> PathBuf {
    crate::config::IniFile::load(conf)
        .ok()
        .and_then(|ini| ini.string("base_path"))
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

fn read_pid(pid_file: &Path) -> Option<i32> {
    std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

fn exe_name_of(pid: i32) -> Option<String> {
    let p = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    Some(
        p.file_name()?
            .to_string_lossy()
            .trim_end_matches(" (deleted)")
            .to_string(),
    )
}

fn own_exe_name() -> Option<String> {
    let p = std::env::current_exe().ok()?;
    Some(p.file_name()?.to_string_lossy().to_string())
}

/// Stop the daemon named by the pid file. `quiet` is restart's mode: nothing to stop is fine.
fn stop(pid_file: &Path, quiet: bool) -> i32 {
    let Some(pid) = read_pid(pid_file) else {
        if quiet {
            return 0;
        }
        eprintln!("pid file: {} not exist!", pid_file.display());
        return 2;
    };
    let p = Pid::from_raw(pid);
    if let Err(e) = kill(p, Signal::SIGTERM) {
        if quiet {
            return 0;
        }
        eprintln!(
            "kill pid: {pid} fail, errno: {}, error info: {}",
            e as i32,
            e.desc()
        );
        return e as i32;
    }
    eprintln!("waiting for pid [{pid}] exit ...");
    let start = Instant::now();
    let mut last_term = Instant::now();
    while kill(p, None).is_ok() && !is_zombie(pid) {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = kill(p, Signal::SIGKILL);
            eprintln!("waiting for pid [{pid}] exit timeout, force kill!");
            break;
        }
        if last_term.elapsed() >= Duration::from_secs(1) {
            let _ = kill(p, Signal::SIGTERM);
            last_term = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("pid [{pid}] exit.\n");
    0
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.starts_with('Z')))
        .unwrap_or(false)
}

/// Parse the command line, perform the action, and call `run` for start. Returns the exit code.
pub fn main(spec: DaemonSpec, args: Vec<String>, run: fn(RunContext) -> i32) -> i32 {
    let mut foreground = false;
    let mut is_child = false;
    let mut positional = Vec::new();
    for a in args.iter().skip(1) {
        match a.as_str() {
            "-N" | "--no-daemon" => foreground = true,
            "-V" | "--version" => {
                println!("\n{} V{}\n", spec.program, crate::proto::VERSION);
                return 0;
            }
            "-h" | "--help" => {
                eprintln!("{}", usage(spec.program));
                return 0;
            }
            CHILD_FLAG => is_child = true,
            s if s.starts_with('-') => {
                eprintln!("\nError: unrecognized option: {s}{}", usage(spec.program));
                return 0;
            }
            s => positional.push(s.to_string()),
        }
    }
    if positional.is_empty() {
        eprintln!("{}", usage(spec.program));
        return 1;
    }
    if positional.len() > 2 {
        eprintln!("\nError: too many arguments!{}", usage(spec.program));
        return 0;
    }
    let conf = PathBuf::from(&positional[0]);
    let action = positional.get(1).map(String::as_str).unwrap_or("start");
    let pid_file = spec.pid_file(&base_path_of(&conf));
    match action {
        "start" => {}
        "stop" => return stop(&pid_file, false),
        "restart" => {
            if read_pid(&pid_file).is_some_and(|p| kill(Pid::from_raw(p), None).is_ok()) {
                stop(&pid_file, true);
                eprintln!("starting ...");
            }
        }
        "status" => {
            return match read_pid(&pid_file) {
                Some(pid) if kill(Pid::from_raw(pid), None).is_ok() => {
                    println!("Running, pid: {pid}");
                    0
                }
                _ => {
                    println!("NOT running");
                    2
                }
            }
        }
        other => {
            eprintln!("invalid action: {other}{}", usage(spec.program));
            return 22;
        }
    }
    if !is_child {
        if let Some(pid) = read_pid(&pid_file) {
            if kill(Pid::from_raw(pid), None).is_ok() && exe_name_of(pid) == own_exe_name() {
                eprintln!("process {} already running, pid: {pid}", args[0]);
                return 17;
            }
        }
    }
    if !foreground && !is_child {
        return launch_child(&conf);
    }
    if is_child {
        // a session of its own: no controlling terminal, untouched by the launcher's shell
        let _ = nix::unistd::setsid();
    }
    let terminate = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicUsize::new(0));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGQUIT,
    ] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&terminate));
    }
    spawn_signal_thread(Arc::clone(&hup));
    let conf_abs = std::fs::canonicalize(&conf).unwrap_or(conf);
    let ctx = RunContext {
        spec,
        conf_file: conf_abs,
        foreground,
        is_child,
        pid_file: None,
        terminate,
        hup,
    };
    run(ctx)
}

/// SIGHUP is counted for the main loop; SIGUSR1/2 are logged and ignored (Rust already
/// ignores SIGPIPE).
fn spawn_signal_thread(hup: Arc<AtomicUsize>) {
    use signal_hook::consts::{SIGHUP, SIGUSR1, SIGUSR2};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGHUP, SIGUSR1, SIGUSR2]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("signal".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGHUP {
                    hup.fetch_add(1, Ordering::SeqCst);
                } else {
                    log::info!("catch signal {sig}, ignore it");
                }
            }
        });
}

/// Start ourselves detached and wait for the child's "ready" (or its exit code).
fn launch_child(conf: &Path) -> i32 {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("can't find own executable: {e}");
            return 2;
        }
    };
    let conf_abs = std::fs::canonicalize(conf).unwrap_or_else(|_| conf.to_path_buf());
    let child = Command::new(exe)
        .arg(CHILD_FLAG)
        .arg(&conf_abs)
        .arg("start")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .current_dir("/")
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("start daemon fail: {e}");
            return e.raw_os_error().unwrap_or(1);
        }
    };
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    if line.trim() == READY {
        return 0;
    }
    match child.wait() {
        Ok(st) => st.code().unwrap_or(1),
        Err(_) => 1,
    }
}
