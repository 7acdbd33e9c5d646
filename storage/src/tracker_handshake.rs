//! What the storage asks the trackers before it serves (docs/protocol/cluster-protocol.md 1.2):
//! its own address (GET_MY_IP), the parameters it must follow (PARAMETER_REQ), its storage id
//! (from storage_ids.conf, fetched with FETCH_STORAGE_IDS when the tracker has them) and, without
//! ids, a report of its own IP change. Each is asked of the trackers in turn until one answers or
//! the daemon stops.

use crate::reporter::Reporter;
use fdfs_common::codec::Message;
use fdfs_common::config::storage_ids::StorageIds;
use fdfs_common::net::{self, NetError};
use fdfs_common::proto::cluster::{GetMyIpReq, MyIpReply, ReportIpChangedReq, StorageAddrReq};
use fdfs_common::proto::parameters::StorageParameters;
use fdfs_common::proto::{cmd, errno};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Ask the trackers for our own IP (as they see us) until one answers.
pub fn get_my_ip(rep: &Reporter) -> Option<Vec<String>> {
    let cfg = &rep.storage.cfg;
    let req = GetMyIpReq {
        group: rep.storage.group.clone(),
        port: cfg.server.port as i32,
    }
    .to_bytes();
    while !rep.stop.load(Ordering::Relaxed) {
        for t in &cfg.tracker_servers {
            match rep.connect(t) {
                Ok(mut s) => {
                    match net::request(&mut s, cmd::STORAGE_GET_MY_IP, &req)
                        .and_then(|b| MyIpReply::from_bytes(&b).map_err(NetError::from))
                    {
                        Ok(reply) => {
                            net::quit(s);
                            return Some(reply.ips);
                        }
                        Err(e) => log::error!("get my ip from tracker server {t} fail: {e}"),
                    }
                }
                Err(e) => log::error!("connect to tracker server {t} fail, error info: {e}"),
            }
        }
        rep.sleep_unless_stopped(Duration::from_secs(1));
    }
    None
}

/// PARAMETER_REQ from the first tracker that answers.
pub fn fetch_parameters(rep: &Reporter) -> Option<StorageParameters> {
    while !rep.stop.load(Ordering::Relaxed) {
        for t in &rep.trackers_leader_first() {
            if let Ok(mut s) = rep.connect(t) {
                match net::request(&mut s, cmd::STORAGE_PARAMETER_REQ, &[]) {
                    Ok(text) if text.len() < 1024 => {
                        net::quit(s);
                        let text = String::from_utf8_lossy(&text).into_owned();
                        log::info!("{}", text.trim_end().replace('\n', ", "));
                        return Some(StorageParameters::parse(&text));
                    }
                    Ok(_) => log::error!("parameter reply from tracker server {t} too long"),
                    Err(NetError::Status(s)) if s == errno::EINVAL => {}
                    Err(e) => log::error!("get parameters from tracker server {t} fail: {e}"),
                }
            }
        }
        rep.sleep_unless_stopped(Duration::from_secs(1));
    }
    None
}

/// FETCH_STORAGE_IDS, paged, from the first tracker that answers (5 rounds over the trackers).
fn fetch_storage_ids(rep: &Reporter) -> Result<StorageIds, String> {
    for _round in 0..5 {
        for t in &rep.trackers_leader_first() {
            let Ok(mut s) = rep.connect(t) else { continue };
            let fetched = net::fetch_storage_ids(&mut s);
            net::quit(s);
            match fetched {
                Ok(ids) => return Ok(ids),
                Err(e) => log::error!("fetch storage ids from tracker server {t} fail: {e}"),
            }
        }
        rep.sleep_unless_stopped(Duration::from_secs(1));
        if rep.stop.load(Ordering::Relaxed) {
            break;
        }
    }
    Err("no tracker gave the storage ids".into())
}

/// The storage's identity in its group (docs/protocol/cluster-protocol.md 7.2): its IP without
/// storage ids; with them the `server_id` of storage.conf, else the id listed for one of its
/// addresses, else (or when ids are not trusted) what GET_SERVER_ID answers.
pub fn resolve_my_id(rep: &Reporter, my_ips: &[String]) -> Result<String, String> {
    let storage = &rep.storage;
    let params = storage.params.read().clone();
    if !params.use_storage_id {
        return Ok(my_ips.first().cloned().unwrap_or_default());
    }
    let ids = fetch_storage_ids(rep)?;
    *storage.storage_ids.write() = ids.clone();
    let port = storage.cfg.server.port;
    if params.trust_storage_server_id {
        match &storage.cfg.server_id {
            Some(id) if !id.is_empty() => {
                if ids.by_id(id).is_none() {
                    return Err(format!(
                        "server_id {id} is not in the trackers' storage ids"
                    ));
                }
                return Ok(id.clone());
            }
            Some(_) => {}
            None => {
                let candidates = my_ips
                    .iter()
                    .cloned()
                    .chain(
                        storage
                            .cfg
                            .server
                            .bind_addrs()
                            .into_iter()
                            .map(String::from),
                    )
                    .chain(local_ips());
                for ip in candidates {
                    if let Some(e) = ids.by_group_ip_port(&storage.group, &ip, port) {
                        return Ok(e.id.clone());
                    }
                }
                // not in the table as the tracker last resolved its names: the tracker asks
                // them again when it looks this address up (this storage came back elsewhere)
                log::info!(
                    "none of my addresses ({}) with port {port} is in the storage ids of group \
                     {}: asking the trackers",
                    my_ips.join(","),
                    storage.group
                );
            }
        }
    }
    let body = StorageAddrReq {
        group: storage.group.clone(),
        addr: format!("{}:{port}", my_ips.first().cloned().unwrap_or_default()),
    }
    .to_bytes();
    for t in &storage.cfg.tracker_servers {
        if let Ok(mut s) = rep.connect(t) {
            match net::request(&mut s, cmd::STORAGE_GET_SERVER_ID, &body) {
                Ok(id) => {
                    net::quit(s);
                    return Ok(String::from_utf8_lossy(&id).into_owned());
                }
                Err(e) => log::error!("get server id from tracker server {t} fail: {e}"),
            }
        }
    }
    Err(format!(
        "no tracker knows {}:{port} in the storage ids of group {}",
        my_ips.join(","),
        storage.group
    ))
}

/// The host's interface addresses.
fn local_ips() -> Vec<String> {
    nix::ifaddrs::getifaddrs()
        .map(|addrs| {
            addrs
                .filter_map(|a| {
                    let sa = a.address?;
                    sa.as_sockaddr_in()
                        .map(|v4| v4.ip().to_string())
                        .or_else(|| sa.as_sockaddr_in6().map(|v6| v6.ip().to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// REPORT_IP_CHANGED to every tracker (startup step 8, without storage ids): the storage ran at
/// `old_ip` before, so the trackers move its record, history and all, to the new address.
pub fn report_ip_changed(rep: &Reporter, old_ip: &str, new_ip: &str) {
    let body = ReportIpChangedReq {
        group: rep.storage.group.clone(),
        old_ip: old_ip.into(),
        new_ip: new_ip.into(),
    }
    .to_bytes();
    log::info!("my ip changed from {old_ip} to {new_ip}, telling the trackers");
    for t in &rep.storage.cfg.tracker_servers {
        for _attempt in 0..3 {
            let Ok(mut s) = rep.connect(t) else {
                rep.sleep_unless_stopped(Duration::from_secs(1));
                continue;
            };
            let r = net::request(&mut s, cmd::STORAGE_REPORT_IP_CHANGED, &body);
            net::quit(s);
            match r {
                Ok(_) => {}
                // already done, or nothing to move: all final
                Err(NetError::Status(
                    errno::EALREADY | errno::ENOENT | errno::EEXIST | errno::EBUSY,
                )) => {}
                Err(e) => log::error!("report ip changed to tracker server {t} fail: {e}"),
            }
            break;
        }
    }
}
