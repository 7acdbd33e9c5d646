//! fdfs-tracker: the rfdfs tracker server.
//!
//! Keeps the groups and storage servers of the cluster in memory (`state`, held by `tracker`
//! with the leader relationship), answers storages' joins and beats and clients' placement
//! queries (`service`, `select`), elects a leader with the other trackers (`cluster`), copies
//! their data files when it joins late (`sysfiles`), and persists what it knows in upstream's
//! data files (`persist`). It stores no file content. `http` redirects downloads, `metrics`
//! serves `/metrics` and `/health`.

#![forbid(unsafe_code)]

pub mod cluster;
pub mod http;
pub mod metrics;
pub mod persist;
pub mod select;
pub mod service;
pub mod state;
pub mod sysfiles;
pub mod tracker;
pub mod trunk;

use fdfs_common::config::TrackerConfig;
use fdfs_common::daemon::{DaemonSpec, RunContext};
use fdfs_common::server::{Server, ServerOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SPEC: DaemonSpec = DaemonSpec {
    program: "fdfs_trackerd",
    log_name: "trackerd",
};

/// Run the tracker until SIGTERM; returns the exit code.
pub fn run(mut ctx: RunContext) -> i32 {
    fdfs_common::log::init(log::LevelFilter::Info);
    let cfg = match TrackerConfig::load(&ctx.conf_file) {
        Ok(c) => c,
        Err(e) => return fdfs_common::daemon::fail(&e.to_string(), e.code),
    };
    let run_by = match fdfs_common::daemon::RunBy::of(&cfg.server, &ctx.conf_file) {
        Ok(r) => r,
        Err(code) => return code,
    };
    fdfs_common::log::init(cfg.server.log.level);
    fdfs_common::resolver::set_refresh_interval(cfg.server.dns_refresh_interval);
    let base = cfg.server.base_path.clone();
    let data_dir = match fdfs_common::daemon::prepare_base_path(
        &base,
        SPEC.log_name,
        cfg.server.log_to_stderr,
    ) {
        Ok(d) => d,
        Err(code) => return code,
    };
    cfg.key_warnings.iter().for_each(|w| log::warn!("{w}"));
    log::info!(
        "rfdfs tracker v{}, base_path={}, bind_addr={}, port={}, max_connections={}, work_threads={}, \
         connect_timeout={}, network_timeout={}, store_lookup={}, store_group={}, store_server={}, store_path={}, \
         reserved_storage_space={}, download_server={}, check_active_interval={}s, storage_sync_file_max_delay={}s, \
         storage_sync_file_max_time={}s, response_ip_addr_size={}",
        fdfs_common::proto::VERSION,
        base.display(),
        cfg.server.bind_addr,
        cfg.server.port,
        cfg.server.max_connections,
        cfg.server.work_threads,
        cfg.server.connect_timeout,
        cfg.server.network_timeout,
        cfg.store_lookup,
        cfg.store_group,
        cfg.store_server,
        cfg.store_path,
        cfg.reserved_storage_space.to_text(),
        cfg.download_server,
        cfg.check_active_interval,
        cfg.storage_sync_file_max_delay,
        cfg.storage_sync_file_max_time,
        if cfg.response_ip_v6 { 46 } else { 16 },
    );
    let tracker = match tracker::Tracker::new(cfg.clone(), data_dir.clone()) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            return fdfs_common::daemon::fail(&format!("load tracker data files fail: {e}"), 22)
        }
    };
    let opts = ServerOptions::of("tracker", &cfg.server);
    let http_opts = ServerOptions {
        name: "http",
        port: cfg.http_redirect_port,
        ..opts.clone()
    };
    fdfs_common::daemon::raise_nofile_limit(&cfg.server, cfg.http_redirect_port != 0);
    // both ports bound as root, then the switch, and only then anything served
    let (listener, http_listener) = match fdfs_common::daemon::bind_ports(
        &cfg.server,
        (cfg.http_redirect_port != 0).then_some(cfg.http_redirect_port),
    ) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let metrics_listener = match fdfs_common::daemon::bind_metrics(&cfg.server) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if let Err(e) = ctx.ready(&base) {
        return fdfs_common::daemon::fail(
            &format!("write pid file fail: {e}"),
            e.raw_os_error().unwrap_or(2),
        );
    }
    let trees = [base.join("data"), base.join("logs")];
    if let Err(e) = run_by.take_over(&trees) {
        return fdfs_common::daemon::fail(&e, 1);
    }
    let mut server = match Server::start_on(listener, opts, Arc::clone(&tracker)) {
        Ok(s) => s,
        Err(e) => return fdfs_common::daemon::fail(&e.to_string(), e.raw_os_error().unwrap_or(98)),
    };
    let mut http_server = match http_listener {
        None => None,
        Some(l) => {
            let redirector = Arc::new(http::HttpRedirector {
                tracker: Arc::clone(&tracker),
            });
            match Server::start_handler(l, http_opts, redirector) {
                Ok(s) => Some(s),
                Err(e) => {
                    return fdfs_common::daemon::fail(
                        &format!("http port {}: {e}", cfg.http_redirect_port),
                        e.raw_os_error().unwrap_or(98),
                    )
                }
            }
        }
    };
    let _ = tracker.conn_stats.set(Arc::clone(&server.stats));
    let mut metrics_server = match fdfs_common::daemon::start_metrics(
        metrics_listener,
        &cfg.server,
        metrics::endpoint(&tracker),
    ) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let _ = persist::write_status(&data_dir, tracker.up_time, fdfs_common::now());
    let relation_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let relationship = {
        let (t, stop) = (Arc::clone(&tracker), Arc::clone(&relation_stop));
        std::thread::Builder::new()
            .name("relationship".into())
            .spawn(move || t.relationship_loop(&stop))
            .expect("spawn relationship thread")
    };
    let check_every = Duration::from_secs(cfg.check_active_interval);
    let mut last_check = Instant::now();
    let mut last_status = fdfs_common::now();
    ctx.wait_for_shutdown(&cfg.server.log, || {
        let due = last_check.elapsed() >= check_every;
        if due {
            last_check = Instant::now();
        }
        tracker.tick(due);
        tracker.select_trunk_servers();
        let now = fdfs_common::now();
        if now / 300 != last_status / 300 {
            last_status = now;
            let _ = persist::write_status(&data_dir, tracker.up_time, now);
        }
    });
    relation_stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = relationship.join();
    if let Some(h) = http_server.as_mut() {
        h.stop(Duration::from_secs(5));
    }
    if let Some(m) = metrics_server.as_mut() {
        m.stop(Duration::from_secs(1));
    }
    server.stop(Duration::from_secs(30));
    tracker.shutdown();
    ctx.finish();
    0
}
