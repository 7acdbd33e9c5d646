//! The storage's ports: the FastDFS port served by `crate::service`, the HTTP port
//! (`crate::http`), the S3 port (`crate::s3`) and the metrics port (`crate::metrics`), bound as
//! root before anything else
//! and served once the tracker handshake is done (metrics earlier, so that `/health` can say
//! the storage is waiting for it).

use crate::reporter::Reporter;
use crate::{http, metrics, s3};
use fdfs_common::config::StorageConfig;
use fdfs_common::server::{Listeners, Server, ServerOptions};
use std::sync::Arc;
use std::time::Duration;

/// The listeners bound at startup, not yet served.
pub(super) struct Ports {
    main: Option<Listeners>,
    http: Option<Listeners>,
    s3: Option<Listeners>,
    metrics: Option<Listeners>,
}

impl Ports {
    pub(super) fn bind(cfg: &StorageConfig) -> Result<Ports, i32> {
        let (main, http) = fdfs_common::daemon::bind_ports(
            &cfg.server,
            cfg.http.enabled().then_some(cfg.http.server_port),
        )?;
        let metrics = fdfs_common::daemon::bind_metrics(&cfg.server)?;
        let s3 = if cfg.s3.enabled() {
            let l = fdfs_common::server::bind_listener(
                &cfg.server.bind_addr,
                cfg.server.address_family,
                cfg.s3.server_port,
            )
            .map_err(|e| {
                fdfs_common::daemon::fail(
                    &format!("s3.server_port {}: {e}", cfg.s3.server_port),
                    e.raw_os_error().unwrap_or(98),
                )
            })?;
            Some(l)
        } else {
            None
        };
        Ok(Ports {
            main: Some(main),
            http,
            s3,
            metrics,
        })
    }
}

/// The servers running on those ports.
#[derive(Default)]
pub(super) struct Servers {
    main: Option<Server>,
    http: Option<Server>,
    s3: Option<(Server, Arc<s3::S3Server>)>,
    metrics: Option<Server>,
}

impl Servers {
    /// Serve `/metrics` and `/health` now, unless that was done already.
    pub(super) fn serve_metrics(
        &mut self,
        ports: &mut Ports,
        rep: &Arc<Reporter>,
    ) -> Result<(), i32> {
        if let Some(l) = ports.metrics.take() {
            self.metrics = fdfs_common::daemon::start_metrics(
                Some(l),
                &rep.storage.cfg.server,
                metrics::endpoint(rep),
            )?;
        }
        Ok(())
    }

    /// Serve every port.
    pub(super) fn start(&mut self, mut ports: Ports, rep: &Arc<Reporter>) -> Result<(), i32> {
        let storage = &rep.storage;
        let cfg = &storage.cfg;
        let opts = ServerOptions::of("storage", &cfg.server);
        let http_opts = ServerOptions {
            name: "http",
            port: cfg.http.server_port,
            ..opts.clone()
        };
        let s3_opts = ServerOptions {
            name: "s3",
            port: cfg.s3.server_port,
            ..opts.clone()
        };
        let main = ports.main.take().ok_or(1)?;
        let main = Server::start_on(main, opts, Arc::clone(storage)).map_err(|e| {
            fdfs_common::daemon::fail(
                &format!("start service fail: {e}"),
                e.raw_os_error().unwrap_or(5),
            )
        })?;
        let _ = storage.conn_stats.set(Arc::clone(&main.stats));
        self.main = Some(main);
        if let Some(l) = ports.http.take() {
            let h = Arc::new(http::HttpServer {
                storage: Arc::clone(storage),
                cfg: cfg.http.clone(),
            });
            let s = Server::start_handler(l, http_opts, h).map_err(|e| {
                fdfs_common::daemon::fail(
                    &format!("start http service fail: {e}"),
                    e.raw_os_error().unwrap_or(5),
                )
            })?;
            log::info!("http service on port {}", cfg.http.server_port);
            self.http = Some(s);
        }
        if let Some(l) = ports.s3.take() {
            let h = Arc::new(s3::S3Server::new(Arc::clone(storage), cfg.s3.clone()));
            let s = Server::start_handler(l, s3_opts, Arc::clone(&h)).map_err(|e| {
                fdfs_common::daemon::fail(
                    &format!("start s3 service fail: {e}"),
                    e.raw_os_error().unwrap_or(5),
                )
            })?;
            log::info!(
                "s3 service on port {}, {} access keys",
                cfg.s3.server_port,
                cfg.s3.credentials.len()
            );
            self.s3 = Some((s, h));
        }
        self.serve_metrics(&mut ports, rep)
    }

    /// Stop taking requests; the main port's requests in progress get 90 s to finish.
    pub(super) fn stop(&mut self) {
        if let Some(h) = self.http.as_mut() {
            h.stop(Duration::from_secs(10));
        }
        if let Some((s, h)) = self.s3.as_mut() {
            s.stop(Duration::from_secs(30));
            h.finish();
        }
        if let Some(m) = self.metrics.as_mut() {
            m.stop(Duration::from_secs(1));
        }
        if let Some(s) = self.main.as_mut() {
            s.stop(Duration::from_secs(90));
        }
    }
}
