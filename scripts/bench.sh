#!/usr/bin/env bash
# Throughput of an rfdfs cluster, measured with this repo's load generator (rfdfs_bench,
# persistent connections), with the machine's own limits measured in the same run:
#   references: the disk's write rate (dd of 1 GiB with fdatasync into the store path's file
#     system) and a raw loopback sendfile rate (a page-cached file to discarding readers over
#     2 connections, as the large downloads use 2 threads)
#   1 KiB and 10 KiB upload and download at 1, 4 and 16 client threads: ops/s, p50/p99, once
#     per client personality (rfdfs_bench --client=: how rfdfs's own client, libfdfsclient,
#     fastdfs-client-java and py3fdfs put requests on the wire), and py3fdfs itself timed from
#     Python (the virtualenv scripts/test.sh makes)
#   10 MiB and 100 MiB upload and download, 2 client threads: MB/s, and the ratio of uploads to
#     the dd rate and of downloads to the sendfile rate
#   HTTP GET from a storage's HTTP port, keep-alive: 10 KiB x 4 threads, 10 MiB x 2 threads
#   replication: a group of 3 storages takes 3000 files of 0 B to 5 MiB from 8 threads; the
#     seconds from the last acknowledged upload until every member holds every file
#   peak RSS (VmHWM) of each daemon of the local cluster
#   beside every figure, each daemon's CPU per operation (utime + stime over the figure, from
#     /proc; tracker and storage apart): the local cluster's, or BENCH_PIDS' for another
#
#   scripts/bench.sh                  start a local release cluster (scripts/cluster.sh up) and measure it
#   scripts/bench.sh <client.conf> [host:http_port]
#                                     measure any running cluster, e.g. upstream's daemons (and
#                                     the HTTP figures against a storage's, or nginx's, HTTP port)
# Environment: BENCH_SECONDS (default 4) per figure; BENCH_DD_DIR, where dd writes (default: the
# local cluster's store path, or the temp dir for another cluster); BENCH_PIDS, "name:pid ..."
# of another cluster's daemons for their CPU per operation and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${BENCH_SECONDS:-4}
cargo build --release --workspace --bins -q
bench=target/release/rfdfs_bench
dir=${RFDFS_DIR:-/tmp/rfdfs-bench}
if [ $# -ge 1 ]; then
    conf=$1
    dd_dir=${BENCH_DD_DIR:-${TMPDIR:-/tmp}}
    pids=${BENCH_PIDS:-}
else
    RFDFS_DIR=$dir RFDFS_STORAGE_HTTP_PORT=8888 scripts/cluster.sh up >/dev/null
    conf=$dir/etc/client.conf
    trap 'RFDFS_DIR=$dir scripts/cluster.sh down >/dev/null 2>&1' EXIT
    dd_dir=${BENCH_DD_DIR:-$dir/storage}
    pids="tracker:$(cat "$dir/tracker/data/fdfs_trackerd.pid") storage:$(cat "$dir/storage/data/fdfs_storaged.pid")"
fi
echo "rfdfs bench against $conf ($(nproc) cores, ${secs}s per figure)"
# each daemon's CPU per operation beside every figure (rfdfs_bench --cpu name=pid)
cpu=()
for np in $pids; do
    cpu+=(--cpu "${np%%:*}=${np#*:}")
done

# the field before "MB/s" in a line of rfdfs_bench or of this script
mbs() { awk '{for (i = 2; i <= NF; i++) if ($i == "MB/s") {print $(i - 1); exit}}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}'; }

echo "== references"
ddf=$dd_dir/rfdfs-bench-dd.$$
dd_line=$(dd if=/dev/zero of="$ddf" bs=1M count=1024 conv=fdatasync 2>&1 | tail -1)
rm -f "$ddf"
# dd prints "..., 1.2 s, 890 MB/s" (or GB/s)
dd_rate=$(echo "$dd_line" | awk '{u = $NF; v = $(NF - 1); if (u == "GB/s") v *= 1000; if (u == "kB/s") v /= 1000; print v}')
echo "disk write (dd 1 GiB, fdatasync, $dd_dir): $dd_rate MB/s"
sf_line=$($bench sendfile 104857600 3 2)
echo "$sf_line"
sf_rate=$(echo "$sf_line" | mbs)

echo "== small files, per client personality"
for client in rfdfs libfdfsclient java py3fdfs; do
    echo "-- $client"
    for size in 1024 10240; do
        for threads in 1 4 16; do
            $bench both "$conf" "$size" "$threads" "$secs" --client=$client "${cpu[@]}"
        done
    done
done
echo "-- py3fdfs itself (Python, one thread)"
python=$(scripts/py3fdfs-venv.sh)
tracker=$(awk -F= '/^tracker_server/ {gsub(/ /, "", $2); print $2; exit}' "$conf")
for size in 1024 10240; do
    "$python" scripts/py3fdfs_bench.py "${tracker%:*}" "${tracker##*:}" "$size" "$secs"
done

echo "== large files"
summary=""
for size in 10485760 104857600; do
    out=$($bench both "$conf" "$size" 2 "$secs" "${cpu[@]}")
    echo "$out"
    up=$(echo "$out" | grep '^upload' | mbs)
    down=$(echo "$out" | grep '^download' | mbs)
    mib=$((size >> 20))
    summary+=$(printf '%-26s %9s MB/s  %6s x the disk (dd)' "upload ${mib} MiB x 2" "$up" "$(ratio "$up" "$dd_rate")")$'\n'
    summary+=$(printf '%-26s %9s MB/s  %6s x loopback sendfile' "download ${mib} MiB x 2" "$down" "$(ratio "$down" "$sf_rate")")$'\n'
done
printf '%s' "$summary"

http=${2:-}
[ $# -eq 0 ] && http=${RFDFS_STORAGE_IP:-127.0.0.3}:8888
if [ -n "$http" ]; then
    echo "== http"
    $bench http "$conf" 10240 4 "$secs" "$http" "${cpu[@]}"
    $bench http "$conf" 10485760 2 "$secs" "$http" "${cpu[@]}"
fi
if [ $# -eq 0 ]; then
    echo "== replication"
    rdir=/tmp/rfdfs-bench-repl
    # a new group each time: the figure is about members that start empty
    rm -rf "$rdir"
    RFDFS_DIR=$rdir RFDFS_STORAGES=3 RFDFS_TRACKER_IP=127.0.0.12 RFDFS_STORAGE_IP=127.0.0.13 \
        scripts/cluster.sh up >/dev/null
    trap 'RFDFS_DIR=$dir scripts/cluster.sh down >/dev/null 2>&1; RFDFS_DIR=/tmp/rfdfs-bench-repl scripts/cluster.sh down >/dev/null 2>&1' EXIT
    $bench replication "$rdir/etc/client.conf" 3000 8 \
        "$rdir/storage" "$rdir/storage1" "$rdir/storage2"
fi
if [ -n "$pids" ]; then
    echo "== peak RSS"
    for np in $pids; do
        name=${np%%:*}
        pid=${np#*:}
        awk -v n="$name" '/^VmHWM/ {printf "%-8s peak RSS %6.1f MB\n", n, $2 / 1024}' "/proc/$pid/status" 2>/dev/null ||
            echo "$name: pid $pid not running"
    done
fi
