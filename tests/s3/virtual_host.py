"""Virtual-host style requests (`Host: <bucket>.<s3.domain>`), as boto3 makes them with
addressing_style "virtual" (tests/tests/s3.rs drives it, with /etc/hosts naming the endpoint
and the bucket's host). argv: endpoint URL (by name), access key, secret. Prints "s3 virtual
host: all checks passed"."""

import sys

import boto3
from botocore.config import Config

from s3common import code_of

ep, key, secret = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=ep, aws_access_key_id=key, aws_secret_access_key=secret,
                  region_name="us-east-1",
                  config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"},
                                retries={"max_attempts": 1}))
s3.create_bucket(Bucket="vbucket")
s3.put_object(Bucket="vbucket", Key="a/b c.txt", Body=b"virtual")
assert s3.get_object(Bucket="vbucket", Key="a/b c.txt")["Body"].read() == b"virtual"
assert [o["Key"] for o in s3.list_objects_v2(Bucket="vbucket")["Contents"]] == ["a/b c.txt"]
assert "vbucket" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
s3.delete_object(Bucket="vbucket", Key="a/b c.txt")
assert code_of(lambda: s3.head_object(Bucket="vbucket", Key="a/b c.txt")) in ("404", "NoSuchKey")
s3.delete_bucket(Bucket="vbucket")
print("s3 virtual host: all checks passed")
