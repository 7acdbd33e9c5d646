"""A bucket of keys through boto3 (tests/tests/s3.rs drives it).

argv: endpoint of the member written to, endpoint of another member, a JSON file
{"admin": [key, secret], "bucket": name, "out": path}. Creates the bucket, writes objects of
0 B, 2 KiB, 5 MiB and 20 MiB (the last by the transfer manager's multipart upload) under keys
with spaces, `&+-é"` and a 1,000-key prefix; with metadata, content types, checksums (CRC32
trailers, as boto3 sends by default), presigned PUT; reads them back from both members (whole,
ranges, download_file, presigned GET by curl), lists them (paginators, delimiters, v1 markers),
overwrites, copies, runs a multipart upload by hand (UploadPart, UploadPartCopy, ListParts,
ListMultipartUploads, Complete; another aborted), deletes (one, many), refuses what must be
refused, and writes to "out" the keys left with their SHA-256 and FastDFS file ID. Prints
"s3 named bucket: all checks passed" at the end; any failed check raises.
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

from s3common import client, code_of

ep_write, ep_other, spec_path = sys.argv[1], sys.argv[2], sys.argv[3]
spec = json.load(open(spec_path))
bucket = spec["bucket"]


s3 = client(ep_write, *spec["admin"])
other = client(ep_other, *spec["admin"])




def sha(b):
    return hashlib.sha256(b).hexdigest()


def content(n, seed):
    block = hashlib.sha256(b"%d" % seed).digest() * 2048
    return (block * (n // len(block) + 1))[:n]


def eventually(check, what):
    """`check` passing within 10 s: on the other member (reads there wait for sync unless
    write_ack_copies counts it), or after what a storage does once it has answered."""
    deadline = time.time() + 10
    while True:
        try:
            if check():
                return
        except ClientError:
            pass
        if time.time() > deadline:
            raise AssertionError("not seen in time: %s" % what)
        time.sleep(0.1)


# the bucket
assert code_of(lambda: s3.head_bucket(Bucket=bucket)) in ("404", "NoSuchBucket")
s3.create_bucket(Bucket=bucket)
assert code_of(lambda: s3.create_bucket(Bucket=bucket)) == "BucketAlreadyOwnedByYou"
assert code_of(lambda: s3.create_bucket(Bucket="Bad_Name")) == "InvalidBucketName"
assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
eventually(lambda: bucket in [b["Name"] for b in other.list_buckets()["Buckets"]], "the bucket")

objects = {}
keys = {
    "empty": b"",
    "small 2k.txt": content(2048, 1),
    'odd &+-é" name.bin': content(3000, 2),
    "dir/five.bin": content(5 << 20, 3),
}
for k, data in keys.items():
    r = s3.put_object(Bucket=bucket, Key=k, Body=data, Metadata={"seed": "x"}, ContentType="application/x-test")
    assert r["ETag"] == '"%s"' % hashlib.md5(data).hexdigest(), (k, r["ETag"])
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-rfdfs-file-id"].startswith("group1/M00/")
    objects[k] = data
# the transfer manager: multipart above its 8 MiB threshold
big = content(20 << 20, 4)
with tempfile.TemporaryDirectory() as d:
    p = os.path.join(d, "big")
    open(p, "wb").write(big)
    s3.upload_file(p, bucket, "dir/big twenty.bin")
    objects["dir/big twenty.bin"] = big
    h = s3.head_object(Bucket=bucket, Key="dir/big twenty.bin")
    assert h["ContentLength"] == len(big) and h["ETag"].endswith('-3"'), h["ETag"]
    q = os.path.join(d, "back")
    other_got = False
    s3.download_file(bucket, "dir/big twenty.bin", q)
    assert open(q, "rb").read() == big
# a 1,000-key prefix
for i in range(1000):
    k = "many/%04d" % i
    s3.put_object(Bucket=bucket, Key=k, Body=b"%d" % i)
    objects[k] = b"%d" % i

# reads, on both members
for k, data in objects.items():
    r = s3.get_object(Bucket=bucket, Key=k)
    assert r["Body"].read() == data, k
    if k in keys:
        assert r["Metadata"] == {"seed": "x"}, r["Metadata"]
        assert r["ContentType"] == "application/x-test", r["ContentType"]
for k in [k for k in objects if not k.startswith("many/")] + ["many/0999"]:
    eventually(lambda: other.get_object(Bucket=bucket, Key=k)["Body"].read() == objects[k], k)
part = s3.get_object(Bucket=bucket, Key="dir/five.bin", Range="bytes=1000-1999")["Body"].read()
assert part == objects["dir/five.bin"][1000:2000]
url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": 'odd &+-é" name.bin'}, ExpiresIn=300)
assert subprocess.run(["curl", "-sf", url], capture_output=True, check=True).stdout == objects['odd &+-é" name.bin']
# a presigned PUT by curl
url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "presigned put"}, ExpiresIn=300)
subprocess.run(["curl", "-sf", "-X", "PUT", "--data-binary", "by curl", url], check=True)
assert s3.get_object(Bucket=bucket, Key="presigned put")["Body"].read() == b"by curl"
objects["presigned put"] = b"by curl"

# listings: paginators, delimiters, v1
listed = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 333}):
    listed += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
assert listed == sorted((k, len(v)) for k, v in objects.items()), listed[:5]
r = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["dir/", "many/"], r.get("CommonPrefixes")
assert sorted(o["Key"] for o in r["Contents"]) == sorted(k for k in objects if "/" not in k)
many = []
for page in s3.get_paginator("list_objects").paginate(Bucket=bucket, Prefix="many/", PaginationConfig={"PageSize": 100}):
    many += [o["Key"] for o in page["Contents"]]
assert many == ["many/%04d" % i for i in range(1000)], len(many)
enc = s3.list_objects_v2(Bucket=bucket, Prefix="odd", EncodingType="url")
# asked for by the caller, the encoding is left to it to undo
assert [o["Key"] for o in enc["Contents"]] == ["odd%20%26%2B-%C3%A9%22%20name.bin"], enc["Contents"]
etags = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="small")["Contents"]}
assert etags["small 2k.txt"] == '"%s"' % hashlib.md5(objects["small 2k.txt"]).hexdigest()

# overwrite: the new bytes, on both members; the old file gone
old_id = s3.head_object(Bucket=bucket, Key="small 2k.txt")["ResponseMetadata"]["HTTPHeaders"]["x-rfdfs-file-id"]
s3.put_object(Bucket=bucket, Key="small 2k.txt", Body=b"overwritten")
objects["small 2k.txt"] = b"overwritten"
assert s3.get_object(Bucket=bucket, Key="small 2k.txt")["Body"].read() == b"overwritten"
eventually(lambda: other.get_object(Bucket=bucket, Key="small 2k.txt")["Body"].read() == b"overwritten", "overwrite")
# the overwritten file is deleted after the answer (storage/src/s3/retire.rs), on both members
for member in (s3, other):
    eventually(lambda: code_of(lambda: member.get_object(Bucket="group1", Key=old_id[len("group1/"):])) == "NoSuchKey",
               "the overwritten file deleted")

# copy (metadata kept), and a copy with its metadata replaced
s3.copy_object(Bucket=bucket, Key="copy of odd", CopySource={"Bucket": bucket, "Key": 'odd &+-é" name.bin'})
c = s3.get_object(Bucket=bucket, Key="copy of odd")
assert c["Body"].read() == objects['odd &+-é" name.bin'] and c["Metadata"] == {"seed": "x"}
objects["copy of odd"] = objects['odd &+-é" name.bin']
s3.copy_object(Bucket=bucket, Key="copy2", CopySource={"Bucket": bucket, "Key": "empty"},
               MetadataDirective="REPLACE", Metadata={"new": "1"})
assert s3.head_object(Bucket=bucket, Key="copy2")["Metadata"] == {"new": "1"}
objects["copy2"] = b""

# a multipart upload by hand: a part sent, a part copied, listed, completed
up = s3.create_multipart_upload(Bucket=bucket, Key="by hand", Metadata={"how": "parts"})
p1 = content(5 << 20, 5)
e1 = s3.upload_part(Bucket=bucket, Key="by hand", UploadId=up["UploadId"], PartNumber=1, Body=p1)["ETag"]
e2 = s3.upload_part_copy(Bucket=bucket, Key="by hand", UploadId=up["UploadId"], PartNumber=2,
                         CopySource={"Bucket": bucket, "Key": "dir/five.bin"}, CopySourceRange="bytes=0-99")["CopyPartResult"]["ETag"]
parts = s3.list_parts(Bucket=bucket, Key="by hand", UploadId=up["UploadId"])["Parts"]
assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 5 << 20), (2, 100)], parts
ups = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
assert [u["UploadId"] for u in ups] == [up["UploadId"]], ups
assert code_of(lambda: s3.complete_multipart_upload(
    Bucket=bucket, Key="by hand", UploadId=up["UploadId"],
    MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})) == "InvalidPartOrder"
assert code_of(lambda: s3.get_object(Bucket=bucket, Key="by hand")) == "NoSuchKey"
s3.complete_multipart_upload(Bucket=bucket, Key="by hand", UploadId=up["UploadId"],
                             MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
whole = p1 + objects["dir/five.bin"][:100]
g = s3.get_object(Bucket=bucket, Key="by hand")
assert g["Body"].read() == whole and g["Metadata"] == {"how": "parts"}
objects["by hand"] = whole
ab = s3.create_multipart_upload(Bucket=bucket, Key="aborted")
s3.upload_part(Bucket=bucket, Key="aborted", UploadId=ab["UploadId"], PartNumber=1, Body=b"x")
s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=ab["UploadId"])
assert code_of(lambda: s3.list_parts(Bucket=bucket, Key="aborted", UploadId=ab["UploadId"])) == "NoSuchUpload"
assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)

# checks refused: a wrong Content-MD5, a wrong CRC32
assert code_of(lambda: s3.put_object(Bucket=bucket, Key="bad md5", Body=b"abc", ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg==")) == "BadDigest"
assert code_of(lambda: s3.put_object(Bucket=bucket, Key="bad crc", Body=b"abc", ChecksumCRC32="AAAAAA==")) == "BadDigest"
assert code_of(lambda: s3.get_object(Bucket=bucket, Key="bad md5")) == "NoSuchKey"
assert code_of(lambda: s3.put_object(Bucket="group1", Key="x", Body=b"x")) == "InvalidRequest"

# deletes: one, and many; a bucket with objects is not deleted
s3.delete_object(Bucket=bucket, Key="copy2")
del objects["copy2"]
gone = ["many/%04d" % i for i in range(0, 1000, 2)]
r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in gone]})
assert len(r["Deleted"]) == 500, r.get("Errors")
for k in gone:
    del objects[k]
assert code_of(lambda: s3.delete_bucket(Bucket=bucket)) == "BucketNotEmpty"
left = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
    left += [o["Key"] for o in page.get("Contents", [])]
assert left == sorted(objects), (len(left), len(objects))
eventually(lambda: code_of(lambda: other.head_object(Bucket=bucket, Key="many/0000")) in ("404", "NoSuchKey"), "delete")

# an empty bucket is deleted
s3.create_bucket(Bucket=bucket + "-tmp")
s3.delete_bucket(Bucket=bucket + "-tmp")
assert code_of(lambda: s3.head_bucket(Bucket=bucket + "-tmp")) in ("404", "NoSuchBucket")

out = {}
for k, data in objects.items():
    fid = s3.head_object(Bucket=bucket, Key=k)["ResponseMetadata"]["HTTPHeaders"]["x-rfdfs-file-id"]
    out[k] = {"sha256": sha(data), "file_id": fid, "size": len(data)}
json.dump(out, open(spec["out"], "w"))
print("s3 named bucket: all checks passed")
