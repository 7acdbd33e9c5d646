//! The S3 endpoint's server: what it holds, and its place in the daemon's thread pool (the
//! request loop of `fdfs_common::http`, bodies allowed; each request answered by `route.rs`).

use super::retire::Retirer;
use crate::storage::Storage;
use fdfs_common::config::s3::S3Config;
use fdfs_common::http;
use fdfs_common::server::{Conn, Flow, Handler};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

pub struct S3Server {
    pub storage: Arc<Storage>,
    pub cfg: S3Config,
    pub(super) requests: AtomicU64,
    /// where another group's storage is, and since when (`proxy.rs`)
    pub(super) groups:
        fdfs_common::sync::Mutex<std::collections::HashMap<String, (String, std::time::Instant)>>,
    /// overwritten files, deleted off the request path
    pub(super) retire: Retirer,
}

impl S3Server {
    pub fn new(storage: Arc<Storage>, cfg: S3Config) -> S3Server {
        S3Server {
            retire: Retirer::start(Arc::clone(&storage)),
            storage,
            cfg,
            requests: AtomicU64::new(0),
            groups: Default::default(),
        }
    }
}

impl S3Server {
    /// At a stop, once no request is served: delete what overwrites left queued.
    pub fn finish(&self) {
        self.retire.finish();
    }
}

impl Handler for S3Server {
    type Session = http::HttpSession;

    fn serve(&self, conn: &mut Conn, session: &mut http::HttpSession) -> Flow {
        http::serve_requests_with_bodies(conn, session, |conn, req, body, keep| {
            self.respond(conn, req, body, keep)
        })
    }
}
