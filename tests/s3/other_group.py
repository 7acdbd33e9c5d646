"""Another group's bucket asked of this group's storage (tests/tests/s3.rs drives it): boto3
lists, reads and deletes group2's files through group1's storage; a bucket of keys made
through group2's storage is group2's alone. argv: endpoint of group1's storage, endpoint of
group2's storage, access key, secret, a file ID of group2. Prints "s3 other group: all checks
passed"."""

import sys

from s3common import client, code_of

ep1, ep2, key, secret, fid = sys.argv[1:6]
s1, s2 = client(ep1, key, secret), client(ep2, key, secret)
name = fid[len("group2/"):]
# the group's own bucket of the other group, through this group's storage
keys = [o["Key"] for o in s1.list_objects_v2(Bucket="group2", Prefix="M00/")["Contents"]]
assert name in keys, keys
assert s1.get_object(Bucket="group2", Key=name)["Body"].read() == b"in group2"
assert s1.head_object(Bucket="group2", Key=name)["ResponseMetadata"]["HTTPHeaders"]["x-rfdfs-file-id"] == fid
big = bytes(range(256)) * (6 * 4096)
assert code_of(lambda: s1.put_object(Bucket="group2", Key="k", Body=b"x")) == "InvalidRequest"
# a request with a body (DeleteObjects), passed on
r = s1.delete_objects(Bucket="group2", Delete={"Objects": [{"Key": name}]})
assert [d["Key"] for d in r["Deleted"]] == [name], r
assert code_of(lambda: s2.head_object(Bucket="group2", Key=name)) in ("404", "NoSuchKey")
# a bucket of keys lives where it was made: group2's, served by group2's storages
s2.create_bucket(Bucket="twobucket")
s2.put_object(Bucket="twobucket", Key="big", Body=big)
assert s2.get_object(Bucket="twobucket", Key="big")["Body"].read() == big
assert code_of(lambda: s1.head_bucket(Bucket="twobucket")) in ("404", "NoSuchBucket")
assert code_of(lambda: s1.list_objects_v2(Bucket="group9")) == "NoSuchBucket"
print("s3 other group: all checks passed")
