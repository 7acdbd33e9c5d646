//! The tracker's state and what every part of it uses: the groups and storages (`state`), the
//! data files they are saved to (`persist`), the leader relationship, and connections to the
//! other trackers. The command handlers (`service`, `cluster`, `sysfiles`) build on it.
//!
//! `Tracker`'s other methods are in files named for what they do: the commands in `service/`
//! (by sender: `membership.rs`, `sync_handshake.rs`, `storage_queries.rs`, `trunk_reports.rs`,
//! `client_queries.rs`, `admin.rs`), the leader election and the trackers' own commands in
//! `cluster.rs`, data file copies in `sysfiles.rs`, trunk server choice in `trunk.rs`.

use crate::persist::{self, Changelog};
use crate::state::{width_of, State};
use fdfs_common::config::{parse_host_port, HostPort, TrackerConfig};
use fdfs_common::metrics::ConnStats;
use fdfs_common::net::{self, NetError};
use fdfs_common::proto::leader::RunningStatus;
use fdfs_common::proto::status;
use fdfs_common::sync::Mutex;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The tracker's whole service state.
pub struct Tracker {
    pub cfg: TrackerConfig,
    /// connections to other trackers and to storages kept between requests
    /// (`use_connection_pool`)
    pub(crate) pool: net::ConnPool,
    pub state: Mutex<State>,
    pub(crate) changelog: Mutex<Changelog>,
    /// whether the first JOIN's data-file bootstrap (4.6) has been settled
    pub(crate) sys_files_checked: Mutex<bool>,
    pub data_dir: PathBuf,
    pub up_time: i64,
    pub restart_interval: i64,
    pub conn_stats: OnceLock<Arc<ConnStats>>,
    pub relation: Mutex<Relationship>,
    /// addresses this tracker is reached at (bind_addr, and what storages connected to)
    pub my_ips: Mutex<Vec<String>>,
    pub metrics: fdfs_common::metrics::Metrics,
    /// bumped at every trunk server change of any group: followers get the list again
    pub trunk_changes: std::sync::atomic::AtomicU64,
    /// held while the data files are written (or read for a peer)
    pub(crate) writing: Mutex<()>,
    /// when the last data-file write ended and how long it took
    last_flush: Mutex<(Instant, Duration)>,
}

/// Who leads, as this tracker knows it.
#[derive(Debug, Default)]
pub struct Relationship {
    /// `ip:port` of the leader
    pub leader: Option<String>,
    /// announced by NOTIFY_NEXT_LEADER, waiting for its COMMIT
    pub next_leader: Option<String>,
    /// bumped whenever the leader changes: storages get the leader brief again
    pub leader_change: u64,
    /// followers seen by this leader: `ip:port` -> (up_time, version, connections, last ping)
    pub followers: std::collections::BTreeMap<String, FollowerInfo>,
}

#[derive(Debug, Clone, Default)]
pub struct FollowerInfo {
    pub up_time: i64,
    pub version: String,
    pub connections: [i32; 3],
    pub last_heartbeat: i64,
}

impl Tracker {
    pub fn new(cfg: TrackerConfig, data_dir: PathBuf) -> Result<Tracker, String> {
        let mut state = State::default();
        persist::load(&data_dir, &mut state, cfg.store_server == 0)?;
        let changelog =
            Changelog::open(&data_dir).map_err(|e| format!("open changelog fail: {e}"))?;
        let now = fdfs_common::now();
        let restart_interval = std::fs::read_to_string(data_dir.join(persist::STATUS_FILE))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| {
                        l.strip_prefix("last_check_time=")
                            .map(|v| v.trim().parse::<i64>().ok())
                    })
                    .flatten()
            })
            .map(|last| (now - last).max(0))
            .unwrap_or(0);
        let my_ips: Vec<String> = cfg
            .server
            .bind_addrs()
            .into_iter()
            .map(String::from)
            .collect();
        let pool = net::ConnPool::new(
            cfg.server.use_connection_pool,
            Duration::from_secs(cfg.server.connection_pool_max_idle_time),
        );
        Ok(Tracker {
            cfg,
            pool,
            state: Mutex::new(state),
            changelog: Mutex::new(changelog),
            sys_files_checked: Mutex::new(false),
            data_dir,
            up_time: now,
            restart_interval,
            my_ips: Mutex::new(my_ips),
            relation: Mutex::new(Relationship::default()),
            conn_stats: OnceLock::new(),
            metrics: Default::default(),
            trunk_changes: std::sync::atomic::AtomicU64::new(1),
            writing: Mutex::new(()),
            last_flush: Mutex::new((Instant::now(), Duration::ZERO)),
        })
    }

    /// Write the data files if anything changed since they were last written. A change only
    /// marks the state dirty: the state is copied under the lock and written outside it, so
    /// beats and queries never wait for the disk, and a burst of changes (a fleet joining)
    /// costs one write rather than one per change. `writing` keeps two flushes in order.
    pub fn flush_data_files(&self) {
        let writing = self.writing.lock();
        self.flush_holding(&writing);
    }

    /// [`flush_data_files`](Self::flush_data_files) for a caller that holds `writing` (and so
    /// knows the files stay as written until it lets go).
    pub(crate) fn flush_holding(&self, _writing: &fdfs_common::sync::MutexGuard<'_, ()>) {
        let snapshot = {
            let mut st = self.state.lock();
            if !st.dirty {
                return;
            }
            st.dirty = false;
            st.clone()
        };
        let began = Instant::now();
        if let Err(e) = persist::save_all(&self.data_dir, &snapshot) {
            log::error!(
                "save tracker data files to {} fail: {e}",
                self.data_dir.display()
            );
            self.state.lock().dirty = true;
        }
        *self.last_flush.lock() = (Instant::now(), began.elapsed());
    }

    /// Whether a flush is due: something changed and the disk has been left alone for nine
    /// times as long as the last write took (at most a tenth of a thread's time goes to the
    /// data files, however many storages they list).
    fn flush_due(&self) -> bool {
        let (ended, took) = *self.last_flush.lock();
        self.state.lock().dirty && ended.elapsed() >= took * 9
    }

    /// Periodic duties: offline detection by `check_active_interval`, lazy saves.
    pub fn tick(&self, check_offline: bool) {
        let now = fdfs_common::now();
        let mut st = self.state.lock();
        if check_offline {
            let limit = self.cfg.check_active_interval as i64;
            let mut changed = false;
            for g in st.groups.values_mut() {
                let mut bump = false;
                for s in g.storages.iter_mut() {
                    if s.status == status::ACTIVE && now - s.last_heart_beat_time > limit {
                        log::warn!(
                            "storage server {}:{} idle too long, last heart beat time: {}, set to offline",
                            s.ip,
                            s.port,
                            s.last_heart_beat_time
                        );
                        s.go_offline();
                        bump = true;
                    }
                }
                if bump {
                    g.bump();
                    changed = true;
                }
            }
            if changed {
                st.dirty = true;
            }
        }
        drop(st);
        if self.flush_due() {
            self.flush_data_files();
        }
    }

    pub fn shutdown(&self) {
        self.state.lock().dirty = true;
        self.flush_data_files();
        let _ = persist::write_status(&self.data_dir, self.up_time, fdfs_common::now());
    }

    pub(crate) fn width(&self) -> fdfs_common::proto::client::IpWidth {
        width_of(&self.cfg)
    }

    /// `me()` for callers already holding the state lock.
    pub(crate) fn me_in(&self, st: &State) -> Option<String> {
        let ips = self.my_ips.lock().clone();
        let port = self.cfg.server.port;
        st.trackers
            .iter()
            .find(|t| {
                fdfs_common::config::parse_host_port(t, 22122).is_ok_and(|hp| {
                    hp.port == port && hp.hosts().any(|h| ips.iter().any(|ip| ip == h))
                })
            })
            .cloned()
    }

    /// This tracker's entry of the tracker list (`ip:port`), once it can tell.
    pub fn me(&self) -> Option<String> {
        let st = self.state.lock();
        self.me_in(&st)
    }

    pub fn am_leader(&self) -> bool {
        let me = self.me();
        me.is_some() && self.relation.lock().leader == me
    }

    pub fn running_status(&self) -> RunningStatus {
        let now = fdfs_common::now();
        RunningStatus {
            is_leader: self.am_leader(),
            running_time: (now - self.up_time) / 300 * 300,
            restart_interval: self.restart_interval / 300 * 300,
        }
    }

    pub(crate) fn set_leader(&self, leader: Option<String>) {
        let mut r = self.relation.lock();
        if r.leader != leader {
            log::info!("tracker leader: {}", leader.as_deref().unwrap_or("none"));
            r.leader = leader;
            r.leader_change += 1;
            r.followers.clear();
        }
    }

    pub(crate) fn connect_tracker(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> std::io::Result<TcpStream> {
        let hp = parse_host_port(addr, 22122).map_err(std::io::Error::other)?;
        let bind = self.cfg.server.source_ip();
        net::connect_host_port(&hp, bind, timeout, timeout)
    }

    pub(crate) fn request_tracker(
        &self,
        addr: &str,
        command: u8,
        body: &[u8],
    ) -> Result<Vec<u8>, NetError> {
        let hp = parse_host_port(addr, 22122).map_err(NetError::Protocol)?;
        self.pooled_request(&hp, |s| net::request(s, command, body))
    }

    /// One exchange with another tracker or a storage on a pooled connection
    /// (`use_connection_pool`); a dual-address tracker entry's second address is tried when the
    /// first does not answer.
    pub(crate) fn pooled_request(
        &self,
        hp: &HostPort,
        exchange: impl FnOnce(&mut TcpStream) -> Result<Vec<u8>, NetError>,
    ) -> Result<Vec<u8>, NetError> {
        let timeout = Duration::from_secs(self.cfg.server.connect_timeout.clamp(1, 5));
        let bind = self.cfg.server.source_ip();
        let connect = || net::connect_host_port(hp, bind, timeout, timeout);
        self.pool.request(&hp.host, hp.port, connect, exchange)
    }

    pub fn conn_counts(&self) -> [i32; 3] {
        let cs = self.conn_stats.get();
        let c = |f: fn(&fdfs_common::metrics::ConnStats) -> &std::sync::atomic::AtomicI32| {
            cs.map(|s| f(s).load(Ordering::Relaxed)).unwrap_or(0)
        };
        [c(|s| &s.alloc), c(|s| &s.current), c(|s| &s.max)]
    }
}
