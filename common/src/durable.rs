//! Writing small state files so that a crash leaves either the old or the new content.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Write `content` to `<path>.tmp`, fsync it, rename it over `path`, fsync the directory.
pub fn write_atomic(path: &Path, content: &[u8]) -> std::io::Result<()> {
    replace(path, content, true)
}

/// Write `content` to `<path>.tmp` and rename it over `path`: a reader and a crashed daemon
/// see the old content or the new, never a part. With `durable` both are fsynced (and the
/// directory), so a power cut keeps that promise too. Without, nothing waits for the disk, as
/// for the file the content describes: a file's metadata written through S3 cost two fsyncs,
/// a journal commit that every concurrent writer waited behind (20-270 ms each under 1 MiB
/// PUTs from 16 clients; 1 KiB PUTs from 16 clients ran at 8,000/s with them, 16,700/s
/// without).
pub fn replace(path: &Path, content: &[u8], durable: bool) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(content)?;
            if durable {
                f.sync_all()?;
            }
            Ok(())
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        // a full file system: leave no half-written temp file behind
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if durable {
        sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

/// Make a directory's entries (a rename, a new link) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replacement_leaves_the_new_content_and_no_temp_file_in_either_mode() {
        let dir = std::env::temp_dir().join(format!("rfdfs-durable-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f-m");
        for (durable, content) in [(true, &b"first"[..]), (false, b"second"), (true, b"")] {
            replace(&path, content, durable).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), content, "durable {durable}");
            assert!(!dir.join("f-m.tmp").exists(), "durable {durable}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
