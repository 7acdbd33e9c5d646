//! One function per client command of the storage, named after it (docs/protocol/client-protocol.md
//! section 3), and the one dispatch of every storage command (the replica commands are in
//! `replica`).
//!
//! A request whose body was not fully read when it failed is answered and then the connection
//! is closed, since the unread bytes would otherwise be taken for a header.
//!
//! This file dispatches and answers; the commands are in files named for what they do:
//! `upload`, `appender`, `reads`, `delete`, `meta_commands` (SET/GET_METADATA), and `names` for the file name every
//! command carries.

mod appender;
mod delete;
mod meta_commands;
mod names;
mod reads;
mod upload;

use crate::replica::SyncSession;
use crate::storage::{Outcome, Storage};
use fdfs_common::codec::Message;
use fdfs_common::codec::Reader;
use fdfs_common::proto::commands;
use fdfs_common::proto::listing::ListFilesReq;
use fdfs_common::proto::storage::FileIdReply;
use fdfs_common::proto::{cmd, errno, Header, HEADER_LEN};
use fdfs_common::refusal::Refusal;
use fdfs_common::server::{log_malformed, Body, Conn, Flow, Service};

impl Storage {
    fn active_test(&self, session: &SyncSession, body: &[u8]) -> Outcome {
        Reader::new(body).finish()?;
        self.note_caught_up(session);
        Ok(Vec::new())
    }
}

/// How a handled request was answered.
enum Answer {
    /// this body, with status 0
    Reply(Vec<u8>),
    /// already written by the handler (a download)
    Sent,
    /// already written, and the connection ends here (a stream of unannounced length)
    SentThenClose,
}

impl Storage {
    /// Every storage command, client's and replica's, by its code.
    fn dispatch(
        &self,
        conn: &mut Conn,
        session: &mut SyncSession,
        h: Header,
        body: &[u8],
    ) -> Result<Answer, Refusal> {
        use Answer::Reply;
        crate::binlog::clear_last_end();
        if !self.may_send(h.cmd, conn) {
            // a body left unread (a replica's content) must not be taken for the next request
            return Err(Refusal::done(errno::EACCES).then_close());
        }
        match h.cmd {
            cmd::UPLOAD_FILE | cmd::UPLOAD_APPENDER_FILE => self.upload_file(conn, h).map(Reply),
            cmd::UPLOAD_SLAVE_FILE => self.upload_slave_file(conn, h).map(Reply),
            cmd::APPEND_FILE => self.append_file(conn, h).map(Reply),
            cmd::MODIFY_FILE => self.modify_file(conn, h).map(Reply),
            cmd::TRUNCATE_FILE => self.truncate_file(body).map(Reply),
            cmd::REGENERATE_APPENDER_FILENAME => self.regenerate_appender_filename(body).map(Reply),
            cmd::DOWNLOAD_FILE => self.download_file(conn, body).map(|()| Answer::Sent),
            cmd::DELETE_FILE => self.delete_file(body).map(Reply),
            cmd::SET_METADATA => self.set_metadata(body).map(Reply),
            cmd::GET_METADATA => self.get_metadata(body).map(Reply),
            cmd::QUERY_FILE_INFO => self.query_file_info(h.status, body).map(Reply),
            cmd::ACTIVE_TEST => self.active_test(session, body).map(Reply),
            cmd::REPORT_SERVER_ID => self.report_server_id(session, body).map(Reply),
            cmd::SYNC_CREATE_FILE | cmd::SYNC_UPDATE_FILE => {
                self.sync_create_file(conn, session, h).map(Reply)
            }
            cmd::SYNC_APPEND_FILE | cmd::SYNC_MODIFY_FILE => {
                self.sync_append_file(conn, session, h).map(Reply)
            }
            cmd::SYNC_DELETE_FILE => self.sync_delete_file(session, body).map(Reply),
            cmd::SYNC_TRUNCATE_FILE => self.sync_truncate_file(session, body).map(Reply),
            cmd::SYNC_RENAME_FILE => self.sync_rename_file(body).map(Reply),
            cmd::SYNC_CREATE_LINK => self.sync_create_link(session, body).map(Reply),
            cmd::TRUNK_ALLOC_SPACE => self.trunk_alloc_space(body).map(Reply),
            cmd::TRUNK_ALLOC_CONFIRM => self.trunk_alloc_confirm(h, body).map(Reply),
            cmd::TRUNK_FREE_SPACE => self.trunk_free_space(body).map(Reply),
            cmd::TRUNK_SYNC_BINLOG => self.trunk_sync_binlog(body).map(Reply),
            cmd::TRUNK_TRUNCATE_BINLOG_FILE => self.trunk_truncate_binlog_file(body).map(Reply),
            cmd::TRUNK_GET_BINLOG_SIZE => self.trunk_get_binlog_size(body).map(Reply),
            cmd::TRUNK_DELETE_BINLOG_MARKS => self.trunk_delete_binlog_marks(body).map(Reply),
            // a stream of unannounced length: it ends when we close, and so does a refusal
            cmd::RECONCILE_DIGESTS => self.reconcile_digests(body).map(Reply),
            cmd::RECONCILE_LISTING => self.reconcile_listing(body).map(Reply),
            cmd::RFDFS_STATUS => self.rfdfs_status().map(Reply),
            cmd::LIST_FILES => {
                let req = ListFilesReq::from_bytes(body)?;
                self.list_files(&req).map(|text| Reply(text.into_bytes()))
            }
            cmd::FETCH_ONE_PATH_BINLOG => match self.fetch_one_path_binlog(conn, body) {
                Ok(()) => Ok(Answer::SentThenClose),
                Err(f) => Err(f.then_close()),
            },
            other => {
                log::error!("client ip: {}, unknown cmd: {other}", conn.peer_ip());
                Err(Refusal::done(errno::EINVAL))
            }
        }
    }
}

impl Service for Storage {
    type Session = SyncSession;

    const ANSWER_UNREADABLE_BODY: bool = true;

    fn max_body(&self) -> usize {
        self.cfg.server.buff_size.saturating_sub(HEADER_LEN)
    }

    /// File content is streamed from the socket to the disk, never held whole.
    fn streams(&self, command: u8) -> bool {
        commands::find(command).is_some_and(|c| c.streams_body)
    }

    fn metrics(&self) -> Option<&fdfs_common::metrics::Metrics> {
        Some(&self.metrics)
    }

    fn handle(
        &self,
        conn: &mut Conn,
        session: &mut SyncSession,
        h: Header,
        body: Body<'_>,
    ) -> Flow {
        let Some((log, action)) = self
            .access_log
            .as_ref()
            .and_then(|l| Some((l, crate::access_log::action(h.cmd)?)))
        else {
            let answer = self.dispatch(conn, session, h, body.bytes());
            return self.answer(conn, h, answer);
        };
        let began = std::time::SystemTime::now();
        let timer = std::time::Instant::now();
        let sent_before = conn.bytes_out;
        conn.log_name.clear();
        let answer = self.dispatch(conn, session, h, body.bytes());
        // an upload's file is named in its answer, after the group
        let answered = match &answer {
            Ok(Answer::Reply(b)) if action == "upload" || action == "rename" => {
                FileIdReply::from_bytes(b).ok().map(|r| r.filename)
            }
            _ => None,
        };
        let flow = self.answer(conn, h, answer);
        let name = answered
            .or_else(|| crate::access_log::name_in_request(h.cmd, body.bytes()))
            .unwrap_or_else(|| std::mem::take(&mut conn.log_name));
        log.write(&crate::access_log::AccessRecord {
            began,
            client_ip: &conn.peer_ip(),
            action,
            filename: &name,
            status: conn.status,
            used: timer.elapsed(),
            req_len: HEADER_LEN as i64 + h.pkg_len,
            resp_len: conn.bytes_out - sent_before,
        });
        flow
    }
}

impl Storage {
    /// Send what `dispatch` came to, and say whether the connection goes on.
    fn answer(&self, conn: &mut Conn, h: Header, answer: Result<Answer, Refusal>) -> Flow {
        match answer {
            Ok(Answer::Sent) => Flow::Continue,
            Ok(Answer::SentThenClose) => Flow::Close,
            Ok(Answer::Reply(body)) => fdfs_common::server::flow_after(conn.respond(0, &body)),
            Err(f) => {
                if let Some(e) = &f.malformed {
                    log_malformed(conn, h.cmd, e);
                }
                if f.status == 0 {
                    return Flow::Close;
                }
                // a well-formed request refused for want of room, a missing file or the like
                // is read to its end before the answer: a client that sends its whole file
                // before reading gets the status rather than a reset, and keeps the connection
                // (a malformed one, EINVAL, has no trustworthy length and is closed)
                let unread = (h.pkg_len as u64).saturating_sub(conn.body_read());
                let drained = f.body_consumed()
                    || (f.status != errno::EINVAL && conn.discard(unread).is_ok());
                if conn.respond_status(f.status).is_err()
                    || f.status == errno::EINVAL
                    || !drained
                    || f.closes()
                {
                    Flow::Close
                } else {
                    Flow::Continue
                }
            }
        }
    }
}
