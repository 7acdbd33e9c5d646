//! What a damaged binlog costs the group, found and made good (issue 28, finding 5).
//!
//! A binlog can lose lines without the storage losing files: cut short by a file system repair
//! or an operator, a rotated file deleted, its index lost. Two things then go wrong silently:
//! a peer's mark points past the lines there are (its sync would wait until the binlog grows
//! that far and then read from the middle of a line, skipping everything written meanwhile),
//! and the files whose lines were lost are never sent to the peers that had not received them
//! yet, nor listed to a new member or a recovering one.
//!
//! At startup, before any sync thread reads, [`check_marks`] compares every peer's mark with
//! the binlog files there are: a mark past the end of its file (or into a file that is gone)
//! is moved to the first line written after the damage, and the damage is logged and counted.
//! Then, whenever lines were lost, [`rerecord`] walks the store paths and writes a line for
//! every file no binlog line names (upper case for files that started here, which the sync
//! threads then send to every peer; lower case for replicas, which full syncs and recovery
//! listings carry). Receivers answer a file they have as "already there", so what a peer had
//! received before the damage costs a request, not a copy. The request is a file
//! (`data/sync/.rfdfs_rerecord`): a crash in the middle runs it again, and an operator can ask
//! for it by hand.
//!
//! Files in trunk slots cannot be named from the store paths: a slot's header does not carry
//! the whole file ID (its random bits). So when a store path has trunk files, the walk leaves a
//! second request (`data/sync/.rfdfs_rerecord_slots`), and [`rerecord_slots`] asks every ACTIVE
//! member for its list of the store path (FETCH_ONE_PATH_BINLOG, which C storages serve too):
//! each listed file in a trunk slot that no line here names, and that this member's slot holds
//! (its header names it), gets its line. Until a member answers, the request waits; without it,
//! a member recovering from this one alone would never get those files (the 60-minute fault
//! campaign lost 2568 that way). Files in slots that no member lists stay unnamed, counted in
//! the log.
//!
//! Not covered: deletes whose lines were lost cannot be known: the file stays on the peers that
//! had not received the delete.

use crate::binlog::{binlog_name, gz_name, op, parse_line, Binlog, Position};
use crate::mark::Mark;
use crate::recovery::{fetch_file_list, is_trunk_name};
use crate::storage::Storage;
use fdfs_common::file_id::{LogicalName, RemoteName, Source};
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::io::BufRead;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// The request for a re-record, in `data/sync`.
pub const REQUEST: &str = ".rfdfs_rerecord";
/// What is left of a re-record once the store paths are walked: naming the files of trunk
/// slots from the members' lists, in `data/sync`.
pub const SLOTS_REQUEST: &str = ".rfdfs_rerecord_slots";

/// Check every peer's mark against the binlog as it was opened (no sync thread has read yet).
/// A mark the binlog no longer reaches is moved to where lines continue; returns whether lines
/// were lost (a re-record is then due).
pub fn check_marks(binlog: &Binlog) -> bool {
    let dir = binlog.dir().to_path_buf();
    let (current, end) = binlog.opened_end();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return false;
    };
    let mut lost = false;
    let mut lowest = current;
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "mark") {
            continue;
        }
        // a mark that cannot be read is the sync thread's to report (it starts over)
        let Ok(Some(mut mark)) = Mark::load(&path) else {
            continue;
        };
        let at: Position = (mark.binlog_index, mark.binlog_offset);
        lowest = lowest.min(at.0);
        let Some((to, why)) = past_the_end(&dir, at, (current, end)) else {
            continue;
        };
        binlog.note_damage(&format!(
            "{why}: the sync of {} resumes at binlog.{:03} offset {}, where lines go on, and \
             the files whose lines were lost are looked for in the store paths",
            path.file_name().unwrap_or_default().to_string_lossy(),
            to.0,
            to.1
        ));
        mark.binlog_index = to.0;
        mark.binlog_offset = to.1;
        mark.save(&path);
        lost = true;
    }
    for i in lowest..current {
        if !dir.join(binlog_name(i)).exists() && !gz_name(&dir, i).exists() {
            binlog.note_damage(&format!(
                "binlog.{i:03} is missing; the files whose lines it held are looked for in the \
                 store paths"
            ));
            lost = true;
        }
    }
    lost
}

/// Where a mark at `at` must go when the binlog (ending at `end`) no longer reaches it, and
/// why; `None` while it points inside the binlog.
fn past_the_end(dir: &Path, at: Position, end: Position) -> Option<(Position, String)> {
    let (current, size) = end;
    if at.0 > current {
        return Some((
            end,
            format!(
                "a mark points into binlog.{:03}, past binlog.{current:03}, the newest there is",
                at.0
            ),
        ));
    }
    if at.0 == current {
        return (at.1 > size).then(|| {
            (
                end,
                format!(
                    "binlog.{current:03} is {size} bytes, shorter than a mark into it ({})",
                    at.1
                ),
            )
        });
    }
    match std::fs::metadata(dir.join(binlog_name(at.0))) {
        Ok(md) if at.1 > md.len() => Some((
            (at.0 + 1, 0),
            format!(
                "binlog.{:03} is {} bytes, shorter than a mark into it ({})",
                at.0,
                md.len(),
                at.1
            ),
        )),
        Ok(_) => None,
        Err(_) if gz_name(dir, at.0).exists() => None,
        Err(_) => Some((
            (at.0 + 1, 0),
            format!("binlog.{:03}, which a mark points into, is missing", at.0),
        )),
    }
}

/// Ask for a re-record (done by the daemon's main loop, once at a time).
pub fn request(storage: &Storage) {
    let path = storage.binlog.dir().join(REQUEST);
    if let Err(e) = std::fs::write(&path, b"") {
        log::error!("write {} fail: {e}", path.display());
    }
}

/// Whether a re-record (or what is left of one) is asked for.
pub fn requested(storage: &Storage) -> bool {
    let dir = storage.binlog.dir();
    dir.join(REQUEST).exists() || dir.join(SLOTS_REQUEST).exists()
}

/// A run of the daemon's re-record job (`job::Job`); how long to wait before the next run.
pub fn run_requested(storage: &Storage, stop: &AtomicBool) -> std::time::Duration {
    let dir = storage.binlog.dir().to_path_buf();
    let again = std::time::Duration::from_secs(60);
    if dir.join(REQUEST).exists() {
        match rerecord(storage, stop) {
            Ok(_) if stop.load(Ordering::Relaxed) => return again, // asked again at the next start
            Ok(trunk_files) => {
                if trunk_files > 0 {
                    if let Err(e) = std::fs::write(dir.join(SLOTS_REQUEST), b"") {
                        log::error!("write {} fail: {e}; tried again in a minute", SLOTS_REQUEST);
                        return again;
                    }
                }
                let _ = std::fs::remove_file(dir.join(REQUEST));
            }
            Err(e) => {
                log::error!("re-record fail: {e}; tried again in a minute");
                return again;
            }
        }
    }
    if dir.join(SLOTS_REQUEST).exists() {
        match rerecord_slots(storage, stop) {
            Ok(Slots::Done) => {
                let _ = std::fs::remove_file(dir.join(SLOTS_REQUEST));
            }
            // the tracker has not listed the members yet, or none is ACTIVE
            Ok(Slots::Waiting) => return std::time::Duration::from_secs(5),
            Err(e) => {
                log::error!("re-record of the trunk slots fail: {e}; tried again in a minute");
                return again;
            }
        }
    }
    log::warn!("re-record done");
    std::time::Duration::from_secs(1)
}

/// A name's place in the set of names the binlog records (8 bytes a name, whatever its length:
/// a store of millions of files is re-recorded in tens of MB).
fn key(name: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    h.finish()
}

/// Every name a create, update, rename or link line of the binlog records, compressed files
/// included.
fn recorded_names(binlog: &Binlog) -> std::io::Result<HashSet<u64>> {
    let dir = binlog.dir();
    let mut names = HashSet::new();
    let mut take = |line: &str| {
        if let Some(r) = parse_line(line) {
            if matches!(r.op.to_ascii_uppercase(), 'C' | 'U' | 'R' | 'L') {
                names.insert(key(&r.name));
            }
        }
    };
    for i in 0..=binlog.current_index() {
        let plain = dir.join(binlog_name(i));
        if plain.exists() {
            crate::binlog::for_each_line(&plain, &mut take)?;
        } else if gz_name(dir, i).exists() {
            let mut child = std::process::Command::new("gzip")
                .arg("-dc")
                .arg(gz_name(dir, i))
                .stdout(std::process::Stdio::piped())
                .spawn()?;
            let out = child.stdout.take().expect("piped");
            for line in std::io::BufReader::new(out).lines() {
                take(&line?);
            }
            child.wait()?;
        }
    }
    Ok(names)
}

/// Whether `name` started here (its source is this storage); a name that does not say is
/// taken as this storage's, so that its line goes to the peers (who answer "already there").
fn started_here(storage: &Storage, name: &str) -> bool {
    let Ok(rn) = RemoteName::decode(name) else {
        return true;
    };
    let me = storage.my_id.read().clone();
    match rn.payload.source {
        Source::Id(n) => n.to_string() == me,
        ref ip => ip
            .ip_text()
            .is_none_or(|ip| ip == me || ip == *storage.my_ip.read()),
    }
}

/// Write a line for every file of the store paths no binlog line names, files of trunk slots
/// aside; returns how many trunk files the store paths hold (their slots are for
/// [`rerecord_slots`]). Runs while the storage serves (a file created meanwhile may get a
/// second line: harmless).
pub fn rerecord(storage: &Storage, stop: &AtomicBool) -> std::io::Result<u64> {
    let names = recorded_names(&storage.binlog)?;
    log::info!(
        "re-record: the binlog names {} files; looking for the others in the store paths",
        names.len()
    );
    let mut written = 0;
    let mut trunk_files = 0;
    for index in 0..storage.store.paths.len() {
        let data = storage.store.data_dir(index);
        for (high, low) in subdirs(&data) {
            if stop.load(Ordering::Relaxed) {
                return Ok(trunk_files);
            }
            let Ok(rd) = std::fs::read_dir(data.join(&high).join(&low)) else {
                continue;
            };
            for e in rd.flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                if file.starts_with('.') {
                    continue;
                }
                if file.bytes().all(|b| b.is_ascii_digit()) {
                    trunk_files += 1; // a trunk file: its slots are named from the members' lists
                    continue;
                }
                let name = format!("M{index:02X}/{high}/{low}/{file}");
                if names.contains(&key(&name)) {
                    continue;
                }
                let Ok(md) = std::fs::symlink_metadata(e.path()) else {
                    continue; // deleted meanwhile
                };
                let mtime = md.modified().ok();
                let ts = mtime
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs() as i64);
                let (letter, args) = if md.file_type().is_symlink() {
                    let target = std::fs::read_link(e.path())
                        .ok()
                        .and_then(|t| storage.logical_name_of(&t));
                    let Some(target) = target else { continue };
                    (op::LINK, target)
                } else if md.is_file() {
                    (op::CREATE, String::new())
                } else {
                    continue;
                };
                let letter = if started_here(storage, &name) {
                    letter
                } else {
                    letter.to_ascii_lowercase()
                };
                storage.binlog.write(ts, letter, &name, &args)?;
                written += 1;
            }
        }
    }
    storage.binlog.note_rerecorded(written);
    log::warn!(
        "re-record of the store paths done: {written} files the binlog had lost are recorded \
         again{}",
        if trunk_files > 0 {
            format!("; the slots of {trunk_files} trunk files are named from the members' lists")
        } else {
            String::new()
        }
    );
    Ok(trunk_files)
}

/// How a run of [`rerecord_slots`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Slots {
    /// Every store path was compared with at least one member's list (or the group has no
    /// other member to ask).
    Done,
    /// No member could be asked yet: run again later.
    Waiting,
}

/// Write a line for every file of a trunk slot here that an ACTIVE member lists and no line of
/// this binlog names.
pub fn rerecord_slots(storage: &Storage, stop: &AtomicBool) -> std::io::Result<Slots> {
    let me = storage.my_id.read().clone();
    let members = storage.members.read().clone();
    if members.is_empty() {
        return Ok(Slots::Waiting); // the tracker has not answered since the start
    }
    if members.iter().all(|b| b.id == me) {
        log::warn!(
            "re-record: this storage is its group's only member: the files of trunk slots whose \
             lines were lost cannot be named"
        );
        return Ok(Slots::Done);
    }
    let peers = storage.active_peers();
    if peers.is_empty() {
        return Ok(Slots::Waiting);
    }
    let mut names = recorded_names(&storage.binlog)?;
    let mut written = 0;
    for index in 0..storage.store.paths.len() {
        let mut asked = 0;
        for peer in &peers {
            if stop.load(Ordering::Relaxed) {
                return Ok(Slots::Waiting);
            }
            let list = match fetch_file_list(storage, peer, index as u8) {
                Ok(l) => l,
                Err(e) => {
                    log::warn!(
                        "re-record: file list of store path #{index} from {}: {e}",
                        peer.id
                    );
                    continue;
                }
            };
            asked += 1;
            for rec in list {
                if !is_trunk_name(&rec.name) || names.contains(&key(&rec.name)) {
                    continue;
                }
                let Ok(ln) = LogicalName::parse(&rec.name, storage.store.paths.len()) else {
                    continue;
                };
                let _g = storage.lock_for(&rec.name);
                if storage.binlog.deleted_at(&rec.name).is_some()
                    || storage.store.open_stored(&ln, &rec.name).is_err()
                {
                    continue; // deleted here, or its slot here holds another file (or none)
                }
                let letter = if started_here(storage, &rec.name) {
                    op::CREATE
                } else {
                    op::CREATE.to_ascii_lowercase()
                };
                storage.binlog.write(rec.timestamp, letter, &rec.name, "")?;
                names.insert(key(&rec.name));
                written += 1;
            }
        }
        if asked == 0 {
            return Ok(Slots::Waiting);
        }
    }
    storage.binlog.note_rerecorded(written);
    log::warn!(
        "re-record of the trunk slots done: {written} files of trunk slots the binlog had lost \
         are recorded again from {} member(s)' lists",
        peers.len()
    );
    Ok(Slots::Done)
}

/// The `HH/HH` sub directories of a store path's data dir, in order.
fn subdirs(data: &Path) -> Vec<(String, String)> {
    let hex_dirs = |p: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    hex_dirs(data)
        .into_iter()
        .flat_map(|h| {
            hex_dirs(&data.join(&h))
                .into_iter()
                .map(move |l| (h.clone(), l))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_past_the_end_move_to_where_lines_go_on() {
        let dir = std::env::temp_dir().join(format!("rfdfs-marks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("binlog.000"), "1 C M00/00/00/a\n").unwrap();
        std::fs::write(dir.join("binlog.002"), "2 C M00/00/00/b\n").unwrap();
        // inside: untouched
        assert_eq!(past_the_end(&dir, (0, 16), (2, 16)), None);
        assert_eq!(past_the_end(&dir, (2, 3), (2, 16)), None);
        // the current file cut short, a later file, an older file cut short or gone
        assert_eq!(past_the_end(&dir, (2, 90), (2, 16)).unwrap().0, (2, 16));
        assert_eq!(past_the_end(&dir, (5, 0), (2, 16)).unwrap().0, (2, 16));
        assert_eq!(past_the_end(&dir, (0, 99), (2, 16)).unwrap().0, (1, 0));
        assert_eq!(past_the_end(&dir, (1, 5), (2, 16)).unwrap().0, (2, 0));
        // a compressed file is taken as whole
        std::fs::write(gz_name(&dir, 1), b"").unwrap();
        assert_eq!(past_the_end(&dir, (1, 5), (2, 16)), None);
        std::fs::remove_dir_all(&dir).ok();
    }
}
