//! `rfdfs_admin`: what rfdfs's own guarantees are doing on every member (rfdfs's own tool, so
//! clap's conventions; `fdfs_monitor` keeps upstream's output).

use crate::client::Client;
use fdfs_common::config::HostPort;
use fdfs_common::log::format_time;
use fdfs_common::proto::rfdfs::Status;
use fdfs_common::proto::status;
use std::io::Write;

#[derive(clap::Parser, Debug)]
#[command(
    name = "rfdfs_admin",
    version,
    about = "Show what rfdfs's write_ack_copies, scrub and reconcile are doing on each storage"
)]
struct AdminArgs {
    /// client.conf (the trackers to ask for the groups and their members)
    config_file: std::path::PathBuf,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(clap::Subcommand, Debug)]
enum AdminCommand {
    /// Per member: copies confirmed, scrub progress and last full pass, reconcile's last pass
    Status {
        /// only this group
        #[arg(long)]
        group: Option<String>,
    },
}

pub fn rfdfs_admin(args: &[String]) -> i32 {
    let (a, client) =
        match super::startup::clap_tool::<AdminArgs>("rfdfs_admin", args, |a| &a.config_file) {
            Ok(started) => started,
            Err(code) => return code,
        };
    let AdminCommand::Status { group } = a.command;
    let mut out = std::io::stdout().lock();
    match status_report(&client, group.as_deref(), &mut out) {
        Ok(all_answered) => i32::from(!all_answered),
        Err(e) => {
            eprintln!("rfdfs_admin: {e}");
            2
        }
    }
}

fn when(ts: &str) -> String {
    match ts.parse::<i64>() {
        Ok(t) if t > 0 => format_time(t),
        _ => "never".into(),
    }
}

/// Print every member's state; false when a member did not answer.
fn status_report(
    client: &Client,
    only: Option<&str>,
    out: &mut impl Write,
) -> Result<bool, Box<dyn std::error::Error>> {
    let mut all = true;
    for g in client.list_groups()? {
        if only.is_some_and(|o| o != g.group) {
            continue;
        }
        writeln!(out, "group {}", g.group)?;
        for s in client.list_storages(&g.group, None)? {
            let addr = HostPort::new(s.ip.clone(), s.storage_port as u16);
            writeln!(
                out,
                "  storage {} ({addr}, {})",
                s.id,
                status::name(s.status)
            )?;
            if !matches!(s.status, status::ACTIVE | status::ONLINE | status::RECOVERY) {
                continue;
            }
            match client.rfdfs_status(&addr) {
                Ok(st) => member_lines(&st, out)?,
                Err(e) => {
                    all = false;
                    writeln!(
                        out,
                        "    no rfdfs status ({e}): a C storage, or not reachable"
                    )?;
                }
            }
        }
    }
    Ok(all)
}

fn member_lines(st: &Status, out: &mut impl Write) -> std::io::Result<()> {
    let get = |k: &str| st.get(k).unwrap_or("?").to_string();
    writeln!(
        out,
        "    copies: write_ack_copies = {}, {} changes confirmed, {} refused; binlog end {}",
        get("write_ack_copies"),
        get("copies_confirmed"),
        get("copies_failed"),
        get("binlog_end")
    )?;
    let refused = get("binlog_refused_changes");
    if get("binlog_writable") == "0" {
        writeln!(
            out,
            "    binlog: REFUSES CHANGES ({}: base_path full or failing), {refused} refused since \
             the start; reads go on",
            get("binlog_refusing_with")
        )?;
    } else {
        writeln!(
            out,
            "    binlog: writable, {refused} changes refused since the start"
        )?;
    }
    writeln!(
        out,
        "    binlog damage found: {}; lines written again for files it had lost: {}; store \
         paths being recovered: {}",
        get("binlog_damage"),
        get("binlog_rerecorded"),
        get("recovering_store_paths")
    )?;
    writeln!(
        out,
        "    ACTIVE members it sends to: {}",
        get("active_peers")
    )?;
    for (k, v) in &st.items {
        if let Some(peer) = k.strip_prefix("peer.") {
            writeln!(out, "      member {peer} has answered up to {v}")?;
        }
    }
    let rate = get("scrub_bytes_per_second");
    if rate == "0" {
        writeln!(out, "    scrub: off")?;
    } else {
        writeln!(
            out,
            "    scrub: {rate} bytes/s, {} full passes (last ended {}), current pass {} sub \
             directories; {} files / {} bytes checked, {} corrupt ({} unreadable), {} repaired, \
             {} unrepairable",
            get("scrub_passes"),
            when(&get("scrub_last_pass_end")),
            get("scrub_pass_subdirs"),
            get("scrub_files"),
            get("scrub_bytes"),
            get("scrub_corrupt"),
            get("scrub_unreadable"),
            get("scrub_repaired"),
            get("scrub_unrepairable")
        )?;
    }
    let every = get("reconcile_interval");
    if every == "0" {
        writeln!(out, "    reconcile: off")?;
    } else {
        writeln!(
            out,
            "    reconcile: every {every} s, {} passes; last ended {} ({} ms, {} files): {} \
             differences, {} fetched; since start {} differences, {} fetched, {} kept away by \
             a recorded delete ({} deletes sent to members that still held the file)",
            get("reconcile_passes"),
            when(&get("reconcile_last_pass_end")),
            get("reconcile_last_pass_millis"),
            get("reconcile_last_pass_files"),
            get("reconcile_last_pass_differences"),
            get("reconcile_last_pass_fetched"),
            get("reconcile_differences"),
            get("reconcile_fetched"),
            get("reconcile_deleted_kept_away"),
            get("reconcile_deletes_sent")
        )?;
    }
    Ok(())
}
