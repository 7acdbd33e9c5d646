//! S3's errors: the HTTP status and the code a client branches on (boto3's
//! `ClientError.response['Error']['Code']`), with a message for the operator.

/// An error answered to an S3 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

fn e(status: u16, code: &'static str, message: impl Into<String>) -> S3Error {
    S3Error {
        status,
        code,
        message: message.into(),
    }
}

impl S3Error {
    pub fn access_denied(why: impl Into<String>) -> S3Error {
        e(403, "AccessDenied", why)
    }
    pub fn invalid_access_key() -> S3Error {
        e(
            403,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        )
    }
    pub fn signature_mismatch() -> S3Error {
        e(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    }
    pub fn request_time_skewed() -> S3Error {
        e(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the server's time is too large.",
        )
    }
    pub fn expired_request() -> S3Error {
        e(403, "AccessDenied", "Request has expired")
    }
    pub fn authorization_header_malformed(why: impl Into<String>) -> S3Error {
        e(400, "AuthorizationHeaderMalformed", why)
    }
    pub fn no_such_bucket() -> S3Error {
        e(404, "NoSuchBucket", "The specified bucket does not exist")
    }
    pub fn no_such_key() -> S3Error {
        e(404, "NoSuchKey", "The specified key does not exist.")
    }
    pub fn bucket_not_empty() -> S3Error {
        e(
            409,
            "BucketNotEmpty",
            "The bucket you tried to delete is not empty",
        )
    }
    pub fn bucket_already_owned() -> S3Error {
        e(
            409,
            "BucketAlreadyOwnedByYou",
            "Your previous request to create the named bucket succeeded and you already own it.",
        )
    }
    pub fn invalid_bucket_name(name: &str) -> S3Error {
        e(
            400,
            "InvalidBucketName",
            format!("The specified bucket is not valid: {name:?}"),
        )
    }
    pub fn invalid_argument(why: impl Into<String>) -> S3Error {
        e(400, "InvalidArgument", why)
    }
    pub fn invalid_request(why: impl Into<String>) -> S3Error {
        e(400, "InvalidRequest", why)
    }
    pub fn invalid_range() -> S3Error {
        e(
            416,
            "InvalidRange",
            "The requested range is not satisfiable",
        )
    }
    pub fn bad_digest(why: impl Into<String>) -> S3Error {
        e(400, "BadDigest", why)
    }
    pub fn sha256_mismatch() -> S3Error {
        e(
            400,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    }
    pub fn incomplete_body() -> S3Error {
        e(
            400,
            "IncompleteBody",
            "You did not provide the number of bytes specified by the Content-Length HTTP header",
        )
    }
    pub fn missing_content_length() -> S3Error {
        e(
            411,
            "MissingContentLength",
            "You must provide the Content-Length HTTP header.",
        )
    }
    pub fn entity_too_large() -> S3Error {
        e(
            400,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed object size.",
        )
    }
    pub fn malformed_xml() -> S3Error {
        e(
            400,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema.",
        )
    }
    pub fn precondition_failed() -> S3Error {
        e(
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
        )
    }
    pub fn method_not_allowed() -> S3Error {
        e(
            405,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        )
    }
    pub fn no_such_upload() -> S3Error {
        e(
            404,
            "NoSuchUpload",
            "The specified multipart upload does not exist.",
        )
    }
    pub fn invalid_part(why: impl Into<String>) -> S3Error {
        e(400, "InvalidPart", why)
    }
    pub fn invalid_part_order() -> S3Error {
        e(
            400,
            "InvalidPartOrder",
            "The list of parts was not in ascending order.",
        )
    }
    pub fn not_implemented(what: impl Into<String>) -> S3Error {
        e(501, "NotImplemented", what)
    }
    pub fn slow_down(why: impl Into<String>) -> S3Error {
        e(503, "SlowDown", why)
    }
    pub fn internal(why: impl Into<String>) -> S3Error {
        e(500, "InternalError", why)
    }
    pub fn insufficient_storage() -> S3Error {
        e(
            507,
            "InsufficientStorage",
            "The store paths of this group have no room for the object.",
        )
    }
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for S3Error {}
