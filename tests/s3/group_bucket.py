"""The group as a bucket, through boto3 (tests/tests/s3.rs drives it).

argv: endpoint URL, a JSON file {"bucket": ..., "objects": {key: {"sha256": ..., "size": n,
"meta": {...}}}, "admin": [key, secret], "reader": [key, secret], "delete": [keys]}.
Checks listings (v1, v2, delimiter, pages), reads (whole, ranges, the transfer manager's
download_file, a presigned URL fetched by curl), heads, errors and rights, then deletes the keys
named in "delete" (one by delete_object, the rest by delete_objects) and checks they are gone
from listings. Prints "s3 group bucket: all checks passed" at the end; any failed check raises.
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile

from s3common import client, code_of

endpoint, spec_path = sys.argv[1], sys.argv[2]
spec = json.load(open(spec_path))
bucket = spec["bucket"]
objects = spec["objects"]


s3 = client(endpoint, *spec["admin"])
reader = client(endpoint, *spec["reader"])




def sha(b):
    return hashlib.sha256(b).hexdigest()


# ListBuckets: the group is there
names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
assert bucket in names, names

# ListObjectsV2 through the paginator, two keys a page: every key once, in order
keys = []
for page in s3.get_paginator("list_objects_v2").paginate(
    Bucket=bucket, Prefix="M00/", PaginationConfig={"PageSize": 2}
):
    for o in page.get("Contents", []):
        keys.append(o["Key"])
        want = objects.get(o["Key"])
        assert want is not None, "listed a key not uploaded: %s" % o["Key"]
        assert o["Size"] == want["size"], (o, want)
assert keys == sorted(objects), (keys, sorted(objects))

# v1 with markers, and url encoding asked for
keys1, marker = [], ""
while True:
    r = s3.list_objects(Bucket=bucket, Prefix="M00/", MaxKeys=3, Marker=marker)
    keys1 += [o["Key"] for o in r.get("Contents", [])]
    if not r["IsTruncated"]:
        break
    marker = r.get("NextMarker") or r["Contents"][-1]["Key"]
assert keys1 == keys, keys1

# a delimiter rolls the keys into their directories
r = s3.list_objects_v2(Bucket=bucket, Prefix="M00/", Delimiter="/")
assert "Contents" not in r, r.get("Contents")
assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["M00/%s/" % d for d in sorted({k[4:6] for k in keys})], r
dirs = sorted({k.rsplit("/", 1)[0] + "/" for k in keys})
got = []
for page in s3.get_paginator("list_objects_v2").paginate(
    Bucket=bucket, Prefix="M00/", Delimiter="/", PaginationConfig={"PageSize": 1}
):
    got += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
assert got == sorted({"M00/%s/" % k[4:6] for k in keys}), got
r = s3.list_objects_v2(Bucket=bucket, Prefix=dirs[0], Delimiter="/")
assert [o["Key"] for o in r["Contents"]] == [k for k in keys if k.startswith(dirs[0])], r
assert s3.list_object_versions(Bucket=bucket, Prefix="M00/")["Versions"][0]["VersionId"] == "null"

# reads: every object whole, its file ID named; ranges; metadata
for key, want in objects.items():
    r = s3.get_object(Bucket=bucket, Key=key)
    body = r["Body"].read()
    assert sha(body) == want["sha256"], key
    headers = r["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-rfdfs-file-id"] == "%s/%s" % (bucket, key), headers
    assert r["Metadata"] == want.get("meta", {}), (key, r["Metadata"])
    h = s3.head_object(Bucket=bucket, Key=key)
    assert h["ContentLength"] == want["size"] and h["ETag"] == r["ETag"], (h, r)
    if want["size"] >= 100:
        part = s3.get_object(Bucket=bucket, Key=key, Range="bytes=10-99")
        assert part["ContentRange"] == "bytes 10-99/%d" % want["size"], part["ContentRange"]
        assert part["Body"].read() == body[10:100]
        tail = s3.get_object(Bucket=bucket, Key=key, Range="bytes=-7")["Body"].read()
        assert tail == body[-7:]
    assert code_of(lambda: s3.get_object(Bucket=bucket, Key=key, IfNoneMatch=r["ETag"])) in ("304", "NotModified")
    assert code_of(lambda: s3.get_object(Bucket=bucket, Key=key, IfMatch='"0"')) == "PreconditionFailed"

# the transfer manager's download (ranged parts above its 8 MiB threshold)
big = max(objects, key=lambda k: objects[k]["size"])
with tempfile.TemporaryDirectory() as d:
    p = os.path.join(d, "big")
    s3.download_file(bucket, big, p)
    assert sha(open(p, "rb").read()) == objects[big]["sha256"]

# a presigned GET fetched by curl
url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": big}, ExpiresIn=300)
out = subprocess.run(["curl", "-sf", url], capture_output=True, check=True).stdout
assert sha(out) == objects[big]["sha256"]
bad = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
assert subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", bad], capture_output=True).stdout == b"403"

# errors and rights
some = sorted(objects)[0]
assert code_of(lambda: s3.get_object(Bucket=bucket, Key="M00/00/00/nothere.txt")) == "NoSuchKey"
assert code_of(lambda: s3.get_object(Bucket=bucket, Key="no such key")) == "NoSuchKey"
assert code_of(lambda: s3.list_objects_v2(Bucket="group9")) == "NoSuchBucket"
assert code_of(lambda: s3.get_bucket_tagging(Bucket=bucket)) == "NotImplemented"
wrong = client(endpoint, spec["admin"][0], "not the secret")
assert code_of(lambda: wrong.list_buckets()) == "SignatureDoesNotMatch"
nobody = client(endpoint, "NOSUCHKEY", "x")
assert code_of(lambda: nobody.list_buckets()) == "InvalidAccessKeyId"
assert reader.get_object(Bucket=bucket, Key=some)["Body"].read() is not None
assert code_of(lambda: reader.delete_object(Bucket=bucket, Key=some)) == "AccessDenied"

# deletes: one alone, the rest in one request; then gone from listings and reads
gone = spec["delete"]
if gone:
    s3.delete_object(Bucket=bucket, Key=gone[0])
    if len(gone) > 1:
        r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in gone[1:]]})
        assert sorted(d["Key"] for d in r["Deleted"]) == sorted(gone[1:]), r
        assert not r.get("Errors"), r
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="M00/")["Contents"]]
    assert left == [k for k in keys if k not in gone], left
    for k in gone:
        assert code_of(lambda: s3.head_object(Bucket=bucket, Key=k)) in ("404", "NoSuchKey")
    # deleting what is gone is no error
    s3.delete_object(Bucket=bucket, Key=gone[0])

print("s3 group bucket: all checks passed")
