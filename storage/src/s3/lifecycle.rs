//! Bucket lifecycle configuration, mapped onto rfdfs's expiry (docs/listing.md, "Expiry"):
//! a rule's `Expiration` (`Days` after an object was written, or a `Date`) becomes the
//! `fdfs-expires` metadata of each object it covers, written when the object is and, for the
//! objects already there, when the configuration is put. From there every member answers an
//! expired object as absent and the sweeper deletes it, as it does any file with
//! `fdfs-expires`; a C storage of the group holds the same metadata. The rules themselves are
//! kept in the bucket's file's metadata (`fdfs_common::s3::meta`).
//!
//! Only `Expiration` with `Days` or `Date` is understood; any other action (transitions,
//! noncurrent versions, incomplete multipart uploads, delete markers) is answered 501, so that
//! nobody believes it is done. Days count as S3 counts them: from the write, rounded up to the
//! next midnight UTC.

use super::body::read_small;
use super::names::Kind;
use super::reply;
use super::request::{Ctx, Done};
use super::server::S3Server;
use fdfs_common::http::Body;
use fdfs_common::s3::auth::Auth;
use fdfs_common::s3::meta::ObjectMeta;
use fdfs_common::s3::xml::{all_texts, iso8601, Xml};
use fdfs_common::s3::S3Error;
use fdfs_common::server::Conn;

/// The largest configuration read.
const MAX_CONFIGURATION: u64 = 64 << 10;
/// The most rules a bucket keeps (each is one metadata item).
const MAX_RULES: usize = 100;
const DAY: i64 = 86_400;

/// One lifecycle rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub id: String,
    pub enabled: bool,
    pub prefix: String,
    pub expires: Expires,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expires {
    Days(u32),
    /// unix time
    At(i64),
}

impl Rule {
    /// The form kept in metadata.
    fn kept(&self) -> String {
        let when = match self.expires {
            Expires::Days(d) => d.to_string(),
            Expires::At(t) => format!("@{t}"),
        };
        let status = if self.enabled { "Enabled" } else { "Disabled" };
        format!("{}\t{status}\t{when}\t{}", self.id, self.prefix)
    }

    fn from_kept(s: &str) -> Option<Rule> {
        let mut it = s.splitn(4, '\t');
        let id = it.next()?.to_string();
        let enabled = it.next()? == "Enabled";
        let when = it.next()?;
        let prefix = it.next()?.to_string();
        let expires = match when.strip_prefix('@') {
            Some(t) => Expires::At(t.parse().ok()?),
            None => Expires::Days(when.parse().ok()?),
        };
        Some(Rule {
            id,
            enabled,
            prefix,
            expires,
        })
    }

    /// When an object of `key` written at `written` (unix seconds) expires under this rule.
    fn expiry(&self, key: &str, written: i64) -> Option<i64> {
        if !self.enabled || !key.starts_with(&self.prefix) || key.is_empty() {
            return None;
        }
        Some(match self.expires {
            Expires::Days(d) => (written + i64::from(d) * DAY + DAY - 1) / DAY * DAY,
            Expires::At(t) => t,
        })
    }
}

/// The rules a bucket's metadata keeps.
pub(crate) fn rules_of(bucket: &ObjectMeta) -> Vec<Rule> {
    bucket
        .lifecycle
        .iter()
        .filter_map(|r| Rule::from_kept(r))
        .collect()
}

/// The expiry the first rule covering `key` gives an object written at `written_micros`.
pub(crate) fn expiry_for(rules: &[Rule], key: &str, written_micros: u64) -> Option<(i64, String)> {
    let written = (written_micros / 1_000_000) as i64;
    rules
        .iter()
        .find_map(|r| Some((r.expiry(key, written)?, r.id.clone())))
}

/// `YYYY-MM-DDT00:00:00Z` (or with `.000Z`) as unix time.
fn parse_date(s: &str) -> Option<i64> {
    let day = s.get(..10)?.replace('-', "");
    fdfs_common::s3::auth::amz_date_unix(&format!("{day}T000000Z"))
}

/// A configuration document's rules; `Err` for what is malformed or not understood.
pub(crate) fn parse_configuration(doc: &str) -> Result<Vec<Rule>, S3Error> {
    if !doc.contains("<LifecycleConfiguration") {
        return Err(S3Error::malformed_xml());
    }
    let mut rules = Vec::new();
    let mut rest = doc;
    while let Some(a) = rest.find("<Rule>") {
        let after = &rest[a + 6..];
        let b = after.find("</Rule>").ok_or_else(S3Error::malformed_xml)?;
        let rule = &after[..b];
        rest = &after[b + 7..];
        for action in [
            "Transition",
            "NoncurrentVersionExpiration",
            "NoncurrentVersionTransition",
            "AbortIncompleteMultipartUpload",
        ] {
            if rule.contains(&format!("<{action}>")) {
                return Err(S3Error::not_implemented(format!(
                    "lifecycle action {action}: only Expiration (Days or Date) is done here"
                )));
            }
        }
        let first = |tag: &str| all_texts(rule, tag).into_iter().next();
        if first("ExpiredObjectDeleteMarker").is_some() || rule.contains("<Tag>") {
            return Err(S3Error::not_implemented(
                "lifecycle rules on delete markers or tags: only prefixes are done here",
            ));
        }
        let expires =
            match (first("Days"), first("Date")) {
                (Some(d), None) => {
                    Expires::Days(d.trim().parse().ok().filter(|d| *d > 0).ok_or_else(|| {
                        S3Error::invalid_argument("Days must be a positive integer")
                    })?)
                }
                (None, Some(d)) => Expires::At(
                    parse_date(d.trim())
                        .ok_or_else(|| S3Error::invalid_argument("Date is not a date"))?,
                ),
                _ => return Err(S3Error::malformed_xml()),
            };
        let id = first("ID").unwrap_or_else(|| format!("rule-{}", rules.len() + 1));
        let prefix = first("Prefix").unwrap_or_default();
        if id.contains('\t') || prefix.contains('\t') {
            return Err(S3Error::invalid_argument("a tab in a rule's ID or prefix"));
        }
        let status = first("Status").ok_or_else(S3Error::malformed_xml)?;
        rules.push(Rule {
            id,
            enabled: status == "Enabled",
            prefix,
            expires,
        });
    }
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(S3Error::malformed_xml());
    }
    Ok(rules)
}

impl S3Server {
    /// The bucket's file and its metadata.
    fn bucket_meta(&self, bucket: &str) -> Result<(String, ObjectMeta), S3Error> {
        // a bucket's file is there long before its objects: no wait for the index
        let name = self
            .files_of(bucket, "")
            .pop()
            .ok_or_else(S3Error::no_such_bucket)?;
        let m = self
            .object_meta_of(&name)
            .ok_or_else(|| S3Error::internal("the bucket's metadata could not be read"))?;
        Ok((name, m))
    }

    /// The lifecycle rules of a bucket of keys (none for the group's).
    pub(super) fn lifecycle_rules(&self, bucket: &str) -> Vec<Rule> {
        self.bucket_meta(bucket)
            .map(|(_, m)| rules_of(&m))
            .unwrap_or_default()
    }

    /// Write `m` over `name`'s metadata (recorded, replicated, acknowledged as set_metadata's).
    pub(super) fn rewrite_meta(&self, name: &str, m: &ObjectMeta) -> Result<(), S3Error> {
        let st = &self.storage;
        let items = m.to_items().map_err(S3Error::invalid_argument)?;
        let ln = fdfs_common::file_id::LogicalName::parse(name, st.store.paths.len())
            .map_err(|_| S3Error::internal("not a file name"))?;
        let path = st.store.local_path(&ln);
        let undo = st
            .write_metadata(name, &path, &fdfs_common::metadata::pack(&items), false)
            .map_err(|code| S3Error::slow_down(format!("metadata write refused (errno {code})")))?;
        st.await_copies(undo)
            .map_err(|_| S3Error::slow_down("too few copies of the metadata"))?;
        Ok(())
    }

    /// Give every object of `bucket` the expiry `rules` say (none: take lifecycle expiries
    /// away); how many changed.
    fn apply_rules(&self, bucket: &str, rules: &[Rule]) -> Result<usize, S3Error> {
        let keys: Vec<String> = {
            let index = self.storage.listing.index.read();
            index
                .keys()
                .get(bucket)
                .map(|k| k.keys().filter(|k| !k.is_empty()).cloned().collect())
                .unwrap_or_default()
        };
        let mut changed = 0;
        for key in keys {
            let Some(name) = self.object_of(bucket, &key) else {
                continue;
            };
            let Some(mut m) = self.object_meta_of(&name) else {
                continue;
            };
            let want = expiry_for(rules, &key, m.written);
            if m.expiry != want {
                m.expiry = want;
                self.rewrite_meta(&name, &m)?;
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// PutBucketLifecycleConfiguration (and DeleteBucketLifecycle with `rules` empty).
    fn set_lifecycle(&self, bucket: &str, rules: Vec<Rule>) -> Result<usize, S3Error> {
        let (name, mut m) = self.bucket_meta(bucket)?;
        m.lifecycle = rules.iter().map(Rule::kept).collect();
        self.rewrite_meta(&name, &m)?;
        let changed = self.apply_rules(bucket, &rules)?;
        log::info!(
            "s3: bucket {bucket}: {} lifecycle rules, {changed} objects given their expiry again",
            rules.len()
        );
        Ok(changed)
    }

    pub(super) fn put_lifecycle(
        &self,
        conn: &mut Conn,
        ctx: &Ctx<'_>,
        auth: Auth<'_>,
        kind: Kind,
        bucket: &str,
        body: &mut Body,
    ) -> Done {
        let doc = read_small(conn, ctx, auth.payload, body, MAX_CONFIGURATION)?;
        if kind == Kind::Group {
            return Err(S3Error::not_implemented(
                "the group's own bucket expires files by storage.conf's expire_rule lines",
            )
            .into());
        }
        let doc = String::from_utf8(doc).map_err(|_| S3Error::malformed_xml())?;
        let rules = parse_configuration(&doc)?;
        self.set_lifecycle(bucket, rules)?;
        reply::empty(conn, ctx, 200, &[])
    }

    pub(super) fn delete_lifecycle(
        &self,
        conn: &mut Conn,
        ctx: &Ctx<'_>,
        kind: Kind,
        bucket: &str,
    ) -> Done {
        if kind == Kind::Named {
            self.set_lifecycle(bucket, Vec::new())?;
        }
        reply::empty(conn, ctx, 204, &[])
    }

    pub(super) fn get_lifecycle(
        &self,
        conn: &mut Conn,
        ctx: &Ctx<'_>,
        kind: Kind,
        bucket: &str,
    ) -> Done {
        let rules = match kind {
            Kind::Named => self.lifecycle_rules(bucket),
            Kind::Group => Vec::new(),
        };
        if rules.is_empty() {
            return Err(S3Error {
                status: 404,
                code: "NoSuchLifecycleConfiguration",
                message: "The lifecycle configuration does not exist".into(),
            }
            .into());
        }
        let mut x = Xml::new("LifecycleConfiguration");
        for r in &rules {
            x.open("Rule")
                .elem("ID", &r.id)
                .open("Filter")
                .elem("Prefix", &r.prefix)
                .close("Filter")
                .elem("Status", if r.enabled { "Enabled" } else { "Disabled" })
                .open("Expiration");
            match r.expires {
                Expires::Days(d) => x.elem("Days", d.to_string()),
                Expires::At(t) => x.elem("Date", iso8601(t)),
            };
            x.close("Expiration").close("Rule");
        }
        reply::xml(conn, ctx, 200, &x.finish("LifecycleConfiguration"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_reads_and_keeps() {
        let doc = r#"<?xml version="1.0"?><LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
            <Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>2</Days></Expiration></Rule>
            <Rule><ID>old</ID><Prefix>old/</Prefix><Status>Disabled</Status><Expiration><Date>2030-01-01T00:00:00.000Z</Date></Expiration></Rule>
            </LifecycleConfiguration>"#;
        let rules = parse_configuration(doc).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].expires, Expires::Days(2));
        assert_eq!(rules[1].expires, Expires::At(1_893_456_000));
        for r in &rules {
            assert_eq!(Rule::from_kept(&r.kept()).as_ref(), Some(r));
        }
        // written an hour past a midnight: two days on, rounded up to the next midnight
        let midnight = 1_796_688_000i64;
        let written = (midnight as u64 + 3600) * 1_000_000;
        let (at, id) = expiry_for(&rules, "logs/a", written).unwrap();
        assert_eq!((at, id.as_str()), (midnight + 3 * DAY, "logs"));
        assert_eq!(
            expiry_for(&rules, "old/a", written),
            None,
            "a disabled rule"
        );
        assert_eq!(expiry_for(&rules, "other", written), None);
        let transition = doc.replace(
            "<Expiration><Days>2</Days></Expiration>",
            "<Transition><Days>1</Days></Transition>",
        );
        assert_eq!(parse_configuration(&transition).unwrap_err().status, 501);
    }
}
