//! The `/metrics` and `/health` listener (`metrics.server_port`) of both daemons.

use crate::http::{respond_simple, serve_requests, HttpSession, Request};
use crate::metrics::Exposition;
use crate::server::{Conn, Flow, Handler};
use std::sync::Arc;

type Render = dyn Fn(&mut Exposition) + Send + Sync;
type Health = dyn Fn() -> Result<(), String> + Send + Sync;

/// The HTTP side: `GET /metrics` renders, `GET /health` answers 200 only while `health` is Ok.
pub struct Endpoint {
    pub daemon: &'static str,
    pub render: Box<Render>,
    pub health: Box<Health>,
}

impl Endpoint {
    pub fn new(daemon: &'static str, render: Box<Render>, health: Box<Health>) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            daemon,
            render,
            health,
        })
    }

    fn respond(&self, conn: &mut Conn, req: &Request, keep: bool) -> std::io::Result<()> {
        if req.method != "GET" && req.method != "HEAD" {
            return respond_simple(conn, 405, keep);
        }
        let (status, content_type, body) = match req.path.as_str() {
            "/metrics" => {
                let mut e = Exposition::new(self.daemon);
                (self.render)(&mut e);
                (200, "text/plain; version=0.0.4; charset=utf-8", e.text)
            }
            "/health" => match (self.health)() {
                Ok(()) => (200, "text/plain", "ok\n".to_string()),
                Err(why) => (503, "text/plain", format!("{why}\n")),
            },
            _ => return respond_simple(conn, 404, keep),
        };
        let reason = if status == 200 {
            "OK"
        } else {
            "Service Unavailable"
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nServer: rfdfs\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
            body.len(),
            if keep { "keep-alive" } else { "close" }
        );
        let mut out = head.into_bytes();
        if req.method == "GET" {
            out.extend_from_slice(body.as_bytes());
        }
        conn.write_all(&out)
    }
}

impl Handler for Endpoint {
    type Session = HttpSession;

    fn serve(&self, conn: &mut Conn, session: &mut HttpSession) -> Flow {
        serve_requests(conn, session, |conn, req, keep| {
            self.respond(conn, req, keep)
        })
    }
}
