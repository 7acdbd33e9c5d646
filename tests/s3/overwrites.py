"""Overwrites from many clients at once leave one file a key (tests/tests/s3.rs drives it):
8 threads write 16 keys 50 times each, then, once the storage has deleted what the
overwrites made older (after its answers), the group's own bucket, which lists every file
the group holds, holds the bucket's file and one file a key: the one each key reads as.
argv: endpoint, access key, secret. Prints "s3 overwrites: all checks passed"."""

import sys
import threading
import time

from s3common import client

ep, key, secret = sys.argv[1:4]
THREADS, KEYS, ROUNDS = 8, 16, 50
client(ep, key, secret).create_bucket(Bucket="over")
failures = []


def writer(t):
    s3 = client(ep, key, secret)
    try:
        for r in range(ROUNDS):
            k = (t * 7 + r) % KEYS
            s3.put_object(Bucket="over", Key="key %d" % k, Body=b"thread %d round %d" % (t, r))
    except Exception as e:  # noqa: BLE001 - any failure fails the script below
        failures.append(repr(e))


threads = [threading.Thread(target=writer, args=(t,)) for t in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert not failures, failures

s3 = client(ep, key, secret)


def group_files():
    names = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="group1"):
        names += [o["Key"] for o in page.get("Contents", [])]
    return names


deadline = time.time() + 30
while True:
    files = group_files()
    if len(files) == KEYS + 1:
        break
    if time.time() > deadline:
        raise AssertionError("%d files for %d keys and the bucket, 30 s after the last write" % (len(files), KEYS))
    time.sleep(0.2)
for k in range(KEYS):
    head = s3.head_object(Bucket="over", Key="key %d" % k)
    file_id = head["ResponseMetadata"]["HTTPHeaders"]["x-rfdfs-file-id"]
    assert file_id[len("group1/"):] in files, (k, file_id, files)
    body = s3.get_object(Bucket="over", Key="key %d" % k)["Body"].read()
    assert body.startswith(b"thread "), body
print("s3 overwrites: all checks passed")
