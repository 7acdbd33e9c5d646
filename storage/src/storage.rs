//! The storage's state and what every command handler and background thread uses: config,
//! store paths, binlog, the identity the trackers gave it, statistics, per-file locks, and the
//! durable-write and body-receiving helpers.
//!
//! `Storage`'s other methods are in files named for what they do:
//!
//! | methods | file |
//! |---|---|
//! | client commands (dispatch, answer) | `service/mod.rs`, and by command `service/upload.rs`, `appender.rs`, `reads.rs`, `delete.rs`, `meta_commands.rs`, `names.rs` |
//! | commands from other members (SYNC_*, REPORT_SERVER_ID, FETCH_ONE_PATH_BINLOG) | `replica.rs` |
//! | who may send them | `peers.rs` |
//! | trunk files: the role, the trunk server's answers, a member's slots, the trunk binlog | `trunk/server.rs`, `trunk/allocation.rs`, `trunk/slots.rs`, `trunk/binlog_push.rs` |
//! | `write_ack_copies`: waiting for copies, undoing a change | `copies.rs` |
//! | reconcile's digests and listings | `reconcile.rs` |
//! | a store path's recovery from a member | `recovery.rs` |

use crate::binlog::{Binlog, Position};
use crate::store::{NewFile, Store, Stored};
use fdfs_common::config::StorageConfig;
use fdfs_common::file_id::LogicalName;
use fdfs_common::proto::cluster::{stat, StatBlock};
use fdfs_common::proto::errno;
use fdfs_common::proto::parameters::StorageParameters;
use fdfs_common::refusal::Refusal;
use fdfs_common::server::Conn;
use fdfs_common::sync::{Mutex, RwLock};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Where a body's bytes go: a file at its cursor, or a trunk slot at an offset.
/// Where a body's bytes come from: a request's socket, or an S3 request's decoded body.
pub(crate) trait BodySource {
    /// Read what is available now (at least one byte, `Ok(0)` only for an empty `buf`).
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Who sends it, for the log.
    fn peer(&self) -> String;
}

impl BodySource for Conn {
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Conn::read_some(self, buf)
    }
    fn peer(&self) -> String {
        self.peer_ip()
    }
}

pub(crate) trait DataSink: Write {
    fn sync_data(&self) -> io::Result<()>;
}

impl DataSink for File {
    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }
}

/// Positional writes from `pos` on (a trunk slot's data): one `pwrite` per chunk, no cursor,
/// so one open trunk file serves every upload into it at once.
pub(crate) struct AtOffset<'a> {
    pub(crate) file: &'a File,
    pub(crate) pos: u64,
}

impl Write for AtOffset<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = std::os::unix::fs::FileExt::write_at(self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl DataSink for AtOffset<'_> {
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// What a command handler answers: the reply body, or why it failed.
pub(crate) type Outcome = Result<Vec<u8>, Refusal>;

/// The status to answer for a failed file operation.
pub(crate) fn io_errno(e: &io::Error) -> u8 {
    errno::of_io(e)
}

/// Mutations of appender files are serialised per file name.
const FILE_LOCKS: usize = 64;

pub struct Storage {
    pub cfg: StorageConfig,
    /// what the group holds, from the binlog (`crate::listing`)
    pub listing: crate::listing::Listing,
    pub store: Store,
    pub binlog: Binlog,
    pub group: String,
    pub my_ip: RwLock<String>,
    /// the storage's identity in the group: its server id, or its IP without storage ids
    pub my_id: RwLock<String>,
    /// the group's members as the leader last listed them (the reporter keeps it current)
    pub members: RwLock<Vec<fdfs_common::proto::cluster::Brief>>,
    /// the group's trunk server as the leader last announced it
    pub trunk_server: RwLock<Option<fdfs_common::proto::cluster::Brief>>,
    /// this storage's free-space index and trunk binlog while it is the trunk server
    pub(crate) trunk_state: Mutex<Option<crate::trunk_alloc::TrunkServerState>>,
    /// TRUNK_FREE_SPACE requests for slots whose header here still names a file, and when the
    /// last retry was: freed once this copy's file is deleted (`trunk::retry_deferred_frees`)
    pub(crate) deferred_frees: Mutex<(
        Vec<fdfs_common::proto::trunk::TrunkInfo>,
        Option<std::time::Instant>,
    )>,
    /// slots (store path, trunk id, offset) a delete line of whose file this trunk server
    /// recorded since it last gave them out: what a member's TRUNK_FREE_SPACE must find
    /// (`trunk::may_free_now`); in memory only
    pub(crate) slots_deleted_here: Mutex<std::collections::HashSet<(u8, u32, u32)>>,
    /// the connections of the sync sessions under way, shut down at the stop
    pub(crate) open_syncs: crate::open_syncs::OpenSyncs,
    /// held by a round of the trunk binlog push and by a compaction: a mark is never written
    /// for a binlog that has just been replaced
    pub(crate) trunk_push_lock: Mutex<()>,
    /// `trunk_last_compress_time` of `.data_init_flag`, which the reporter saves
    pub trunk_last_compress_time: std::sync::atomic::AtomicI64,
    /// while this storage is the trunk server: until when its last beat holds the role
    pub(crate) trunk_lease_until: Mutex<Option<std::time::Instant>>,
    /// when a failed trunk allocation was last logged (unix time)
    pub(crate) trunk_alloc_fail_logged: std::sync::atomic::AtomicI64,
    /// as trunk server: when each member's copy of the trunk binlog was last found as long as
    /// what was pushed to it
    pub(crate) trunk_copies_checked: Mutex<HashMap<String, std::time::Instant>>,
    /// as trunk server: how much of the trunk binlog each member has taken, as known in this
    /// run (its trunk mark file may lag when it cannot be written: a full base_path)
    pub(crate) trunk_pushed: Mutex<HashMap<String, u64>>,
    /// the trackers' storage_ids.conf, when `use_storage_id` is on
    pub storage_ids: RwLock<fdfs_common::config::storage_ids::StorageIds>,
    pub params: RwLock<StorageParameters>,
    pub stats: Mutex<StatBlock>,
    /// bumped at every statistics change; the reporter sends a full beat when it moved
    pub stats_version: AtomicU64,
    /// newest source timestamp applied from each peer (by storage id), for SYNC_REPORT
    pub synced_from: Mutex<HashMap<String, i64>>,
    /// `storage_access.log`, with `[access-log] enabled = true`
    pub access_log: Option<crate::access_log::AccessLog>,
    /// when each member's sync connection last showed it had nothing more to send
    pub caught_up: Mutex<HashMap<String, i64>>,
    /// bumped whenever `synced_from` moved
    pub sync_changed: AtomicU64,
    /// the listener's connection counters, reported in beats
    pub conn_stats: std::sync::OnceLock<std::sync::Arc<fdfs_common::metrics::ConnStats>>,
    file_locks: Vec<Mutex<()>>,
    /// when a refusal of each non-member address was last logged (`peers`)
    pub(crate) refused_peers: Mutex<HashMap<String, i64>>,
    pub metrics: fdfs_common::metrics::Metrics,
    /// connections to the trunk server and the members kept between requests
    /// (`use_connection_pool`)
    pub(crate) pool: fdfs_common::net::ConnPool,
    /// what the scrub found and did (`scrub_bytes_per_second`)
    pub scrub: ScrubStats,
    pub expiry: ExpiryStats,
    /// how far each peer has taken this member's changes (`write_ack_copies`)
    pub copies: Copies,
    /// what reconcile (`reconcile_interval`) found and fetched
    pub reconcile: ReconcileStats,
    /// store paths being recovered from the group (the reporter says RECOVERY meanwhile)
    pub recovering: std::sync::atomic::AtomicUsize,
    /// a recovery is due but no member is ACTIVE to recover from (said once in the log)
    pub recovery_waiting: std::sync::atomic::AtomicBool,
    /// `storage_join_time` of `.data_init_flag`: when this storage started blank
    pub join_time: std::sync::atomic::AtomicI64,
}

/// What the scrub (`scrub_bytes_per_second`) did since the daemon started, served on
/// `/metrics`.
/// What `/metrics` says of expiry (`crate::expiry`).
#[derive(Default)]
pub struct ExpiryStats {
    /// requests answered as absent because the file had expired
    pub answered_absent: AtomicU64,
    /// files the sweeper deleted
    pub swept: AtomicU64,
    /// expired files left after the last sweep (swept by another member, or not yet)
    pub pending: AtomicU64,
}

#[derive(Default)]
pub struct ScrubStats {
    pub bytes: AtomicU64,
    pub files: AtomicU64,
    pub corrupt: AtomicU64,
    /// of the corrupt ones, those that could not be read at all (EIO)
    pub unreadable: AtomicU64,
    pub repaired: AtomicU64,
    pub unrepairable: AtomicU64,
    /// full passes over every store path
    pub passes: AtomicU64,
    /// sub directories of the current pass done, of all of them
    pub subdirs_done: AtomicU64,
    pub subdirs_total: AtomicU64,
    /// when the last full pass ended (unix time; 0: none yet)
    pub last_pass_end: std::sync::atomic::AtomicI64,
}

/// `write_ack_copies`: how far through this member's binlog each peer has answered.
#[derive(Default)]
pub struct Copies {
    pub(crate) reached: Mutex<HashMap<String, Position>>,
    pub(crate) moved: fdfs_common::sync::Condvar,
    /// changes answered once enough members held them
    pub confirmed: AtomicU64,
    /// changes refused because too few members were ACTIVE or answered in time
    pub failed: AtomicU64,
}

impl Copies {
    /// A peer's sync thread: every line before `at` has been applied there (or had nothing to
    /// send).
    pub fn reached(&self, peer: &str, at: Position) {
        let mut r = self.reached.lock();
        match r.get_mut(peer) {
            Some(p) if *p == at => return,
            Some(p) => *p = at,
            None => {
                r.insert(peer.to_string(), at);
            }
        }
        drop(r);
        self.moved.notify_all();
    }

    /// How far each peer has got, for `/metrics` and `rfdfs_admin`.
    pub fn positions(&self) -> Vec<(String, Position)> {
        let mut v: Vec<_> = self
            .reached
            .lock()
            .iter()
            .map(|(k, p)| (k.clone(), *p))
            .collect();
        v.sort();
        v
    }
}

/// A store path's files of trunk slots held here, by sub directory (high, low): name -> size.
pub(crate) type SlotFiles =
    std::collections::BTreeMap<(u32, u32), std::collections::BTreeMap<String, u64>>;

/// What reconcile did since the daemon started, for `/metrics` and `rfdfs_admin`.
#[derive(Default)]
pub struct ReconcileStats {
    pub passes: AtomicU64,
    /// when the last pass ended (unix time; 0: none yet)
    pub last_pass_end: std::sync::atomic::AtomicI64,
    pub last_pass_millis: AtomicU64,
    /// sub directories walked, files listed, on the last pass
    pub last_pass_files: AtomicU64,
    /// files a peer held and this member lacked, or held at another size
    pub differences: AtomicU64,
    pub last_pass_differences: AtomicU64,
    /// files fetched from a peer
    pub fetched: AtomicU64,
    pub last_pass_fetched: AtomicU64,
    /// missing files left alone because a delete is recorded here
    pub deleted_kept_away: AtomicU64,
    /// of those, deletes sent to the peer that still held the file
    pub deletes_sent: AtomicU64,
    /// when the last pass that compared with every rfdfs member began (unix time; 0: none)
    pub complete_pass_start: std::sync::atomic::AtomicI64,
    pub failed_fetches: AtomicU64,
    /// each store path's digests from this member's last walk, and when it was made: a peer's
    /// RECONCILE_DIGESTS is answered from it while younger than `reconcile_interval`, so that
    /// each member walks its tree about once per interval, not once per member
    pub(crate) walked:
        Mutex<HashMap<usize, (std::time::Instant, fdfs_common::proto::rfdfs::Digests)>>,
    /// each store path's files of trunk slots held here, by sub directory, and when they were
    /// listed (from the binlog and the slots' headers; reused as `walked` is)
    pub(crate) slots_listed: Mutex<HashMap<usize, (std::time::Instant, std::sync::Arc<SlotFiles>)>>,
    /// listing index entries corrected to what the store paths hold
    pub index_corrected: AtomicU64,
}

pub fn meta_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push("-m");
    PathBuf::from(s)
}

impl Storage {
    pub fn new(cfg: StorageConfig, store: Store, binlog: Binlog, stats: StatBlock) -> Storage {
        let access_log = cfg
            .access_log
            .then(|| {
                crate::access_log::AccessLog::open(&cfg.server.base_path, cfg.access_log_micros)
            })
            .and_then(|opened| {
                opened
                    .inspect_err(|e| {
                        log::error!("open storage_access.log fail: {e}, access log disabled")
                    })
                    .ok()
            });
        let pool = fdfs_common::net::ConnPool::new(
            cfg.server.use_connection_pool,
            std::time::Duration::from_secs(cfg.server.connection_pool_max_idle_time),
        );
        Storage {
            pool,
            scrub: Default::default(),
            expiry: Default::default(),
            copies: Default::default(),
            reconcile: Default::default(),
            recovering: Default::default(),
            recovery_waiting: Default::default(),
            join_time: Default::default(),
            access_log,
            listing: crate::listing::Listing::open(
                &cfg.server.base_path.join("data"),
                &cfg.group_name,
            ),
            group: cfg.group_name.clone(),
            cfg,
            store,
            binlog,
            my_ip: RwLock::new(String::new()),
            my_id: RwLock::new(String::new()),
            storage_ids: RwLock::new(Default::default()),
            members: RwLock::new(Vec::new()),
            trunk_server: RwLock::new(None),
            trunk_state: Mutex::new(None),
            deferred_frees: Mutex::new((Vec::new(), None)),
            slots_deleted_here: Mutex::new(Default::default()),
            open_syncs: Default::default(),
            trunk_push_lock: Mutex::new(()),
            trunk_last_compress_time: std::sync::atomic::AtomicI64::new(0),
            trunk_lease_until: Mutex::new(None),
            trunk_alloc_fail_logged: std::sync::atomic::AtomicI64::new(0),
            trunk_copies_checked: Mutex::new(HashMap::new()),
            trunk_pushed: Mutex::new(HashMap::new()),
            params: RwLock::new(StorageParameters::default()),
            stats: Mutex::new(stats),
            stats_version: AtomicU64::new(1),
            synced_from: Mutex::new(HashMap::new()),
            caught_up: Mutex::new(HashMap::new()),
            sync_changed: AtomicU64::new(0),
            conn_stats: std::sync::OnceLock::new(),
            file_locks: (0..FILE_LOCKS).map(|_| Mutex::new(())).collect(),
            refused_peers: Mutex::new(HashMap::new()),
            metrics: Default::default(),
        }
    }

    /// The other members of the group that are ACTIVE, as the tracker last listed them.
    pub(crate) fn active_peers(&self) -> Vec<fdfs_common::proto::cluster::Brief> {
        let me = self.my_id.read().clone();
        self.members
            .read()
            .iter()
            .filter(|b| b.id != me && b.status == fdfs_common::proto::status::ACTIVE)
            .cloned()
            .collect()
    }

    pub(crate) fn lock_for(&self, name: &str) -> fdfs_common::sync::MutexGuard<'_, ()> {
        let h = name
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        self.file_locks[h % FILE_LOCKS].lock()
    }

    /// Count an operation: `total` index, success flag, bytes at `bytes_idx`.
    pub(crate) fn count(&self, total_idx: usize, ok: bool, bytes_idx: Option<(usize, i64)>) {
        let mut s = self.stats.lock();
        s.counters[total_idx] += 1;
        if ok {
            s.counters[total_idx + 1] += 1;
        }
        if let Some((i, n)) = bytes_idx {
            s.counters[i] += n;
            if ok {
                s.counters[i + 1] += n;
            }
        }
        if ok
            && matches!(
                total_idx,
                stat::TOTAL_UPLOAD_COUNT
                    | stat::TOTAL_APPEND_COUNT
                    | stat::TOTAL_MODIFY_COUNT
                    | stat::TOTAL_TRUNCATE_COUNT
                    | stat::TOTAL_DELETE_COUNT
                    | stat::TOTAL_SET_META_COUNT
            )
        {
            s.counters[stat::LAST_SOURCE_UPDATE] = fdfs_common::now();
        }
        drop(s);
        self.stats_version.fetch_add(1, Ordering::Relaxed);
    }

    /// Stream `len` body bytes into an open file and sync it (appends, modifies, replicated
    /// ranges).
    pub(crate) fn receive_into_file(
        &self,
        conn: &mut Conn,
        f: &mut impl DataSink,
        len: u64,
    ) -> Result<(), Refusal> {
        self.receive_and_sync(conn, f, len, None)
    }

    /// `receive_into`, then the file's sync; failures as the answer to give.
    pub(crate) fn receive_and_sync(
        &self,
        conn: &mut impl BodySource,
        f: &mut impl DataSink,
        len: u64,
        crc: Option<&mut crc32fast::Hasher>,
    ) -> Result<(), Refusal> {
        self.receive_into(conn, f, len, crc)
            .and_then(|_| self.sync_file(f).map_err(|e| Some(io_errno(&e))))
            .map_err(Storage::body_fail)
    }

    /// Whether an acknowledged change must survive a power loss: the operator asked for fsyncs
    /// with `fsync_after_written_bytes` > 0. With upstream's default 0 ("never fsync") a change
    /// is in the page cache before it is answered, which a daemon crash cannot lose, and the
    /// binlog reaches the disk every `sync_binlog_buff_interval`.
    pub(crate) fn durable(&self) -> bool {
        self.cfg.durable()
    }

    /// fsync a file's data before its change is acknowledged, in durable mode only.
    pub(crate) fn sync_file(&self, f: &impl DataSink) -> io::Result<()> {
        if self.durable() {
            f.sync_data()
        } else {
            Ok(())
        }
    }

    /// The address this storage's outgoing connections bind to: `bind_addr` when
    /// `client_bind` is on.
    pub(crate) fn client_bind_ip(&self) -> Option<std::net::IpAddr> {
        self.cfg.client_bind_ip()
    }

    /// One request to another server on a pooled connection (`use_connection_pool`).
    pub(crate) fn pooled_request(
        &self,
        host: &str,
        port: u16,
        exchange: impl FnOnce(&mut std::net::TcpStream) -> fdfs_common::net::NetResult<Vec<u8>>,
    ) -> fdfs_common::net::NetResult<Vec<u8>> {
        self.pool
            .request(host, port, || self.connect_to(host, port), exchange)
    }

    /// A connection to a tracker or another member, bound as `client_bind` says, with the
    /// configured connect and network timeouts.
    /// The group a request names must be this storage's (client commands and the trunk
    /// server's: their bodies are read whole when this is asked).
    pub(crate) fn check_group(&self, group: &str) -> Result<(), Refusal> {
        if group != self.group {
            log::error!("group_name: {group} not correct, should be: {}", self.group);
            return Err(Refusal::done(errno::EINVAL));
        }
        Ok(())
    }

    /// Connect to a configured tracker: its second address when the first does not answer.
    pub(crate) fn connect_to_host_port(
        &self,
        hp: &fdfs_common::config::HostPort,
    ) -> io::Result<std::net::TcpStream> {
        let c = &self.cfg.server;
        fdfs_common::net::connect_host_port(
            hp,
            self.client_bind_ip(),
            std::time::Duration::from_secs(c.connect_timeout),
            std::time::Duration::from_secs(c.network_timeout),
        )
    }

    pub(crate) fn connect_to(&self, host: &str, port: u16) -> io::Result<std::net::TcpStream> {
        let c = &self.cfg.server;
        fdfs_common::net::connect(
            host,
            port,
            self.client_bind_ip(),
            std::time::Duration::from_secs(c.connect_timeout),
            std::time::Duration::from_secs(c.network_timeout),
        )
    }

    /// Free a trunk slot on this member: the whole slot, header included, becomes zeros, so
    /// that the name no longer opens and the slot can take a new file.
    pub(crate) fn zero_slot(&self, n: &LogicalName, stored: &Stored) -> io::Result<()> {
        let Some((slot, _)) = stored.trunk else {
            return Err(io::Error::from_raw_os_error(errno::EINVAL.into()));
        };
        self.write_at(
            &self.store.trunk_file_path(n, &slot),
            &[(u64::from(slot.offset), &vec![0u8; slot.alloc_size as usize])],
        )
    }

    /// Write each `(offset, bytes)` into the existing file at `path`, in order, then make them
    /// durable (in durable mode): how a trunk slot is written outside an upload.
    pub(crate) fn write_at(&self, path: &Path, pieces: &[(u64, &[u8])]) -> io::Result<()> {
        let f = std::fs::OpenOptions::new().write(true).open(path)?;
        for (at, bytes) in pieces {
            f.write_all_at(bytes, *at)?;
        }
        self.sync_file(&f)
    }

    /// Replace a small file whole (a file's metadata): old or new content, never a part;
    /// fsynced in durable mode only, as its file is.
    pub(crate) fn replace_file(&self, path: &Path, content: &[u8]) -> io::Result<()> {
        fdfs_common::durable::replace(path, content, self.durable())
    }

    /// Make a new or renamed entry in `path`'s directory durable, in durable mode only.
    pub(crate) fn sync_parent(&self, path: &Path) -> io::Result<()> {
        if self.durable() {
            crate::store::sync_dir(path.parent().unwrap_or(Path::new(".")))
        } else {
            Ok(())
        }
    }

    /// Before a change: refuse it at once (ENOSPC, EIO) while its binlog line could not be
    /// written, rather than take its body first.
    pub(crate) fn recordable(&self) -> Result<(), u8> {
        self.binlog.writable()
    }

    /// A binlog line about to be written for a change made by a client: the intent, or the
    /// refusal the client gets (nothing of the change is made).
    pub(crate) fn intent(
        &self,
        timestamp: i64,
        op: char,
        name: &str,
        args: &str,
    ) -> Result<crate::binlog::Intent<'_>, Refusal> {
        self.binlog
            .intent(timestamp, op, name, args)
            .map_err(|e| Refusal::done(crate::binlog::refusal_status(&e)))
    }

    pub(crate) fn count_sync_in(&self, bytes: i64) {
        let mut s = self.stats.lock();
        s.counters[stat::TOTAL_SYNC_IN_BYTES] += bytes;
        s.counters[stat::TOTAL_SYNC_IN_BYTES + 1] += bytes;
        drop(s);
        self.stats_version.fetch_add(1, Ordering::Relaxed);
    }

    /// Disk I/O statistics (file open / read / write counts), reported in beats.
    pub(crate) fn count_io(&self, idx: usize, ok: bool) {
        let mut s = self.stats.lock();
        s.counters[idx] += 1;
        if ok {
            s.counters[idx + 1] += 1;
        }
    }

    /// Stream `len` body bytes from the socket into `file`, feeding `crc`. A socket failure is
    /// `Err(None)` (nothing to answer, the connection is done). A disk failure is
    /// `Err(Some(errno))` once the rest of the body has been read and dropped: a client that
    /// writes its whole request before reading gets the error, not a reset, and keeps its
    /// connection.
    pub(crate) fn receive_into(
        &self,
        conn: &mut impl BodySource,
        file: &mut impl DataSink,
        len: u64,
        mut crc: Option<&mut crc32fast::Hasher>,
    ) -> Result<(), Option<u8>> {
        let mut buf = vec![0u8; (self.cfg.server.buff_size as u64).min(len.max(1)) as usize];
        let mut left = len;
        let mut disk_error = None;
        let fsync_every = self.cfg.fsync_after_written_bytes;
        let mut unsynced = 0i64;
        while left > 0 {
            let want = (left as usize).min(buf.len());
            let n = conn.read_some(&mut buf[..want]).map_err(|e| {
                log::warn!("client ip: {}, receive file body fail: {e}", conn.peer());
                None
            })?;
            left -= n as u64;
            if disk_error.is_some() {
                continue;
            }
            if let Some(c) = crc.as_deref_mut() {
                c.update(&buf[..n]);
            }
            let w = file.write_all(&buf[..n]);
            self.count_io(stat::TOTAL_FILE_WRITE_COUNT, w.is_ok());
            if let Err(e) = w {
                log::error!(
                    "client ip: {}, write file fail: {e}; the rest of the body ({left} bytes) \
                     is read and dropped",
                    conn.peer()
                );
                disk_error = Some(io_errno(&e));
                continue;
            }
            unsynced += n as i64;
            if fsync_every > 0 && unsynced >= fsync_every {
                unsynced = 0;
                if let Err(e) = file.sync_data() {
                    log::error!("client ip: {}, fsync file fail: {e}", conn.peer());
                    disk_error = Some(io_errno(&e));
                }
            }
        }
        match disk_error {
            Some(code) => Err(Some(code)),
            None => Ok(()),
        }
    }

    /// The failure to answer for an `Err` of `receive_into` (and of the `sync_data` after it).
    pub(crate) fn body_fail(e: Option<u8>) -> Refusal {
        match e {
            Some(code) => Refusal::done(code),
            // the peer is gone: nothing to answer
            None => Refusal::early(0),
        }
    }

    /// Receive a new file for directory `dir` of store path `index`; returns it unnamed, and
    /// its CRC. On any failure nothing is left behind.
    pub(crate) fn receive_new_file(
        &self,
        conn: &mut impl BodySource,
        index: usize,
        dir: &Path,
        len: u64,
    ) -> Result<(NewFile, u32), Refusal> {
        let created = self.store.new_file(index, dir);
        self.count_io(stat::TOTAL_FILE_OPEN_COUNT, created.is_ok());
        let mut new = match created {
            Ok(f) => f,
            Err(e) => {
                log::error!("create file in {} fail: {e}", dir.display());
                return Err(Refusal::early(io_errno(&e)));
            }
        };
        let mut crc = crc32fast::Hasher::new();
        self.receive_and_sync(conn, &mut new.file, len, Some(&mut crc))?;
        Ok((new, crc.finalize()))
    }
}
