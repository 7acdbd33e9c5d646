#!/usr/bin/env bash
# What keeping the listing index costs uploads (docs/listing.md, "Speed and memory"): a local
# release cluster with a group of 2 storages takes 1 KiB uploads from rfdfs_bench (16 threads),
# ROUNDS times SECONDS; for each round, from /proc:
#   ops/s        uploads acknowledged per second (rfdfs_bench)
#   storage us   CPU of both storage processes per upload (every thread)
#   follower us  CPU of both storages' "listing" threads (the binlog followers) per upload
#   machine us   CPU of the whole machine per upload (clients, tracker and storages)
#   share        follower / machine: on a machine the load keeps busy, the part of the upload
#                throughput the index takes
#   merges       the run files the followers wrote meanwhile (each writes every file again)
#
#   scripts/listing-upkeep.sh [ROUNDS] [SECONDS]      (default 4 rounds of 8 s; release build)
# Environment: RFDFS_DIR (default /tmp/rfdfs-upkeep), RFDFS_TRACKER_IP (127.0.0.2),
# RFDFS_STORAGE_IP (127.0.0.3; the second storage takes the next address).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-4}
secs=${2:-8}
dir=${RFDFS_DIR:-/tmp/rfdfs-upkeep}
cargo build --release --workspace --bins -q
bench=target/release/rfdfs_bench
# a fresh group each time: the files kept from one run would change the next one's index
RFDFS_DIR=$dir RFDFS_STORAGES=2 scripts/cluster.sh down >/dev/null 2>&1 || true
rm -rf "$dir"
RFDFS_DIR=$dir RFDFS_STORAGES=2 scripts/cluster.sh up >/dev/null 2>&1
trap 'RFDFS_DIR=$dir RFDFS_STORAGES=2 scripts/cluster.sh down >/dev/null 2>&1; rm -rf "$dir"' EXIT
conf=$dir/etc/client.conf
pids=$(for f in "$dir"/storage*/data/fdfs_storaged.pid; do echo "$(cat "$f")"; done)

# clock ticks of utime+stime: a process's threads, or only those named $2
ticks() {
    local pid=$1 only=${2:-} t=0 f comm
    for f in /proc/"$pid"/task/*/stat; do
        comm=$(cut -d'(' -f2 "$f" | cut -d')' -f1)
        if [ -n "$only" ] && [ "$comm" != "$only" ]; then continue; fi
        t=$((t + $(awk '{print $14 + $15}' "$f")))
    done
    echo "$t"
}
storage_ticks() { local t=0 p; for p in $pids; do t=$((t + $(ticks "$p"))); done; echo "$t"; }
follower_ticks() { local t=0 p; for p in $pids; do t=$((t + $(ticks "$p" listing))); done; echo "$t"; }
machine_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }

hz=$(getconf CLK_TCK)
"$bench" upload "$conf" 1024 16 2 >/dev/null # warm-up
merges() { cat "$dir"/storage*/logs/storaged.log | grep -c "listing index: .* files written" || true; }
printf '%-6s %10s %12s %12s %12s %8s %7s\n' round ops/s "storage us" "follower us" "machine us" share merges
for r in $(seq 1 "$rounds"); do
    s0=$(storage_ticks) f0=$(follower_ticks) m0=$(machine_ticks) g0=$(merges)
    out=$("$bench" upload "$conf" 1024 16 "$secs" --keep)
    s1=$(storage_ticks) f1=$(follower_ticks) m1=$(machine_ticks) g1=$(merges)
    ops=$(grep -o '[0-9.]* ops/s' <<<"$out" | head -1 | cut -d' ' -f1)
    python3 - "$r" "$ops" "$secs" "$hz" $((s1 - s0)) $((f1 - f0)) $((m1 - m0)) $((g1 - g0)) <<'PY'
import sys
r, ops, secs, hz = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
storage, follower, machine = (int(x) / hz for x in sys.argv[5:8])
merges = int(sys.argv[8])
n = ops * secs
us = lambda cpu: 1e6 * cpu / n
print(f"{r:<6} {ops:10.0f} {us(storage):12.1f} {us(follower):12.2f} {us(machine):12.1f} {100 * follower / machine:7.2f}% {merges:7}")
PY
done
