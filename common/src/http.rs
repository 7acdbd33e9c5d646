//! HTTP pieces shared by the storage's file server, the tracker's redirector and the client's
//! URL builder (docs/protocol/config-cli-http.md section 5): `http.*` settings, `mime.types`, the
//! anti-steal token, request heads, `Range` headers and HTTP dates.

use crate::server::{Conn, Flow};
use std::io;

/// MD5 (RFC 1321) as lower-case hex (the anti-steal token).
pub fn md5_hex(input: &[u8]) -> String {
    let mut m = crate::s3::checksum::Md5::default();
    m.update(input);
    crate::s3::checksum::md5_hex(&m.finish())
}

/// The anti-steal token: hex MD5 of `path + secret + ts` (5.5). The storage's HTTP server
/// checks it over the path without the group (`M00/00/00/<name>`), as the nginx module does.
pub fn anti_steal_token(path: &str, secret: &str, ts: i64) -> String {
    let mut input = Vec::new();
    input.extend_from_slice(path.as_bytes());
    input.extend_from_slice(secret.as_bytes());
    input.extend_from_slice(ts.to_string().as_bytes());
    md5_hex(&input)
}

/// Whether `token`/`ts` grant access to `path` at `now`: an expired `ts` (older than `ttl`;
/// 0 never expires) or a token that does not match is refused.
pub fn token_ok(path: &str, secret: &str, token: &str, ts: i64, ttl: i64, now: i64) -> bool {
    token.len() == 32
        && !(ts != 0 && now - ts > ttl)
        && token.eq_ignore_ascii_case(&anti_steal_token(path, secret, ts))
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// the path, percent-decoded
    pub path: String,
    /// the raw query string (without `?`)
    pub query: String,
    /// HTTP/1.1 (keep-alive by default) rather than 1.0
    pub http11: bool,
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// Parse a head (`head` ends before the blank line). `None` for anything malformed,
    /// including a path whose percent-decoding is not UTF-8 or contains NUL.
    pub fn parse(head: &[u8]) -> Option<Request> {
        let text = std::str::from_utf8(head).ok()?;
        let mut lines = text.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let method = first.next()?.to_string();
        let target = first.next()?;
        let version = first.next()?;
        if first.next().is_some() || !version.starts_with("HTTP/1.") || method.is_empty() {
            return None;
        }
        let (raw_path, query) = target.split_once('?').unwrap_or((target, ""));
        let path = percent_decode(raw_path)?;
        let mut headers = Vec::new();
        for l in lines {
            if l.is_empty() {
                continue;
            }
            let (k, v) = l.split_once(':')?;
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        Some(Request {
            method,
            path,
            query: query.to_string(),
            http11: version == "HTTP/1.1",
            headers,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then(|| percent_decode(v).unwrap_or_default())
        })
    }

    /// Every pair of the query, decoded, in order (a key without `=` has an empty value).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (
                    percent_decode(k).unwrap_or_default(),
                    percent_decode(v).unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Whether the connection stays open after the response.
    pub fn keep_alive(&self) -> bool {
        match self.header("connection").map(str::to_ascii_lowercase) {
            Some(c) if c.contains("close") => false,
            Some(c) if c.contains("keep-alive") => true,
            _ => self.http11,
        }
    }
}

/// `%XX` escapes decoded; `None` for a bad escape, or a result that is not UTF-8 or holds NUL.
pub fn percent_decode(s: &str) -> Option<String> {
    let s = String::from_utf8(percent_bytes(s)?).ok()?;
    (!s.contains('\0')).then_some(s)
}

/// `%XX` escapes decoded to bytes; `None` for a `%` without two hex digits after it.
fn percent_bytes(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// `s` with `%` and the (ASCII) characters of `set` as `%XX`: text kept in a field those
/// characters would break (a run-file line, a metadata record). [`percent_unescape`] gives it
/// back.
pub fn percent_escape(s: &str, set: &[char]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '%' || set.contains(&c) {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// What [`percent_escape`] made, back (NUL allowed, unlike [`percent_decode`]); `None` for a
/// bad escape.
pub fn percent_unescape(s: &str) -> Option<String> {
    String::from_utf8(percent_bytes(s)?).ok()
}

/// What a `Range` header asks of a file of `size` bytes (5.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranges {
    /// no usable Range header: the whole file
    Whole,
    /// inclusive `(first, last)` byte positions, in request order
    Parts(Vec<(u64, u64)>),
    /// 416
    Unsatisfiable,
}

/// Parse `bytes=a-b,c-,-n` against `size`. Up to 5 ranges, as the nginx module allows; a
/// header that is not a byte range at all is ignored (the whole file), as RFC 9110 says.
pub fn parse_ranges(header: Option<&str>, size: u64) -> Ranges {
    let Some(h) = header else {
        return Ranges::Whole;
    };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ranges::Whole;
    };
    let mut parts = Vec::new();
    for r in spec.split(',') {
        let r = r.trim();
        let Some((a, b)) = r.split_once('-') else {
            return Ranges::Unsatisfiable;
        };
        let (a, b) = (a.trim(), b.trim());
        let part = if a.is_empty() {
            // suffix: the last n bytes
            let Ok(n) = b.parse::<u64>() else {
                return Ranges::Unsatisfiable;
            };
            if n == 0 || size == 0 {
                continue;
            }
            (size.saturating_sub(n), size - 1)
        } else {
            let Ok(first) = a.parse::<u64>() else {
                return Ranges::Unsatisfiable;
            };
            let last = if b.is_empty() {
                size.saturating_sub(1)
            } else {
                match b.parse::<u64>() {
                    Ok(l) if l >= first => l.min(size.saturating_sub(1)),
                    _ => return Ranges::Unsatisfiable,
                }
            };
            if first >= size {
                continue;
            }
            (first, last)
        };
        parts.push(part);
    }
    if parts.is_empty() || parts.len() > 5 {
        return Ranges::Unsatisfiable;
    }
    Ranges::Parts(parts)
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`
pub fn http_date(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

pub fn parse_http_date(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|d| d.timestamp())
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

/// What an HTTP connection keeps between requests: bytes that came after the last head
/// (pipelined requests).
#[derive(Default)]
pub struct HttpSession {
    buf: Vec<u8>,
}

/// The request loop of an HTTP connection: read a head, answer it with `respond(conn, request,
/// keep_alive)`, and go on while the client keeps the connection and nothing failed;
/// `Flow::Continue` once it has gone quiet between requests. Malformed heads get 400,
/// oversized ones 431, request bodies 413, each closing the connection.
pub fn serve_requests(
    conn: &mut Conn,
    session: &mut HttpSession,
    respond: impl Fn(&mut Conn, &Request, bool) -> io::Result<()>,
) -> Flow {
    serve_loop(conn, session, false, |conn, req, _body, keep| {
        respond(conn, req, keep)
    })
}

/// [`serve_requests`] for a server whose requests carry bodies (the S3 endpoint): `respond`
/// reads the body through [`Body::reader`]. What it leaves unread of a body is read and
/// dropped (up to [`MAX_DRAIN`], else the connection is closed) so that the next request is
/// found where it starts. A body must have a `Content-Length`: `Transfer-Encoding` is
/// answered 411 and the connection closed.
pub fn serve_requests_with_bodies(
    conn: &mut Conn,
    session: &mut HttpSession,
    respond: impl Fn(&mut Conn, &Request, &mut Body, bool) -> io::Result<()>,
) -> Flow {
    serve_loop(conn, session, true, respond)
}

/// Most body bytes read and dropped after an answer that did not need them.
pub const MAX_DRAIN: u64 = 1 << 20;

/// A request's body: the bytes that came with its head, then the socket's, up to its
/// `Content-Length`.
pub struct Body {
    ahead: Vec<u8>,
    /// bytes of the body not yet read
    left: u64,
    /// the client waits for `100 Continue` before it sends the body
    expects_continue: bool,
}

impl Body {
    /// The body's length not yet read.
    pub fn left(&self) -> u64 {
        self.left
    }

    /// A reader of the body over `conn`; its first read tells a client waiting for it
    /// (`Expect: 100-continue`) to send.
    pub fn reader<'a>(&'a mut self, conn: &'a mut Conn) -> BodyReader<'a> {
        BodyReader { body: self, conn }
    }
}

pub struct BodyReader<'a> {
    body: &'a mut Body,
    conn: &'a mut Conn,
}

impl io::Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let b = &mut *self.body;
        if b.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = (b.left.min(buf.len() as u64)) as usize;
        let n = if !b.ahead.is_empty() {
            let n = want.min(b.ahead.len());
            buf[..n].copy_from_slice(&b.ahead[..n]);
            b.ahead.drain(..n);
            n
        } else {
            if b.expects_continue {
                b.expects_continue = false;
                self.conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            }
            self.conn.read_some(&mut buf[..want])?
        };
        b.left -= n as u64;
        Ok(n)
    }
}

fn serve_loop(
    conn: &mut Conn,
    session: &mut HttpSession,
    bodies: bool,
    respond: impl Fn(&mut Conn, &Request, &mut Body, bool) -> io::Result<()>,
) -> Flow {
    let mut served = false;
    loop {
        if session.buf.is_empty() && ((served && conn.turn_over()) || conn.quiet()) {
            return Flow::Continue;
        }
        served = true;
        let head = match read_head(conn, &mut session.buf) {
            Ok(Some(h)) => h,
            Ok(None) => {
                let _ = respond_simple(conn, 431, false);
                return Flow::Close;
            }
            Err(e) => {
                if !matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionAborted
                ) {
                    log::debug!("http client {}: {e}", conn.peer_ip());
                }
                return Flow::Close;
            }
        };
        let _busy = conn.begin_request();
        let Some(req) = Request::parse(&head) else {
            log::warn!("http client {}: malformed request, close", conn.peer_ip());
            let _ = respond_simple(conn, 400, false);
            return Flow::Close;
        };
        let length = match req
            .header("content-length")
            .map(|v| v.trim().parse::<u64>())
        {
            None => Some(0),
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => None,
        };
        let refused = match (length, req.header("transfer-encoding")) {
            (None, _) => Some(400),
            (_, Some(_)) if bodies => Some(411),
            // GET and HEAD carry no body; refuse one rather than misread the stream
            (Some(n), te) if !bodies && (n > 0 || te.is_some()) => Some(413),
            _ => None,
        };
        if let Some(status) = refused {
            log::warn!(
                "http client {}: {} {} refused ({status}: its body's length), close",
                conn.peer_ip(),
                req.method,
                req.path
            );
            let _ = respond_simple(conn, status, false);
            return Flow::Close;
        }
        let mut body = Body {
            ahead: std::mem::take(&mut session.buf),
            left: length.unwrap_or(0),
            expects_continue: req
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue")),
        };
        // a client told to go on before an empty body's answer keeps nothing of the
        // exchange for the next request on the connection: botocore answered without it
        // reads that answer's status line as the next answer's (a minute's timeout)
        if body.expects_continue && body.left == 0 {
            body.expects_continue = false;
            if conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
                return Flow::Close;
            }
        }
        let mut keep = req.keep_alive() && !conn.is_shutting_down();
        let ok = match respond(conn, &req, &mut body, keep) {
            Ok(()) => true,
            Err(e) => {
                log::debug!("http client {}: {e}", conn.peer_ip());
                false
            }
        };
        if ok && body.left > 0 {
            // a client told not to send (no 100 Continue) may or may not have: close
            keep = keep && !body.expects_continue && body.left <= MAX_DRAIN && {
                let mut sink = [0u8; 16 * 1024];
                let mut r = body.reader(conn);
                loop {
                    match io::Read::read(&mut r, &mut sink) {
                        Ok(0) => break true,
                        Ok(_) => {}
                        Err(_) => break false,
                    }
                }
            };
        }
        session.buf = body.ahead;
        conn.requests += 1;
        if !ok || !keep {
            return Flow::Close;
        }
    }
}

/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Read up to the blank line ending a request head; what follows stays in `buf`.
/// `Ok(None)`: the head is too large.
fn read_head(conn: &mut Conn, buf: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    let mut chunk = [0u8; 4096];
    // the whole head within network_timeout of its first byte (no slowloris)
    let mut first_byte = (!buf.is_empty()).then(std::time::Instant::now);
    loop {
        if let Some(end) = find_blank_line(buf) {
            let head = buf[..end].to_vec();
            buf.drain(..end + 4);
            return Ok(Some(head));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        if first_byte.is_some_and(|f| f.elapsed() >= conn.network_timeout()) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request head too slow",
            ));
        }
        let idle = buf.is_empty();
        let n = conn.read_available(&mut chunk, idle)?;
        first_byte.get_or_insert_with(std::time::Instant::now);
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find_blank_line(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n")
}

pub fn respond_simple(conn: &mut Conn, status: u16, keep: bool) -> io::Result<()> {
    respond_text(
        conn,
        status,
        &format!("{status} {}\n", reason(status)),
        keep,
    )
}

/// A `text/plain` answer with `body`.
pub fn respond_text(conn: &mut Conn, status: u16, body: &str, keep: bool) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nServer: rfdfs\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        reason(status),
        body.len(),
        if keep { "keep-alive" } else { "close" }
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    conn.write_all(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_as_upstream() {
        // verified upstream example (docs/protocol/config-cli-http.md 5.5)
        let t = anti_steal_token(
            "group1/M00/00/00/fwAAA2sEzDmALZHpAAAAE2WoGAU383.txt",
            "FastDFS1234567890",
            1795476537,
        );
        assert_eq!(t, "9dd42d569bc97119f3f838756b9529e3");
        let t = anti_steal_token(
            "M00/00/00/fwAAA2sEzDmALZHpAAAAE2WoGAU383.txt",
            "FastDFS1234567890",
            1795476537,
        );
        assert_eq!(t, "4a11e7bfbc8de45c54d21e5d6d043998");
        assert!(token_ok(
            "p",
            "k",
            &anti_steal_token("p", "k", 100),
            100,
            60,
            150
        ));
        assert!(!token_ok(
            "p",
            "k",
            &anti_steal_token("p", "k", 100),
            100,
            60,
            161
        ));
        assert!(token_ok(
            "p",
            "k",
            &anti_steal_token("p", "k", 0),
            0,
            60,
            1 << 40
        ));
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_ranges(None, 10), Ranges::Whole);
        assert_eq!(
            parse_ranges(Some("bytes=0-3"), 10),
            Ranges::Parts(vec![(0, 3)])
        );
        assert_eq!(
            parse_ranges(Some("bytes=7-"), 10),
            Ranges::Parts(vec![(7, 9)])
        );
        assert_eq!(
            parse_ranges(Some("bytes=-4"), 10),
            Ranges::Parts(vec![(6, 9)])
        );
        assert_eq!(
            parse_ranges(Some("bytes=-40"), 10),
            Ranges::Parts(vec![(0, 9)])
        );
        assert_eq!(
            parse_ranges(Some("bytes=5-100"), 10),
            Ranges::Parts(vec![(5, 9)])
        );
        assert_eq!(parse_ranges(Some("bytes=10-"), 10), Ranges::Unsatisfiable);
        assert_eq!(parse_ranges(Some("bytes=5-2"), 10), Ranges::Unsatisfiable);
        assert_eq!(parse_ranges(Some("bytes=x-2"), 10), Ranges::Unsatisfiable);
        assert_eq!(
            parse_ranges(Some("bytes=0-1, 4-5"), 10),
            Ranges::Parts(vec![(0, 1), (4, 5)])
        );
        assert_eq!(parse_ranges(Some("items=0-1"), 10), Ranges::Whole);
    }

    #[test]
    fn requests_and_mime() {
        let r = Request::parse(
            b"GET /group1/M00/00/00/a%2Eb.txt?token=ab&ts=5 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1",
        )
        .unwrap();
        assert_eq!(r.path, "/group1/M00/00/00/a.b.txt");
        assert_eq!(r.param("ts").as_deref(), Some("5"));
        assert_eq!(r.header("range"), Some("bytes=0-1"));
        assert!(r.keep_alive());
        assert!(Request::parse(b"GET /a%00b HTTP/1.1").is_none());
        assert!(Request::parse(b"GARBAGE").is_none());
        let m = crate::config::MimeTypes::parse("# c\ntext/plain txt\nimage/jpeg jpeg jpg\n");
        assert_eq!(m.lookup("x.jpg"), Some("image/jpeg"));
        assert_eq!(m.lookup("x.JPG"), None);
        assert_eq!(m.lookup("x.toolong"), None);
        assert_eq!(parse_http_date(&http_date(1795476537)), Some(1795476537));
    }
}
