//! One S3 request being answered ([`Ctx`]: what it names, its query, the answer's id) and how
//! its handling ends short of an answer of its own ([`Failure`]).

use fdfs_common::http::Request;
use fdfs_common::s3::S3Error;
use std::io;

/// Why a request got no answer of its own: an S3 error to answer, or the connection failed.
pub(crate) enum Failure {
    S3(S3Error),
    Io(io::Error),
}

impl From<S3Error> for Failure {
    fn from(e: S3Error) -> Failure {
        Failure::S3(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::Io(e)
    }
}

pub(crate) type Done = Result<(), Failure>;

/// One request being answered.
pub(crate) struct Ctx<'r> {
    pub req: &'r Request,
    pub query: Vec<(String, String)>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// the answer's `x-amz-request-id`
    pub id: String,
    pub keep: bool,
}

impl Ctx<'_> {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    /// What the request names, for the error document's `Resource`.
    pub fn resource(&self) -> String {
        match (&self.bucket, &self.key) {
            (Some(b), Some(k)) => format!("/{b}/{k}"),
            (Some(b), None) => format!("/{b}"),
            _ => "/".into(),
        }
    }
}
