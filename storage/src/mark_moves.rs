//! What the tracker's changelog asks of a departed peer's mark file (docs/protocol/cluster-protocol.md
//! 2.13): a deleted peer's mark is set aside, a peer's mark follows its IP change. Both wait for
//! the peer's sync thread to end, since the thread saves its mark once more on its way out.

use crate::storage::Storage;
use fdfs_common::proto::changelog::ChangelogLine;
use fdfs_common::proto::status;
use fdfs_common::sync::Mutex;
use std::collections::HashMap;
use std::thread::JoinHandle;

/// What a changelog line asks of a departed peer's mark file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkMove {
    /// the peer came back on a new address: `old` id's mark becomes `new` id's
    Follow { old: String, new: String },
    /// the peer was deleted: its mark is renamed out of the way
    SetAside { old: String },
}

impl MarkMove {
    fn old(&self) -> &str {
        match self {
            MarkMove::Follow { old, .. } | MarkMove::SetAside { old } => old,
        }
    }
}

/// The mark moves heard of and not yet carried out.
#[derive(Debug, Default)]
pub struct MarkMoves(Mutex<Vec<MarkMove>>);

impl MarkMoves {
    /// Note what the changelog lines ([`ChangelogLine`]) of this storage's group ask.
    pub fn apply_changelog(&self, storage: &Storage, text: &str) {
        let by_ids = storage.params.read().use_storage_id;
        for line in ChangelogLine::parse_all(text) {
            if line.group != storage.group || line.old_id == *storage.my_id.read() {
                continue;
            }
            let old = line.old_id;
            let pending = match line.status {
                status::DELETED => MarkMove::SetAside { old },
                status::IP_CHANGED if !by_ids => MarkMove::Follow {
                    old,
                    new: line.new_id,
                },
                _ => continue,
            };
            self.0.lock().push(pending);
        }
    }

    /// Whether a peer on its new address `id` must wait for its old mark to follow it.
    pub fn awaited_by(&self, id: &str) -> bool {
        self.0
            .lock()
            .iter()
            .any(|m| matches!(m, MarkMove::Follow { new, .. } if new == id))
    }

    /// Carry out the pending moves whose peer no longer has a running sync thread.
    pub fn settle(&self, storage: &Storage, threads: &HashMap<String, JoinHandle<()>>) {
        self.0.lock().retain(|m| {
            if threads.get(m.old()).is_some_and(|h| !h.is_finished()) {
                return true;
            }
            let old = storage.mark_path(m.old());
            if !old.exists() {
                return false;
            }
            match m {
                MarkMove::SetAside { old: id } => {
                    let aside = old.with_file_name(format!(
                        "{}.{}",
                        old.file_name().unwrap_or_default().to_string_lossy(),
                        fdfs_common::log::local_time_suffix()
                    ));
                    log::info!("storage {id} deleted, its mark set aside");
                    if let Err(e) = std::fs::rename(&old, &aside) {
                        log::warn!("set aside {}: {e}", old.display());
                    }
                }
                MarkMove::Follow { old: id, new } => {
                    let to = storage.mark_path(new);
                    if !to.exists() {
                        log::info!("storage {id} is now {new}, its mark follows");
                        if let Err(e) = std::fs::rename(&old, &to) {
                            log::warn!("rename {}: {e}", old.display());
                        }
                    }
                }
            }
            false
        });
    }
}
