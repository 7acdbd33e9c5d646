//! fdfs-storage: the rfdfs storage server.
//!
//! `storage` holds the daemon's state (config, store paths, binlog, statistics, the identity
//! the trackers gave it). Files live in the store paths under upstream's `data/HH/HH` layout
//! (`store`); clients' commands are served by `service` (downloads zero-copy, `zero_copy`, and
//! over HTTP, `http`), replicas pushed by the other members of the group by `replica`. Every
//! change goes to the binlog (`binlog`); one thread per member replays it to that member
//! (`sync`), and a storage that lost its data fetches it back from a member (`recovery`). The
//! `reporter` joins the trackers and beats to them; the sync threads reach the trackers through
//! its `tracker_link`. `metrics` serves `/metrics` and `/health`.
//!
//! Small files go into trunk files when the tracker says so: `trunk` is a member's part (slots
//! asked for, written, freed; the trunk binlog kept) and the trunk server's (allocation,
//! binlog push, snapshot, compaction), `trunk_alloc` the free-space index; reading a file in
//! a trunk is `store::Store::open_stored`.

#![forbid(unsafe_code)]

pub mod access_log;
pub mod binlog;
pub mod binlog_compression;
pub mod binlog_repair;
pub mod copies;
pub mod http;
pub mod init_flag;
pub mod job;
pub mod mark;
pub mod mark_moves;
pub mod metrics;
pub mod open_syncs;
pub mod peers;
pub mod reconcile;
pub mod recovery;
pub mod replica;
pub mod reporter;
pub mod scrub;
pub mod service;
pub mod slot_blocks;
pub mod stat_file;
pub mod state_file;
pub mod storage;
pub mod store;
pub mod sync;
pub mod tracker_handshake;
pub mod tracker_link;
pub mod trunk;
pub mod trunk_alloc;
pub mod zero_copy;

use fdfs_common::config::StorageConfig;
use fdfs_common::daemon::{DaemonSpec, RunContext};
use fdfs_common::server::{AllowHosts, Server, ServerOptions};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SPEC: DaemonSpec = DaemonSpec {
    program: "fdfs_storaged",
    log_name: "storaged",
};

/// An append the daemon died in the middle of: its line (written before the bytes, as
/// `old_size append_size`) is the last change to the file, and the file is longer than before
/// it but shorter than after. The client was never answered: the file goes back to its size
/// before, as if the append had not come (the sync sender skips a line whose bytes are not
/// all there). Only the tail of the binlog being written is read: the appends in flight at
/// a crash are among its last lines.
fn recover_torn_appends(st: &store::Store, sync_dir: &std::path::Path) {
    let mut last: std::collections::HashMap<String, binlog::Record> = Default::default();
    for r in binlog::tail_records(sync_dir, 256 * 1024) {
        last.insert(r.name.clone(), r);
    }
    for r in last.values().filter(|r| r.op == binlog::op::APPEND) {
        let Some((old, size)) = r.arg_pair::<u64>() else {
            continue;
        };
        let Ok(ln) = fdfs_common::file_id::LogicalName::parse(&r.name, st.paths.len()) else {
            continue;
        };
        let path = st.local_path(&ln);
        let Ok(len) = std::fs::metadata(&path).map(|m| m.len()) else {
            continue;
        };
        if len > old && len < old + size {
            match std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(old))
            {
                Ok(()) => log::warn!(
                    "append to {} cut short by a crash ({len} of {} bytes): back to {old} bytes",
                    r.name,
                    old + size
                ),
                Err(e) => log::error!("undo the torn append to {} fail: {e}", r.name),
            }
        }
    }
}

/// Load or create `.data_init_flag`, build the data trees and check the store path marks.
/// Also returns the IP the flag recorded from the previous run (empty on a first start).
fn init_store(
    cfg: &StorageConfig,
    st: &store::Store,
    my_ip: &str,
) -> Result<(init_flag::InitFlag, String), String> {
    let data = cfg.server.base_path.join("data");
    let flag_path = data.join(init_flag::DATA_INIT_FLAG);
    let n = cfg.store_paths.len();
    let now = fdfs_common::now();
    let existing = init_flag::InitFlag::load(&flag_path, n)?;
    let in_service = existing.as_ref().is_some_and(|f| f.sync_old_done);
    let mut flag = existing.unwrap_or_else(|| init_flag::InitFlag {
        storage_join_time: now,
        last_server_port: cfg.server.port as i64,
        store_path_marks: vec![None; n],
        ..Default::default()
    });
    flag.store_path_marks.resize(n, None);
    for i in 0..n {
        if !cfg.store_paths[i].is_dir() {
            return Err(format!(
                "store path \"{}\" not exist or not a directory",
                cfg.store_paths[i].display()
            ));
        }
        st.reset_temp_dir(i).map_err(|e| {
            format!(
                "prepare temp dir of {} fail: {e}",
                cfg.store_paths[i].display()
            )
        })?;
        let missing = st.make_data_dirs(i).map_err(|e| {
            format!(
                "mkdir data dirs of {} fail: {e}",
                cfg.store_paths[i].display()
            )
        })?;
        let created = missing > 0;
        if in_service && created {
            // a recovery is recorded in the store path itself (upstream's flag): a store path
            // that is there but blank is not new
            let flag = st.data_dir(i).join(recovery::RECOVERY_FLAG);
            if !flag.exists() {
                log::warn!(
                    "store path #{i}: {missing} sub directories were missing; its files are \
                     fetched from the group's members"
                );
                let text = "saved_storage_status=7\nfetch_binlog_done=0\nrecovery_threads=-1\n";
                store::write_atomic(&flag, text.as_bytes())
                    .map_err(|e| format!("write {} fail: {e}", flag.display()))?;
            }
        }
        if !cfg.check_store_path_mark {
            continue;
        }
        let mark_file = st.data_dir(i).join(store::MARK_FILE);
        let on_disk = state_file::read_kv(&mark_file)
            .ok()
            .and_then(|kv| kv.get("store_path_mark").cloned());
        match (&flag.store_path_marks[i], on_disk) {
            (Some(expected), Some(found)) if *expected != found => {
                return Err(format!(
                    "the store path #{i} {} is used by another storage (mark mismatch)",
                    cfg.store_paths[i].display()
                ));
            }
            (None, Some(_)) => {
                return Err(format!(
                    "the store path #{i} {} maybe used by other storage",
                    cfg.store_paths[i].display()
                ));
            }
            (Some(_), Some(_)) => {}
            (_, None) => {
                if flag.store_path_marks[i].is_some() && !created {
                    log::warn!("store path #{i} lost its mark file, make a new one");
                }
                let mark = init_flag::make_mark(my_ip, cfg.server.port, i as u8, now as i32);
                store::write_atomic(&mark_file, format!("store_path_mark={mark}\n").as_bytes())
                    .map_err(|e| format!("write {} fail: {e}", mark_file.display()))?;
                flag.store_path_marks[i] = Some(mark);
            }
        }
    }
    let previous_ip = std::mem::replace(&mut flag.last_ip_addr, my_ip.to_string());
    flag.last_server_port = cfg.server.port as i64;
    store::write_atomic(&flag_path, flag.to_text().as_bytes())
        .map_err(|e| format!("write {} fail: {e}", flag_path.display()))?;
    Ok((flag, previous_ip))
}

/// `group_name` absent from storage.conf: the group storage_ids.conf lists this storage in, from
/// the first tracker that answers GET_GROUP_NAME (with the address it sees us at and our port).
fn group_name_from_trackers(cfg: &StorageConfig) -> Result<String, String> {
    use fdfs_common::codec::Message;
    use fdfs_common::proto::cluster::{GetGroupNameReq, GroupName};
    use fdfs_common::proto::errno;
    let c = &cfg.server;
    let req = GetGroupNameReq {
        ip: String::new(),
        port: c.port as i32,
    }
    .to_bytes();
    let mut last = String::from("no tracker server");
    for t in &cfg.tracker_servers {
        let asked = fdfs_common::net::connect(
            &t.host,
            t.port,
            cfg.client_bind_ip(),
            Duration::from_secs(c.connect_timeout),
            Duration::from_secs(c.network_timeout),
        )
        .map_err(|e| e.to_string())
        .and_then(|mut s| {
            let r = fdfs_common::net::request(
                &mut s,
                fdfs_common::proto::cmd::STORAGE_GET_GROUP_NAME,
                &req,
            );
            fdfs_common::net::quit(s);
            r.map_err(|e| match u8::try_from(e.errno()) {
                Ok(errno::EOPNOTSUPP) => {
                    "the tracker does not use storage ids (use_storage_id = false)".to_string()
                }
                Ok(errno::ENOENT) => {
                    "storage_ids.conf does not list this storage's address and port".to_string()
                }
                _ => e.to_string(),
            })
        })
        .and_then(|b| GroupName::from_bytes(&b).map_err(|e| e.to_string()));
        match asked {
            Ok(g) if fdfs_common::proto::valid_group_name(&g.group) => {
                log::info!(
                    "group_name not in the config file: tracker server {t} says {}",
                    g.group
                );
                return Ok(g.group);
            }
            Ok(g) => {
                last = format!(
                    "tracker server {t} answered invalid group name {:?}",
                    g.group
                )
            }
            Err(e) => last = format!("tracker server {t}: {e}"),
        }
    }
    Err(format!(
        "conf file \"{}\" has no item \"group_name\" and no tracker server told it: {last}",
        cfg.server.conf_file.display()
    ))
}

/// The storage's access log as the rotation sees it.
struct AccessLogRotation(Arc<storage::Storage>);

impl fdfs_common::log::LogFile for AccessLogRotation {
    fn path(&self) -> Option<std::path::PathBuf> {
        self.0.access_log.as_ref().map(|l| l.path().to_path_buf())
    }
    /// always with the time: upstream's access log names its old files so
    fn rotate(&self, _with_time: bool) {
        if let Some(l) = &self.0.access_log {
            l.rotate();
        }
    }
    fn size(&self) -> u64 {
        self.0
            .access_log
            .as_ref()
            .map_or(0, access_log::AccessLog::size)
    }
}

/// Run the storage until SIGTERM; returns the exit code.
pub fn run(mut ctx: RunContext) -> i32 {
    fdfs_common::log::init(log::LevelFilter::Info);
    let mut cfg = match StorageConfig::load(&ctx.conf_file) {
        Ok(c) => c,
        Err(e) => return fdfs_common::daemon::fail(&e.to_string(), e.code),
    };
    let run_by = match fdfs_common::daemon::RunBy::of(&cfg.server, &ctx.conf_file) {
        Ok(r) => r,
        Err(code) => return code,
    };
    fdfs_common::log::init(cfg.server.log.level);
    let base = cfg.server.base_path.clone();
    let data = match fdfs_common::daemon::prepare_base_path(&base, SPEC.log_name) {
        Ok(d) => d,
        Err(code) => return code,
    };
    cfg.key_warnings.iter().for_each(|w| log::warn!("{w}"));
    if cfg.group_name.is_empty() {
        match group_name_from_trackers(&cfg) {
            Ok(g) => cfg.group_name = g,
            Err(e) => return fdfs_common::daemon::fail(&e, 2),
        }
    }
    fdfs_common::daemon::raise_nofile_limit(&cfg.server, cfg.http.server_port != 0);
    let (listener, http_listener) = match fdfs_common::daemon::bind_ports(
        &cfg.server,
        cfg.http.enabled().then_some(cfg.http.server_port),
    ) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let mut metrics_listener = match fdfs_common::daemon::bind_metrics(&cfg.server) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let st = store::Store::new(&cfg);
    let binlog = match binlog::Binlog::open(&data.join("sync"), cfg.durable()) {
        Ok(b) => b,
        Err(e) => {
            return fdfs_common::daemon::fail(
                &format!("open binlog fail: {e}"),
                e.raw_os_error().unwrap_or(5),
            )
        }
    };
    recover_torn_appends(&st, &data.join("sync"));
    // before any sync thread reads: marks the binlog no longer reaches
    let lines_lost = binlog_repair::check_marks(&binlog) | binlog.lost_lines_before_open();
    let (stats, cursor) = stat_file::load_stat_file(&data.join(stat_file::STAT_FILE));
    st.set_cursor(cursor);
    let storage = Arc::new(storage::Storage::new(cfg.clone(), st, binlog, stats));
    if lines_lost {
        binlog_repair::request(&storage);
    }
    if let Err(e) = ctx.ready(&base) {
        return fdfs_common::daemon::fail(
            &format!("write pid file fail: {e}"),
            e.raw_os_error().unwrap_or(2),
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let rep = Arc::new(reporter::Reporter {
        storage: Arc::clone(&storage),
        init_flag: Mutex::new(init_flag::InitFlag::default()),
        init_flag_path: data.join(init_flag::DATA_INIT_FLAG),
        up_time: fdfs_common::now(),
        stop: Arc::clone(&stop),
        joined: Mutex::new(Vec::new()),
        answered_join: Mutex::new(Default::default()),
        leader: Arc::new(Mutex::new(None)),
        sync_dest_lock: Mutex::new(()),
        sync_threads: Mutex::new(std::collections::HashMap::new()),
        mark_moves: Default::default(),
        last_prune: std::sync::atomic::AtomicI64::new(0),
    });
    // /health says 503 while the tracker handshake waits; started here only when no switch to
    // run_by_user/run_by_group is pending, since nothing is served before the switch
    let mut metrics_server = None;
    if cfg.server.run_by_user.is_empty() && cfg.server.run_by_group.is_empty() {
        if let Err(code) = serve_metrics(&mut metrics_server, &mut metrics_listener, &rep) {
            return code;
        }
    }
    // the tracker handshake may wait for a tracker to come up; SIGTERM must still work meanwhile
    let term = ctx.terminate_flag();
    let stop2 = Arc::clone(&stop);
    let watcher = std::thread::spawn(move || {
        while !term.load(Ordering::SeqCst) && !stop2.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
        stop2.store(true, Ordering::SeqCst);
    });
    let Some(my_ips) = tracker_handshake::get_my_ip(&rep) else {
        return 0;
    };
    // with storage ids the tracker may answer both listed addresses, inner first
    let my_ip = my_ips[0].clone();
    *storage.my_ip.write() = my_ip.clone();
    let Some(params) = tracker_handshake::fetch_parameters(&rep) else {
        return 0;
    };
    *storage.params.write() = params;
    match tracker_handshake::resolve_my_id(&rep, &my_ips) {
        Ok(id) => *storage.my_id.write() = id,
        Err(_) if stop.load(Ordering::SeqCst) => return 0,
        Err(e) => return fdfs_common::daemon::fail(&format!("get my server id fail: {e}"), 2),
    }
    match init_store(&cfg, &storage.store, &my_ip) {
        Ok((f, previous_ip)) => {
            storage
                .trunk_last_compress_time
                .store(f.trunk_last_compress_time, Ordering::Relaxed);
            storage
                .join_time
                .store(f.storage_join_time, Ordering::Relaxed);
            *rep.init_flag.lock() = f;
            let p = storage.params.read().clone();
            if !p.use_storage_id
                && p.storage_ip_changed_auto_adjust
                && !previous_ip.is_empty()
                && previous_ip != my_ip
            {
                tracker_handshake::report_ip_changed(&rep, &previous_ip, &my_ip);
            }
        }
        Err(e) => return fdfs_common::daemon::fail(&e, 2),
    }
    let opts = ServerOptions {
        name: "storage",
        bind_addr: cfg.server.bind_addr.clone(),
        port: cfg.server.port,
        accept_threads: cfg.server.accept_threads,
        work_threads: cfg.server.work_threads,
        max_connections: cfg.server.max_connections,
        network_timeout: Duration::from_secs(cfg.server.network_timeout),
        allow_hosts: AllowHosts::parse(&cfg.server.allow_hosts),
    };
    let http_opts = ServerOptions {
        name: "http",
        port: cfg.http.server_port,
        ..opts.clone()
    };
    // bound and prepared as root; from here on, nothing is served or written as root
    let mut trees = vec![base.join("data"), base.join("logs")];
    trees.extend(cfg.store_paths.iter().map(|p| p.join("data")));
    if let Err(e) = run_by.take_over(&trees) {
        return fdfs_common::daemon::fail(&e, 1);
    }
    let mut server = match Server::start_on(listener, opts, Arc::clone(&storage)) {
        Ok(s) => s,
        Err(e) => {
            return fdfs_common::daemon::fail(
                &format!("start service fail: {e}"),
                e.raw_os_error().unwrap_or(5),
            )
        }
    };
    let mut http_server = match http_listener {
        None => None,
        Some(l) => {
            let h = Arc::new(http::HttpServer {
                storage: Arc::clone(&storage),
                cfg: cfg.http.clone(),
            });
            match Server::start_handler(l, http_opts, h) {
                Ok(s) => {
                    log::info!("http service on port {}", cfg.http.server_port);
                    Some(s)
                }
                Err(e) => {
                    return fdfs_common::daemon::fail(
                        &format!("start http service fail: {e}"),
                        e.raw_os_error().unwrap_or(5),
                    )
                }
            }
        }
    };
    let _ = storage.conn_stats.set(Arc::clone(&server.stats));
    if let Err(code) = serve_metrics(&mut metrics_server, &mut metrics_listener, &rep) {
        return code;
    }
    log::info!(
        "rfdfs storage v{}, group_name={}, my ip={my_ip}, my id={}, port={}, base_path={}, store_path_count={}, \
         subdir_count_per_path={}, max_connections={}, work_threads={}, heart_beat_interval={}s, \
         stat_report_interval={}s, network_timeout={}s",
        fdfs_common::proto::VERSION,
        cfg.group_name,
        storage.my_id.read(),
        cfg.server.port,
        base.display(),
        cfg.store_paths.len(),
        cfg.subdir_count_per_path,
        cfg.server.max_connections,
        cfg.server.work_threads,
        cfg.heart_beat_interval,
        cfg.stat_report_interval,
        cfg.server.network_timeout
    );
    let reporters: Vec<_> = cfg
        .tracker_servers
        .iter()
        .map(|t| {
            let r = Arc::clone(&rep);
            let t = t.clone();
            std::thread::Builder::new()
                .name("reporter".into())
                .spawn(move || r.run(t))
                .expect("spawn reporter")
        })
        .collect();
    // the trunk server pushes its trunk binlog to the members (nothing to do otherwise) every
    // 100 ms, not upstream's second: a member taking the role after a crash knows nothing of
    // the allocations it was not sent, and may hand their slots out again
    let trunk_pusher = {
        let (s, stop) = (Arc::clone(&storage), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("trunk-binlog".into())
            .spawn(move || {
                let mut jobs = trunk::TrunkJobs::default();
                while !stop.load(Ordering::Relaxed) {
                    s.trunk_housekeeping(&mut jobs);
                    s.push_trunk_binlog();
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
            .expect("spawn trunk binlog pusher")
    };
    let scrubber = (cfg.scrub_bytes_per_second > 0).then(|| {
        let (s, stop) = (Arc::clone(&storage), Arc::clone(&stop));
        let rate = cfg.scrub_bytes_per_second;
        std::thread::Builder::new()
            .name("scrub".into())
            .spawn(move || scrub::run(&s, &stop, rate))
            .expect("spawn scrub")
    });
    let reconciler = (cfg.reconcile_interval > 0).then(|| {
        let (s, stop) = (Arc::clone(&storage), Arc::clone(&stop));
        let interval = cfg.reconcile_interval;
        std::thread::Builder::new()
            .name("reconcile".into())
            .spawn(move || reconcile::run(&s, &stop, interval))
            .expect("spawn reconcile")
    });
    let stat_path = data.join(stat_file::STAT_FILE);
    let save_stats = |storage: &storage::Storage| {
        let s = *storage.stats.lock();
        let text = stat_file::stat_file_text(&s, storage.store.cursor());
        let _ = state_file::save(&stat_path, text.as_bytes());
    };
    let mut last_stat = Instant::now();
    let mut saved_version = 0;
    let mut last_binlog_sync = Instant::now();
    let mut last_end_record = Instant::now();
    let mut recoveries = job::Job::new("recovery", Duration::from_secs(1));
    let mut rerecords = job::Job::new("rerecord", Duration::from_secs(1));
    let mut binlog_compression = binlog_compression::BinlogCompression::new(&cfg);
    let stat_every = Duration::from_secs(cfg.sync_stat_file_interval);
    let binlog_every = Duration::from_secs(cfg.sync_binlog_buff_interval);
    let more_logs: Vec<fdfs_common::log::Rotation> = match storage.access_log {
        Some(_) => vec![fdfs_common::log::Rotation::of(
            &cfg.access_log_rotation,
            Box::new(AccessLogRotation(Arc::clone(&storage))),
        )],
        None => Vec::new(),
    };
    ctx.wait_for_shutdown_with(&cfg.server.log, more_logs, || {
        if last_stat.elapsed() >= stat_every {
            last_stat = Instant::now();
            let v = storage.stats_version.load(Ordering::Relaxed);
            if v != saved_version {
                saved_version = v;
                save_stats(&storage);
            }
        }
        let (s, stop2) = (Arc::clone(&storage), Arc::clone(&stop));
        recoveries.poll(
            || (0..storage.store.paths.len()).find(|&i| recovery::due(&storage, i)),
            move |i| recovery::run_due(&s, i, &stop2),
        );
        let (s, stop2) = (Arc::clone(&storage), Arc::clone(&stop));
        rerecords.poll(
            || binlog_repair::requested(&storage).then_some(()),
            move |()| binlog_repair::run_requested(&s, &stop2),
        );
        rep.note_trunk_compaction();
        binlog_compression.run_when_due(&storage);
        if last_binlog_sync.elapsed() >= binlog_every {
            last_binlog_sync = Instant::now();
            // where it ends is recorded about every 10 s (three fsyncs), to find lines lost
            let record_end = last_end_record.elapsed() >= Duration::from_secs(10);
            if record_end {
                last_end_record = Instant::now();
            }
            storage.binlog.sync(record_end);
        }
        // a binlog that refused lines is tried again every tick, so that writes come back
        // (and the trackers hear of it) once there is room, with or without a client asking
        let _ = storage.binlog.writable();
    });
    if let Some(h) = http_server.as_mut() {
        h.stop(Duration::from_secs(10));
    }
    if let Some(m) = metrics_server.as_mut() {
        m.stop(Duration::from_secs(1));
    }
    server.stop(Duration::from_secs(90));
    stop.store(true, Ordering::SeqCst);
    for r in reporters {
        let _ = r.join();
    }
    let _ = trunk_pusher.join();
    storage.save_trunk_state_at_exit();
    rep.note_trunk_compaction();
    storage.open_syncs.end_all();
    for (_, t) in rep.sync_threads.lock().drain() {
        let _ = t.join();
    }
    recoveries.finish();
    rerecords.finish();
    binlog_compression.finish();
    for h in [scrubber, reconciler].into_iter().flatten() {
        let _ = h.join();
    }
    let _ = watcher.join();
    storage.binlog.sync(true);
    save_stats(&storage);
    ctx.finish();
    0
}

/// Start the metrics endpoint on `listener` unless that was done already.
fn serve_metrics(
    server: &mut Option<fdfs_common::server::Server>,
    listener: &mut Option<fdfs_common::server::Listeners>,
    rep: &Arc<reporter::Reporter>,
) -> Result<(), i32> {
    if let Some(l) = listener.take() {
        *server = fdfs_common::daemon::start_metrics(
            Some(l),
            &rep.storage.cfg.server,
            metrics::endpoint(rep),
        )?;
    }
    Ok(())
}
