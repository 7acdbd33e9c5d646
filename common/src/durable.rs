//! Writing small state files so that a crash leaves either the old or the new content.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Write `content` to `<path>.tmp`, fsync it, rename it over `path`, fsync the directory.
pub fn write_atomic(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(content)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        // a full file system: leave no half-written temp file behind
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Make a directory's entries (a rename, a new link) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
