//! Why a request is answered with an error status, in both daemons: the errno, for a body that
//! does not decode the codec's account of it (which field, so that the log line names it), and
//! what the connection owes afterwards: whether the body was read to its end (if not, its unread
//! bytes would be taken for the next header, so the storage closes) and whether the daemon
//! closes after answering.
//!
//! The tracker reads every body whole and keeps the connection after a refusal (upstream's
//! behaviour); the storage streams file content and closes after EINVAL or whenever the body
//! was not consumed. Each daemon's `handle` reads these flags; a refusal that is `malformed` is
//! logged by `crate::server::log_malformed`.

use crate::codec::DecodeError;
use crate::file_id::FileIdError;
use crate::proto::errno;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u8,
    pub malformed: Option<DecodeError>,
    body_consumed: bool,
    /// the connection ends after the answer, whatever was read
    close: bool,
}

impl Refusal {
    /// Refused before the whole body was read.
    pub fn early(status: u8) -> Refusal {
        Refusal {
            status,
            malformed: None,
            body_consumed: false,
            close: false,
        }
    }

    /// Refused with the body read to its end.
    pub fn done(status: u8) -> Refusal {
        Refusal {
            status,
            malformed: None,
            body_consumed: true,
            close: false,
        }
    }

    /// A request whose body says something impossible (a length beyond the body, an unknown
    /// flag): EINVAL, logged like a body the codec refused, naming `field`.
    pub fn invalid(field: &'static str, why: impl Into<String>) -> Refusal {
        DecodeError::invalid(field, why).into()
    }

    pub fn body_consumed(&self) -> bool {
        self.body_consumed
    }

    pub fn closes(&self) -> bool {
        self.close
    }

    pub fn then_close(mut self) -> Refusal {
        self.close = true;
        self
    }
}

/// A status alone: refused with the body read (the tracker's refusals).
impl From<u8> for Refusal {
    fn from(status: u8) -> Refusal {
        Refusal::done(status)
    }
}

/// A body the codec refused: EINVAL, and the connection closes after the answer where the
/// daemon closes after EINVAL (whatever of the body was left unread cannot be trusted).
impl From<DecodeError> for Refusal {
    fn from(e: DecodeError) -> Refusal {
        Refusal {
            status: errno::EINVAL,
            malformed: Some(e),
            body_consumed: false,
            close: true,
        }
    }
}

impl From<FileIdError> for Refusal {
    fn from(e: FileIdError) -> Refusal {
        DecodeError::from(e).into()
    }
}
