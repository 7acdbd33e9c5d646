"""Lifecycle expiration through boto3 (tests/tests/s3.rs drives it).

argv: endpoint, access key, secret, bucket, path of a JSON file to write. A rule dated in the
past expires what it covers at once (objects there before and after it was put); a Days rule
gives an object its fdfs-expires; other actions answer NotImplemented. Writes {"expired": [file
IDs], "kept": [file IDs], "days": file ID} for the Rust side to look at, and prints
"s3 lifecycle: all checks passed".
"""

import json
import sys

from s3common import client, code_of

ep, key, secret, bucket, out = sys.argv[1:6]
s3 = client(ep, key, secret)




def fid(k):
    return s3.head_object(Bucket=bucket, Key=k)["ResponseMetadata"]["HTTPHeaders"]["x-rfdfs-file-id"]


s3.create_bucket(Bucket=bucket)
assert code_of(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket)) == "NoSuchLifecycleConfiguration"
for k in ["logs/a", "logs/b", "keep/c"]:
    s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
ids = {k: fid(k) for k in ["logs/a", "logs/b", "keep/c"]}
s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
    {"ID": "gone", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Date": "2020-01-01T00:00:00Z"}},
    {"ID": "later", "Filter": {"Prefix": "later/"}, "Status": "Enabled", "Expiration": {"Days": 1}},
]})
rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
assert [(r["ID"], r["Filter"]["Prefix"]) for r in rules] == [("gone", "logs/"), ("later", "later/")], rules
# what the rule covers is gone at once, before and after the rule was put
s3.put_object(Bucket=bucket, Key="logs/d", Body=b"after the rule")
for k in ["logs/a", "logs/b", "logs/d"]:
    assert code_of(lambda: s3.get_object(Bucket=bucket, Key=k)) == "NoSuchKey", k
listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
assert listed == ["keep/c"], listed
assert s3.get_object(Bucket=bucket, Key="keep/c")["Body"].read() == b"keep/c"
s3.put_object(Bucket=bucket, Key="later/e", Body=b"a day")
days = fid("later/e")
assert code_of(lambda: s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
    {"ID": "t", "Filter": {"Prefix": ""}, "Status": "Enabled", "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}]}]})) == "NotImplemented"
json.dump({"expired": [ids["logs/a"], ids["logs/b"]], "kept": [ids["keep/c"]], "days": days}, open(out, "w"))
print("s3 lifecycle: all checks passed")
