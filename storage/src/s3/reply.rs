//! Writing S3 answers: the status line and the headers every answer carries (`Server`, `Date`,
//! `x-amz-request-id`, `Connection`), then a body; an error as S3's XML document (without a
//! body for HEAD, as S3 answers it).

use super::request::Ctx;
use fdfs_common::http;
use fdfs_common::s3::xml::error_document;
use fdfs_common::s3::S3Error;
use fdfs_common::server::Conn;
use std::io;

/// The status line and common headers, then `extra` (each `Name: value`), not yet ended by
/// the blank line.
pub(crate) fn head(ctx: &Ctx<'_>, status: u16, extra: &[(&str, String)]) -> String {
    let mut h = format!(
        "HTTP/1.1 {status} {}\r\nServer: rfdfs\r\nDate: {}\r\nx-amz-request-id: {}\r\nConnection: {}\r\n",
        http::reason(status),
        http::http_date(fdfs_common::now()),
        ctx.id,
        if ctx.keep { "keep-alive" } else { "close" }
    );
    for (k, v) in extra {
        h.push_str(k);
        h.push_str(": ");
        h.push_str(v);
        h.push_str("\r\n");
    }
    h
}

/// An answer with no body.
pub(crate) fn empty(
    conn: &mut Conn,
    ctx: &Ctx<'_>,
    status: u16,
    extra: &[(&str, String)],
) -> super::request::Done {
    let mut h = head(ctx, status, extra);
    h.push_str("Content-Length: 0\r\n\r\n");
    conn.write_all(h.as_bytes())?;
    Ok(())
}

/// An XML document (`application/xml`).
pub(crate) fn xml(conn: &mut Conn, ctx: &Ctx<'_>, status: u16, doc: &str) -> super::request::Done {
    write_xml(conn, ctx, status, doc)?;
    Ok(())
}

fn write_xml(conn: &mut Conn, ctx: &Ctx<'_>, status: u16, doc: &str) -> io::Result<()> {
    let mut out = head(ctx, status, &[]).into_bytes();
    let with_body = ctx.req.method != "HEAD";
    out.extend_from_slice(
        format!(
            "Content-Type: application/xml\r\nContent-Length: {}\r\n\r\n",
            if with_body { doc.len() } else { 0 }
        )
        .as_bytes(),
    );
    if with_body {
        out.extend_from_slice(doc.as_bytes());
    }
    conn.write_all(&out)
}

/// `e` as S3 answers an error.
pub(crate) fn error(conn: &mut Conn, ctx: &Ctx<'_>, e: &S3Error) -> io::Result<()> {
    let doc = error_document(e.code, &e.message, &ctx.resource(), &ctx.id);
    write_xml(conn, ctx, e.status, &doc)
}
