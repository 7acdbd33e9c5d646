#!/usr/bin/env bash
# Soak test (by hand): a release cluster, started as systemd starts services (soft open files
# limit 1024, max_connections 4096), holding idle pooled connections to the tracker and to the
# storage while 8 threads upload, download and delete 10 KiB files and a probe opens a new
# connection every second. Prints the daemons' RSS, thread counts and open files limits every
# 30 s; fails if any operation or probe failed.
#
#   scripts/soak.sh [minutes] [idle connections per daemon]     (default 10 minutes, 3000)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
idle=${2:-3000}
dir=/tmp/rfdfs-soak
export RFDFS_DIR=$dir RFDFS_TRACKER_IP=127.0.0.22 RFDFS_STORAGE_IP=127.0.0.23 RFDFS_MAX_CONNECTIONS=4096
# a cluster left from an interrupted run would hold the addresses
scripts/cluster.sh down >/dev/null 2>&1 || true
# the daemons start under systemd's default soft limit and raise it themselves
(ulimit -Sn 1024 && scripts/cluster.sh up >/dev/null)
trap 'scripts/cluster.sh down >/dev/null 2>&1' EXIT
sample() {
    for d in tracker storage; do
        pid=$(cat "$dir/$d/data/fdfs_${d}d.pid")
        awk -v d="$d" '/^VmRSS|^Threads/ {printf "%s %s %s %s  ", d, $1, $2, $3}' "/proc/$pid/status"
        awk '/^Max open files/ {printf "nofile %s  ", $4}' "/proc/$pid/limits"
    done
    echo
}
echo "start:  $(sample)"
# the load generator holds both sides' idle connections
ulimit -Sn "$(ulimit -Hn)"
target/release/rfdfs_bench soak "$dir/etc/client.conf" $((minutes * 60)) "$idle" 127.0.0.23:23000 &
bench=$!
while kill -0 $bench 2>/dev/null; do
    sleep 30
    kill -0 $bench 2>/dev/null && echo "$(date +%T): $(sample)"
done
# a failed run still prints its last sample (set -e would stop at the wait)
status=0
wait $bench || status=$?
echo "end:    $(sample)"
exit $status
