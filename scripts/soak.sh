#!/usr/bin/env bash
# Soak test (by hand): a release cluster holding 1000 mostly idle connections while 8 threads
# upload, download and delete 10 KiB files and a probe opens a new connection every second.
# Prints the daemons' RSS and thread counts every 30 s; fails if any operation or probe failed.
#
#   scripts/soak.sh [minutes] [idle connections]        (default 10 minutes, 1000 connections)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
idle=${2:-1000}
dir=/tmp/rfdfs-soak
export RFDFS_DIR=$dir RFDFS_TRACKER_IP=127.0.0.22 RFDFS_STORAGE_IP=127.0.0.23 RFDFS_MAX_CONNECTIONS=2048
# a cluster left from an interrupted run would hold the addresses
scripts/cluster.sh down >/dev/null 2>&1 || true
scripts/cluster.sh up >/dev/null
trap 'scripts/cluster.sh down >/dev/null 2>&1' EXIT
sample() {
    for d in tracker storage; do
        pid=$(cat "$dir/$d/data/fdfs_${d}d.pid")
        awk -v d="$d" '/^VmRSS|^Threads/ {printf "%s %s %s %s  ", d, $1, $2, $3}' "/proc/$pid/status"
    done
    echo
}
echo "start:  $(sample)"
target/release/rfdfs_bench "$dir/etc/client.conf" soak $((minutes * 60)) "$idle" 127.0.0.23:23000 &
bench=$!
while kill -0 $bench 2>/dev/null; do
    sleep 30
    kill -0 $bench 2>/dev/null && echo "$(date +%T): $(sample)"
done
wait $bench
status=$?
echo "end:    $(sample)"
exit $status
