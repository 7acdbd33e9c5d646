//! The tracker's `/metrics` and `/health` (see `fdfs_common::metrics`): its request loop, the
//! cluster as it sees it (groups, storages, their state, space and last heartbeat), and the
//! tracker leader.

use crate::state::StorageServer;
use crate::tracker::Tracker;
use fdfs_common::metrics::Exposition;
use fdfs_common::metrics_endpoint::Endpoint;
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
    let help = "1 while this tracker is the leader.";
    out.single("is_leader", "gauge", help, t.am_leader() as u8 as f64);
    let help = "1 while a tracker leader is known.";
    out.single("has_leader", "gauge", help, leader.is_some() as u8 as f64);

    let state = t.state.lock();
    let now = fdfs_common::now();
    let help = "Groups known to this tracker.";
    out.single("groups", "gauge", help, state.groups.len() as f64);
    let counted = [
        status::ACTIVE,
        status::ONLINE,
        status::OFFLINE,
        status::WAIT_SYNC,
        status::SYNCING,
    ];
    out.family_of(
        "group_storages",
        "gauge",
        "Storages of each group, by status.",
        state.groups.iter().flat_map(|(name, g)| {
            counted.iter().map(move |&s| {
                let n = g.storages.iter().filter(|m| m.status == s).count();
                (
                    [("group", name.as_str()), ("status", status::name(s))],
                    n as f64,
                )
            })
        }),
    );
    out.family_of(
        "group_free_bytes",
        "gauge",
        "Free space of each group (its fullest writable member).",
        state
            .groups
            .iter()
            .map(|(name, g)| ([("group", name.as_str())], g.space().1 as f64 * 1048576.0)),
    );
    let storages = || {
        state
            .groups
            .iter()
            .flat_map(|(name, g)| g.storages.iter().map(move |m| (name.as_str(), m)))
    };
    out.family_of(
        "storage_status",
        "gauge",
        "Each storage's status code, with its name as a label.",
        storages().map(|(group, m)| {
            let labels = [
                ("group", group),
                ("id", m.id.as_str()),
                ("ip", m.ip.as_str()),
                ("status", status::name(m.status)),
            ];
            (labels, m.status as f64)
        }),
    );
    // (family, help, the figure of a storage, if it has one)
    type PerStorage<'a> = (&'a str, &'a str, &'a dyn Fn(&StorageServer) -> Option<f64>);
    let per_storage: [PerStorage; 3] = [
        (
            "storage_free_bytes",
            "Free space each storage last reported.",
            &|m| Some(m.free_mb as f64 * 1048576.0),
        ),
        (
            "storage_total_bytes",
            "Total space each storage last reported.",
            &|m| Some(m.total_mb as f64 * 1048576.0),
        ),
        (
            "storage_heartbeat_age_seconds",
            "Seconds since each storage's last heartbeat.",
            &|m| (m.last_heart_beat_time > 0).then(|| (now - m.last_heart_beat_time).max(0) as f64),
        ),
    ];
    for (family, help, figure) in per_storage {
        let samples = storages().filter_map(|(group, m)| {
            figure(m).map(|v| ([("group", group), ("id", m.id.as_str())], v))
        });
        out.family_of(family, "gauge", help, samples);
    }
}
