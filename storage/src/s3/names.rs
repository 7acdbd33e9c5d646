//! What a bucket and a key name here: the group's own bucket (its files under their FastDFS
//! names) or a bucket of keys (objects written through S3, found through the listing index's
//! map of S3 names), looked up once the index has applied every binlog line there is (an
//! object or bucket that has just reached this member).

use super::key_files::{delete_key_file, files_of};
use super::server::S3Server;
use fdfs_common::s3::S3Error;

/// What kind of bucket a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// the group's own: its files under their FastDFS names
    Group,
    /// a bucket of keys, made by CreateBucket
    Named,
}

impl S3Server {
    /// Look up with `find` once the index holds every binlog line there is: an object written
    /// or overwritten on another member and acknowledged (`write_ack_copies`) is in this
    /// member's binlog, so the next read here finds its latest bytes.
    fn current<T>(&self, find: impl Fn(&Self) -> Option<T>) -> Option<T> {
        self.storage
            .listing
            .catch_up(self.storage.binlog.visible_end());
        find(self)
    }

    /// Look up with `find`, and only when it finds nothing once the index has caught up (a
    /// bucket, which exists long before and after its objects: waiting for the index at every
    /// write cost a 1 KiB PUT a third of its time).
    fn found<T>(&self, find: impl Fn(&Self) -> Option<T>) -> Option<T> {
        find(self).or_else(|| self.current(find))
    }

    /// The kind of `bucket`, if this storage serves it.
    pub(super) fn kind(&self, bucket: &str) -> Option<Kind> {
        if bucket == self.storage.group {
            return Some(Kind::Group);
        }
        self.found(|s| {
            let index = s.storage.listing.index.read();
            index
                .keys()
                .get(bucket)
                .is_some_and(|keys| keys.contains_key(""))
                .then_some(Kind::Named)
        })
    }

    /// The buckets of keys, with when each was made (microseconds).
    pub(super) fn named_buckets(&self) -> Vec<(String, u64)> {
        let index = self.storage.listing.index.read();
        index
            .keys()
            .iter()
            .filter_map(|(b, keys)| {
                let made = keys.get("")?.keys().next()?.0;
                Some((b.clone(), made))
            })
            .collect()
    }

    /// Every file carrying `bucket`/`key`, the object (the last written) last.
    pub(super) fn files_of(&self, bucket: &str, key: &str) -> Vec<String> {
        files_of(&self.storage, bucket, key)
    }

    /// The file that is `bucket`/`key` now.
    /// Files of the key that a write made older and that are still there (their deletion
    /// was queued when the daemon died) are queued for deletion again.
    pub(super) fn object_of(&self, bucket: &str, key: &str) -> Option<String> {
        let mut files = self.current(|s| Some(s.files_of(bucket, key)))?;
        let last = files.pop()?;
        if !files.is_empty() {
            self.retire.requeue(&self.storage, bucket, key, &last);
        }
        Some(last)
    }

    /// Whether a bucket of keys holds any object.
    pub(super) fn holds_objects(&self, bucket: &str) -> bool {
        let index = self.storage.listing.index.read();
        index
            .keys()
            .get(bucket)
            .is_some_and(|keys| keys.keys().any(|k| !k.is_empty()))
    }

    /// Delete the file `name`: absent (or never a file name here) is no error, as S3 has it.
    pub(super) fn delete_key_file(&self, name: &str) -> Result<(), S3Error> {
        delete_key_file(&self.storage, name)
    }

    /// Delete what `key` names in `bucket`: a file of the group's, or every file of a key.
    pub(super) fn delete_key(&self, kind: Kind, bucket: &str, key: &str) -> Result<(), S3Error> {
        match kind {
            Kind::Group => self.delete_key_file(key),
            Kind::Named => {
                for name in self.files_of(bucket, key) {
                    self.delete_key_file(&name)?;
                }
                Ok(())
            }
        }
    }
}
