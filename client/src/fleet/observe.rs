//! The clients' QUERY_STORE / QUERY_FETCH load, and what the trackers' own lists say: which
//! storages are ACTIVE on every tracker, and when the late joiner is.

use super::shared::{request, Samples, Shared};
use fdfs_common::codec::Message;
use fdfs_common::config::HostPort;
use fdfs_common::file_id::{FilePayload, Source};
use fdfs_common::net::{self, NetError};
use fdfs_common::proto::client::{decode_group_stats, decode_storage_stats, ListStorageReq};
use fdfs_common::proto::cluster::{Brief, StorageAddrReq};
use fdfs_common::proto::{cmd, status};
use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The status tracker `t` lists each storage with, or None when it does not answer.
fn statuses_on(t: &HostPort) -> Option<HashMap<String, u8>> {
    let timeout = Duration::from_secs(10);
    let mut s = net::connect(&t.host, t.port, None, timeout, timeout).ok()?;
    let groups =
        decode_group_stats(&request(&mut s, cmd::SERVER_LIST_ALL_GROUPS, &[]).ok()?).ok()?;
    let mut statuses = HashMap::new();
    for g in groups {
        let req = ListStorageReq {
            group: g.group.clone(),
            storage_id: None,
        }
        .to_bytes();
        let body = request(&mut s, cmd::SERVER_LIST_STORAGE, &req).ok()?;
        for st in decode_storage_stats(&body).ok()? {
            statuses.insert(st.ip, st.status);
        }
    }
    net::quit(s);
    Some(statuses)
}

/// How many of the fleet's storages are ACTIVE on every answering tracker, which trackers
/// answered, and per tracker the statuses of the others.
pub(super) fn count_active(shared: &Shared, fleet: &[String]) -> (usize, Vec<bool>, Vec<String>) {
    let views: Vec<_> = shared.trackers.iter().map(statuses_on).collect();
    let answered: Vec<bool> = views.iter().map(Option::is_some).collect();
    let is_active = |v: &HashMap<String, u8>, ip: &String| v.get(ip) == Some(&status::ACTIVE);
    let active = fleet
        .iter()
        .filter(|ip| views.iter().flatten().all(|v| is_active(v, ip)))
        .count();
    let others = shared
        .trackers
        .iter()
        .zip(&views)
        .filter_map(|(t, v)| {
            let v = v.as_ref()?;
            let mut by_status: std::collections::BTreeMap<&str, usize> = Default::default();
            for ip in fleet.iter().filter(|ip| !is_active(v, ip)) {
                let name = v.get(ip).map_or("unknown", |&s| status::name(s));
                *by_status.entry(name).or_default() += 1;
            }
            (!by_status.is_empty()).then(|| {
                let list: Vec<String> = by_status.iter().map(|(k, c)| format!("{c} {k}")).collect();
                format!("{t}: {}", list.join(", "))
            })
        })
        .collect();
    (
        if answered.iter().any(|a| *a) {
            active
        } else {
            0
        },
        answered,
        others,
    )
}

/// Whether storage `i` is ACTIVE on every tracker that answers GET_STATUS.
pub(super) fn late_joiner_active(shared: &Shared, i: usize) -> bool {
    let body = StorageAddrReq {
        group: shared.layout.group(i),
        addr: format!("{}:{}", shared.layout.ip(i), shared.args.storage_port),
    }
    .to_bytes();
    shared.trackers.iter().all(|t| {
        let timeout = Duration::from_secs(5);
        net::connect(&t.host, t.port, None, timeout, timeout)
            .ok()
            .and_then(|mut s| request(&mut s, cmd::STORAGE_GET_STATUS, &body).ok())
            .and_then(|b| Brief::from_bytes(&b).ok())
            .is_some_and(|b| b.status == status::ACTIVE)
    })
}

/// Clients: QUERY_STORE_WITHOUT_GROUP_ONE and QUERY_FETCH_ONE in turn, paced to `qps`, on one
/// persistent connection per tracker, round robin over the trackers.
pub(super) fn clients(shared: Arc<Shared>) -> (Samples, Samples, Samples) {
    let (mut store, mut fetch, mut errors) =
        (Samples::default(), Samples::default(), Samples::default());
    let qps = shared.args.queries_per_second;
    if qps == 0 {
        return (store, fetch, errors);
    }
    let every = Duration::from_secs_f64(1.0 / qps as f64);
    let mut conns: Vec<Option<TcpStream>> = shared.trackers.iter().map(|_| None).collect();
    let groups = shared.args.groups;
    let mut next = Instant::now();
    let mut k = 0usize;
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next += every;
        k += 1;
        let t = k % shared.trackers.len();
        if conns[t].is_none() {
            let tr = &shared.trackers[t];
            let timeout = Duration::from_secs(5);
            conns[t] = net::connect(&tr.host, tr.port, None, timeout, timeout).ok();
        }
        let Some(s) = conns[t].as_mut() else {
            errors.push(shared.t0, Duration::ZERO);
            continue;
        };
        let (command, body, into) = if k.is_multiple_of(2) {
            (cmd::QUERY_STORE_WITHOUT_GROUP_ONE, Vec::new(), &mut store)
        } else {
            // a file of some group, written by its first member an hour ago
            let g = (k / 2) % groups;
            let source = shared.layout.ip(g * shared.layout.per_group).octets();
            let payload = FilePayload {
                source: Source::Ipv4(source),
                timestamp: (fdfs_common::now() - 3600) as u32,
                size_field: FilePayload::make_size_field(1024, false, k as u32),
                crc32: k as u32,
            };
            let mut body = Vec::new();
            let mut group = format!("group{}", g + 1).into_bytes();
            group.resize(16, 0);
            body.extend_from_slice(&group);
            let ext = fdfs_common::file_id::format_ext("txt", || k as u8);
            body.extend_from_slice(format!("M00/00/00/{}{ext}", payload.encode_b27()).as_bytes());
            (cmd::QUERY_FETCH_ONE, body, &mut fetch)
        };
        let began = Instant::now();
        match request(s, command, &body) {
            Ok(_) => into.push(shared.t0, began.elapsed()),
            Err(NetError::Status(_)) => {
                into.push(shared.t0, began.elapsed());
                errors.push(shared.t0, began.elapsed());
            }
            Err(_) => {
                conns[t] = None;
                errors.push(shared.t0, began.elapsed());
            }
        }
    }
    (store, fetch, errors)
}
