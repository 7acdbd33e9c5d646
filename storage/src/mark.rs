//! Mark files (docs/protocol/sync-and-storage-layout.md 3): how far through this storage's binlog
//! each member of the group has been sent, upstream's `<peer ip>_<port>.mark` (`<id>.mark` with
//! storage ids), written whole through a temp file.

use crate::binlog::Position;
use std::path::Path;

/// Per-peer progress (`<peer ip>_<port>.mark`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mark {
    pub binlog_index: u32,
    pub binlog_offset: u64,
    pub need_sync_old: bool,
    pub sync_old_done: bool,
    pub until_timestamp: i64,
    pub scan_row_count: i64,
    pub sync_row_count: i64,
}

impl Mark {
    /// The sync stands at `at` in the binlog.
    pub fn at(&mut self, at: Position) {
        (self.binlog_index, self.binlog_offset) = at;
    }

    pub fn to_text(&self) -> String {
        format!(
            "binlog_index={}\nbinlog_offset={}\nneed_sync_old={}\nsync_old_done={}\nuntil_timestamp={}\nscan_row_count={}\nsync_row_count={}\n",
            self.binlog_index,
            self.binlog_offset,
            self.need_sync_old as u8,
            self.sync_old_done as u8,
            self.until_timestamp,
            self.scan_row_count,
            self.sync_row_count
        )
    }

    /// `None` when absent; an unreadable or incomplete mark is an error (upstream exits).
    pub fn load(path: &Path) -> Result<Option<Mark>, String> {
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("read {} fail: {e}", path.display()))?;
        Mark::parse(&text, &path.display().to_string()).map(Some)
    }

    /// A mark file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Mark, String> {
        let kv = crate::state_file::parse_kv(text);
        let num = |k: &str| -> Result<i64, String> {
            kv.get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .ok_or_else(|| format!("{origin}: item \"{k}\" missing or invalid"))
        };
        Ok(Mark {
            binlog_index: num("binlog_index")?.max(0) as u32,
            binlog_offset: num("binlog_offset")?.max(0) as u64,
            need_sync_old: num("need_sync_old")? != 0,
            sync_old_done: num("sync_old_done")? != 0,
            until_timestamp: num("until_timestamp")?,
            scan_row_count: num("scan_row_count")?,
            sync_row_count: num("sync_row_count")?,
        })
    }

    pub fn save(&self, path: &Path) {
        let _ = crate::state_file::save(path, self.to_text().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_text_is_upstreams() {
        let m = Mark {
            binlog_index: 0,
            binlog_offset: 874,
            until_timestamp: 0,
            scan_row_count: 14,
            sync_row_count: 13,
            ..Default::default()
        };
        assert_eq!(
            m.to_text(),
            "binlog_index=0\nbinlog_offset=874\nneed_sync_old=0\nsync_old_done=0\nuntil_timestamp=0\nscan_row_count=14\nsync_row_count=13\n"
        );
    }
}
