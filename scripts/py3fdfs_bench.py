"""Time py3fdfs itself, one operation at a time, as an application using it would.

Usage: python py3fdfs_bench.py <tracker_ip> <tracker_port> <size> <seconds>
Prints one line per operation: ops/s and per-operation latency (p50, p99).
Run by scripts/bench.sh with the virtualenv that scripts/test.sh creates.
"""
import sys
import time

from fdfs_client.client import Fdfs_client


def timed(label, size, seconds, op):
    lat = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        op()
        lat.append(time.perf_counter() - t)
    lat.sort()
    n = len(lat)
    print(f"py3fdfs {label:<8} {size:>9} B x  1 threads: {n / (time.perf_counter() - start):9.0f} ops/s"
          f"  p50 {lat[n // 2] * 1e3:.2f} ms  p99 {lat[n * 99 // 100] * 1e3:.2f} ms  ({n} ops)")


def main():
    ip, port, size, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    c = Fdfs_client({"host_tuple": (ip,), "port": port, "timeout": 30, "name": "Tracker Pool"})
    data = bytes((i * 31) % 251 for i in range(size))
    ids = []

    def upload():
        r = c.upload_by_buffer(data, "bin")
        if r.get("Status") != "Upload successed.":
            raise SystemExit(f"upload failed: {r}")
        ids.append(r["Remote file_id"])

    timed("upload", size, seconds, upload)
    k = [0]

    def download():
        file_id = ids[k[0] % len(ids)]
        k[0] += 1
        r = c.download_to_buffer(file_id)
        if len(r["Content"]) != size:
            raise SystemExit(f"download of {file_id} returned {len(r['Content'])} bytes")

    timed("download", size, seconds, download)
    for file_id in ids:
        c.delete_file(file_id)


if __name__ == "__main__":
    main()
