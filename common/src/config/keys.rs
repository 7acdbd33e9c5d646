//! What rfdfs does with each key of upstream's config files. Upstream accepts any key without a
//! word, so a swapped binary that quietly did less than a config asks, or a misspelt key that
//! quietly loses its setting, would go unnoticed: here a key rfdfs accepts but does nothing with
//! gets one WARNING at startup saying why, and a key neither upstream nor rfdfs knows gets a
//! WARNING naming its file, line and the nearest known key. Honoured keys pass in silence.

use super::ini::{parse_bool, IniFile, Item};

/// When an ignored key is worth a warning: only when it asks for something rfdfs does not do.
#[derive(Debug, Clone, Copy)]
pub enum When {
    Always,
    /// the key's own value is true
    True,
    /// the key's own value is false
    False,
    /// the key's own value is not empty
    Set,
    /// another key's value is true (a key that only matters with that one)
    With(&'static str),
    /// the key's own value is set and is not this one (any case)
    Not(&'static str),
    /// the key's own value starts with this (any case)
    Prefix(&'static str),
}

/// A key rfdfs accepts and does nothing with, and why.
#[derive(Debug, Clone, Copy)]
pub struct Ignored {
    pub key: &'static str,
    pub when: When,
    pub why: &'static str,
}

const fn ignored(key: &'static str, when: When, why: &'static str) -> Ignored {
    Ignored { key, when, why }
}

/// Keys of the server part and the log part that tracker.conf and storage.conf share.
const SERVER_KEYS: &[&str] = &[
    "disabled",
    "bind_addr",
    "port",
    "inner_bind_addr",
    "outer_bind_addr",
    "inner_port",
    "outer_port",
    "address_family",
    "connect_timeout",
    "network_timeout",
    "use_io_uring",
    "use_send_zc",
    "base_path",
    "max_connections",
    "accept_threads",
    "work_threads",
    "buff_size",
    "min_buff_size",
    "max_buff_size",
    "tcp_quick_ack",
    "log_level",
    "run_by_group",
    "run_by_user",
    "allow_hosts",
    "thread_stack_size",
    "use_connection_pool",
    "connection_pool_max_idle_time",
];

/// The log keys, global or in `[error-log]` / `[access-log]` (docs/protocol/config-cli-http.md
/// 2.3).
const LOG_KEYS: &[&str] = &[
    "sync_log_buff_interval",
    "log_file_rotate_everyday",
    "log_file_rotate_time",
    "log_file_compress_old",
    "log_file_compress_days_before",
    "log_file_rotate_on_size",
    "log_file_keep_days",
    "log_file_delete_old_time",
];

const TRACKER_KEYS: &[&str] = &[
    "response_ip_addr_size",
    "store_lookup",
    "store_group",
    "store_server",
    "store_path",
    "download_server",
    "reserved_storage_space",
    "check_active_interval",
    "storage_ip_changed_auto_adjust",
    "storage_sync_file_max_delay",
    "storage_sync_file_max_time",
    "use_trunk_file",
    "slot_min_size",
    "slot_max_size",
    "trunk_alloc_alignment_size",
    "trunk_free_space_merge",
    "delete_unused_trunk_files",
    "trunk_file_size",
    "trunk_create_file_advance",
    "trunk_create_file_time_base",
    "trunk_create_file_interval",
    "trunk_create_file_space_threshold",
    "trunk_init_check_occupying",
    "trunk_init_reload_from_binlog",
    "trunk_compress_binlog_min_interval",
    "trunk_compress_binlog_interval",
    "trunk_compress_binlog_time_base",
    "trunk_binlog_max_backups",
    "use_storage_id",
    "storage_ids_filename",
    "id_type_in_filename",
    "trust_storage_server_id",
    "store_slave_file_use_link",
];

const STORAGE_KEYS: &[&str] = &[
    "group_name",
    "client_bind",
    "server_id",
    "heart_beat_interval",
    "stat_report_interval",
    "disk_rw_separated",
    "disk_reader_threads",
    "disk_writer_threads",
    "sync_min_threads",
    "sync_max_threads",
    "sync_wait_msec",
    "sync_interval",
    "sync_start_time",
    "sync_end_time",
    "write_mark_file_freq",
    "disk_recovery_threads",
    "store_path_count",
    "subdir_count_per_path",
    "tracker_server",
    "file_distribute_path_mode",
    "file_distribute_rotate_count",
    "fsync_after_written_bytes",
    "sync_binlog_buff_interval",
    "sync_stat_file_interval",
    "upload_priority",
    "if_alias_prefix",
    "check_file_duplicate",
    "file_signature_method",
    "key_namespace",
    "keep_alive",
    "group_count",
    "use_proxy",
    "proxy_addr",
    "proxy_port",
    "file_sync_skip_invalid_record",
    "compress_binlog",
    "compress_binlog_time",
    "check_store_path_mark",
];

const CLIENT_KEYS: &[&str] = &[
    "tracker_server",
    "base_path",
    "connect_timeout",
    "network_timeout",
    "log_level",
    "connect_first_by",
    "use_connection_pool",
    "connection_pool_max_idle_time",
    "load_fdfs_parameters_from_tracker",
    "use_storage_id",
    "storage_ids_filename",
];

/// http.conf's keys, which client.conf (and mod_fastdfs.conf) `#include`.
const HTTP_KEYS: &[&str] = &[
    "http.default_content_type",
    "http.mime_types_filename",
    "http.anti_steal.check_token",
    "http.anti_steal.token_ttl",
    "http.anti_steal.secret_key",
    "http.anti_steal.token_check_fail",
    "http.multi_range.enabled",
];

const LOG_KEYS_BEFORE_6_14: &str = "upstream 6.14 replaced it with the log_file_* keys (global \
                                    or in [error-log])";

const FILES_IN_WORKERS: &str =
    "rfdfs reads and writes files in the worker that serves the connection \
    (work_threads sizes the pool)";
const ONE_SYNC_THREAD_PER_PEER: &str = "rfdfs runs one sync thread per other member of the group";
const ONE_LISTENER: &str = "rfdfs has one listener: bind_addr and port";
const ONLY_FOR_DEDUP: &str = "it only matters for de-duplication, which rfdfs does not do";
const NO_TRACKER_HTTP_CHECKS: &str = "upstream 6.13 removed the tracker's HTTP checks";

/// Keys both daemons accept and ignore.
const SERVER_IGNORED: &[Ignored] = &[
    ignored(
        "use_io_uring",
        When::True,
        "rfdfs serves with blocking sockets and sendfile, not io_uring",
    ),
    ignored("inner_bind_addr", When::Set, ONE_LISTENER),
    ignored("outer_bind_addr", When::Set, ONE_LISTENER),
    ignored("inner_port", When::Set, ONE_LISTENER),
    ignored("outer_port", When::Set, ONE_LISTENER),
    ignored(
        "use_send_zc",
        When::With("use_io_uring"),
        "it only matters with io_uring, which rfdfs does not use",
    ),
    ignored(
        "tcp_quick_ack",
        When::False,
        "rfdfs acknowledges at once whenever a request is only part-way in, or a client \
         that writes a request in pieces waits 40 ms",
    ),
    ignored("rotate_error_log", When::Always, LOG_KEYS_BEFORE_6_14),
    ignored("error_log_rotate_time", When::Always, LOG_KEYS_BEFORE_6_14),
    ignored("compress_old_error_log", When::Always, LOG_KEYS_BEFORE_6_14),
    ignored(
        "compress_error_log_days_before",
        When::Always,
        LOG_KEYS_BEFORE_6_14,
    ),
    ignored("rotate_error_log_size", When::Always, LOG_KEYS_BEFORE_6_14),
    ignored(
        "http.disabled",
        When::Always,
        "upstream 4.05 removed the embedded HTTP server it switched",
    ),
    ignored(
        "http.need_find_content_type",
        When::Always,
        "upstream 4.05 removed the embedded HTTP server it configured",
    ),
];

pub const TRACKER_IGNORED: &[Ignored] = &[
    ignored(
        "http.server_port",
        When::Always,
        "upstream 6.13 removed it: the tracker serves no HTTP (see http.redirect_port)",
    ),
    ignored(
        "http.check_alive_interval",
        When::Always,
        NO_TRACKER_HTTP_CHECKS,
    ),
    ignored(
        "http.check_alive_type",
        When::Always,
        NO_TRACKER_HTTP_CHECKS,
    ),
    ignored("http.check_alive_uri", When::Always, NO_TRACKER_HTTP_CHECKS),
];

const ACCESS_LOG_BEFORE_6_14: &str = "upstream 6.14 replaced it with [access-log] enabled and the \
                                      log_file_* keys in [access-log]";

pub const STORAGE_IGNORED: &[Ignored] = &[
    ignored("disk_rw_separated", When::Always, FILES_IN_WORKERS),
    ignored("disk_reader_threads", When::Always, FILES_IN_WORKERS),
    ignored("disk_writer_threads", When::Always, FILES_IN_WORKERS),
    ignored(
        "disk_recovery_threads",
        When::Always,
        "rfdfs recovers a store path with one thread",
    ),
    ignored("sync_min_threads", When::Always, ONE_SYNC_THREAD_PER_PEER),
    ignored("sync_max_threads", When::Always, ONE_SYNC_THREAD_PER_PEER),
    ignored(
        "if_alias_prefix",
        When::Set,
        "rfdfs asks the tracker which address it is seen at (bind_addr when set)",
    ),
    ignored(
        "check_file_duplicate",
        When::True,
        "de-duplication needs FastDHT, which rfdfs does not talk to: every upload is stored \
         as a file of its own (links made by a C storage are served and deleted as upstream does)",
    ),
    ignored(
        "file_signature_method",
        When::With("check_file_duplicate"),
        ONLY_FOR_DEDUP,
    ),
    ignored(
        "key_namespace",
        When::With("check_file_duplicate"),
        ONLY_FOR_DEDUP,
    ),
    ignored(
        "keep_alive",
        When::With("check_file_duplicate"),
        ONLY_FOR_DEDUP,
    ),
    ignored(
        "http.domain_name",
        When::Always,
        "upstream 6.13 removed it; rfdfs's HTTP server answers any host name",
    ),
    ignored(
        "http.trunk_size",
        When::Always,
        "upstream 4.05 removed the embedded HTTP server it configured",
    ),
    ignored("use_access_log", When::Always, ACCESS_LOG_BEFORE_6_14),
    ignored("rotate_access_log", When::Always, ACCESS_LOG_BEFORE_6_14),
    ignored(
        "access_log_rotate_time",
        When::Always,
        ACCESS_LOG_BEFORE_6_14,
    ),
    ignored(
        "compress_old_access_log",
        When::Always,
        ACCESS_LOG_BEFORE_6_14,
    ),
    ignored(
        "compress_access_log_days_before",
        When::Always,
        ACCESS_LOG_BEFORE_6_14,
    ),
    ignored(
        "rotate_access_log_size",
        When::Always,
        ACCESS_LOG_BEFORE_6_14,
    ),
];

/// `[access-log]` keys the storage ignores.
const ACCESS_LOG_IGNORED: &[Ignored] = &[];

pub const CLIENT_IGNORED: &[Ignored] = &[ignored(
    "http.tracker_server_port",
    When::Always,
    "upstream 6.13 removed it",
)];

/// Which config file: its keys and what rfdfs ignores of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfKind {
    Tracker,
    Storage,
    Client,
}

impl ConfKind {
    fn known(self) -> Vec<&'static str> {
        let parts: &[&[&str]] = match self {
            // http.conf's keys: trackers before 4.05 included it
            ConfKind::Tracker => &[SERVER_KEYS, LOG_KEYS, TRACKER_KEYS, HTTP_KEYS],
            ConfKind::Storage => &[SERVER_KEYS, LOG_KEYS, STORAGE_KEYS, HTTP_KEYS],
            ConfKind::Client => &[CLIENT_KEYS, HTTP_KEYS],
        };
        parts.iter().flat_map(|p| p.iter().copied()).collect()
    }

    fn ignored(self) -> Vec<&'static Ignored> {
        let parts: &[&[Ignored]] = match self {
            ConfKind::Tracker => &[SERVER_IGNORED, TRACKER_IGNORED],
            ConfKind::Storage => &[SERVER_IGNORED, STORAGE_IGNORED],
            ConfKind::Client => &[CLIENT_IGNORED],
        };
        parts.iter().flat_map(|p| p.iter()).collect()
    }
}

/// Keys spelt with a number: `store_path0`, `store_path1_readonly`, FastDHT's `group0`.
fn numbered(key: &str) -> Option<&'static str> {
    let stem = key.strip_suffix("_readonly").unwrap_or(key);
    let name = stem.trim_end_matches(|c: char| c.is_ascii_digit());
    if name.len() == stem.len() {
        return None;
    }
    match (name, key.ends_with("_readonly")) {
        ("store_path", false) => Some("store_path0"),
        ("store_path", true) => Some("store_path0_readonly"),
        ("group", false) => Some("group0"),
        _ => None,
    }
}

fn applies(ini: &IniFile, item: &Item, when: When) -> bool {
    let value_true = |key: &str| ini.peek(key).is_some_and(|i| parse_bool(&i.value));
    match when {
        When::Always => true,
        When::True => parse_bool(&item.value),
        When::False => !item.value.trim().is_empty() && !parse_bool(&item.value),
        When::Set => !item.value.trim().is_empty(),
        When::With(other) => value_true(other),
        When::Not(v) => {
            let own = item.value.trim();
            !own.is_empty() && !own.eq_ignore_ascii_case(v)
        }
        When::Prefix(p) => item
            .value
            .trim()
            .get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p)),
    }
}

/// One line per key worth saying something about, in file order, without repeats: ignored keys
/// that ask for something, keys nobody knows (with the nearest known one). Call after the
/// config was read, so that keys of rfdfs's own count as known.
pub fn key_warnings(ini: &IniFile, kind: ConfKind) -> Vec<String> {
    let known = kind.known();
    let ignored = kind.ignored();
    let mut seen = std::collections::HashSet::new();
    let mut lines = Vec::new();
    let sections: Vec<(Option<&str>, &[Item])> = std::iter::once((None, ini.global_items()))
        .chain(
            ini.section_names()
                .map(|s| (Some(s.as_str()), ini.section(s).unwrap_or_default())),
        )
        .collect();
    for (section, items) in sections {
        for item in items {
            if !seen.insert((section, item.key.as_str())) {
                continue;
            }
            let at = format!("conf file \"{}\", line {}", item.file, item.line);
            let (known_here, ignored_here): (Vec<&str>, Vec<&Ignored>) = match section {
                None => (known.clone(), ignored.clone()),
                Some("error-log") => (LOG_KEYS.to_vec(), Vec::new()),
                Some("access-log") if kind == ConfKind::Storage => {
                    let mut k = LOG_KEYS.to_vec();
                    k.extend(["enabled", "time_precision"]);
                    (k, ACCESS_LOG_IGNORED.iter().collect())
                }
                Some(other) => {
                    lines.push(format!(
                        "{at}: section [{other}] is not one upstream reads, its item \"{}\" \
                         is ignored",
                        item.key
                    ));
                    continue;
                }
            };
            if let Some(ig) = ignored_here.iter().find(|i| i.key == item.key) {
                if applies(ini, item, ig.when) {
                    lines.push(format!(
                        "{at}: item \"{}\" is accepted but ignored: {}",
                        item.key, ig.why
                    ));
                }
                continue;
            }
            let read_by_rfdfs = section.is_none() && ini.was_read(&item.key);
            if read_by_rfdfs
                || known_here.contains(&item.key.as_str())
                || numbered(&item.key).is_some()
            {
                continue;
            }
            let candidates = known_here
                .iter()
                .copied()
                .chain(ignored_here.iter().map(|i| i.key));
            let hint = match nearest(&item.key, candidates) {
                Some(k) => format!(", did you mean \"{k}\"?"),
                None => String::new(),
            };
            lines.push(format!(
                "{at}: unknown item \"{}\" is ignored{hint}",
                item.key
            ));
        }
    }
    lines
}

/// Log [`key_warnings`] at WARNING.
pub fn warn_about_keys(ini: &IniFile, kind: ConfKind) {
    for line in key_warnings(ini, kind) {
        log::warn!("{line}");
    }
}

/// The known key closest to `key` by edit distance, if close enough to be a misspelling.
fn nearest<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (key.len() / 3).clamp(1, 3);
    known
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != *cb)).min(row[j] + 1).min(up + 1);
            diag = up;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(kind: ConfKind, text: &str) -> Vec<String> {
        let ini = IniFile::parse_str("t.conf", text).unwrap();
        key_warnings(&ini, kind)
    }

    #[test]
    fn a_misspelt_key_names_file_line_and_the_nearest_key() {
        let w = warnings(
            ConfKind::Storage,
            "group_name=group1\nsync_wait_mesc=10\nnot_a_key_at_all=1\n",
        );
        assert_eq!(
            w,
            [
                "conf file \"t.conf\", line 2: unknown item \"sync_wait_mesc\" is ignored, did \
                 you mean \"sync_wait_msec\"?",
                "conf file \"t.conf\", line 3: unknown item \"not_a_key_at_all\" is ignored",
            ]
        );
    }

    #[test]
    fn ignored_keys_warn_only_when_they_ask_for_something() {
        let quiet = "check_file_duplicate=0\nkey_namespace=FastDFS\nsync_start_time=02:00\n\
                     sync_end_time=23:59\nuse_io_uring=false\nstore_path0=/a\n\
                     store_path1_readonly=true\n[access-log]\nenabled=false\n";
        assert_eq!(warnings(ConfKind::Storage, quiet), Vec::<String>::new());
        let loud = "check_file_duplicate=1\nkey_namespace=FastDFS\nuse_io_uring=true\n";
        let w = warnings(ConfKind::Storage, loud);
        let keys: Vec<&str> = w
            .iter()
            .map(|l| l.split('"').nth(3).unwrap_or(""))
            .collect();
        assert_eq!(
            keys,
            ["check_file_duplicate", "key_namespace", "use_io_uring",]
        );
        assert!(w[0].contains("FastDHT"), "{}", w[0]);
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("port", "port"), 0);
        assert_eq!(edit_distance("prot", "port"), 2);
        assert_eq!(edit_distance("base_pth", "base_path"), 1);
        assert_eq!(
            nearest("bse_path", CLIENT_KEYS.iter().copied()),
            Some("base_path")
        );
        assert_eq!(nearest("xyz", CLIENT_KEYS.iter().copied()), None);
    }
}
