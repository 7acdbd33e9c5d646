//! The sending side of replication: one thread per peer of the group reads the binlog from
//! its mark and pushes each change (docs/protocol/sync-and-storage-layout.md 3 and 4).
//!
//! Positions are kept in upstream's `.mark` files, written whole through a temp file, and always
//! at a line start: every consumed byte is accounted, so a restart resumes exactly where the last
//! written mark says (at worst re-sending up to `write_mark_file_freq` records, which receivers
//! answer idempotently).

use crate::binlog::{BinlogReader, Next, Record};
use crate::mark::Mark;
use crate::storage::Storage;
use crate::store::Stored;
use crate::tracker_link::TrackerLink;
use fdfs_common::codec::Message;
use fdfs_common::file_id::LogicalName;
use fdfs_common::net::{self, NetError, NetResult};
use fdfs_common::proto::cluster::{Brief, GroupStorageReq, ReportStatusReq, SyncSource};
use fdfs_common::proto::sync::{
    ReportServerId, SyncDeleteReq, SyncFileHead, SyncRangeReq, SyncTwoNamesReq,
};
use fdfs_common::proto::{cmd, errno, status, Header};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Whether local time `now` is inside the daily replication window `start`..=`end` (HH:MM; an
/// end before the start runs over midnight), as upstream's sync threads judge it: from the start
/// minute to the end minute's first second. 00:00..23:59 is the whole day.
pub fn in_sync_window(now: i64, start: (u8, u8), end: (u8, u8)) -> bool {
    if start == (0, 0) && end == (23, 59) {
        return true;
    }
    let Some(t) = fdfs_common::log::seconds_from_local_midnight(now) else {
        return true;
    };
    let at = |hm: (u8, u8)| i64::from(hm.0) * 3600 + i64::from(hm.1) * 60;
    let (s, e) = (at(start), at(end));
    if s <= e {
        s <= t && t <= e
    } else {
        t >= s || t <= e
    }
}

/// Whether a record goes to the peer (4.2).
fn needs_sync(r: &Record, mark: &Mark) -> bool {
    match r.op {
        'C' | 'D' | 'U' | 'A' | 'M' | 'T' | 'R' | 'L' => true,
        'c' | 'd' | 'u' | 'l' | 'r' => {
            mark.need_sync_old && !mark.sync_old_done && r.timestamp <= mark.until_timestamp
        }
        _ => false,
    }
}

/// One peer's sync thread.
pub struct PeerSync {
    pub link: TrackerLink,
    pub peer: Brief,
}

const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// How often a member waiting for a new peer to become ACTIVE asks again who its source is.
const SOURCE_RECHECK: Duration = Duration::from_secs(5);

impl PeerSync {
    fn storage(&self) -> &Storage {
        &self.link.storage
    }

    fn mark_path(&self) -> PathBuf {
        self.storage().mark_path(&self.peer.id)
    }

    fn peer_status(&self) -> u8 {
        self.link
            .storage
            .members
            .read()
            .iter()
            .find(|b| b.id == self.peer.id)
            .map(|b| b.status)
            .unwrap_or(status::NONE)
    }

    fn stopped(&self) -> bool {
        self.link.stopped()
    }

    fn departed(&self) -> bool {
        status::gone(self.peer_status())
    }

    /// Sleep `d`, less when the daemon stops or the peer leaves (its mark waits for us).
    fn pause(&self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end && !self.stopped() && !self.departed() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ask the trackers who copies old files to this peer, and until when.
    fn sync_src_req(&self) -> Option<SyncSource> {
        let req = GroupStorageReq {
            group: self.storage().group.clone(),
            storage_id: self.peer.id.clone(),
        }
        .to_bytes();
        for t in &self.link.leader_first() {
            if let Ok(mut s) = self.link.connect(t) {
                let r = net::request(&mut s, cmd::STORAGE_SYNC_SRC_REQ, &req);
                net::quit(s);
                match r {
                    Ok(b) if b.is_empty() => return Some(SyncSource::default()),
                    Ok(b) => return SyncSource::from_bytes(&b).ok(),
                    Err(NetError::Status(_)) => return Some(SyncSource::default()),
                    Err(_) => continue,
                }
            }
        }
        None
    }

    fn report_peer_status(&self, st: u8) {
        let brief = Brief {
            status: st,
            port: 0,
            id: self.peer.id.clone(),
            ip: self.peer.ip.clone(),
        };
        let body = ReportStatusReq {
            group: self.storage().group.clone(),
            brief,
        }
        .to_bytes();
        for t in &self.storage().cfg.tracker_servers {
            if let Ok(mut s) = self.link.connect(t) {
                if let Err(e) = net::request(&mut s, cmd::STORAGE_REPORT_STATUS, &body) {
                    log::error!(
                        "report status {} of {} to tracker server {t} fail: {e}",
                        status::name(st),
                        self.peer.id
                    );
                }
                net::quit(s);
            }
        }
    }

    /// The mark to continue from (3.4).
    fn init_mark(&self, peer_status: u8) -> Option<Mark> {
        let path = self.mark_path();
        let existing = if peer_status <= status::WAIT_SYNC {
            None
        } else {
            match Mark::load(&path) {
                Ok(m) => m,
                Err(e) => {
                    log::error!("{e}; starting over for {}", self.peer.id);
                    None
                }
            }
        };
        let me = self.storage().my_id.read().clone();
        if let Some(m) = existing {
            if peer_status == status::SYNCING && !m.need_sync_old {
                if let Some(src) = self.sync_src_req() {
                    if src.src_id == me {
                        return Some(self.fresh_mark(src, &me));
                    }
                }
            }
            return Some(m);
        }
        let src = self.sync_src_req()?;
        Some(self.fresh_mark(src, &me))
    }

    fn fresh_mark(&self, src: SyncSource, me: &str) -> Mark {
        let mut m = Mark {
            need_sync_old: src.src_id == me,
            until_timestamp: src.until_timestamp,
            ..Default::default()
        };
        if !m.need_sync_old && m.until_timestamp > 0 {
            // the source copies what is older than `until`; start after it
            let mut r = BinlogReader::new(&self.sync_dir(), 0, 0);
            let cur = self.storage().binlog.visible_end();
            loop {
                match r.next(cur) {
                    Ok(Next::Record(rec, len)) if rec.timestamp < m.until_timestamp => {
                        r.offset += len
                    }
                    Ok(Next::Invalid(_, len)) => r.offset += len,
                    _ => break,
                }
            }
            m.at(r.position());
        }
        m.save(&self.mark_path());
        m
    }

    fn sync_dir(&self) -> PathBuf {
        self.storage().cfg.server.base_path.join("data/sync")
    }

    fn connect_peer(&self) -> std::io::Result<TcpStream> {
        let c = &self.storage().cfg.server;
        let bind = self.storage().client_bind_ip();
        // with server ids a peer may come back on another address: use the latest listing
        let (ip, port) = self
            .link
            .storage
            .members
            .read()
            .iter()
            .find(|b| b.id == self.peer.id)
            .map(|b| (b.ip.clone(), b.port))
            .unwrap_or_else(|| (self.peer.ip.clone(), self.peer.port));
        net::connect(
            &ip,
            port as u16,
            bind,
            Duration::from_secs(c.connect_timeout),
            Duration::from_secs(c.network_timeout.max(60)),
        )
    }

    /// Run until stopped or the peer leaves the group.
    pub fn run(self) {
        log::info!(
            "sync thread to storage {}:{} started",
            self.peer.ip,
            self.peer.port
        );
        while !self.stopped() {
            if self.departed() {
                break;
            }
            let st = self.peer_status();
            if !matches!(st, status::ACTIVE | status::WAIT_SYNC | status::SYNCING) {
                self.pause(RETRY_PAUSE);
                continue;
            }
            match self.session(st) {
                Ok(()) => {}
                Err(e) => {
                    if !self.stopped() {
                        log::warn!(
                            "sync to storage {}:{} interrupted: {e}",
                            self.peer.ip,
                            self.peer.port
                        );
                    }
                    self.pause(RETRY_PAUSE);
                }
            }
        }
        log::info!(
            "sync thread to storage {}:{} exit",
            self.peer.ip,
            self.peer.port
        );
    }

    /// Whether replication may run now (`sync_start_time` / `sync_end_time`).
    fn in_window(&self) -> bool {
        let c = &self.storage().cfg;
        in_sync_window(fdfs_common::now(), c.sync_start_time, c.sync_end_time)
    }

    fn session(&self, st: u8) -> NetResult<()> {
        if !self.in_window() {
            let c = &self.storage().cfg;
            log::info!(
                "sync to storage {}:{} waits for its window {:02}:{:02} - {:02}:{:02}",
                self.peer.ip,
                self.peer.port,
                c.sync_start_time.0,
                c.sync_start_time.1,
                c.sync_end_time.0,
                c.sync_end_time.1
            );
            while !self.in_window() {
                if self.stopped() || self.departed() {
                    return Ok(());
                }
                self.pause(Duration::from_secs(1));
            }
        }
        let Some(mut mark) = self.init_mark(st) else {
            return Err(NetError::Protocol(
                "no tracker answered SYNC_SRC_REQ".into(),
            ));
        };
        let mut sock = self.connect_peer()?;
        let _registered = self.storage().open_syncs.register(&sock);
        let me = self.storage().my_id.read().clone();
        net::request(
            &mut sock,
            cmd::REPORT_SERVER_ID,
            &ReportServerId { id: me.clone() }.to_bytes(),
        )?;
        if !mark.need_sync_old {
            // a non-source only starts once the peer has its old files
            let mut asked = Instant::now();
            while self.peer_status() != status::ACTIVE {
                if self.stopped() || self.departed() {
                    return Ok(());
                }
                // the trackers may have named the source only after we asked (members of a
                // new group joining at once): if it is us after all, start over as the source
                if asked.elapsed() >= SOURCE_RECHECK {
                    asked = Instant::now();
                    if self.peer_status() <= status::WAIT_SYNC
                        && self.sync_src_req().is_some_and(|s| s.src_id == me)
                    {
                        log::info!("I am the source of storage {} after all", self.peer.id);
                        return Ok(());
                    }
                }
                self.pause(Duration::from_millis(200));
            }
        } else if !mark.sync_old_done {
            self.report_peer_status(status::SYNCING);
        }
        let mut reader = BinlogReader::new(&self.sync_dir(), mark.binlog_index, mark.binlog_offset);
        reader.align_to_line_start();
        let path = self.mark_path();
        let freq = self.storage().cfg.write_mark_file_freq as i64;
        let mut rows_at_save = mark.sync_row_count;
        let mut saved = mark.clone();
        let mut last_io = Instant::now();
        let wait = Duration::from_millis(self.storage().cfg.sync_wait_msec);
        let idle_probe = Duration::from_secs(self.storage().cfg.heart_beat_interval);
        while !self.stopped() {
            // leaving the window ends the session; the next one waits for the window
            if self.departed() || !self.in_window() {
                break;
            }
            let next = reader.next(self.storage().binlog.visible_end())?;
            match next {
                Next::Eof => {
                    if mark.need_sync_old && !mark.sync_old_done {
                        mark.sync_old_done = true;
                        mark.at(reader.position());
                        mark.save(&path);
                        saved = mark.clone();
                        self.report_peer_status(status::OFFLINE);
                        log::info!("initial sync of storage {} done", self.peer.id);
                    }
                    mark.at(reader.position());
                    if mark != saved {
                        mark.save(&path);
                        saved = mark.clone();
                    }
                    let at = (reader.index, reader.offset);
                    self.storage().copies.reached(&self.peer.id, at);
                    if last_io.elapsed() >= idle_probe {
                        net::request(&mut sock, cmd::ACTIVE_TEST, &[])?;
                        last_io = Instant::now();
                    }
                    // woken by a new line at once: a change waiting for its copies
                    // (write_ack_copies) is sent without a poll's delay. A line that became
                    // visible since the read is read at once; a reader past the end (a mark
                    // from a longer binlog) can only wait for the binlog to grow
                    let end = self.storage().binlog.visible_end();
                    if end == at {
                        self.storage().binlog.wait_visible_past(at, wait);
                    } else if end < at {
                        // the binlog was cut short under the running storage (startup moves
                        // such marks): go on from its end, and look for what was lost
                        self.storage().binlog.note_damage(&format!(
                            "the binlog ends at binlog.{:03} offset {}, before the sync of {} \
                             (offset {}); it goes on from the end",
                            end.0, end.1, self.peer.id, at.1
                        ));
                        crate::binlog_repair::request(self.storage());
                        reader = BinlogReader::new(&self.sync_dir(), end.0, end.1);
                    }
                }
                Next::Invalid(line, len) => {
                    // upstream's default: a record that cannot be read stops this peer's sync
                    // (retried, and stopped again, until the binlog is mended or the key is
                    // set), rather than leave the peer without a change unnoticed
                    if !self.storage().cfg.file_sync_skip_invalid_record {
                        mark.at(reader.position());
                        mark.save(&path);
                        return Err(NetError::Protocol(format!(
                            "invalid binlog record, binlog index: {}, offset: {}: {line:?}; \
                             the sync stops here while file_sync_skip_invalid_record = false",
                            reader.index, reader.offset
                        )));
                    }
                    log::warn!(
                        "skip invalid record, binlog index: {}, offset: {}: {line:?}",
                        reader.index,
                        reader.offset
                    );
                    reader.offset += len;
                    mark.scan_row_count += 1;
                }
                Next::Record(rec, len) => {
                    mark.scan_row_count += 1;
                    if needs_sync(&rec, &mark) {
                        if let Err(e) = self.send(&mut sock, &rec) {
                            mark.at(reader.position());
                            mark.save(&path);
                            return Err(e);
                        }
                        mark.sync_row_count += 1;
                        last_io = Instant::now();
                    }
                    reader.offset += len;
                    self.storage()
                        .copies
                        .reached(&self.peer.id, (reader.index, reader.offset));
                    if mark.sync_row_count - rows_at_save >= freq {
                        rows_at_save = mark.sync_row_count;
                        mark.at(reader.position());
                        mark.save(&path);
                        saved = mark.clone();
                    }
                    let pause = self.storage().cfg.sync_interval;
                    if pause > 0 {
                        std::thread::sleep(Duration::from_millis(pause));
                    }
                }
            }
        }
        mark.at(reader.position());
        mark.save(&path);
        net::quit(sock);
        Ok(())
    }

    fn local(&self, name: &str) -> Option<PathBuf> {
        LogicalName::parse(name, self.storage().store.paths.len())
            .ok()
            .map(|n| self.storage().store.local_path(&n))
    }

    /// The bytes `name` stands for here (a trunk name: its slot), if this member holds it.
    fn stored(&self, name: &str) -> Option<Stored> {
        let store = &self.storage().store;
        let n = LogicalName::parse(name, store.paths.len()).ok()?;
        store.open_stored(&n, name).ok()
    }

    /// Push one record (4.3). Answers that mean "already there" or "already gone" are success.
    fn send(&self, sock: &mut TcpStream, rec: &Record) -> NetResult<()> {
        let group = self.storage().group.clone();
        let ts = rec.timestamp as i32;
        let Some(path) = self.local(&rec.name) else {
            log::warn!("binlog record with an invalid name skipped: {}", rec.name);
            return Ok(());
        };
        match rec.op.to_ascii_uppercase() {
            'C' | 'U' => {
                let command = if rec.op.eq_ignore_ascii_case(&'U') {
                    cmd::SYNC_UPDATE_FILE
                } else {
                    cmd::SYNC_CREATE_FILE
                };
                self.send_file(sock, command, &rec.name, ts, &group)
            }
            'D' => {
                if std::fs::symlink_metadata(&path).is_ok() || self.stored(&rec.name).is_some() {
                    return Ok(()); // created again later: that create follows
                }
                let body = SyncDeleteReq {
                    timestamp: ts,
                    group,
                    filename: rec.name.clone(),
                }
                .to_bytes();
                ok_or(
                    sock_request(sock, cmd::SYNC_DELETE_FILE, &body),
                    &[errno::ENOENT],
                )
            }
            'A' | 'M' => {
                let Some((offset, len)) = rec.arg_pair::<u64>() else {
                    return Ok(());
                };
                let Ok(mut f) = File::open(&path) else {
                    return Ok(());
                };
                let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                if size <= offset {
                    return Ok(()); // truncated away since: a later record carries the state
                }
                // cut short by a later truncate: what the file still holds of the range is
                // sent as it is now (the truncate's record carries only the new size, so the
                // peer would keep its old bytes there)
                let len = len.min(size - offset);
                let mut data = vec![0u8; len as usize];
                f.seek(SeekFrom::Start(offset))?;
                f.read_exact(&mut data)?;
                let command = if rec.op.eq_ignore_ascii_case(&'A') {
                    cmd::SYNC_APPEND_FILE
                } else {
                    cmd::SYNC_MODIFY_FILE
                };
                let head = SyncRangeReq {
                    offset: offset as i64,
                    length: len as i64,
                    timestamp: ts,
                    group: group.clone(),
                    filename: rec.name.clone(),
                };
                let mut body = head.to_bytes();
                body.extend_from_slice(&data);
                match sock_request(sock, command, &body) {
                    Err(NetError::Status(s)) if s == errno::ENOENT => {
                        self.send_file(sock, cmd::SYNC_UPDATE_FILE, &rec.name, ts, &group)
                    }
                    r => ok_or(r, &[errno::EEXIST]),
                }
            }
            'T' => {
                let Ok(md) = std::fs::symlink_metadata(&path) else {
                    return Ok(());
                };
                let Some((old, new)) = rec.arg_pair::<i64>() else {
                    return Ok(());
                };
                if md.len() as i64 != new {
                    // changed since, or the truncate never happened: send what the file is now
                    return self.send_file(sock, cmd::SYNC_UPDATE_FILE, &rec.name, ts, &group);
                }
                let body = SyncRangeReq {
                    offset: old,
                    length: new,
                    timestamp: ts,
                    group: group.clone(),
                    filename: rec.name.clone(),
                }
                .to_bytes();
                match sock_request(sock, cmd::SYNC_TRUNCATE_FILE, &body) {
                    // the peer misses the file or is not at the old size: send the current content
                    Err(NetError::Status(s)) if s == errno::ENOENT || s == errno::EEXIST => {
                        self.send_file(sock, cmd::SYNC_UPDATE_FILE, &rec.name, ts, &group)
                    }
                    r => r,
                }
            }
            'R' => {
                if std::fs::symlink_metadata(&path).is_err() {
                    return Ok(());
                }
                if rec.op == 'r' {
                    return self.send_file(sock, cmd::SYNC_CREATE_FILE, &rec.name, ts, &group);
                }
                let body = SyncTwoNamesReq {
                    timestamp: ts,
                    group: group.clone(),
                    first: rec.name.clone(),
                    second: rec.args.clone(),
                }
                .to_bytes();
                match sock_request(sock, cmd::SYNC_RENAME_FILE, &body) {
                    Err(NetError::Status(s)) if s == errno::ENOENT => {
                        self.send_file(sock, cmd::SYNC_CREATE_FILE, &rec.name, ts, &group)
                    }
                    r => ok_or(r, &[errno::EEXIST]),
                }
            }
            'L' => {
                let Ok(md) = std::fs::symlink_metadata(&path) else {
                    return Ok(());
                };
                if !md.file_type().is_symlink() || rec.args.is_empty() {
                    return Ok(());
                }
                let body = SyncTwoNamesReq {
                    timestamp: ts,
                    group,
                    first: rec.name.clone(),
                    second: rec.args.clone(),
                }
                .to_bytes();
                ok_or(
                    sock_request(sock, cmd::SYNC_CREATE_LINK, &body),
                    &[errno::ENOENT],
                )
            }
            _ => Ok(()),
        }
    }

    /// SYNC_CREATE_FILE / SYNC_UPDATE_FILE with the file's current content (streamed; a trunk
    /// file's from its slot).
    fn send_file(
        &self,
        sock: &mut TcpStream,
        command: u8,
        name: &str,
        ts: i32,
        group: &str,
    ) -> NetResult<()> {
        let Some(stored) = self.stored(name) else {
            return Ok(());
        }; // gone since: its delete follows
        let size = stored.size;
        let head = SyncFileHead {
            file_size: size as i64,
            timestamp: ts,
            group: group.into(),
            filename: name.into(),
        }
        .to_bytes();
        let mut frame = Header::new(command, head.len() + size as usize)
            .to_bytes()
            .to_vec();
        frame.extend_from_slice(&head);
        sock.write_all(&frame)?;
        if size > 0 {
            crate::zero_copy::send_file(sock, &stored.file, stored.start, size)?;
        }
        let r = net::recv_header(sock).and_then(|h| net::recv_body(sock, &h).map(|_| ()));
        if r.is_ok() {
            let mut s = self.storage().stats.lock();
            s.counters[fdfs_common::proto::cluster::stat::TOTAL_SYNC_OUT_BYTES] += size as i64;
            s.counters[fdfs_common::proto::cluster::stat::TOTAL_SYNC_OUT_BYTES + 1] += size as i64;
        }
        ok_or(r, &[errno::EEXIST])
    }
}

fn sock_request(sock: &mut TcpStream, command: u8, body: &[u8]) -> NetResult<()> {
    // a status-0 reply may carry a body (upstream's rename echo): read and drop it
    net::request(sock, command, body).map(|_| ())
}

/// Success, or one of the statuses that mean the peer is already in the wanted state.
fn ok_or(r: NetResult<()>, fine: &[u8]) -> NetResult<()> {
    match r {
        Err(NetError::Status(s)) if fine.contains(&s) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sync_window_is_upstreams() {
        let now = fdfs_common::now();
        let midnight = now - fdfs_common::log::seconds_from_local_midnight(now).unwrap();
        let at = |h: i64, m: i64, s: i64| midnight + h * 3600 + m * 60 + s;
        assert!(in_sync_window(at(12, 0, 0), (0, 0), (23, 59)));
        assert!(in_sync_window(at(23, 59, 30), (0, 0), (23, 59)));
        // a day window: both ends' minutes begin inside it, the end minute's later seconds not
        assert!(!in_sync_window(at(1, 59, 59), (2, 0), (5, 30)));
        assert!(in_sync_window(at(2, 0, 0), (2, 0), (5, 30)));
        assert!(in_sync_window(at(5, 30, 0), (2, 0), (5, 30)));
        assert!(!in_sync_window(at(5, 30, 1), (2, 0), (5, 30)));
        // over midnight
        assert!(in_sync_window(at(23, 0, 0), (22, 0), (6, 0)));
        assert!(in_sync_window(at(3, 0, 0), (22, 0), (6, 0)));
        assert!(!in_sync_window(at(12, 0, 0), (22, 0), (6, 0)));
    }
}
