//! Making a store path whole again from the group (docs/protocol/sync-and-storage-layout.md 5.7,
//! done online).
//!
//! A recovery is due when a store path's sub directories had to be made again on a storage in
//! service (a disk replaced by a blank one), when a storage starts with no sync source while the
//! group may hold files it lacks (rebuilt blank while its peers were away), when an operator
//! creates `<store path>/data/.rfdfs_repair`, and whenever `data/.recovery.flag` (upstream's) is
//! there: the flag is written when a recovery is due and removed only when it is done, so one
//! that was interrupted (by a crash, a restart, or in a C storage whose disk this one took over)
//! goes on at the next start.
//!
//! Every ACTIVE member in turn lists the files of the store path (FETCH_ONE_PATH_BINLOG, served
//! by C storages too); each listed file missing here is downloaded from that member, so what one
//! member lacks comes from another. A file in a trunk slot is written into its slot of this
//! member's copy of the trunk file, checked against its name first, never as a stray plain file.
//! Files a C storage's interrupted recovery had left unfinished (past the marks of its
//! `.binlog.recovery.N` files, downloaded straight to their final place) are fetched again.
//! Each restored file gets a replica line in the binlog, so that this storage's binlog names
//! every file it holds (it can be a new member's source, and a recovering member's).
//!
//! While it copies, the storage has itself reported RECOVERY to the trackers (the reporter), so
//! reads are not sent to it; it keeps taking replicas meanwhile.

use crate::binlog::{binlog_name, for_each_record, op, parse_line, Record};
use crate::storage::Storage;
use fdfs_common::codec::Message;
use fdfs_common::file_id::{LogicalName, RemoteName};
use fdfs_common::net;
use fdfs_common::proto::cluster::Brief;
use fdfs_common::proto::storage::DownloadReq;
use fdfs_common::proto::sync::{FetchPathBinlogReq, PathBinlogStream};
use fdfs_common::proto::{cmd, errno, Header};
use fdfs_common::refusal::Refusal;
use fdfs_common::server::Conn;
use fdfs_common::trunk::TrunkSlot;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, UNIX_EPOCH};

/// An operator's request for a recovery of the store path (rfdfs's own).
pub const REPAIR_REQUEST: &str = ".rfdfs_repair";
/// Upstream's: a recovery of the store path is under way.
pub const RECOVERY_FLAG: &str = ".recovery.flag";

impl Storage {
    /// FETCH_ONE_PATH_BINLOG: stream the binlog lines of the files this storage holds in one
    /// store path, then their byte count, then close. Files in trunk slots are listed when
    /// their slot holds them (a C storage recovering from this one fetches their whole trunk
    /// files by the trunk file's own name).
    pub(crate) fn fetch_one_path_binlog(
        &self,
        conn: &mut Conn,
        body: &[u8],
    ) -> Result<(), Refusal> {
        let req = FetchPathBinlogReq::from_bytes(body)?;
        let index = req.store_path_index as usize;
        if req.group != self.group || index >= self.store.paths.len() {
            return Err(Refusal::done(errno::EINVAL));
        }
        let header = Header {
            pkg_len: PathBinlogStream::ANNOUNCED_LEN,
            cmd: cmd::RESP,
            status: 0,
        };
        conn.write_all(&header.to_bytes())
            .map_err(|_| Refusal::done(errno::EIO))?;
        let prefix = format!("M{index:02X}/");
        let mut sent: u64 = 0;
        let sync_dir = self.cfg.server.base_path.join("data/sync");
        let last = self.binlog.current_index();
        let mut out = Vec::new();
        let mut failed = false;
        let mut listed = HashSet::new();
        for i in 0..=last {
            let _ = for_each_record(&sync_dir.join(binlog_name(i)), |rec| {
                if failed || !rec.name.starts_with(&prefix) {
                    return;
                }
                let Some(line) = self.listing_line(&rec) else {
                    return;
                };
                // a file is listed once, however many lines name it
                if !listed.insert(rec.name.clone()) {
                    return;
                }
                out.extend_from_slice(line.as_bytes());
                sent += line.len() as u64;
                if out.len() >= 64 * 1024 {
                    failed = conn.write_all(&out).is_err();
                    out.clear();
                }
            });
            if failed {
                return Err(Refusal::done(errno::EIO));
            }
        }
        out.extend_from_slice(&PathBinlogStream::trailer(sent));
        conn.write_all(&out)
            .map_err(|_| Refusal::done(errno::EIO))?;
        Ok(())
    }

    /// The line a FETCH_ONE_PATH_BINLOG listing carries for a binlog record, if the record
    /// creates a file this storage still holds: `C` (or `c`), `L` with the link's target.
    fn listing_line(&self, rec: &Record) -> Option<String> {
        let upper = rec.op.to_ascii_uppercase();
        if !matches!(upper, 'C' | 'L' | 'R') {
            return None;
        }
        let ln = LogicalName::parse(&rec.name, self.store.paths.len()).ok()?;
        let lower = rec.op.is_ascii_lowercase();
        let case = |c: char| if lower { c.to_ascii_lowercase() } else { c };
        if is_trunk_name(&rec.name) {
            self.store.open_stored(&ln, &rec.name).ok()?;
            return Some(format!("{} {} {}\n", rec.timestamp, case('C'), rec.name));
        }
        let md = std::fs::symlink_metadata(self.store.local_path(&ln)).ok()?;
        if !md.file_type().is_symlink() {
            return Some(format!("{} {} {}\n", rec.timestamp, case('C'), rec.name));
        }
        let target = if upper == 'L' && !rec.args.is_empty() {
            rec.args.clone()
        } else {
            let t = std::fs::read_link(self.store.local_path(&ln)).ok()?;
            self.logical_name_of(&t)?
        };
        Some(format!(
            "{} {} {} {target}\n",
            rec.timestamp,
            case('L'),
            rec.name
        ))
    }
}

pub(crate) fn is_trunk_name(name: &str) -> bool {
    RemoteName::decode(name).is_ok_and(|rn| TrunkSlot::of_name(&rn).is_some())
}

/// Fetch a peer's list of one store path: `(timestamp, op, name, second name)` records.
pub(crate) fn fetch_file_list(
    st: &Storage,
    peer: &Brief,
    index: u8,
) -> std::io::Result<Vec<Record>> {
    let c = &st.cfg.server;
    let mut s = net::connect(
        &peer.ip,
        peer.port as u16,
        st.client_bind_ip(),
        Duration::from_secs(c.connect_timeout),
        Duration::from_secs(600),
    )?;
    let body = FetchPathBinlogReq {
        group: st.group.clone(),
        store_path_index: index,
    }
    .to_bytes();
    net::send_request(&mut s, cmd::FETCH_ONE_PATH_BINLOG, 0, &body)?;
    net::recv_header(&mut s).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    let lines = PathBinlogStream::lines(&all)
        .map_err(|e| std::io::Error::other(format!("binlog stream: {e}")))?;
    Ok(String::from_utf8_lossy(lines)
        .lines()
        .filter_map(parse_line)
        .collect())
}

/// Download one file from the peer into place (through the temp directory), keeping its mtime.
/// A normal file is checked against the size and CRC32 its name carries before it takes its
/// place. A file already at `dest` (a replica arrived meanwhile: newer) is kept unless
/// `replace` says the one there is known incomplete. `Ok(false)`: nothing to take (the peer
/// does not have it, or the file is there).
pub(crate) fn restore_file(
    st: &Storage,
    peer: &Brief,
    name: &str,
    ts: i64,
    dest: &Path,
    index: usize,
    replace: bool,
) -> std::io::Result<bool> {
    let mut s = st.connect_to(&peer.ip, peer.port as u16)?;
    let req = DownloadReq {
        offset: 0,
        count: 0,
        group: st.group.clone(),
        filename: name.into(),
    };
    net::send_request(&mut s, cmd::DOWNLOAD_FILE, 0, &req.to_bytes())?;
    let h = match net::recv_header(&mut s) {
        Ok(h) => h,
        Err(net::NetError::Status(s)) if s == errno::ENOENT => return Ok(false),
        Err(e) => return Err(std::io::Error::other(e.to_string())),
    };
    let tmp = st.store.temp_path(index);
    let mut f = std::fs::File::create(&tmp)?;
    let copied = std::io::copy(&mut (&mut s).take(h.pkg_len as u64), &mut f)?;
    if copied != h.pkg_len as u64 {
        let _ = std::fs::remove_file(&tmp);
        return Err(std::io::Error::other("short download"));
    }
    f.flush()?;
    f.sync_data()?;
    // a copy that does not match its name never takes the file's place
    if let Some(want) = crate::store::named_size_and_crc(name) {
        let got = crate::store::file_crc(&tmp, |_| {});
        if got.as_ref().ok() != Some(&want) {
            let _ = std::fs::remove_file(&tmp);
            return Err(std::io::Error::other(format!(
                "the copy on {}:{} is corrupt too",
                peer.ip, peer.port
            )));
        }
    }
    let _ = f.set_modified(UNIX_EPOCH + Duration::from_secs(ts.max(0) as u64));
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if !replace && std::fs::symlink_metadata(dest).is_ok() {
        let _ = std::fs::remove_file(&tmp);
        return Ok(false);
    }
    std::fs::rename(&tmp, dest)?;
    net::quit(s);
    Ok(true)
}

/// A file in a trunk slot from the peer, into its slot here (checked against its name first).
/// `Ok(false)`: nothing to take (the peer does not have it, or the slot holds it already, or
/// holds another file that `over` says to leave alone).
pub(crate) fn restore_slot(
    st: &Storage,
    peer: &Brief,
    name: &str,
    over: &dyn Fn(&fdfs_common::trunk::SlotHeader) -> bool,
) -> std::io::Result<bool> {
    let Some(bytes) = fetch_bytes(st, peer, name)? else {
        return Ok(false);
    };
    st.put_slot(name, &bytes, over)
}

/// What a C storage's interrupted recovery of this store path had not surely finished: the
/// names in its `.binlog.recovery.N` files past their `.recovery.mark.N` marks (upstream
/// downloads a file straight to its place, so one of them may be there half written).
fn unfinished_by_upstream(data: &Path) -> HashSet<String> {
    let mut names = HashSet::new();
    for k in 0.. {
        let binlog = data.join(format!(".binlog.recovery.{k}"));
        let Ok(text) = std::fs::read_to_string(&binlog) else {
            break;
        };
        let done = crate::state_file::read_kv(&data.join(format!(".recovery.mark.{k}")))
            .ok()
            .and_then(|kv| kv.get("binlog_offset")?.parse::<usize>().ok())
            .unwrap_or(0)
            .min(text.len());
        let rest = text.get(done..).unwrap_or(&text);
        names.extend(rest.lines().filter_map(parse_line).map(|r| r.name));
    }
    names
}

/// Upstream's recovery files in a store path's `data/`, and its `.recovery.tmp` downloads.
fn remove_upstream_leftovers(data: &Path) {
    if let Ok(rd) = std::fs::read_dir(data) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(".binlog.recovery.") || n.starts_with(".recovery.mark.") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Ask for a recovery of store path `index` (the flag; nothing if one is due already).
pub fn begin(storage: &Storage, index: usize, why: &str) {
    let flag = storage.store.data_dir(index).join(RECOVERY_FLAG);
    if flag.exists() {
        return;
    }
    log::info!("store path #{index}: {why}; a recovery from the group's members is due");
    // upstream's keys: a C storage taking this disk over goes on with it (from the listing)
    let text = "saved_storage_status=7\nfetch_binlog_done=0\nrecovery_threads=-1\n";
    if let Err(e) = crate::store::write_atomic(&flag, text.as_bytes()) {
        log::error!("write {} fail: {e}", flag.display());
    }
}

/// rfdfs's own, in `base_path/data`: this storage started blank with no sync source.
pub const NO_SOURCE: &str = ".rfdfs_no_source";

/// A storage that started blank got no sync source: the group's first storage, or one rebuilt
/// blank while the members that hold the group's files were away or unknown to the trackers (a
/// tracker that lost its data). Which one shows when another member is ACTIVE: one this
/// storage copied its files to (a sync it began as the source after it started) holds nothing
/// it lacks; one it did not may hold the group's files, and a recovery from the members is due.
impl Storage {
    pub(crate) fn started_without_source(&self) {
        let path = self.cfg.server.base_path.join("data").join(NO_SOURCE);
        if let Err(e) = std::fs::write(&path, b"") {
            log::error!("write {} fail: {e}", path.display());
        }
    }
}

/// Whether a recovery of store path `index` is due (an operator's request, or a member found
/// that may hold files a storage started without a source lacks, become one).
pub fn due(storage: &Storage, index: usize) -> bool {
    let data = storage.store.data_dir(index);
    let request = data.join(REPAIR_REQUEST);
    if request.exists() && std::fs::remove_file(&request).is_ok() {
        begin(storage, index, "a recovery was asked for");
    }
    let no_source = storage.cfg.server.base_path.join("data").join(NO_SOURCE);
    if no_source.exists() {
        // copied from here: a sync this storage began as the member's source since it started
        // blank (a source named in an older life, which the trackers may have been told again,
        // copied nothing from this blank one)
        let joined = storage.join_time.load(Ordering::Relaxed);
        let not_copied_from_here = storage.active_peers().into_iter().find(|p| {
            crate::mark::Mark::load(&storage.mark_path(&p.id))
                .ok()
                .flatten()
                .is_some_and(|m| !m.need_sync_old || m.until_timestamp < joined)
        });
        if let Some(p) = not_copied_from_here {
            for i in 0..storage.store.paths.len() {
                begin(
                    storage,
                    i,
                    &format!(
                        "started with no sync source, and member {} holds files it was not \
                         copied from here",
                        p.id
                    ),
                );
            }
            let _ = std::fs::remove_file(&no_source);
        }
    }
    data.join(RECOVERY_FLAG).exists()
}

/// How a recovery went.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// no member is ACTIVE to recover from: tried again later, the flag stays
    Waiting,
    Done {
        restored: u64,
        failed: u64,
    },
}

/// The store paths being recovered, counted for the reporter (RECOVERY while any is).
struct Recovering<'a>(&'a Storage);

impl<'a> Recovering<'a> {
    fn new(st: &'a Storage) -> Self {
        st.recovering.fetch_add(1, Ordering::SeqCst);
        Recovering(st)
    }
}

impl Drop for Recovering<'_> {
    fn drop(&mut self) {
        self.0.recovering.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A run of the daemon's recovery job (`job::Job`): store path `index`'s recovery, and how long
/// to wait before the next run.
pub fn run_due(st: &Storage, index: usize, stop: &std::sync::atomic::AtomicBool) -> Duration {
    match recover_store_path(st, index, stop) {
        Ok(Outcome::Done { failed: 0, .. }) => Duration::from_secs(1),
        // what failed (a member unreachable, every copy corrupt) is tried again in a while,
        // not in a loop over every member's list
        Ok(Outcome::Done { .. }) => Duration::from_secs(30),
        Ok(Outcome::Waiting) => {
            // said once: a storage alone in its group may wait for ever
            if !st.recovery_waiting.swap(true, Ordering::Relaxed) {
                log::info!(
                    "recovery of store path #{index} waits for a member of group {} to be ACTIVE",
                    st.group
                );
            }
            Duration::from_secs(1)
        }
        Err(e) => {
            log::warn!("recovery of store path #{index} postponed: {e}");
            Duration::from_secs(5)
        }
    }
}

/// Recover store path `index` from every ACTIVE member in turn; the flag goes once done.
pub fn recover_store_path(
    st: &Storage,
    index: usize,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<Outcome, String> {
    let peers = st.active_peers();
    if peers.is_empty() {
        return Ok(Outcome::Waiting);
    }
    st.recovery_waiting.store(false, Ordering::Relaxed);
    let _recovering = Recovering::new(st);
    // a store path being rebuilt may have lost the trunk files held open for uploads
    st.store.forget_trunk_files();
    let recreated = st
        .store
        .make_data_dirs(index)
        .map_err(|e| format!("recreate sub directories: {e}"))?;
    if recreated > 0 {
        log::warn!("recovery: {recreated} missing sub directories of store path #{index} made");
    }
    let data = st.store.data_dir(index);
    let unfinished = unfinished_by_upstream(&data);
    if !unfinished.is_empty() {
        log::warn!(
            "recovery of store path #{index}: an interrupted recovery of a C storage had not \
             finished {} files; they are fetched again",
            unfinished.len()
        );
    }
    let (mut restored, mut failed, mut listed) = (0, 0, 0);
    for peer in &peers {
        log::info!(
            "recovery of store path #{index} from storage {}:{} started",
            peer.ip,
            peer.port
        );
        let list = match fetch_file_list(st, peer, index as u8) {
            Ok(l) => l,
            Err(e) => {
                log::warn!("recovery: file list from {}: {e}", peer.id);
                failed += 1;
                continue;
            }
        };
        listed += 1;
        for rec in list {
            if stop.load(Ordering::Relaxed) {
                return Err("stopped".into());
            }
            match restore_one(st, peer, index, &rec, &unfinished) {
                Ok(true) => restored += 1,
                Ok(false) => {}
                Err(e) => {
                    log::error!("recovery: restore {} fail: {e}", rec.name);
                    failed += 1;
                }
            }
        }
    }
    if listed == 0 {
        return Err("no member gave its file list".into());
    }
    remove_upstream_leftovers(&data);
    if failed == 0 {
        let _ = std::fs::remove_file(data.join(RECOVERY_FLAG));
    }
    log::info!(
        "recovery of store path #{index} done: {restored} files restored from {listed} \
         member(s), {failed} failed{}",
        if failed > 0 { "; tried again" } else { "" }
    );
    Ok(Outcome::Done { restored, failed })
}

/// Restore one listed file from the peer when it is missing here (or known unfinished), and
/// record it in the binlog as a replica. `Ok(true)`: restored.
fn restore_one(
    st: &Storage,
    peer: &Brief,
    index: usize,
    rec: &Record,
    unfinished: &HashSet<String>,
) -> std::io::Result<bool> {
    let Ok(ln) = LogicalName::parse(&rec.name, st.store.paths.len()) else {
        return Ok(false);
    };
    if ln.store_path_index != index {
        return Ok(false);
    }
    // deleted here since (a replicated delete arrived during the recovery)
    if st
        .binlog
        .deleted_at(&rec.name)
        .is_some_and(|d| d >= rec.timestamp)
    {
        return Ok(false);
    }
    let _g = st.lock_for(&rec.name);
    let dest: PathBuf = st.store.local_path(&ln);
    let (restored, line) = if is_trunk_name(&rec.name) {
        if st.store.open_stored(&ln, &rec.name).is_ok() {
            return Ok(false);
        }
        (
            restore_slot(st, peer, &rec.name, &|_| false)?,
            (op::CREATE, String::new()),
        )
    } else if rec.op.eq_ignore_ascii_case(&op::LINK) {
        if std::fs::symlink_metadata(&dest).is_ok() {
            return Ok(false);
        }
        let Ok(target) = LogicalName::parse(&rec.args, st.store.paths.len()) else {
            return Ok(false);
        };
        match std::os::unix::fs::symlink(st.store.local_path(&target), &dest) {
            Ok(()) => (true, (op::LINK, rec.args.clone())),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(e),
        }
    } else {
        let again = unfinished.contains(&rec.name);
        if !again && std::fs::symlink_metadata(&dest).is_ok() {
            return Ok(false);
        }
        let r = restore_file(st, peer, &rec.name, rec.timestamp, &dest, index, again)?;
        (r, (op::CREATE, String::new()))
    };
    if restored {
        // this storage's binlog names every file it holds
        st.binlog.write(
            rec.timestamp,
            line.0.to_ascii_lowercase(),
            &rec.name,
            &line.1,
        )?;
    }
    Ok(restored)
}

/// A file's whole content from a peer, in memory (a trunk file's: small by definition);
/// `None` when the peer does not have it.
pub(crate) fn fetch_bytes(
    st: &Storage,
    peer: &Brief,
    name: &str,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut s = st.connect_to(&peer.ip, peer.port as u16)?;
    let req = DownloadReq {
        offset: 0,
        count: 0,
        group: st.group.clone(),
        filename: name.into(),
    };
    match net::request(&mut s, cmd::DOWNLOAD_FILE, &req.to_bytes()) {
        Ok(b) => {
            net::quit(s);
            Ok(Some(b))
        }
        Err(net::NetError::Status(s)) if s == errno::ENOENT => Ok(None),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}
