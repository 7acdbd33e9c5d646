//! Where to upload and where to download: `store_lookup`, `store_server`, `store_path` and
//! `download_server` (docs/protocol/cluster-protocol.md section 5).

use crate::state::{Group, State};
use fdfs_common::config::TrackerConfig;
use fdfs_common::file_id::{FileKind, RemoteName, Source};
use fdfs_common::proto::{errno, status};

/// Which group takes an upload without a named group.
pub fn store_group(state: &mut State, cfg: &TrackerConfig) -> Result<String, u8> {
    if state.groups.is_empty() {
        return Err(errno::ENOENT);
    }
    if cfg.store_lookup == 1 {
        let g = state.groups.get(&cfg.store_group).ok_or(errno::ENOENT)?;
        if !g.has_writable() {
            return Err(errno::ENOENT);
        }
        if !g.has_room(cfg.reserved_storage_space) {
            return Err(errno::ENOSPC);
        }
        return Ok(g.name.clone());
    }
    if cfg.store_lookup == 2 {
        // load balance: the group with the most free space among the usable ones; one look at
        // each group's cached placement, no copy of the group names
        let best = state
            .groups
            .iter()
            .filter(|(_, g)| g.has_writable() && g.has_room(cfg.reserved_storage_space))
            .map(|(name, g)| (g.space().1, name))
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(a.1)));
        return match best {
            Some((_, name)) => Ok(name.clone()),
            None if state.groups.values().all(|g| !g.has_writable()) => Err(errno::ENOENT),
            None => Err(errno::ENOSPC),
        };
    }
    let groups: Vec<(&String, &Group)> = state.groups.iter().collect();
    let n = groups.len();
    let start = if state.current_write_group >= n {
        0
    } else {
        state.current_write_group
    };
    let mut any_writable = false;
    for k in 0..n {
        let i = (start + k) % n;
        let (name, g) = groups[i];
        if !g.has_writable() {
            continue;
        }
        any_writable = true;
        if g.has_room(cfg.reserved_storage_space) {
            state.current_write_group = (i + 1) % n;
            return Ok(name.clone());
        }
    }
    Err(if any_writable {
        errno::ENOSPC
    } else {
        errno::ENOENT
    })
}

/// Index (into `group.storages`) of the storage that takes an upload.
pub fn store_server(group: &mut Group, cfg: &TrackerConfig) -> Result<usize, u8> {
    let w = group.writable();
    if w.is_empty() {
        return Err(errno::ENOENT);
    }
    Ok(match cfg.store_server {
        1 => w[0],
        2 => *w
            .iter()
            .min_by_key(|&&i| group.storages[i].upload_priority)
            .expect("non-empty"),
        _ => {
            if group.current_write_server >= w.len() {
                group.current_write_server = 0;
            }
            let i = w[group.current_write_server];
            group.current_write_server = (group.current_write_server + 1) % w.len();
            i
        }
    })
}

/// The storage a fallback goes to: the first writable one, or by priority with `store_server=2`.
pub fn group_store_server(group: &Group, cfg: &TrackerConfig) -> Option<usize> {
    let w = group.writable();
    match cfg.store_server {
        2 => w
            .iter()
            .copied()
            .min_by_key(|&i| group.storages[i].upload_priority),
        _ => w.first().copied(),
    }
}

/// Store path index on the chosen storage.
pub fn store_path(group: &mut Group, idx: usize, cfg: &TrackerConfig) -> Result<u8, u8> {
    let s = &mut group.storages[idx];
    let count = (s.store_path_count.max(1)) as usize;
    if s.paths.is_empty() {
        // no disk report yet: nothing to check against
        let p = s.current_write_path % count;
        if cfg.store_path == 0 {
            s.current_write_path = (p + 1) % count;
        }
        return Ok(p as u8);
    }
    let start = if s.current_write_path >= count {
        0
    } else {
        s.current_write_path
    };
    for k in 0..count {
        let p = (start + k) % count;
        let Some(u) = s.paths.get(p) else { continue };
        if cfg
            .reserved_storage_space
            .has_room(u.total_mb, u.free_mb, count as i64)
        {
            s.current_write_path = if cfg.store_path == 0 {
                (p + 1) % count
            } else {
                p
            };
            return Ok(p as u8);
        }
    }
    Err(errno::ENOSPC)
}

/// The storage a file name came from (by IP or server id).
fn source_index(group: &Group, name: &RemoteName) -> Option<usize> {
    match &name.payload.source {
        Source::Ipv4(_) => {
            let ip = name.payload.source.ip_text()?;
            group.storages.iter().position(|s| s.ip == ip || s.id == ip)
        }
        Source::Id(id) => {
            let id = id.to_string();
            group.storages.iter().position(|s| s.id == id)
        }
    }
}

/// Whether storage `i` surely has the file (5.5), judged per source: what `i` reported having
/// received from the file's own source storage, rather than upstream's single
/// `last_synced_timestamp` (a minimum over the sources that happened to report, which can name a
/// member that has not yet heard from the file's source). A member whose initial full sync is
/// done also holds everything before its `until` timestamp.
fn surely_has(
    group: &Group,
    i: usize,
    src: Option<usize>,
    file_ts: i64,
    now: i64,
    cfg: &TrackerConfig,
) -> bool {
    let s = &group.storages[i];
    if Some(i) == src || file_ts < now - cfg.storage_sync_file_max_delay {
        return true;
    }
    let synced = match src {
        Some(k) => *s.synced_from.get(&group.storages[k].id).unwrap_or(&0),
        None => s.last_synced_timestamp,
    };
    synced > file_ts
        || (synced + 1 >= file_ts && now - file_ts > cfg.storage_sync_file_max_time)
        // strictly after: a file of the very second the full sync was cut off at may have been
        // made after the cut, and reaches this member by the normal sync only
        || (!s.sync_src_id.is_empty()
            && s.sync_until_timestamp > file_ts
            && s.status == status::ACTIVE)
}

/// QUERY_FETCH_ONE / QUERY_FETCH_ALL: storages that can serve the download.
pub fn fetch_servers(
    group: &mut Group,
    name: &RemoteName,
    all: bool,
    now: i64,
    cfg: &TrackerConfig,
) -> Result<Vec<usize>, u8> {
    let readable = group.readable();
    if readable.is_empty() {
        return Err(errno::ENOENT);
    }
    let src = source_index(group, name);
    let normal = name.kind == FileKind::Normal || name.kind == FileKind::Trunk;
    if !normal || (cfg.download_server == 1 && !all) {
        if let Some(s) = src.filter(|s| readable.contains(s)) {
            return Ok(vec![s]);
        }
        if !normal {
            return fallback(group, cfg);
        }
    }
    let file_ts = name.payload.timestamp as i64;
    if all {
        let v: Vec<usize> = readable
            .iter()
            .copied()
            .filter(|&i| surely_has(group, i, src, file_ts, now, cfg))
            .collect();
        return if v.is_empty() {
            fallback(group, cfg)
        } else {
            Ok(v)
        };
    }
    let n = readable.len();
    let start = group.current_read_server % n;
    for k in 0..n {
        let pos = (start + k) % n;
        let i = readable[pos];
        if surely_has(group, i, src, file_ts, now, cfg) {
            group.current_read_server = (pos + 1) % n;
            return Ok(vec![i]);
        }
    }
    fallback(group, cfg)
}

fn fallback(group: &Group, cfg: &TrackerConfig) -> Result<Vec<usize>, u8> {
    match group_store_server(group, cfg) {
        Some(i) if group.storages[i].readable() => Ok(vec![i]),
        _ => Err(errno::ENOENT),
    }
}

/// QUERY_UPDATE: the source if it is writable, else the store-server choice.
pub fn update_server(
    group: &mut Group,
    name: &RemoteName,
    cfg: &TrackerConfig,
) -> Result<usize, u8> {
    if let Some(s) = source_index(group, name) {
        if group.storages[s].writable() {
            return Ok(s);
        }
    }
    group_store_server(group, cfg).ok_or(errno::ENOENT)
}
