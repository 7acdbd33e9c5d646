//! How every client command reads the file name it carries: the store path and place parsed, and only names that are file IDs taken (a trunk file's own name, a metadata
//! or temp file's, would let one request delete or rewrite what many files live in).

use crate::storage::Storage;
use fdfs_common::file_id::{LogicalName, RemoteName};
use fdfs_common::proto::errno;
use fdfs_common::refusal::Refusal;

impl Storage {
    /// A name's store path and place, as every command that carries one parses it.
    fn parse_logical<'a>(&self, name: &'a str) -> Result<LogicalName<'a>, Refusal> {
        LogicalName::parse(name, self.store.paths.len()).map_err(|e| {
            log::error!("invalid file name \"{name}\": {e}");
            Refusal::done(errno::EINVAL)
        })
    }

    /// The name a client command gives, which must be a file ID's: a trunk file's own name
    /// (`M00/HH/HH/000001`), a metadata file's or a temp file's would otherwise let one request
    /// delete or rewrite what many files live in (upstream's storage takes them; its tools
    /// refuse them client-side).
    pub(crate) fn parse_name<'a>(&self, name: &'a str) -> Result<LogicalName<'a>, Refusal> {
        let ln = self.parse_logical(name)?;
        Self::require_file_id(name)?;
        Ok(ln)
    }

    fn require_file_id(name: &str) -> Result<(), Refusal> {
        RemoteName::decode(name).map(drop).map_err(|e| {
            log::error!("file name \"{name}\" is not a file ID ({e}): refused");
            Refusal::done(errno::EINVAL)
        })
    }

    /// The name a DOWNLOAD_FILE gives: a file ID, or a trunk file's own name, which a C
    /// storage recovering a store path from this one asks for whole.
    pub(super) fn parse_download_name<'a>(
        &self,
        name: &'a str,
    ) -> Result<LogicalName<'a>, Refusal> {
        let ln = self.parse_logical(name)?;
        if !ln.file_name().bytes().all(|b| b.is_ascii_digit()) {
            Self::require_file_id(name)?;
        }
        Ok(ln)
    }
}
