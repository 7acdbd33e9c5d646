//! The storage's `/metrics` and `/health` (see `fdfs_common::metrics`): its request loop, the
//! statistics upstream reports to trackers, space per store path, and how far each group
//! member is behind this storage's binlog.

use crate::binlog::{binlog_name, parse_line};
use crate::mark::Mark;
use crate::reporter::Reporter;
use fdfs_common::metrics::Exposition;
use fdfs_common::proto::cluster::stat;
use fdfs_common::proto::status;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::sync::Arc;

const OPERATIONS: [(&str, usize); 10] = [
    ("upload", stat::TOTAL_UPLOAD_COUNT),
    ("append", stat::TOTAL_APPEND_COUNT),
    ("modify", stat::TOTAL_MODIFY_COUNT),
    ("truncate", stat::TOTAL_TRUNCATE_COUNT),
    ("set_metadata", stat::TOTAL_SET_META_COUNT),
    ("delete", stat::TOTAL_DELETE_COUNT),
    ("download", stat::TOTAL_DOWNLOAD_COUNT),
    ("get_metadata", stat::TOTAL_GET_META_COUNT),
    ("create_link", stat::TOTAL_CREATE_LINK_COUNT),
    ("delete_link", stat::TOTAL_DELETE_LINK_COUNT),
];

const BYTES: [(&str, usize); 6] = [
    ("upload", stat::TOTAL_UPLOAD_BYTES),
    ("append", stat::TOTAL_APPEND_BYTES),
    ("modify", stat::TOTAL_MODIFY_BYTES),
    ("download", stat::TOTAL_DOWNLOAD_BYTES),
    ("sync_in", stat::TOTAL_SYNC_IN_BYTES),
    ("sync_out", stat::TOTAL_SYNC_OUT_BYTES),
];

pub fn endpoint(rep: &Arc<Reporter>) -> Arc<fdfs_common::metrics_endpoint::Endpoint> {
    let (r, h) = (Arc::clone(rep), Arc::clone(rep));
    fdfs_common::metrics_endpoint::Endpoint::new(
        "storage",
        Box::new(move |out| render(&r, out)),
        Box::new(move || {
            if h.joined.lock().is_empty() {
                Err("not joined to any tracker".into())
            } else {
                Ok(())
            }
        }),
    )
}

fn render(rep: &Reporter, out: &mut Exposition) {
    let st = &rep.storage;
    st.metrics
        .render(out, st.conn_stats.get().map(|s| s.as_ref()));
    let counters = st.stats.lock().counters;
    // (family, help, (label, counter index) rows, offset of the counter used)
    type Table<'a> = (&'a str, &'a str, &'a [(&'a str, usize)], usize);
    let tables: [Table; 3] = [
        (
            "operations_total",
            "File operations, by operation (upstream's storage statistics).",
            &OPERATIONS,
            0,
        ),
        (
            "operations_succeeded_total",
            "File operations that succeeded, by operation.",
            &OPERATIONS,
            1,
        ),
        (
            "file_bytes_total",
            "File content bytes, by operation.",
            &BYTES,
            0,
        ),
    ];
    for (name, help, rows, offset) in tables {
        let samples = rows
            .iter()
            .map(|(op, i)| ([("operation", *op)], counters[i + offset] as f64));
        out.family_of(name, "counter", help, samples);
    }
    let help = "Trackers that accepted this storage's JOIN.";
    out.single(
        "trackers_joined",
        "gauge",
        help,
        rep.joined.lock().len() as f64,
    );

    // (index, path, (total MB, free MB) while readable)
    type PathRow = (String, String, Option<(i64, i64)>);
    let paths: Vec<PathRow> = (0..st.store.paths.len())
        .map(|i| {
            let usage = st.store.path_ok(i).then(|| {
                let u = st.store.usage(i);
                (u.total_mb, u.free_mb)
            });
            (
                i.to_string(),
                st.store.paths[i].display().to_string(),
                usage,
            )
        })
        .collect();
    // (family, help, the figure of a path, if it has one)
    type PerPath<'a> = (&'a str, &'a str, fn(Option<(i64, i64)>) -> Option<f64>);
    let per_path: [PerPath; 3] = [
        ("store_path_up", "1 while a store path is readable.", |u| {
            Some(u.is_some() as u8 as f64)
        }),
        (
            "store_path_total_bytes",
            "Size of each store path's file system.",
            |u| u.map(|u| u.0 as f64 * 1048576.0),
        ),
        (
            "store_path_free_bytes",
            "Free space of each store path.",
            |u| u.map(|u| u.1 as f64 * 1048576.0),
        ),
    ];
    for (name, help, figure) in per_path {
        let samples = paths.iter().filter_map(|(i, p, u)| {
            figure(*u).map(|v| ([("index", i.as_str()), ("path", p.as_str())], v))
        });
        out.family_of(name, "gauge", help, samples);
    }

    let scrub = &st.scrub;
    let scrub_counters: [(&str, &str, &std::sync::atomic::AtomicU64); 6] = [
        (
            "scrub_unreadable_total",
            "Files the scrub could not read (EIO, a failing disk), moved aside like corrupt ones.",
            &scrub.unreadable,
        ),
        (
            "scrub_bytes_total",
            "Bytes the scrub re-read.",
            &scrub.bytes,
        ),
        (
            "scrub_files_total",
            "Files the scrub checked.",
            &scrub.files,
        ),
        (
            "scrub_corrupt_total",
            "Files the scrub found corrupt and moved aside.",
            &scrub.corrupt,
        ),
        (
            "scrub_repaired_total",
            "Corrupt files fetched again intact from a member.",
            &scrub.repaired,
        ),
        (
            "scrub_unrepairable_total",
            "Corrupt files no member holds intact.",
            &scrub.unrepairable,
        ),
    ];
    for (name, help, v) in scrub_counters {
        out.single(
            name,
            "counter",
            help,
            v.load(std::sync::atomic::Ordering::Relaxed) as f64,
        );
    }
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let ex = &st.expiry;
    for (name, kind, help, v) in [
        (
            "expired_answered_absent_total",
            "counter",
            "Requests answered as for a missing file because the file had expired.",
            &ex.answered_absent,
        ),
        (
            "expired_swept_total",
            "counter",
            "Expired files this member's sweeper deleted.",
            &ex.swept,
        ),
        (
            "expired_pending",
            "gauge",
            "Expired files left after the last sweep (another member's to sweep, or not yet).",
            &ex.pending,
        ),
    ] {
        out.single(name, kind, help, load(v) as f64);
    }
    let load_i = |a: &std::sync::atomic::AtomicI64| a.load(std::sync::atomic::Ordering::Relaxed);
    let progress = match load(&scrub.subdirs_total) {
        0 => 0.0,
        total => load(&scrub.subdirs_done) as f64 / total as f64,
    };
    let rec = &st.reconcile;
    // (family, type, help, value)
    let state: [(&str, &str, &str, f64); 22] = [
        (
            "recovering_store_paths",
            "gauge",
            "Store paths being recovered from the group's members (the storage is RECOVERY at \
             the trackers meanwhile).",
            st.recovering.load(std::sync::atomic::Ordering::Relaxed) as f64,
        ),
        (
            "binlog_damage_total",
            "counter",
            "Damage found in the binlog (cut short, files or index lost), each logged.",
            st.binlog.damage_count() as f64,
        ),
        (
            "binlog_rerecorded_total",
            "counter",
            "Lines written again for stored files whose binlog lines damage had lost.",
            st.binlog.rerecorded_count() as f64,
        ),
        (
            "binlog_writable",
            "gauge",
            "1 while changes can be recorded in the binlog; 0 while they are refused (a full \
             or failing base_path).",
            st.binlog.refusing().is_none() as u8 as f64,
        ),
        (
            "binlog_refused_changes_total",
            "counter",
            "Changes refused because their binlog line could not be written.",
            st.binlog.refused_changes() as f64,
        ),
        (
            "scrub_passes_total",
            "counter",
            "Full scrub passes over every store path.",
            load(&scrub.passes) as f64,
        ),
        (
            "scrub_pass_progress_ratio",
            "gauge",
            "Share of the sub directories the current scrub pass has done.",
            progress,
        ),
        (
            "scrub_last_pass_end_timestamp_seconds",
            "gauge",
            "When the last full scrub pass ended (0: none yet).",
            load_i(&scrub.last_pass_end) as f64,
        ),
        (
            "write_ack_copies",
            "gauge",
            "Members that must hold a change before it is answered (write_ack_copies).",
            st.cfg.write_ack_copies as f64,
        ),
        (
            "copies_confirmed_total",
            "counter",
            "Changes answered once write_ack_copies members held them.",
            load(&st.copies.confirmed) as f64,
        ),
        (
            "copies_failed_total",
            "counter",
            "Changes refused (and undone) because too few members took them.",
            load(&st.copies.failed) as f64,
        ),
        (
            "reconcile_passes_total",
            "counter",
            "Reconcile passes.",
            load(&rec.passes) as f64,
        ),
        (
            "reconcile_last_pass_end_timestamp_seconds",
            "gauge",
            "When the last reconcile pass ended (0: none yet).",
            load_i(&rec.last_pass_end) as f64,
        ),
        (
            "reconcile_last_pass_seconds",
            "gauge",
            "How long the last reconcile pass took.",
            load(&rec.last_pass_millis) as f64 / 1000.0,
        ),
        (
            "reconcile_last_pass_files",
            "gauge",
            "Files this member listed on the last reconcile pass.",
            load(&rec.last_pass_files) as f64,
        ),
        (
            "reconcile_last_pass_differences",
            "gauge",
            "Differences with the members found on the last reconcile pass.",
            load(&rec.last_pass_differences) as f64,
        ),
        (
            "reconcile_differences_total",
            "counter",
            "Files a member held and this one lacked or held at another size.",
            load(&rec.differences) as f64,
        ),
        (
            "reconcile_fetched_total",
            "counter",
            "Files reconcile fetched from a member.",
            load(&rec.fetched) as f64,
        ),
        (
            "reconcile_deleted_kept_away_total",
            "counter",
            "Missing files not fetched because a delete of them is recorded here.",
            load(&rec.deleted_kept_away) as f64,
        ),
        (
            "reconcile_deletes_sent_total",
            "counter",
            "Deletes made here sent to a member that still held the file.",
            load(&rec.deletes_sent) as f64,
        ),
        (
            "reconcile_failed_fetches_total",
            "counter",
            "Fetches reconcile tried and that failed.",
            load(&rec.failed_fetches) as f64,
        ),
        (
            "reconcile_listing_corrected_total",
            "counter",
            "Listing index entries reconcile set to what the store paths hold.",
            load(&rec.index_corrected) as f64,
        ),
    ];
    for (name, kind, help, v) in state {
        out.single(name, kind, help, v);
    }

    // how far behind this storage's binlog each member's mark file is
    let end = st.binlog.visible_end();
    let my_id = st.my_id.read().clone();
    let members = st.members.read().clone();
    // (peer id, its status, (bytes, seconds) behind when its mark file is readable)
    type LagRow = (String, &'static str, Option<(u64, i64)>);
    let lags: Vec<LagRow> = members
        .iter()
        .filter(|m| m.id != my_id && !status::gone(m.status))
        .map(|m| {
            let lag = Mark::load(&st.mark_path(&m.id))
                .ok()
                .flatten()
                .map(|mark| lag_of(rep, &mark, end));
            (m.id.clone(), status::name(m.status), lag)
        })
        .collect();
    out.family_of(
        "peer_status",
        "gauge",
        "Each group member's status code, as the tracker reports it.",
        members.iter().filter(|m| m.id != my_id).map(|m| {
            let labels = [("peer", m.id.as_str()), ("status", status::name(m.status))];
            (labels, m.status as f64)
        }),
    );
    type PerPeer<'a> = (&'a str, &'a str, fn((u64, i64)) -> f64);
    let per_peer: [PerPeer; 2] = [
        (
            "sync_lag_bytes",
            "Binlog bytes not yet sent to each member (from its mark file).",
            |l| l.0 as f64,
        ),
        (
            "sync_lag_seconds",
            "Age of the oldest change not yet sent to each member (0 when none is pending).",
            |l| l.1 as f64,
        ),
    ];
    for (name, help, figure) in per_peer {
        let samples = lags.iter().filter_map(|(peer, s, lag)| {
            lag.map(|l| ([("peer", peer.as_str()), ("status", *s)], figure(l)))
        });
        out.family_of(name, "gauge", help, samples);
    }
    // how far each member has answered this storage's changes (write_ack_copies counts these)
    let reached = st.copies.positions();
    out.family_of(
        "peer_unconfirmed_bytes",
        "gauge",
        "Binlog bytes each member has not answered yet (0 when it has every change).",
        reached.iter().map(|(peer, at)| {
            let behind = if at.0 == end.0 {
                end.1.saturating_sub(at.1)
            } else {
                lag_of(
                    rep,
                    &Mark {
                        binlog_index: at.0,
                        binlog_offset: at.1,
                        ..Default::default()
                    },
                    end,
                )
                .0
            };
            ([("peer", peer.as_str())], behind as f64)
        }),
    );
}

/// Binlog bytes from `mark` to `end` (index, offset), and the age of the first of them.
fn lag_of(rep: &Reporter, mark: &Mark, end: (u32, u64)) -> (u64, i64) {
    let dir = rep.storage.cfg.server.base_path.join("data/sync");
    let size = |i: u32| {
        if i == end.0 {
            end.1
        } else {
            std::fs::metadata(dir.join(binlog_name(i))).map_or(0, |m| m.len())
        }
    };
    let mut bytes = 0u64;
    for i in mark.binlog_index..=end.0 {
        let from = if i == mark.binlog_index {
            mark.binlog_offset
        } else {
            0
        };
        bytes += size(i).saturating_sub(from);
    }
    if bytes == 0 {
        return (0, 0);
    }
    // the first unsent record: at the mark, or at the start of a later file
    let first = (mark.binlog_index..=end.0).find_map(|i| {
        let from = if i == mark.binlog_index {
            mark.binlog_offset
        } else {
            0
        };
        let mut f = std::fs::File::open(dir.join(binlog_name(i))).ok()?;
        f.seek(SeekFrom::Start(from)).ok()?;
        let mut line = String::new();
        BufReader::new(f).read_line(&mut line).ok()?;
        parse_line(line.trim_end()).map(|r| r.timestamp)
    });
    let secs = first.map_or(0, |ts| (fdfs_common::now() - ts).max(0));
    (bytes, secs)
}
