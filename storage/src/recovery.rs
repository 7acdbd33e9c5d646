//! Making a member whole again from a peer (sync-and-storage-layout.md 5.7, done online).
//!
//! A peer lists the files of one store path with FETCH_ONE_PATH_BINLOG (upstream's disk
//! recovery command, served here too); every listed file missing locally is downloaded from
//! that peer through the temp directory, with its original mtime. Nothing is written to our
//! binlog: the files are not new to the group. It runs at startup for a store path whose
//! sub directories had gone missing, and whenever `<store path>/data/.rfdfs_repair` appears,
//! without stopping the storage.

use crate::binlog::{binlog_name, for_each_record, parse_line};
use crate::reporter::Reporter;
use crate::storage::{Fail, Storage};
use fdfs_common::codec::Message;
use fdfs_common::file_id::LogicalName;
use fdfs_common::net;
use fdfs_common::proto::storage::DownloadReq;
use fdfs_common::proto::sync::{FetchPathBinlogReq, PathBinlogStream};
use fdfs_common::proto::{cmd, errno, status, Header};
use fdfs_common::server::Conn;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

pub const REPAIR_REQUEST: &str = ".rfdfs_repair";

impl Storage {
    /// FETCH_ONE_PATH_BINLOG: stream the binlog lines of the files this storage holds in one
    /// store path, then their byte count, then close.
    pub(crate) fn fetch_one_path_binlog(&self, conn: &mut Conn, body: &[u8]) -> Result<(), Fail> {
        let req = FetchPathBinlogReq::from_bytes(body)?;
        let index = req.store_path_index as usize;
        if req.group != self.group || index >= self.store.paths.len() {
            return Err(Fail::done(errno::EINVAL));
        }
        let header = Header {
            pkg_len: PathBinlogStream::ANNOUNCED_LEN,
            cmd: cmd::RESP,
            status: 0,
        };
        conn.write_all(&header.to_bytes())
            .map_err(|_| Fail::done(errno::EIO))?;
        let prefix = format!("M{index:02X}/");
        let mut sent: u64 = 0;
        let sync_dir = self.cfg.server.base_path.join("data/sync");
        let last = self.binlog.current_index();
        let mut out = Vec::new();
        let mut failed = false;
        for i in 0..=last {
            let _ = for_each_record(&sync_dir.join(binlog_name(i)), |rec| {
                if failed {
                    return;
                }
                let upper = rec.op.to_ascii_uppercase();
                if !matches!(upper, 'C' | 'L' | 'R') || !rec.name.starts_with(&prefix) {
                    return;
                }
                let Ok(ln) = LogicalName::parse(&rec.name, self.store.paths.len()) else {
                    return;
                };
                let Ok(md) = std::fs::symlink_metadata(self.store.local_path(&ln)) else {
                    return;
                };
                let lower = rec.op.is_ascii_lowercase();
                let op = match (md.file_type().is_symlink(), lower) {
                    (true, false) => 'L',
                    (true, true) => 'l',
                    (false, false) => 'C',
                    (false, true) => 'c',
                };
                let line = if md.file_type().is_symlink() && upper == 'L' {
                    format!("{} {op} {} {}\n", rec.timestamp, rec.name, rec.args)
                } else {
                    format!("{} {op} {}\n", rec.timestamp, rec.name)
                };
                out.extend_from_slice(line.as_bytes());
                sent += line.len() as u64;
                if out.len() >= 64 * 1024 {
                    failed = conn.write_all(&out).is_err();
                    out.clear();
                }
            });
            if failed {
                return Err(Fail::done(errno::EIO));
            }
        }
        out.extend_from_slice(&PathBinlogStream::trailer(sent));
        conn.write_all(&out).map_err(|_| Fail::done(errno::EIO))?;
        Ok(())
    }
}

/// Fetch a peer's list of one store path: `(timestamp, op, name, second name)` records.
fn fetch_file_list(
    rep: &Reporter,
    peer: &fdfs_common::proto::cluster::Brief,
    index: u8,
) -> std::io::Result<Vec<crate::binlog::Record>> {
    let c = &rep.storage.cfg.server;
    let mut s = net::connect(
        &peer.ip,
        peer.port as u16,
        None,
        Duration::from_secs(c.connect_timeout),
        Duration::from_secs(600),
    )?;
    let body = FetchPathBinlogReq {
        group: rep.storage.group.clone(),
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
pub(crate) fn restore_file(
    rep: &Reporter,
    peer: &fdfs_common::proto::cluster::Brief,
    name: &str,
    ts: i64,
    dest: &Path,
    index: usize,
) -> std::io::Result<bool> {
    let st = &rep.storage;
    let c = &st.cfg.server;
    let mut s = net::connect(
        &peer.ip,
        peer.port as u16,
        None,
        Duration::from_secs(c.connect_timeout),
        Duration::from_secs(c.network_timeout.max(60)),
    )?;
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
    // a file that reappeared meanwhile (a replica arrived) is newer than ours: keep it
    if std::fs::symlink_metadata(dest).is_ok() {
        let _ = std::fs::remove_file(&tmp);
        return Ok(false);
    }
    std::fs::rename(&tmp, dest)?;
    net::quit(s);
    Ok(true)
}

/// Restore every file an ACTIVE peer lists for store path `index` and we lack.
/// Returns (restored, failed).
pub fn repair_store_path(rep: &Reporter, index: usize) -> Result<(u64, u64), String> {
    // a store path being rebuilt may have lost the trunk files held open for uploads
    rep.storage.store.forget_trunk_files();
    let me = rep.storage.my_id.read().clone();
    let peer = rep
        .storage
        .members
        .read()
        .iter()
        .find(|b| b.id != me && b.status == status::ACTIVE)
        .cloned()
        .ok_or("no ACTIVE peer to repair from")?;
    log::info!(
        "repair of store path {index} from storage {}:{} started",
        peer.ip,
        peer.port
    );
    let recreated = rep
        .storage
        .store
        .make_data_dirs(index)
        .map_err(|e| format!("recreate sub directories: {e}"))?;
    if recreated > 0 {
        log::warn!("repair: {recreated} missing sub directories recreated");
    }
    let list = fetch_file_list(rep, &peer, index as u8)
        .map_err(|e| format!("fetch file list from {}: {e}", peer.ip))?;
    let (mut restored, mut failed) = (0, 0);
    for rec in list {
        if rep.stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let Ok(ln) = LogicalName::parse(&rec.name, rep.storage.store.paths.len()) else {
            continue;
        };
        let dest: PathBuf = rep.storage.store.local_path(&ln);
        if std::fs::symlink_metadata(&dest).is_ok() {
            continue;
        }
        if rec.op.eq_ignore_ascii_case(&'L') {
            if let Ok(target) = LogicalName::parse(&rec.args, rep.storage.store.paths.len()) {
                let _ = std::os::unix::fs::symlink(rep.storage.store.local_path(&target), &dest);
            }
            continue;
        }
        match restore_file(rep, &peer, &rec.name, rec.timestamp, &dest, index) {
            Ok(true) => restored += 1,
            Ok(false) => {}
            Err(e) => {
                log::error!("repair: restore {} fail: {e}", rec.name);
                failed += 1;
            }
        }
    }
    log::info!("repair of store path {index} done: {restored} files restored, {failed} failed");
    Ok((restored, failed))
}

/// Whether an operator asked for a repair of store path `index` (and take the request).
pub fn repair_requested(storage: &Storage, index: usize) -> bool {
    let p = storage.store.data_dir(index).join(REPAIR_REQUEST);
    p.exists() && std::fs::remove_file(&p).is_ok()
}

/// A file's whole content from a peer, in memory (a trunk file's: small by definition);
/// `None` when the peer does not have it.
pub(crate) fn fetch_bytes(
    rep: &Reporter,
    peer: &fdfs_common::proto::cluster::Brief,
    name: &str,
) -> std::io::Result<Option<Vec<u8>>> {
    let st = &rep.storage;
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
