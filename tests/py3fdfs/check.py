"""Drive an rfdfs cluster with the PyPI client py3fdfs and check the bytes.

Usage: python check.py <tracker_ip> <tracker_port>
Exits non-zero (with a message) on the first mismatch.
"""
import sys

from fdfs_client.client import Fdfs_client


def client(ip, port):
    # a fresh client per step: py3fdfs puts failed connections back into its pool
    return Fdfs_client({"host_tuple": (ip,), "port": port, "timeout": 30, "name": "Tracker Pool"})


def upload_slave(c, master_id, prefix, ext, data):
    """Slave upload through py3fdfs's own request packing, sending and reply parsing.

    py3fdfs 2.2.0's public slave helpers cannot work under Python 3: upload_slave_by_buffer
    sends no master name (every server answers EINVAL), and the by_file/by_filename variants
    pass the ext name through str() into struct.pack('s'), which raises before anything is
    sent. So call its upload routine with the arguments the wrapper should pass, with str()
    kept from turning bytes into text for this one call.
    """
    import builtins

    from fdfs_client import storage_client as sc
    from fdfs_client.fdfs_protol import STORAGE_PROTO_CMD_UPLOAD_SLAVE_FILE
    from fdfs_client.tracker_client import Tracker_client

    group, remote = master_id.split(b"/", 1)
    tc = Tracker_client(c.tracker_pool)
    serv = tc.tracker_query_storage_update(group, remote)
    st = sc.Storage_client(serv.ip_addr, serv.port, 30)
    sc.str = lambda x: x if isinstance(x, bytes) else builtins.str(x)
    try:
        r = st._storage_do_upload_file(
            tc, serv, data, len(data), sc.FDFS_UPLOAD_BY_BUFFER, None,
            STORAGE_PROTO_CMD_UPLOAD_SLAVE_FILE, remote, prefix, ext)
    finally:
        del sc.str
    return r["Remote file_id"]


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)


def main():
    ip, port = sys.argv[1], int(sys.argv[2])
    c = client(ip, port)

    data = b"uploaded by py3fdfs\n" * 100
    r = c.upload_by_buffer(data, "txt")
    check(r and r["Status"] == "Upload successed.", "upload_by_buffer")
    # py3fdfs hands out and takes file ids as bytes
    fid = r["Remote file_id"]
    check(fid.startswith(b"group1/M00/") and fid.endswith(b".txt") and len(fid) == 51, "file id shape %r" % fid)
    d = client(ip, port).download_to_buffer(fid)
    check(d["Content"] == data, "download_to_buffer bytes")

    a = client(ip, port).upload_appender_by_buffer(b"appender-start", "log")
    aid = a["Remote file_id"]
    check(a["Status"] == "Upload successed.", "upload_appender_by_buffer")
    client(ip, port).append_by_buffer(b"+appended", aid)
    check(client(ip, port).download_to_buffer(aid)["Content"] == b"appender-start+appended", "append_by_buffer")
    # py3fdfs sends every non-zero modify offset as 0 (its own bug), so modify at 0
    client(ip, port).modify_by_buffer(b"APP", aid, 0)
    check(client(ip, port).download_to_buffer(aid)["Content"] == b"APPender-start+appended", "modify_by_buffer")
    client(ip, port).truncate_file(8, aid)
    check(client(ip, port).download_to_buffer(aid)["Content"] == b"APPender", "truncate_file")

    sid = upload_slave(client(ip, port), fid, b"_s", b"txt", b"slave bytes")
    check(sid == fid[:-4] + b"_s.txt", "slave upload id %r" % sid)
    check(client(ip, port).download_to_buffer(sid)["Content"] == b"slave bytes", "slave bytes")

    for f in (fid, aid, sid):
        r = client(ip, port).delete_file(f)
        check(r[0] == "Delete file successed.", "delete_file %r" % f)
    try:
        client(ip, port).download_to_buffer(fid)
        failed = False
    except Exception as e:  # the client raises on a non-zero status
        print("download after delete:", e)
        failed = True
    check(failed, "download after delete fails")
    print("py3fdfs: all checks passed")


if __name__ == "__main__":
    main()
