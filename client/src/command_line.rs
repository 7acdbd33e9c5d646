//! rfdfs's own tools' command lines (clap), with upstream's exit codes for a bad one; and the
//! HTTP URL of a file as `rfdfs_http_url` prints it.

use crate::file_id::FileId;
use fdfs_common::http::anti_steal_token;

/// The command line of one of rfdfs's own tools (clap's conventions): `Err` carries the exit
/// code after clap printed the usage, `--help` or `--version`.
pub(crate) fn parse_command_line<T: clap::Parser>(args: &[String]) -> Result<T, i32> {
    T::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        e.exit_code()
    })
}

/// A download URL for `id` under `base` (`http://host:port`): `/M00/...`, or with `with_group`
/// `/<group>/M00/...`. With `token = Some((secret, ts))` the anti-steal arguments follow,
/// computed over the path without the group, which is what storages (and the nginx module)
/// check.
pub fn http_url(base: &str, id: &FileId, with_group: bool, token: Option<(&str, i64)>) -> String {
    let mut url = base.trim_end_matches('/').to_string();
    if with_group {
        url += &format!("/{}", id.group);
    }
    url += &format!("/{}", id.name);
    if let Some((secret, ts)) = token {
        url += &format!("?token={}&ts={ts}", anti_steal_token(&id.name, secret, ts));
    }
    url
}
