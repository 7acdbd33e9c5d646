//! Who sent an S3 request, and how its body is to be checked: the signature (SigV4 in the
//! `Authorization` header or in a presigned URL's query, `sigv4.rs`) verified against the key
//! of the credentials file it names, within S3's time limits.
//!
//! | request | time limit | body |
//! |---|---|---|
//! | `Authorization: AWS4-HMAC-SHA256 ...` | `X-Amz-Date` within 15 minutes of now | as `x-amz-content-sha256` says: its SHA-256, `UNSIGNED-PAYLOAD`, or `aws-chunked` (`chunked.rs`) |
//! | presigned (`X-Amz-Signature` in the query) | from `X-Amz-Date` for `X-Amz-Expires` seconds (at most 7 days) | unsigned |
//! | neither | refused: every request is signed | |

use super::chunked::{
    ChunkSigner, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER,
};
use super::sigv4::{self, SigError, Signed, UNSIGNED_PAYLOAD};
use super::S3Error;
use crate::config::s3::{Credential, S3Config};
use crate::http::Request;

/// How far a signed request's time may be from the server's.
pub const MAX_SKEW: i64 = 15 * 60;
/// The longest a presigned URL may be valid.
pub const MAX_PRESIGNED: u64 = 7 * 24 * 3600;

/// How the body of an authenticated request is checked.
pub enum Payload {
    /// not signed (`UNSIGNED-PAYLOAD`, a presigned URL)
    Unsigned,
    /// its SHA-256 (lower-case hex), to compare once it has all come
    Sha256(String),
    /// `aws-chunked`, each chunk signed
    StreamingSigned(ChunkSigner),
    /// `aws-chunked`, unsigned (the checksum in its trailer)
    StreamingUnsigned,
}

impl Payload {
    pub fn is_chunked(&self) -> bool {
        matches!(
            self,
            Payload::StreamingSigned(_) | Payload::StreamingUnsigned
        )
    }
}

/// An authenticated request.
pub struct Auth<'c> {
    pub credential: &'c Credential,
    pub payload: Payload,
}

/// `yyyymmddThhmmssZ` as unix seconds.
pub fn amz_date_unix(s: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// Unix seconds as `yyyymmddThhmmssZ` (what a client signs with).
pub fn format_amz_date(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

fn malformed(e: SigError) -> S3Error {
    match e {
        SigError::Mismatch => S3Error::signature_mismatch(),
        SigError::Malformed { field, why } => {
            S3Error::authorization_header_malformed(format!("{field}: {why}"))
        }
    }
}

/// Check `req`'s signature with the keys of `cfg` at time `now`.
pub fn authenticate<'c>(req: &Request, cfg: &'c S3Config, now: i64) -> Result<Auth<'c>, S3Error> {
    let query = req.query_pairs();
    let presigned = query.iter().any(|(k, _)| k == "X-Amz-Signature");
    let (signed, payload_hash) = if let Some(authz) = req.header("authorization") {
        if authz.starts_with("AWS ") {
            return Err(S3Error::invalid_request(
                "signature version 2 is not supported: sign with AWS4-HMAC-SHA256",
            ));
        }
        let date = req
            .header("x-amz-date")
            .or_else(|| req.header("date"))
            .unwrap_or_default();
        let signed = Signed::from_header(authz, date).map_err(malformed)?;
        let hash = req
            .header("x-amz-content-sha256")
            .ok_or_else(|| S3Error::invalid_request("missing x-amz-content-sha256"))?
            .to_string();
        (signed, hash)
    } else if presigned {
        (
            Signed::from_query(&query).map_err(malformed)?,
            UNSIGNED_PAYLOAD.to_string(),
        )
    } else {
        return Err(S3Error::access_denied(
            "anonymous requests are not served: sign with an access key",
        ));
    };
    let credential = cfg
        .credential(&signed.access_key)
        .ok_or_else(S3Error::invalid_access_key)?;
    let at = amz_date_unix(&signed.amz_date).ok_or_else(|| {
        S3Error::authorization_header_malformed(format!("X-Amz-Date {:?}", signed.amz_date))
    })?;
    match signed.expires {
        Some(expires) => {
            if expires > MAX_PRESIGNED {
                return Err(S3Error::authorization_header_malformed(
                    "X-Amz-Expires must be less than a week (in seconds)",
                ));
            }
            if now > at + expires as i64 || at > now + MAX_SKEW {
                return Err(S3Error::expired_request());
            }
        }
        None if (now - at).abs() > MAX_SKEW => return Err(S3Error::request_time_skewed()),
        None => {}
    }
    let sreq = sigv4::Request {
        method: &req.method,
        path: &req.path,
        query: &query,
        headers: &req.headers,
        payload_hash: &payload_hash,
    };
    signed
        .verify(&credential.secret_key, &sreq)
        .map_err(malformed)?;
    let payload = match payload_hash.as_str() {
        UNSIGNED_PAYLOAD => Payload::Unsigned,
        STREAMING_SIGNED | STREAMING_SIGNED_TRAILER => Payload::StreamingSigned(ChunkSigner {
            key: sigv4::signing_key(
                &credential.secret_key,
                &signed.date,
                &signed.region,
                &signed.service,
            ),
            amz_date: signed.amz_date.clone(),
            scope: signed.scope(),
            previous: signed.signature.clone(),
        }),
        STREAMING_UNSIGNED_TRAILER => Payload::StreamingUnsigned,
        h if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Payload::Sha256(h.to_ascii_lowercase())
        }
        other => {
            return Err(S3Error::invalid_argument(format!(
                "x-amz-content-sha256 {other:?} is not a SHA-256 nor a payload kind this \
                 endpoint knows"
            )))
        }
    };
    Ok(Auth {
        credential,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::s3::parse_credentials;

    fn cfg() -> S3Config {
        S3Config {
            server_port: 1,
            credentials_file: None,
            domain: None,
            credentials: parse_credentials(
                "t",
                "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
            )
            .unwrap(),
        }
    }

    /// AWS's presigned GET example (`sigv4.rs` has it too): valid for a day from its date.
    const PRESIGNED: &str = "GET /test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404 HTTP/1.1\r\nHost: examplebucket.s3.amazonaws.com";

    #[test]
    fn a_presigned_url_holds_for_its_time_only() {
        let req = Request::parse(PRESIGNED.as_bytes()).unwrap();
        let c = cfg();
        let at = amz_date_unix("20130524T000000Z").unwrap();
        assert!(authenticate(&req, &c, at + 3600).is_ok());
        let late = authenticate(&req, &c, at + 86401).err().unwrap();
        assert_eq!(late.code, "AccessDenied");
        let other = S3Config {
            credentials: parse_credentials("t", "AKIAIOSFODNN7EXAMPLE other\n").unwrap(),
            ..c.clone()
        };
        let wrong = authenticate(&req, &other, at + 1).err().unwrap();
        assert_eq!(wrong.code, "SignatureDoesNotMatch");
        let none = S3Config {
            credentials: parse_credentials("t", "SOMEONEELSE x\n").unwrap(),
            ..c
        };
        let unknown = authenticate(&req, &none, at + 1).err().unwrap();
        assert_eq!(unknown.code, "InvalidAccessKeyId");
    }

    #[test]
    fn unsigned_requests_are_refused() {
        let req = Request::parse(b"GET /b/k HTTP/1.1\r\nHost: x").unwrap();
        assert_eq!(
            authenticate(&req, &cfg(), 0).err().unwrap().code,
            "AccessDenied"
        );
    }
}
