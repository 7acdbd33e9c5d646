//! A key's files and the deletion of one, from the storage alone: what a request (`names.rs`)
//! and the thread deleting overwritten files (`retire.rs`) share.

use crate::storage::Storage;
use fdfs_common::file_id::{LogicalName, RemoteName};
use fdfs_common::proto::errno;
use fdfs_common::s3::S3Error;

/// Every file carrying `bucket`/`key`, the object (the last written) last.
pub(super) fn files_of(storage: &Storage, bucket: &str, key: &str) -> Vec<String> {
    let index = storage.listing.index.read();
    index
        .keys()
        .get(bucket)
        .and_then(|keys| keys.get(key))
        .map(|files| files.keys().map(|(_, n)| n.clone()).collect())
        .unwrap_or_default()
}

/// Delete the file `name`: absent (or never a file name here) is no error, as S3 has it.
pub(super) fn delete_key_file(storage: &Storage, name: &str) -> Result<(), S3Error> {
    let paths = storage.store.paths.len();
    if LogicalName::parse(name, paths).is_err() || RemoteName::decode(name).is_err() {
        return Ok(());
    }
    let deleted = match storage.delete_named(name) {
        Ok(()) => Ok(()),
        Err(r) if r.status == errno::ENOENT => Ok(()),
        Err(r) if r.status == errno::ENOSPC => Err(S3Error::insufficient_storage()),
        Err(r) => Err(S3Error::slow_down(format!(
            "the delete was refused (errno {}): see the storage's log",
            r.status
        ))),
    };
    if deleted.is_ok() {
        // the next request here must not find it under its key
        if let Err(e) = storage.listing.note(name, None) {
            log::warn!("s3: note the delete of {name} in the listing index fail: {e}");
        }
    }
    deleted
}
