#!/usr/bin/env bash
# The listing index at scale (docs/listing.md): a storage whose binlog names FILES files (made
# up here: binlog lines with well-formed file IDs, no file content, as the index reads only the
# binlog), started with no index, so that it builds one; then
#   build       seconds from the start until "listing index built from the binlog"
#   list        fdfs_list_files of the whole group: seconds, entries per second
#   count       fdfs_list_files --count: seconds
#   rss         the storage's VmRSS after the build and VmHWM (peak) after the listings
#
#   scripts/listing-bench.sh [FILES]        (default 1000000; release build)
# Environment: NET, the first three parts of the daemons' addresses (default 127.0.0;
# tracker NET.81, storage NET.82); WORK, a directory (default: a fresh temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${1:-1000000}
NET=${NET:-127.0.0}
WORK=${WORK:-$(mktemp -d /tmp/rfdfs-listing.XXXXXX)}
cargo build --release --workspace --bins -q
bin=$PWD/target/release
mkdir -p "$WORK/tracker" "$WORK/storage/data/sync"
cat >"$WORK/tracker/tracker.conf" <<CONF
bind_addr=$NET.81
port=22122
base_path=$WORK/tracker
CONF
cat >"$WORK/storage/storage.conf" <<CONF
group_name=group1
bind_addr=$NET.82
port=23000
base_path=$WORK/storage
store_path0=$WORK/storage
subdir_count_per_path=16
tracker_server=$NET.81:22122
CONF
printf 'tracker_server=%s.81:22122\n' "$NET" >"$WORK/client.conf"

# FILES create lines with file IDs as a storage at $NET.82 names them
python3 - "$FILES" "$NET" >"$WORK/storage/data/sync/binlog.000" <<'PY'
import base64, struct, sys, random
n, net = int(sys.argv[1]), sys.argv[2]
ip = bytes(int(x) for x in (net + ".82").split("."))
rnd = random.Random(32)
out = sys.stdout
t0 = 1_790_000_000
for k in range(n):
    ts = t0 + k // 100
    size = rnd.randrange(1, 1 << 20)
    field = ((0x80000000 | rnd.getrandbits(23)) << 32) | size
    payload = ip + struct.pack(">IQI", ts, field, rnd.getrandbits(32))
    b64 = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    name = "M00/%02X/%02X/%s%03d.txt" % (rnd.randrange(16), rnd.randrange(16), b64, rnd.randrange(1000))
    out.write("%d C %s\n" % (ts, name))
PY
printf 'current_write=0\ncurrent_compress=0\n' >"$WORK/storage/data/sync/binlog_index.dat"
echo "binlog: $FILES lines, $(du -h "$WORK/storage/data/sync/binlog.000" | cut -f1)"

"$bin/fdfs_trackerd" "$WORK/tracker/tracker.conf"
start=$(date +%s.%N)
"$bin/fdfs_storaged" "$WORK/storage/storage.conf"
spid=$(cat "$WORK/storage/data/fdfs_storaged.pid")
trap '"$bin/fdfs_storaged" "$WORK/storage/storage.conf" stop >/dev/null 2>&1; "$bin/fdfs_trackerd" "$WORK/tracker/tracker.conf" stop >/dev/null 2>&1' EXIT
until grep -q "listing index built from the binlog" "$WORK/storage/logs/storaged.log" 2>/dev/null; do
    sleep 0.2
done
built=$(date +%s.%N)
echo "build: $(echo "$built - $start" | bc) s (from the storage's start)"
echo "rss after the build: $(grep VmRSS /proc/$spid/status | awk '{print $2/1024 " MiB"}')"
until "$bin/fdfs_monitor" "$WORK/client.conf" 2>/dev/null | grep -q ACTIVE; do sleep 0.2; done
t1=$(date +%s.%N)
listed=$("$bin/fdfs_list_files" "$WORK/client.conf" group1 | wc -l)
t2=$(date +%s.%N)
echo "list: $listed files in $(echo "$t2 - $t1" | bc) s, $(echo "$listed / ($t2 - $t1)" | bc) per second"
t3=$(date +%s.%N)
count=$("$bin/fdfs_list_files" "$WORK/client.conf" group1 --count)
t4=$(date +%s.%N)
echo "count: $count in $(echo "$t4 - $t3" | bc) s"
echo "storage peak rss (VmHWM): $(grep VmHWM /proc/$spid/status | awk '{print $2/1024 " MiB"}')"
echo "work dir: $WORK"
