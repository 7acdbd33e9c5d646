//! The store at startup: appends a crash cut short are undone, `.data_init_flag` is loaded or
//! created, the data trees are built and each store path's mark checked, and a missing
//! `group_name` is asked of the trackers.

use crate::{binlog, init_flag, recovery, state_file, store};
use fdfs_common::config::StorageConfig;
use std::time::Duration;

/// An append the daemon died in the middle of: its line (written before the bytes, as
/// `old_size append_size`) is the last change to the file, and the file is longer than before
/// it but shorter than after. The client was never answered: the file goes back to its size
/// before, as if the append had not come (the sync sender skips a line whose bytes are not
/// all there). Only the tail of the binlog being written is read: the appends in flight at
/// a crash are among its last lines.
pub(super) fn recover_torn_appends(st: &store::Store, sync_dir: &std::path::Path) {
    let mut last: std::collections::HashMap<String, binlog::Record> = Default::default();
    for r in binlog::tail_records(sync_dir, 256 * 1024) {
        last.insert(r.name.clone(), r);
    }
    for r in last.values().filter(|r| r.op == binlog::op::APPEND) {
        let Some((old, size)) = r.arg_pair::<u64>() else {
            continue;
        };
        let Ok(ln) = fdfs_common::file_id::LogicalName::parse(&r.name, st.paths.len()) else {
            continue;
        };
        let path = st.local_path(&ln);
        let Ok(len) = std::fs::metadata(&path).map(|m| m.len()) else {
            continue;
        };
        if len > old && len < old + size {
            match std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(old))
            {
                Ok(()) => log::warn!(
                    "append to {} cut short by a crash ({len} of {} bytes): back to {old} bytes",
                    r.name,
                    old + size
                ),
                Err(e) => log::error!("undo the torn append to {} fail: {e}", r.name),
            }
        }
    }
}

/// Load or create `.data_init_flag`, build the data trees and check the store path marks.
/// Also returns the IP the flag recorded from the previous run (empty on a first start).
pub(super) fn init_store(
    cfg: &StorageConfig,
    st: &store::Store,
    my_ip: &str,
) -> Result<(init_flag::InitFlag, String), String> {
    let data = cfg.server.base_path.join("data");
    let flag_path = data.join(init_flag::DATA_INIT_FLAG);
    let n = cfg.store_paths.len();
    let now = fdfs_common::now();
    let existing = init_flag::InitFlag::load(&flag_path, n)?;
    let in_service = existing.as_ref().is_some_and(|f| f.sync_old_done);
    let mut flag = existing.unwrap_or_else(|| init_flag::InitFlag {
        storage_join_time: now,
        last_server_port: cfg.server.port as i64,
        store_path_marks: vec![None; n],
        ..Default::default()
    });
    flag.store_path_marks.resize(n, None);
    for i in 0..n {
        if !cfg.store_paths[i].is_dir() {
            return Err(format!(
                "store path \"{}\" not exist or not a directory",
                cfg.store_paths[i].display()
            ));
        }
        st.reset_temp_dir(i).map_err(|e| {
            format!(
                "prepare temp dir of {} fail: {e}",
                cfg.store_paths[i].display()
            )
        })?;
        let missing = st.make_data_dirs(i).map_err(|e| {
            format!(
                "mkdir data dirs of {} fail: {e}",
                cfg.store_paths[i].display()
            )
        })?;
        let created = missing > 0;
        if in_service && created {
            // a recovery is recorded in the store path itself (upstream's flag): a store path
            // that is there but blank is not new
            let flag = st.data_dir(i).join(recovery::RECOVERY_FLAG);
            if !flag.exists() {
                log::warn!(
                    "store path #{i}: {missing} sub directories were missing; its files are \
                     fetched from the group's members"
                );
                let text = "saved_storage_status=7\nfetch_binlog_done=0\nrecovery_threads=-1\n";
                store::write_atomic(&flag, text.as_bytes())
                    .map_err(|e| format!("write {} fail: {e}", flag.display()))?;
            }
        }
        if !cfg.check_store_path_mark {
            continue;
        }
        let mark_file = st.data_dir(i).join(store::MARK_FILE);
        let on_disk = state_file::read_kv(&mark_file)
            .ok()
            .and_then(|kv| kv.get("store_path_mark").cloned());
        match (&flag.store_path_marks[i], on_disk) {
            (Some(expected), Some(found)) if *expected != found => {
                return Err(format!(
                    "the store path #{i} {} is used by another storage (mark mismatch)",
                    cfg.store_paths[i].display()
                ));
            }
            (None, Some(_)) => {
                return Err(format!(
                    "the store path #{i} {} maybe used by other storage",
                    cfg.store_paths[i].display()
                ));
            }
            (Some(_), Some(_)) => {}
            (_, None) => {
                if flag.store_path_marks[i].is_some() && !created {
                    log::warn!("store path #{i} lost its mark file, make a new one");
                }
                let mark = init_flag::make_mark(my_ip, cfg.server.port, i as u8, now as i32);
                store::write_atomic(&mark_file, format!("store_path_mark={mark}\n").as_bytes())
                    .map_err(|e| format!("write {} fail: {e}", mark_file.display()))?;
                flag.store_path_marks[i] = Some(mark);
            }
        }
    }
    let previous_ip = std::mem::replace(&mut flag.last_ip_addr, my_ip.to_string());
    flag.last_server_port = cfg.server.port as i64;
    store::write_atomic(&flag_path, flag.to_text().as_bytes())
        .map_err(|e| format!("write {} fail: {e}", flag_path.display()))?;
    Ok((flag, previous_ip))
}

/// `group_name` absent from storage.conf: the group storage_ids.conf lists this storage in, from
/// the first tracker that answers GET_GROUP_NAME (with the address it sees us at and our port).
pub(super) fn group_name_from_trackers(cfg: &StorageConfig) -> Result<String, String> {
    use fdfs_common::codec::Message;
    use fdfs_common::proto::cluster::{GetGroupNameReq, GroupName};
    use fdfs_common::proto::errno;
    let c = &cfg.server;
    let req = GetGroupNameReq {
        ip: String::new(),
        port: c.port as i32,
    }
    .to_bytes();
    let mut last = String::from("no tracker server");
    for t in &cfg.tracker_servers {
        let asked = fdfs_common::net::connect_host_port(
            t,
            cfg.client_bind_ip(),
            Duration::from_secs(c.connect_timeout),
            Duration::from_secs(c.network_timeout),
        )
        .map_err(|e| e.to_string())
        .and_then(|mut s| {
            let r = fdfs_common::net::request(
                &mut s,
                fdfs_common::proto::cmd::STORAGE_GET_GROUP_NAME,
                &req,
            );
            fdfs_common::net::quit(s);
            r.map_err(|e| match u8::try_from(e.errno()) {
                Ok(errno::EOPNOTSUPP) => {
                    "the tracker does not use storage ids (use_storage_id = false)".to_string()
                }
                Ok(errno::ENOENT) => {
                    "storage_ids.conf does not list this storage's address and port".to_string()
                }
                _ => e.to_string(),
            })
        })
        .and_then(|b| GroupName::from_bytes(&b).map_err(|e| e.to_string()));
        match asked {
            Ok(g) if fdfs_common::proto::valid_group_name(&g.group) => {
                log::info!(
                    "group_name not in the config file: tracker server {t} says {}",
                    g.group
                );
                return Ok(g.group);
            }
            Ok(g) => {
                last = format!(
                    "tracker server {t} answered invalid group name {:?}",
                    g.group
                )
            }
            Err(e) => last = format!("tracker server {t}: {e}"),
        }
    }
    Err(format!(
        "conf file \"{}\" has no item \"group_name\" and no tracker server told it: {last}",
        cfg.server.conf_file.display()
    ))
}
