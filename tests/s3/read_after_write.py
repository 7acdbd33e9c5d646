"""Read-after-write and list-after-write across members (tests/tests/s3.rs drives it, with
write_ack_copies = 2): each write on one member is read and listed at once on the other,
overwrites and deletes included. argv: endpoint A, endpoint B, access key, secret. Prints
"s3 read after write: all checks passed"."""

import sys

from s3common import client, code_of

ep_a, ep_b, key, secret = sys.argv[1:5]
a, b = client(ep_a, key, secret), client(ep_b, key, secret)
a.create_bucket(Bucket="raw")
assert b.head_bucket(Bucket="raw")["ResponseMetadata"]["HTTPStatusCode"] == 200
for i in range(40):
    w, r = (a, b) if i % 2 == 0 else (b, a)
    body = b"version %d" % i
    w.put_object(Bucket="raw", Key="same key", Body=body)
    assert r.get_object(Bucket="raw", Key="same key")["Body"].read() == body, i
    w.put_object(Bucket="raw", Key="new/%d" % i, Body=body)
    listed = [o["Key"] for o in r.list_objects_v2(Bucket="raw", Prefix="new/").get("Contents", [])]
    assert "new/%d" % i in listed, (i, listed)
    w.delete_object(Bucket="raw", Key="new/%d" % i)
    assert code_of(lambda: r.head_object(Bucket="raw", Key="new/%d" % i)) in ("404", "NoSuchKey"), i
print("s3 read after write: all checks passed")
