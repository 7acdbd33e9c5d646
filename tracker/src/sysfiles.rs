//! Tracker data files copied between trackers (docs/protocol/cluster-protocol.md 4.6): the serving
//! side of GET_SYS_FILES_START / GET_ONE_SYS_FILE / GET_SYS_FILES_END, and the bootstrap a tracker
//! runs at the first storage JOIN after it starts, so that one that was empty or long down learns
//! the cluster (including storages that are down now) from its peers.

use crate::persist;
use crate::state::State;
use crate::tracker::Tracker;
use fdfs_common::codec::Message;
use fdfs_common::codec::Reader;
use fdfs_common::config::parse_host_port;
use fdfs_common::net::{self, NetError};
use fdfs_common::proto::cluster::{SysFileChunk, SysFileReq, SYS_FILES, SYS_FILE_CHUNK};
use fdfs_common::proto::leader::RunningStatus;
use fdfs_common::proto::{cmd, errno};
use fdfs_common::refusal::Refusal;
use std::time::Duration;

/// A tracker down longer than this re-learns the cluster from a better-placed peer.
const LONG_DOWN_SECS: i64 = 600;

/// How long the first JOINs are put off while no peer tracker answers.
const PEER_WAIT_SECS: i64 = 60;

/// The four files as one consistent snapshot, taken at START for the copying peer.
pub type Snapshot = Vec<Vec<u8>>;

impl Tracker {
    /// The data files as they are now, saved first so that they hold the current state.
    fn sys_files_now(&self) -> Snapshot {
        // through the one writer of the data files, which is then kept out until they are read
        let writing = self.writing.lock();
        self.state.lock().dirty = true;
        self.flush_holding(&writing);
        let _changelog = self.changelog.lock();
        SYS_FILES
            .iter()
            .map(|name| std::fs::read(self.data_dir.join(name)).unwrap_or_default())
            .collect()
    }

    /// TRACKER_GET_SYS_FILES_START: a snapshot that the rest of this connection's copy reads.
    pub fn tracker_get_sys_files_start(&self, body: &[u8]) -> Result<Snapshot, Refusal> {
        Reader::new(body).finish()?;
        if self.state.lock().groups.is_empty() {
            return Err(errno::ENOENT.into());
        }
        Ok(self.sys_files_now())
    }

    /// TRACKER_GET_ONE_SYS_FILE: from the START snapshot, or the files on disk without one.
    pub fn tracker_get_one_sys_file(
        &self,
        snapshot: Option<&Snapshot>,
        body: &[u8],
    ) -> Result<Vec<u8>, Refusal> {
        let req = SysFileReq::from_bytes(body)?;
        let index = req.index as usize;
        if index >= SYS_FILES.len() || req.offset < 0 {
            return Err(Refusal::invalid(
                "index",
                format!("file {index} at {}", req.offset),
            ));
        }
        let owned;
        let file = match snapshot {
            Some(s) => &s[index],
            None => {
                let _changelog = self.changelog.lock();
                owned = std::fs::read(self.data_dir.join(SYS_FILES[index])).unwrap_or_default();
                &owned
            }
        };
        let offset = req.offset as usize;
        if offset > file.len() {
            return Err(Refusal::invalid(
                "offset",
                format!("{offset} past {}", file.len()),
            ));
        }
        let end = (offset + SYS_FILE_CHUNK).min(file.len());
        Ok(SysFileChunk {
            file_size: file.len() as i64,
            data: file[offset..end].to_vec(),
        }
        .to_bytes())
    }

    /// Before the first JOIN is served (4.6): copy the data files of the best other tracker if
    /// this one has no groups, or was down long and that one ranks above it. `Err(EAGAIN)` when
    /// a copy was needed but could not be made; the storage retries.
    pub fn bootstrap_sys_files(&self, trackers: &[String]) -> Result<(), u8> {
        let mut done = self.sys_files_checked.lock();
        if *done {
            return Ok(());
        }
        let empty = self.state.lock().groups.is_empty();
        let long_down = self.restart_interval > LONG_DOWN_SECS;
        if !empty && !long_down {
            *done = true;
            return Ok(());
        }
        let me = self.my_ips.lock().clone();
        let port = self.cfg.server.port;
        let is_me = |t: &String| {
            parse_host_port(t, 22122).is_ok_and(|hp| hp.port == port && me.contains(&hp.host))
        };
        if !trackers.iter().any(is_me) {
            // a list without this tracker is no cluster membership to learn from
            *done = true;
            return Ok(());
        }
        let others: Vec<&String> = trackers.iter().filter(|t| !is_me(t)).collect();
        let mut best: Option<(RunningStatus, String)> = None;
        let mut failed = false;
        for t in others {
            match self.request_tracker(t, cmd::TRACKER_GET_STATUS, &[]) {
                Ok(b) => {
                    if let Ok(st) = RunningStatus::from_bytes(&b) {
                        if best.as_ref().is_none_or(|(b, _)| ranks_above(&st, b)) {
                            best = Some((st, t.clone()));
                        }
                    }
                }
                Err(NetError::Status(s)) if s == errno::ENOENT => {} // it knows no groups either
                Err(e) => {
                    log::warn!("get status of tracker {t} fail: {e}");
                    failed = true;
                }
            }
        }
        let Some((status, from)) = best else {
            // a peer that may know the cluster is unreachable: wait for it a while (upstream
            // waits forever), then serve with what this tracker has
            if failed && fdfs_common::now() - self.up_time < PEER_WAIT_SECS {
                return Err(errno::EAGAIN);
            }
            *done = true;
            return Ok(());
        };
        if !empty && !ranks_above(&status, &self.running_status()) {
            *done = true;
            return Ok(());
        }
        match self.copy_sys_files(&from) {
            Ok(()) => {
                log::info!("copied the system data files from tracker {from}");
                *done = true;
                Ok(())
            }
            Err(e) => {
                log::error!("copy system data files from tracker {from} fail: {e}");
                Err(errno::EAGAIN)
            }
        }
    }

    fn copy_sys_files(&self, from: &str) -> Result<(), String> {
        let mut s = self
            .connect_tracker(
                from,
                Duration::from_secs(self.cfg.server.connect_timeout.min(5)),
            )
            .map_err(|e| e.to_string())?;
        net::request(&mut s, cmd::TRACKER_GET_SYS_FILES_START, &[]).map_err(|e| e.to_string())?;
        let mut files = Vec::new();
        for index in 0..SYS_FILES.len() {
            let mut content = Vec::new();
            loop {
                let req = SysFileReq {
                    index: index as u8,
                    offset: content.len() as i64,
                };
                let b = net::request(&mut s, cmd::TRACKER_GET_ONE_SYS_FILE, &req.to_bytes())
                    .map_err(|e| e.to_string())?;
                let chunk = SysFileChunk::from_bytes(&b).map_err(|e| e.to_string())?;
                content.extend_from_slice(&chunk.data);
                if content.len() as i64 >= chunk.file_size || chunk.data.is_empty() {
                    break;
                }
            }
            files.push(content);
        }
        let _ = net::request(&mut s, cmd::TRACKER_GET_SYS_FILES_END, &[]);
        net::quit(s);

        // replace the files, then rebuild the state from them (persist::load validates them)
        let mut st = self.state.lock();
        let mut changelog = self.changelog.lock();
        for (name, content) in SYS_FILES.iter().zip(&files) {
            persist::write_atomic(&self.data_dir.join(name), content).map_err(|e| e.to_string())?;
        }
        let mut fresh = State {
            trackers: st.trackers.clone(),
            ..Default::default()
        };
        persist::load(&self.data_dir, &mut fresh, self.cfg.store_server == 0)?;
        *st = fresh;
        *changelog =
            persist::Changelog::open(&self.data_dir).map_err(|e| format!("open changelog: {e}"))?;
        Ok(())
    }
}

/// The bootstrap ranking: a leader first, then the longer running, then the shorter restart.
fn ranks_above(a: &RunningStatus, b: &RunningStatus) -> bool {
    (
        a.is_leader,
        a.running_time,
        std::cmp::Reverse(a.restart_interval),
    ) > (
        b.is_leader,
        b.running_time,
        std::cmp::Reverse(b.restart_interval),
    )
}
