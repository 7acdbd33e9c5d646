//! The FastDFS frame loop: header, body, one call of a [`Service`] per request, and the log
//! lines of requests refused or connections lost.

use super::conn::Conn;
use super::handler::{Flow, Handler};
use crate::proto::{cmd, commands, errno, Header};
use std::io;
use std::sync::Arc;

/// A request's body as the frame loop hands it to [`Service::handle`].
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// read whole: at most [`Service::max_body`] bytes
    Read(&'a [u8]),
    /// still on the connection, for a command of [`Service::streams`] to read itself
    Streamed,
}

impl<'a> Body<'a> {
    /// The bytes read (none for a streamed body).
    pub fn bytes(self) -> &'a [u8] {
        match self {
            Body::Read(b) => b,
            Body::Streamed => &[],
        }
    }
}

/// A protocol served by [`Server`]. The frame loop reads each header, closes on QUIT, reads the
/// body (unless the command streams it), then calls `handle` once per request.
pub trait Service: Send + Sync + 'static {
    /// Per-connection state (the tracker remembers which storage joined on it).
    type Session: Default + Send + 'static;

    /// Whether a body that cannot be read (too long, or the peer stalls) is answered EINVAL
    /// before the connection closes. Upstream's tracker just closes; rfdfs's storage answers,
    /// so that an uploading client sees why.
    const ANSWER_UNREADABLE_BODY: bool = false;

    /// The longest body read before `handle` (buff_size less the header).
    fn max_body(&self) -> usize;

    /// Commands whose body `handle` reads from the connection itself (file content).
    fn streams(&self, _cmd: u8) -> bool {
        false
    }

    fn handle(
        &self,
        conn: &mut Conn,
        session: &mut Self::Session,
        header: Header,
        body: Body<'_>,
    ) -> Flow;

    /// Where each request's command, outcome, latency and bytes are counted.
    fn metrics(&self) -> Option<&crate::metrics::Metrics> {
        None
    }

    /// Called once when the connection is gone, whatever the reason.
    fn closed(&self, _conn: &Conn, _session: &mut Self::Session) {}
}

/// The log line of a request the codec refused: command, field and peer.
pub fn log_malformed(conn: &Conn, command: u8, e: &crate::codec::DecodeError) {
    log::warn!(
        "client ip: {}, cmd: {command} ({}), malformed request: {e}",
        conn.peer_ip(),
        commands::name(command).unwrap_or("unknown")
    );
}

/// Respond and say whether the connection may continue: upstream storages close after EINVAL.
pub fn flow_after(result: io::Result<()>) -> Flow {
    match result {
        Ok(()) => Flow::Continue,
        Err(_) => Flow::Close,
    }
}

/// The FastDFS request loop around a [`Service`].
pub(super) struct Framed<S>(pub(super) Arc<S>);

impl<S: Service> Handler for Framed<S> {
    type Session = S::Session;

    fn serve(&self, conn: &mut Conn, session: &mut S::Session) -> Flow {
        let mut served = false;
        loop {
            if (served && conn.turn_over()) || conn.quiet() {
                return Flow::Continue;
            }
            served = true;
            let (bytes_in, bytes_out) = (conn.bytes_in, conn.bytes_out);
            let header = match conn.read_header() {
                Ok(h) => h,
                Err(e) => {
                    if conn.requests > 0 || e.kind() != io::ErrorKind::UnexpectedEof {
                        log_close(conn, &e);
                    }
                    return Flow::Close;
                }
            };
            if header.pkg_len < 0 {
                log::warn!(
                    "client ip: {}, invalid pkg length: {}, close connection",
                    conn.peer_ip(),
                    header.pkg_len
                );
                return Flow::Close;
            }
            let request = conn.begin_request();
            conn.status = 0;
            let flow = self.request(conn, session, header);
            if let Some(m) = self.0.metrics() {
                m.observe(header.cmd, conn.status, conn.request_began().elapsed());
                m.add_bytes(conn.bytes_in - bytes_in, conn.bytes_out - bytes_out);
            }
            drop(request);
            conn.requests += 1;
            if flow == Flow::Close || conn.is_shutting_down() {
                return Flow::Close;
            }
            // a next request not already read ahead is left to the watcher, which reports it
            // at once if it is there: probing the socket here would cost a syscall on nearly
            // every request, since clients rarely pipeline
            if !conn.has_read_ahead() {
                return Flow::Continue;
            }
        }
    }

    fn closed(&self, conn: &Conn, session: &mut S::Session) {
        self.0.closed(conn, session);
    }
}

impl<S: Service> Framed<S> {
    /// One request after its header: QUIT, the body, the service.
    fn request(&self, conn: &mut Conn, session: &mut S::Session, header: Header) -> Flow {
        if header.cmd == cmd::QUIT {
            return Flow::Close;
        }
        if self.0.streams(header.cmd) {
            return self.0.handle(conn, session, header, Body::Streamed);
        }
        match conn.read_body(header.pkg_len, self.0.max_body()) {
            Ok(body) => self.0.handle(conn, session, header, Body::Read(&body)),
            Err(e) => {
                log::warn!(
                    "client ip: {}, cmd: {} ({}), {e}, close connection",
                    conn.peer_ip(),
                    header.cmd,
                    commands::name(header.cmd).unwrap_or("unknown")
                );
                if S::ANSWER_UNREADABLE_BODY {
                    let _ = conn.respond_status(errno::EINVAL);
                }
                Flow::Close
            }
        }
    }
}

fn log_close(conn: &Conn, e: &io::Error) {
    match e.kind() {
        io::ErrorKind::ConnectionAborted => {}
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => {
            log::debug!("client ip: {}, connection disconnected", conn.peer_ip())
        }
        _ => log::warn!("client ip: {}, connection closed: {e}", conn.peer_ip()),
    }
}
