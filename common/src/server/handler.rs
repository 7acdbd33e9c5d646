//! The contract between the connection loop and whatever serves connections: [`Handler`] and
//! the [`Flow`] it answers after serving.

use super::conn::Conn;

/// What the connection loop does after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// keep the connection (a handler's `serve` returns this when it has gone quiet)
    Continue,
    Close,
}

/// Whatever serves accepted connections (the FastDFS frame loop below, or HTTP).
pub trait Handler: Send + Sync + 'static {
    /// What a connection keeps between its requests, parked or not.
    type Session: Default + Send + 'static;

    /// Serve the requests that have arrived on `conn`. `Flow::Continue` when it has gone quiet
    /// between requests (it waits for its next bytes without a thread), `Flow::Close` to hang
    /// up.
    fn serve(&self, conn: &mut Conn, session: &mut Self::Session) -> Flow;

    /// Called once when the connection is gone, whatever the reason.
    fn closed(&self, _conn: &Conn, _session: &mut Self::Session) {}
}
