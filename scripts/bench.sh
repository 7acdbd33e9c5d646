#!/usr/bin/env bash
# Throughput of an rfdfs cluster, measured with this repo's load generator (rfdfs_bench,
# persistent connections):
#   10 KiB upload and download, 4 client threads: ops/s and latency
#   10 MiB upload and download, 2 client threads: MB/s
#
#   scripts/bench.sh                  start a local release cluster (scripts/cluster.sh up) and measure it
#   scripts/bench.sh <client.conf>    measure any running cluster, e.g. upstream's daemons
# Environment: BENCH_SECONDS (default 5) per figure.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${BENCH_SECONDS:-5}
cargo build --release --workspace --bins -q
if [ $# -ge 1 ]; then
    conf=$1
else
    RFDFS_DIR=${RFDFS_DIR:-/tmp/rfdfs-bench} scripts/cluster.sh up >/dev/null
    conf=${RFDFS_DIR:-/tmp/rfdfs-bench}/etc/client.conf
    trap 'RFDFS_DIR=${RFDFS_DIR:-/tmp/rfdfs-bench} scripts/cluster.sh down >/dev/null 2>&1' EXIT
fi
echo "rfdfs bench against $conf ($(nproc) cores, ${secs}s per figure)"
target/release/rfdfs_bench "$conf" both 10240 4 "$secs"
target/release/rfdfs_bench "$conf" both 10485760 2 "$secs"
