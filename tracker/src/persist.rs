//! The tracker's data files in `base_path/data` (docs/protocol/cluster-protocol.md section 6), in
//! upstream's exact format so a C tracker can read ours and we can read its. Every file is written
//! to a `.tmp` sibling, fsynced and renamed, so a crash leaves the old or the new file, never half.

use crate::state::{Group, State, StorageServer};
use fdfs_common::config::ini::{atoi, Item};
use fdfs_common::config::IniFile;
use fdfs_common::proto::cluster::stat;
use fdfs_common::proto::{rw_mode, status};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const GROUPS_FILE: &str = "storage_groups_new.dat";
pub const SERVERS_FILE: &str = "storage_servers_new.dat";
pub const SYNC_TIMESTAMP_FILE: &str = "storage_sync_timestamp.dat";
pub const CHANGELOG_FILE: &str = "storage_changelog.dat";
pub const STATUS_FILE: &str = ".tracker_status";

pub use fdfs_common::durable::write_atomic;

/// Counters persisted in storage_servers_new.dat, with their stat block index (modify and
/// truncate counters are not persisted upstream).
const PERSISTED_COUNTERS: [(&str, usize); 36] = [
    ("total_upload_count", 0),
    ("success_upload_count", 1),
    ("total_append_count", 2),
    ("success_append_count", 3),
    ("total_set_meta_count", 8),
    ("success_set_meta_count", 9),
    ("total_delete_count", 10),
    ("success_delete_count", 11),
    ("total_download_count", 12),
    ("success_download_count", 13),
    ("total_get_meta_count", 14),
    ("success_get_meta_count", 15),
    ("total_create_link_count", 16),
    ("success_create_link_count", 17),
    ("total_delete_link_count", 18),
    ("success_delete_link_count", 19),
    ("total_upload_bytes", 20),
    ("success_upload_bytes", 21),
    ("total_append_bytes", 22),
    ("success_append_bytes", 23),
    ("total_download_bytes", 26),
    ("success_download_bytes", 27),
    ("total_sync_in_bytes", 28),
    ("success_sync_in_bytes", 29),
    ("total_sync_out_bytes", 30),
    ("success_sync_out_bytes", 31),
    ("total_file_open_count", 32),
    ("success_file_open_count", 33),
    ("total_file_read_count", 34),
    ("success_file_read_count", 35),
    ("total_file_write_count", 36),
    ("success_file_write_count", 37),
    ("last_source_update", stat::LAST_SOURCE_UPDATE),
    ("last_sync_update", stat::LAST_SYNC_UPDATE),
    ("last_synced_timestamp", stat::LAST_SYNCED_TIMESTAMP),
    ("last_heart_beat_time", stat::LAST_HEART_BEAT_TIME),
];

fn listed(s: &StorageServer) -> bool {
    !matches!(s.status, status::DELETED | status::IP_CHANGED)
}

pub fn groups_text(state: &State) -> String {
    use std::fmt::Write as _;
    let mut out = format!("[Global]\n\tgroup_count={}\n\n", state.groups.len());
    for (i, g) in state.groups.values().enumerate() {
        let _ = write!(
            out,
            "# group: {name}\n[Group{n:03}]\n\tgroup_name={name}\n\tstorage_port={}\n\tstore_path_count={}\n\tsubdir_count_per_path={}\n\tcurrent_trunk_file_id={}\n\ttrunk_server={}\n\tlast_trunk_server={}\n\n",
            g.storage_port,
            g.store_path_count,
            g.subdir_count_per_path,
            g.current_trunk_file_id,
            g.trunk_server,
            g.last_trunk_server,
            name = g.name,
            n = i + 1,
        );
    }
    out
}

pub fn servers_text(state: &State) -> String {
    use std::fmt::Write as _;
    // written straight into one buffer: with thousands of storages this runs once per round
    // of beats, and a String per line made it the tracker's largest cost
    let mut out = String::with_capacity(state.storage_count() * 1400 + 64);
    let mut n = 0;
    for g in state.groups.values() {
        for s in g.storages.iter().filter(|s| listed(s)) {
            n += 1;
            if s.ip.contains(':') {
                let _ = write!(out, "# storage: [{}]:{}\n[Storage{n:03}]\n", s.ip, s.port);
            } else {
                let _ = write!(out, "# storage: {}:{}\n[Storage{n:03}]\n", s.ip, s.port);
            }
            let mut kv = |k: &str, v: &dyn std::fmt::Display| {
                let _ = writeln!(out, "\t{k}={v}");
            };
            // a server id differs from the address exactly when use_storage_id is on
            if s.id != s.ip {
                kv("id", &s.id);
            }
            kv("group_name", &g.name);
            kv("ip_addr", &s.ip);
            kv("status", &s.status);
            kv("version", &s.version);
            kv("join_time", &s.join_time);
            kv("storage_port", &s.port);
            kv("sync_src_server", &s.sync_src_id);
            kv("sync_until_timestamp", &s.sync_until_timestamp);
            kv("total_mb", &s.total_mb);
            kv("free_mb", &s.free_mb);
            kv("changelog_offset", &s.changelog_offset);
            kv("store_path_count", &s.store_path_count);
            kv("subdir_count_per_path", &s.subdir_count_per_path);
            kv("upload_priority", &s.upload_priority);
            for (name, idx) in PERSISTED_COUNTERS {
                let v = match idx {
                    stat::LAST_SYNCED_TIMESTAMP => s.last_synced_timestamp,
                    stat::LAST_HEART_BEAT_TIME => s.last_heart_beat_time,
                    _ => s.stat.counters[idx],
                };
                kv(name, &v);
            }
            out.push('\n');
        }
    }
    let _ = write!(out, "\n[Global]\n\tstorage_count={n}\n");
    out
}

pub fn sync_timestamp_text(state: &State) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for g in state.groups.values() {
        let members: Vec<&StorageServer> = g.storages.iter().filter(|s| listed(s)).collect();
        for src in &members {
            let _ = write!(out, "{},{}", g.name, src.id);
            for dest in &members {
                let v = if dest.id == src.id {
                    0
                } else {
                    *dest.synced_from.get(&src.id).unwrap_or(&0)
                };
                let _ = write!(out, ",{v}");
            }
            out.push('\n');
        }
    }
    out
}

/// "Save all": groups, storages and sync timestamps.
pub fn save_all(data_dir: &Path, state: &State) -> std::io::Result<()> {
    write_atomic(&data_dir.join(GROUPS_FILE), groups_text(state).as_bytes())?;
    write_atomic(&data_dir.join(SERVERS_FILE), servers_text(state).as_bytes())?;
    write_atomic(
        &data_dir.join(SYNC_TIMESTAMP_FILE),
        sync_timestamp_text(state).as_bytes(),
    )
}

fn item<'a>(items: &'a [Item], key: &str) -> Option<&'a str> {
    items
        .iter()
        .rev()
        .find(|i| i.key == key)
        .map(|i| i.value.as_str())
}

fn num(items: &[Item], key: &str) -> i64 {
    item(items, key).map(atoi).unwrap_or(0)
}

/// Load what a previous run (ours or upstream's) left. Missing files mean a fresh tracker.
pub fn load(
    data_dir: &Path,
    state: &mut State,
    store_server_round_robin: bool,
) -> Result<(), String> {
    let gpath = data_dir.join(GROUPS_FILE);
    if !gpath.exists() {
        return Ok(());
    }
    let gini = IniFile::load(&gpath).map_err(|e| e.to_string())?;
    gini.section("Global")
        .and_then(|g| item(g, "group_count"))
        .ok_or_else(|| format!("{}: no group_count", gpath.display()))?;
    for sec in gini.section_names().filter(|n| n.starts_with("Group")) {
        let items = gini.section(sec).unwrap_or_default();
        let name = item(items, "group_name")
            .ok_or_else(|| format!("{}: [{sec}] has no group_name", gpath.display()))?;
        if state.groups.contains_key(name) {
            return Err(format!("{}: duplicate group {name}", gpath.display()));
        }
        let mut g = Group::new(name);
        g.storage_port = num(items, "storage_port");
        g.store_path_count = num(items, "store_path_count");
        g.subdir_count_per_path = num(items, "subdir_count_per_path");
        g.current_trunk_file_id = num(items, "current_trunk_file_id");
        g.trunk_server = item(items, "trunk_server").unwrap_or("").to_string();
        g.last_trunk_server = item(items, "last_trunk_server").unwrap_or("").to_string();
        state.groups.insert(name.to_string(), g);
    }
    let spath = data_dir.join(SERVERS_FILE);
    if spath.exists() {
        let sini = IniFile::load(&spath).map_err(|e| e.to_string())?;
        let mut secs: Vec<&String> = sini
            .section_names()
            .filter(|n| n.starts_with("Storage"))
            .collect();
        secs.sort_by_key(|n| atoi(&n["Storage".len()..]));
        for sec in secs {
            let items = sini.section(sec).unwrap_or_default();
            let gname = item(items, "group_name").unwrap_or("");
            let g = state.groups.get_mut(gname).ok_or_else(|| {
                format!(
                    "{}: [{sec}] names unknown group \"{gname}\"",
                    spath.display()
                )
            })?;
            let ip = item(items, "ip_addr")
                .ok_or_else(|| format!("{}: [{sec}] has no ip_addr", spath.display()))?;
            let mut s = StorageServer {
                id: item(items, "id").unwrap_or(ip).to_string(),
                ip: ip.to_string(),
                rw_mode: rw_mode::BOTH,
                ..Default::default()
            };
            let st = num(items, "status") as u8;
            s.status = if matches!(st, status::INIT | status::WAIT_SYNC | status::SYNCING) {
                st
            } else {
                status::OFFLINE
            };
            s.version = item(items, "version").unwrap_or("").to_string();
            s.join_time = num(items, "join_time");
            s.port = match item(items, "storage_port") {
                Some(p) => atoi(p),
                None => g.storage_port,
            };
            s.sync_src_id = item(items, "sync_src_server").unwrap_or("").to_string();
            s.sync_until_timestamp = num(items, "sync_until_timestamp");
            s.total_mb = num(items, "total_mb");
            s.free_mb = num(items, "free_mb");
            s.changelog_offset = num(items, "changelog_offset");
            s.store_path_count = num(items, "store_path_count");
            s.subdir_count_per_path = num(items, "subdir_count_per_path");
            s.upload_priority = num(items, "upload_priority");
            for (name, idx) in PERSISTED_COUNTERS {
                let v = num(items, name);
                match idx {
                    stat::LAST_SYNCED_TIMESTAMP => s.last_synced_timestamp = v,
                    stat::LAST_HEART_BEAT_TIME => s.last_heart_beat_time = v,
                    _ => s.stat.counters[idx] = v,
                }
            }
            g.storages.push(s);
        }
    }
    let tpath = data_dir.join(SYNC_TIMESTAMP_FILE);
    if let Ok(text) = std::fs::read_to_string(&tpath) {
        load_sync_timestamps(&text, state, store_server_round_robin);
    }
    Ok(())
}

fn load_sync_timestamps(text: &str, state: &mut State, min_rule: bool) {
    for line in text.lines() {
        let cols: Vec<&str> = line.split(',').collect();
        if cols.len() < 2 {
            continue;
        }
        let Some(g) = state.groups.get_mut(cols[0]) else {
            continue;
        };
        let src = cols[1].to_string();
        let members: Vec<usize> = (0..g.storages.len())
            .filter(|&i| listed(&g.storages[i]))
            .collect();
        for (k, v) in cols[2..].iter().enumerate() {
            let ts = atoi(v);
            if let Some(&i) = members.get(k) {
                if ts > 0 && g.storages[i].id != src {
                    g.storages[i].synced_from.insert(src.clone(), ts);
                }
            }
        }
    }
    for g in state.groups.values_mut() {
        for s in g.storages.iter_mut() {
            let vals = s.synced_from.values().copied().filter(|&v| v > 0);
            let v = if min_rule { vals.min() } else { vals.max() };
            if let Some(v) = v {
                s.last_synced_timestamp = v;
            }
        }
    }
}

/// `storage_changelog.dat`: append-only, fsynced per line.
pub struct Changelog {
    file: Option<File>,
    pub size: i64,
    path: PathBuf,
}

impl Changelog {
    pub fn open(data_dir: &Path) -> std::io::Result<Changelog> {
        let path = data_dir.join(CHANGELOG_FILE);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len() as i64;
        Ok(Changelog {
            file: Some(file),
            size,
            path,
        })
    }

    pub fn append(&mut self, line: &str) -> std::io::Result<()> {
        if let Some(f) = self.file.as_mut() {
            f.write_all(line.as_bytes())?;
            f.sync_data()?;
            self.size += line.len() as i64;
        }
        Ok(())
    }

    /// Bytes from `offset`, at most `max`.
    pub fn read_from(&self, offset: i64, max: usize) -> Vec<u8> {
        use std::io::{Read, Seek, SeekFrom};
        let mut out = Vec::new();
        if offset >= self.size {
            return out;
        }
        if let Ok(mut f) = File::open(&self.path) {
            if f.seek(SeekFrom::Start(offset.max(0) as u64)).is_ok() {
                let _ = f.take(max as u64).read_to_end(&mut out);
            }
        }
        out
    }
}

/// `.tracker_status`: up time and last check time.
pub fn write_status(data_dir: &Path, up_time: i64, now: i64) -> std::io::Result<()> {
    write_atomic(
        &data_dir.join(STATUS_FILE),
        format!("up_time={up_time}\nlast_check_time={now}\n").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_files() {
        let mut st = State::default();
        let mut g = Group::new("group1");
        g.storage_port = 23000;
        g.store_path_count = 1;
        g.subdir_count_per_path = 256;
        g.storages.push(StorageServer {
            id: "127.0.0.3".into(),
            ip: "127.0.0.3".into(),
            port: 23000,
            status: status::ACTIVE,
            version: "6.16.1".into(),
            join_time: 5,
            ..Default::default()
        });
        st.groups.insert("group1".into(), g);
        let servers = servers_text(&st);
        assert!(servers.ends_with("last_heart_beat_time=0\n\n\n[Global]\n\tstorage_count=1\n"));
        let dir = std::env::temp_dir().join(format!("rfdfs-persist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        save_all(&dir, &st).unwrap();
        let mut loaded = State::default();
        load(&dir, &mut loaded, true).unwrap();
        let s = &loaded.groups["group1"].storages[0];
        assert_eq!(
            (s.id.as_str(), s.status, s.join_time),
            ("127.0.0.3", status::OFFLINE, 5)
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
