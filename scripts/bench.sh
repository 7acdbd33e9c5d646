#!/usr/bin/env bash
# Throughput of an rfdfs cluster, measured with this repo's load generator (rfdfs_bench,
# persistent connections):
#   10 KiB upload and download, 4 client threads: ops/s and latency
#   10 MiB upload and download, 2 client threads: MB/s
#   HTTP GET from a storage's HTTP port, keep-alive: 10 KiB x 4 threads, 10 MiB x 2 threads
#   replication: a group of 3 storages takes 3000 files of 0 B to 5 MiB from 8 threads; the
#   seconds from the last acknowledged upload until every member holds every file
#
#   scripts/bench.sh                  start a local release cluster (scripts/cluster.sh up) and measure it
#   scripts/bench.sh <client.conf> [host:http_port]
#                                     measure any running cluster, e.g. upstream's daemons (and
#                                     the HTTP figures against a storage's, or nginx's, HTTP port)
# Environment: BENCH_SECONDS (default 5) per figure.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${BENCH_SECONDS:-5}
cargo build --release --workspace --bins -q
if [ $# -ge 1 ]; then
    conf=$1
else
    RFDFS_DIR=${RFDFS_DIR:-/tmp/rfdfs-bench} RFDFS_STORAGE_HTTP_PORT=8888 scripts/cluster.sh up >/dev/null
    conf=${RFDFS_DIR:-/tmp/rfdfs-bench}/etc/client.conf
    trap 'RFDFS_DIR=${RFDFS_DIR:-/tmp/rfdfs-bench} scripts/cluster.sh down >/dev/null 2>&1' EXIT
fi
echo "rfdfs bench against $conf ($(nproc) cores, ${secs}s per figure)"
target/release/rfdfs_bench "$conf" both 10240 4 "$secs"
target/release/rfdfs_bench "$conf" both 10485760 2 "$secs"
http=${2:-}
[ $# -eq 0 ] && http=${RFDFS_STORAGE_IP:-127.0.0.3}:8888
if [ -n "$http" ]; then
    target/release/rfdfs_bench "$conf" http 10240 4 "$secs" "$http"
    target/release/rfdfs_bench "$conf" http 10485760 2 "$secs" "$http"
fi
if [ $# -eq 0 ]; then
    rdir=/tmp/rfdfs-bench-repl
    RFDFS_DIR=$rdir RFDFS_STORAGES=3 RFDFS_TRACKER_IP=127.0.0.12 RFDFS_STORAGE_IP=127.0.0.13 \
        scripts/cluster.sh up >/dev/null
    trap 'RFDFS_DIR=${RFDFS_DIR:-/tmp/rfdfs-bench} scripts/cluster.sh down >/dev/null 2>&1; RFDFS_DIR=/tmp/rfdfs-bench-repl scripts/cluster.sh down >/dev/null 2>&1' EXIT
    target/release/rfdfs_bench "$rdir/etc/client.conf" replication 3000 8 \
        "$rdir/storage" "$rdir/storage1" "$rdir/storage2"
fi
