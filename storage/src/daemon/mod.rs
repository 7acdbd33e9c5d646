//! `fdfs_storaged`'s life, start to stop. [`run`] reads as the list of phases: the config
//! loaded, the ports bound and the store opened as root, the tracker handshake, the switch to
//! `run_by_user`, the ports served and the threads started, the main loop until SIGTERM, and
//! the stop in the order that loses nothing (docs/architecture.md).

mod housekeeping;
mod servers;
mod store_setup;
mod threads;

use crate::reporter::Reporter;
use crate::storage::Storage;
use crate::{binlog, binlog_repair, stat_file, store, tracker_handshake};
use fdfs_common::config::StorageConfig;
use fdfs_common::daemon::{fail, DaemonSpec, RunBy, RunContext};
use housekeeping::Housekeeping;
use servers::{Ports, Servers};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use threads::Background;

pub const SPEC: DaemonSpec = DaemonSpec {
    program: "fdfs_storaged",
    log_name: "storaged",
};

/// Run the storage until SIGTERM; returns the exit code.
pub fn run(mut ctx: RunContext) -> i32 {
    match serve(&mut ctx) {
        Ok(()) => 0,
        Err(code) => code,
    }
}

fn serve(ctx: &mut RunContext) -> Result<(), i32> {
    let cfg = load_config(ctx)?;
    let run_by = RunBy::of(&cfg.server, &ctx.conf_file)?;
    let base = cfg.server.base_path.clone();
    let data =
        fdfs_common::daemon::prepare_base_path(&base, SPEC.log_name, cfg.server.log_to_stderr)?;
    fdfs_common::daemon::raise_nofile_limit(&cfg.server, cfg.http.server_port != 0);
    let mut ports = Ports::bind(&cfg)?;
    let storage = open_storage(&cfg, &data)?;
    ctx.ready(&base).map_err(|e| {
        fail(
            &format!("write pid file fail: {e}"),
            e.raw_os_error().unwrap_or(2),
        )
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let rep = Arc::new(Reporter::new(&storage, &stop, &data));
    let mut servers = Servers::default();
    // /health says 503 while the tracker handshake waits; started here only when no switch to
    // run_by_user/run_by_group is pending, since nothing is served before the switch
    if cfg.server.run_by_user.is_empty() && cfg.server.run_by_group.is_empty() {
        servers.serve_metrics(&mut ports, &rep)?;
    }
    // the tracker handshake may wait for a tracker to come up; SIGTERM must still work meanwhile
    let watcher = stop_on_terminate(ctx, &stop);
    let Some(my_ip) = handshake(&rep)? else {
        return Ok(());
    };
    // bound and prepared as root; from here on, nothing is served or written as root
    let mut trees = vec![base.join("data"), base.join("logs")];
    trees.extend(cfg.store_paths.iter().map(|p| p.join("data")));
    run_by.take_over(&trees).map_err(|e| fail(&e, 1))?;
    servers.start(ports, &rep)?;
    log_started(&storage, &my_ip);
    let threads = Background::start(&rep, &stop);
    let mut housekeeping = Housekeeping::new(&storage, &stop);
    let rotations = housekeeping.log_rotations(&cfg);
    ctx.wait_for_shutdown_with(&cfg.server.log, rotations, || housekeeping.tick(&rep));
    servers.stop();
    stop.store(true, Ordering::SeqCst);
    threads.join(&rep, &storage);
    let _ = watcher.join();
    housekeeping.finish();
    ctx.finish();
    Ok(())
}

/// storage.conf, its warnings logged, `group_name` asked of the trackers when absent.
fn load_config(ctx: &RunContext) -> Result<StorageConfig, i32> {
    fdfs_common::log::init(log::LevelFilter::Info);
    let mut cfg = StorageConfig::load(&ctx.conf_file).map_err(|e| fail(&e.to_string(), e.code))?;
    fdfs_common::log::init(cfg.server.log.level);
    fdfs_common::resolver::set_refresh_interval(cfg.server.dns_refresh_interval);
    cfg.key_warnings.iter().for_each(|w| log::warn!("{w}"));
    if cfg.group_name.is_empty() {
        cfg.group_name = store_setup::group_name_from_trackers(&cfg).map_err(|e| fail(&e, 2))?;
    }
    Ok(cfg)
}

/// The store paths and the binlog, checked before any sync thread reads: appends a crash cut
/// short undone, marks the binlog no longer reaches found, the stat file read back.
fn open_storage(cfg: &StorageConfig, data: &Path) -> Result<Arc<Storage>, i32> {
    let st = store::Store::new(cfg);
    let binlog = binlog::Binlog::open(&data.join("sync"), cfg.durable()).map_err(|e| {
        fail(
            &format!("open binlog fail: {e}"),
            e.raw_os_error().unwrap_or(5),
        )
    })?;
    store_setup::recover_torn_appends(&st, &data.join("sync"));
    let lines_lost = binlog_repair::check_marks(&binlog) | binlog.lost_lines_before_open();
    let (stats, cursor) = stat_file::load_stat_file(&data.join(stat_file::STAT_FILE));
    st.set_cursor(cursor);
    let storage = Arc::new(Storage::new(cfg.clone(), st, binlog, stats));
    if lines_lost {
        binlog_repair::request(&storage);
    }
    Ok(storage)
}

/// A thread that sets `stop` when SIGTERM comes (or `stop` is set otherwise).
fn stop_on_terminate(ctx: &RunContext, stop: &Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let term = ctx.terminate_flag();
    let stop = Arc::clone(stop);
    std::thread::spawn(move || {
        while !term.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::SeqCst);
    })
}

/// Before serving: this storage's address, the parameters, its id, the store checked against
/// `.data_init_flag`, and an IP change reported. `None` when the daemon was stopped meanwhile.
fn handshake(rep: &Reporter) -> Result<Option<String>, i32> {
    let storage = &rep.storage;
    let Some(my_ips) = tracker_handshake::get_my_ip(rep) else {
        return Ok(None);
    };
    // with storage ids the tracker may answer both listed addresses, inner first
    let my_ip = my_ips[0].clone();
    *storage.my_ip.write() = my_ip.clone();
    let Some(params) = tracker_handshake::fetch_parameters(rep) else {
        return Ok(None);
    };
    *storage.params.write() = params;
    match tracker_handshake::resolve_my_id(rep, &my_ips) {
        Ok(id) => *storage.my_id.write() = id,
        Err(_) if rep.stop.load(Ordering::SeqCst) => return Ok(None),
        Err(e) => return Err(fail(&format!("get my server id fail: {e}"), 2)),
    }
    let (flag, previous_ip) =
        store_setup::init_store(&storage.cfg, &storage.store, &my_ip).map_err(|e| fail(&e, 2))?;
    storage
        .trunk_last_compress_time
        .store(flag.trunk_last_compress_time, Ordering::Relaxed);
    storage
        .join_time
        .store(flag.storage_join_time, Ordering::Relaxed);
    *rep.init_flag.lock() = flag;
    let p = storage.params.read().clone();
    if !p.use_storage_id
        && p.storage_ip_changed_auto_adjust
        && !previous_ip.is_empty()
        && previous_ip != my_ip
    {
        tracker_handshake::report_ip_changed(rep, &previous_ip, &my_ip);
    }
    Ok(Some(my_ip))
}

fn log_started(storage: &Storage, my_ip: &str) {
    let cfg = &storage.cfg;
    log::info!(
        "rfdfs storage v{}, group_name={}, my ip={my_ip}, my id={}, port={}, base_path={}, store_path_count={}, \
         subdir_count_per_path={}, max_connections={}, work_threads={}, heart_beat_interval={}s, \
         stat_report_interval={}s, network_timeout={}s",
        fdfs_common::proto::VERSION,
        cfg.group_name,
        storage.my_id.read(),
        cfg.server.port,
        cfg.server.base_path.display(),
        cfg.store_paths.len(),
        cfg.subdir_count_per_path,
        cfg.server.max_connections,
        cfg.server.work_threads,
        cfg.heart_beat_interval,
        cfg.stat_report_interval,
        cfg.server.network_timeout
    );
}
