//! The tracker's HTTP port (beyond upstream, after its 3.x embedded server): `GET` or `HEAD` of
//! `/<group>/M00/...` answers 302 to a storage that surely has the file, chosen by the same rule
//! as QUERY_FETCH_ONE, so a plain HTTP client needs only the tracker's address.

use crate::select;
use crate::tracker::Tracker;
use fdfs_common::file_id::RemoteName;
use fdfs_common::http::{self, respond_simple, Request};
use fdfs_common::proto::advertise;
use fdfs_common::server::{Conn, Flow, Handler};
use std::io;
use std::sync::Arc;

pub struct HttpRedirector {
    pub tracker: Arc<Tracker>,
}

impl Handler for HttpRedirector {
    type Session = http::HttpSession;

    fn serve(&self, conn: &mut Conn, session: &mut http::HttpSession) -> Flow {
        http::serve_requests(conn, session, |conn, req, keep| {
            self.respond(conn, req, keep)
        })
    }
}

impl HttpRedirector {
    fn respond(&self, conn: &mut Conn, req: &Request, keep: bool) -> io::Result<()> {
        if req.method != "GET" && req.method != "HEAD" {
            return respond_simple(conn, 405, keep);
        }
        let Some((group, name)) = req.path.strip_prefix('/').and_then(|p| p.split_once('/')) else {
            return respond_simple(conn, 400, keep);
        };
        let cfg = &self.tracker.cfg;
        let target = {
            let mut st = self.tracker.state.lock();
            let Some(g) = st.groups.get_mut(group) else {
                return respond_simple(conn, 404, keep);
            };
            match RemoteName::decode(name)
                .ok()
                .map(|n| select::fetch_servers(g, &n, false, fdfs_common::now(), cfg))
            {
                // an advertised address's host for this client (its HTTP port is the
                // tracker's http.storage_server_port, as for every storage)
                Some(Ok(v)) => v.first().map(|&i| {
                    let s = &g.storages[i];
                    advertise::pick(&s.advertise, &conn.peer_ip())
                        .map(|r| r.host.clone())
                        .unwrap_or_else(|| s.ip.clone())
                }),
                _ => None,
            }
        };
        let Some(ip) = target else {
            // a file name the tracker cannot place, or no storage of the group to serve it
            return respond_simple(conn, 404, keep);
        };
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip
        };
        let mut location = format!(
            "http://{host}:{}/{group}/{name}",
            cfg.http_storage_server_port
        );
        if !req.query.is_empty() {
            location += &format!("?{}", req.query);
        }
        conn.write_all(
            format!(
                "HTTP/1.1 302 Found\r\nServer: rfdfs\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: {}\r\n\r\n",
                if keep { "keep-alive" } else { "close" }
            )
            .as_bytes(),
        )
    }
}
