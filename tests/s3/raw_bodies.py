"""Request bodies the S3 endpoint must check before it acts (tests/tests/s3.rs drives it):
DeleteObjects documents sent as `aws-chunked` with a CRC32 trailer (as boto3 >= 1.36 streams
bodies), signed by botocore's own signer, over a raw connection.

argv: host, port, access key, secret, bucket, a key to delete with a wrong trailer (it must
stay), a key to delete with a right one (it must go). Prints "s3 raw bodies: all checks
passed"; any failed check raises.
"""

import base64
import http.client
import sys
import time
import zlib

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

host, port, key, secret, bucket, keep, remove = sys.argv[1:8]
creds = Credentials(key, secret)


def document(k):
    return ('<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            "<Object><Key>%s</Key></Object></Delete>" % k).encode()


def chunked(data, crc_of):
    crc = base64.b64encode(zlib.crc32(crc_of).to_bytes(4, "big")).decode()
    return b"%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:%s\r\n\r\n" % (len(data), data, crc.encode())


def send(method, path, body, headers, sign=True, trailer=False):
    url = "http://%s:%s%s" % (host, port, path)
    req = AWSRequest(method=method, url=url, data=body, headers=headers)
    if trailer:
        req.context["checksum"] = {
            "request_algorithm": {"in": "trailer", "algorithm": "crc32", "name": "x-amz-checksum-crc32"}
        }
    if sign:
        S3SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request(method, path, body=body, headers=dict(req.headers.items()))
    r = conn.getresponse()
    out = (r.status, r.read().decode())
    conn.close()
    return out


# unsigned: refused, with S3's error document
status, body = send("GET", "/%s?list-type=2" % bucket, b"", {}, sign=False)
assert status == 403 and "<Code>AccessDenied</Code>" in body, (status, body)

# aws-chunked with a CRC32 trailer that does not match: BadDigest, nothing deleted
doc = document(keep)
hdr = {
    "Content-Encoding": "aws-chunked",
    "x-amz-trailer": "x-amz-checksum-crc32",
    "x-amz-decoded-content-length": str(len(doc)),
}
status, body = send("POST", "/%s?delete" % bucket, chunked(doc, b"not the document"), dict(hdr), trailer=True)
assert status == 400 and "<Code>BadDigest</Code>" in body, (status, body)

# framing that is not aws-chunked: refused before anything is done
status, body = send("POST", "/%s?delete" % bucket, b"zz\r\n" + doc, dict(hdr), trailer=True)
assert status == 400 and "<Code>InvalidRequest</Code>" in body, (status, body)

# the right trailer: deleted
doc = document(remove)
hdr["x-amz-decoded-content-length"] = str(len(doc))
status, body = send("POST", "/%s?delete" % bucket, chunked(doc, doc), dict(hdr), trailer=True)
assert status == 200 and "<Deleted><Key>%s</Key></Deleted>" % remove in body, (status, body)

# a request this endpoint does not serve: 501 with the error document
status, body = send("GET", "/%s?tagging" % bucket, b"", {})
assert status == 501 and "<Code>NotImplemented</Code>" in body, (status, body)

# two writes of one key: the one begun later wins even when it finishes first (a slow PUT
# sends half its body, a quick PUT of the same key completes, the slow one then finishes)
status, body = send("PUT", "/racing", b"", {})
assert status == 200, (status, body)
slow = b"s" * 100000
req = AWSRequest(method="PUT", url="http://%s:%s/racing/key" % (host, port), data=slow,
                 headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
S3SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
conn = http.client.HTTPConnection(host, int(port), timeout=30)
conn.putrequest("PUT", "/racing/key", skip_accept_encoding=True)
for k, v in req.headers.items():
    if k.lower() != "host":
        conn.putheader(k, v)
conn.putheader("Content-Length", str(len(slow)))
conn.endheaders()
conn.send(slow[:50000])
time.sleep(1.1)  # the quick write must be written later, by the clock the storage keeps
status, body = send("PUT", "/racing/key", b"quick", {})
assert status == 200, (status, body)
conn.send(slow[50000:])
r = conn.getresponse()
assert r.status == 200, (r.status, r.read())
r.read()
status, body = send("GET", "/racing/key", b"", {})
assert (status, body) == (200, "quick"), (status, body[:100])
status, body = send("GET", "/racing?list-type=2", b"", {})
assert body.count("<Key>") == 1, body

print("s3 raw bodies: all checks passed")
