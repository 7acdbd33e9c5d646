//! The tracker's `/metrics` and `/health` (see `fdfs_common::metrics`): its request loop, the
//! cluster as it sees it (groups, storages, their state, space and last heartbeat), and the
//! tracker leader.

use crate::service::Tracker;
use fdfs_common::metrics::{Endpoint, Exposition};
use fdfs_common::proto::status;
use std::sync::Arc;

pub fn endpoint(tracker: &Arc<Tracker>) -> Arc<Endpoint> {
    let (t, h) = (Arc::clone(tracker), Arc::clone(tracker));
    Endpoint::new(
        "tracker",
        Box::new(move |out| render(&t, out)),
        Box::new(move || {
            if h.relation.lock().leader.is_some() {
                Ok(())
            } else {
                Err("no tracker leader".into())
            }
        }),
    )
}

fn render(t: &Tracker, out: &mut Exposition) {
    t.metrics
        .render(out, t.conn_stats.get().map(|s| s.as_ref()));
    let leader = t.relation.lock().leader.clone();
    out.family("is_leader", "gauge", "1 while this tracker is the leader.");
    out.sample("is_leader", &[], t.am_leader() as u8 as f64);
    out.family("has_leader", "gauge", "1 while a tracker leader is known.");
    out.sample("has_leader", &[], leader.is_some() as u8 as f64);

    let state = t.state.lock();
    let now = fdfs_common::now();
    out.family("groups", "gauge", "Groups known to this tracker.");
    out.sample("groups", &[], state.groups.len() as f64);
    out.family(
        "group_storages",
        "gauge",
        "Storages of each group, by status.",
    );
    for (name, g) in &state.groups {
        for s in [
            status::ACTIVE,
            status::ONLINE,
            status::OFFLINE,
            status::WAIT_SYNC,
            status::SYNCING,
        ] {
            let n = g.storages.iter().filter(|m| m.status == s).count();
            out.sample(
                "group_storages",
                &[("group", name), ("status", status::name(s))],
                n as f64,
            );
        }
    }
    out.family(
        "group_free_bytes",
        "gauge",
        "Free space of each group (its fullest writable member).",
    );
    for (name, g) in &state.groups {
        let (_, free) = g.space();
        out.sample(
            "group_free_bytes",
            &[("group", name)],
            free as f64 * 1048576.0,
        );
    }
    out.family(
        "storage_status",
        "gauge",
        "Each storage's status code, with its name as a label.",
    );
    for (name, g) in &state.groups {
        for m in &g.storages {
            out.sample(
                "storage_status",
                &[
                    ("group", name),
                    ("id", &m.id),
                    ("ip", &m.ip),
                    ("status", status::name(m.status)),
                ],
                m.status as f64,
            );
        }
    }
    out.family(
        "storage_free_bytes",
        "gauge",
        "Free space each storage last reported.",
    );
    for (name, g) in &state.groups {
        for m in &g.storages {
            let v = m.free_mb as f64 * 1048576.0;
            out.sample("storage_free_bytes", &[("group", name), ("id", &m.id)], v);
        }
    }
    out.family(
        "storage_total_bytes",
        "gauge",
        "Total space each storage last reported.",
    );
    for (name, g) in &state.groups {
        for m in &g.storages {
            let v = m.total_mb as f64 * 1048576.0;
            out.sample("storage_total_bytes", &[("group", name), ("id", &m.id)], v);
        }
    }
    out.family(
        "storage_heartbeat_age_seconds",
        "gauge",
        "Seconds since each storage's last heartbeat.",
    );
    for (name, g) in &state.groups {
        for m in g.storages.iter().filter(|m| m.last_heart_beat_time > 0) {
            let age = (now - m.last_heart_beat_time).max(0);
            out.sample(
                "storage_heartbeat_age_seconds",
                &[("group", name), ("id", &m.id)],
                age as f64,
            );
        }
    }
}
