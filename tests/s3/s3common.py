"""What the S3 test scripts share: a boto3 client for an endpoint, path-style and SigV4, no
retries (a failure shows at once), and the error code a call ends with."""

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def client(endpoint, key, secret):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def code_of(call):
    """The S3 error code `call` ends with, None when it succeeds."""
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None
