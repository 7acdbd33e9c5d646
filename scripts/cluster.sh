#!/usr/bin/env bash
# A working local cluster from the sample configs in conf/, set up the way an operator does it
# (copy the samples, point base_path / store_path0 / tracker_server at local values), then a
# real upload, fdfs_file_info and download.
#
#   scripts/cluster.sh          build, start tracker + storage, upload/info/download (default)
#   scripts/cluster.sh up       build and start only
#   scripts/cluster.sh down     stop both daemons
#
# Environment: RFDFS_DIR (default /tmp/rfdfs-cluster), RFDFS_TRACKER_IP (127.0.0.2),
# RFDFS_STORAGE_IP (127.0.0.3), RFDFS_STORAGES (1: more storages of group1 take the next
# addresses), RFDFS_STORAGE_HTTP_PORT (unset: the storages serve no HTTP),
# RFDFS_MAX_CONNECTIONS (unset: the samples' value), RFDFS_USE_TRUNK_FILE (true: small files go
# into trunk files), RFDFS_S3_PORT (unset: no S3 endpoint; set: the storages serve S3 there with
# the one key `rfdfs-bench` / `rfdfs-bench-secret` of etc/s3.keys). Upstream's C daemons refuse 127.0.0.1 as a tracker address.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=${RFDFS_DIR:-/tmp/rfdfs-cluster}
tip=${RFDFS_TRACKER_IP:-127.0.0.2}
sip=${RFDFS_STORAGE_IP:-127.0.0.3}
bin=$root/target/release
storages=${RFDFS_STORAGES:-1}
action=${1:-demo}

stop() {
    for conf in "$dir"/etc/storage*.conf; do
        [ -f "$conf" ] && "$bin/fdfs_storaged" "$conf" stop || true
    done
    [ -f "$dir/etc/tracker.conf" ] && "$bin/fdfs_trackerd" "$dir/etc/tracker.conf" stop || true
}

if [ "$action" = down ]; then
    stop
    exit 0
fi

echo "== building release binaries"
cargo build --release --workspace --bins -q

stop 2>/dev/null || true
mkdir -p "$dir/etc" "$dir/tracker" "$dir/storage"
cp conf/tracker.conf conf/storage.conf conf/client.conf conf/http.conf conf/mime.types "$dir/etc/"
cd "$dir/etc"
sed -i "s:^base_path *=.*:base_path = $dir/tracker:; s:^bind_addr *=.*:bind_addr = $tip:" tracker.conf
sed -i "s:^base_path *=.*:base_path = $dir/storage:; s:^store_path0 *=.*:store_path0 = $dir/storage:" storage.conf
sed -i "s:^bind_addr *=.*:bind_addr = $sip:; /^tracker_server *=/d" storage.conf
sed -i "s:^\(store_path0 *=.*\):\1\ntracker_server=$tip\:22122:" storage.conf
if [ -n "${RFDFS_MAX_CONNECTIONS:-}" ]; then
    sed -i "s:^max_connections *=.*:max_connections = $RFDFS_MAX_CONNECTIONS:" tracker.conf storage.conf
fi
sed -i "s:^http.server_port *=.*:http.server_port=${RFDFS_STORAGE_HTTP_PORT:-0}:" storage.conf
sed -i "s:^use_trunk_file *=.*:use_trunk_file = ${RFDFS_USE_TRUNK_FILE:-false}:" tracker.conf
if [ -n "${RFDFS_S3_PORT:-}" ]; then
    echo "rfdfs-bench rfdfs-bench-secret" > s3.keys
    sed -i "1i s3.server_port = $RFDFS_S3_PORT\ns3.credentials_file = s3.keys" storage.conf
fi
sed -i "s:^base_path *=.*:base_path = $dir:; /^tracker_server *=/d" client.conf
sed -i "s:^\(connect_timeout *=.*\):\1\ntracker_server=$tip\:22122:" client.conf

# more members of group1: the same settings on the next addresses and their own paths
prefix=${sip%.*}
last=${sip##*.}
for i in $(seq 1 $((storages - 1))); do
    ip="$prefix.$((last + i))"
    mkdir -p "$dir/storage$i"
    sed "s:$dir/storage:$dir/storage$i:g; s:^bind_addr *=.*:bind_addr = $ip:" storage.conf > "storage$i.conf"
done

echo "== starting fdfs_trackerd ($tip:22122) and $storages fdfs_storaged from $sip:23000 in $dir"
"$bin/fdfs_trackerd" "$dir/etc/tracker.conf" start
for conf in "$dir"/etc/storage*.conf; do
    "$bin/fdfs_storaged" "$conf" start
done
active=0
for _ in $(seq 1 300); do
    active=$("$bin/fdfs_monitor" "$dir/etc/client.conf" 2>/dev/null | grep -c "ACTIVE" || true)
    [ "$active" -ge "$storages" ] && break
    sleep 0.2
done
if [ "$active" -lt "$storages" ]; then
    echo "only $active of $storages storages ACTIVE after 60 s; logs in $dir/tracker/logs and $dir/storage*/logs" >&2
    exit 1
fi
"$bin/fdfs_monitor" "$dir/etc/client.conf" | grep -E "host =|group name"
[ "$action" = up ] && exit 0

echo "== upload, info, download"
sample="$dir/hello.txt"
echo "hello from rfdfs, $(date -u)" > "$sample"
file_id=$("$bin/fdfs_upload_file" "$dir/etc/client.conf" "$sample")
echo "file id: $file_id"
"$bin/fdfs_file_info" "$dir/etc/client.conf" "$file_id"
"$bin/fdfs_download_file" "$dir/etc/client.conf" "$file_id" "$dir/downloaded.txt"
cmp "$sample" "$dir/downloaded.txt"
echo "downloaded $dir/downloaded.txt: identical to the upload"
echo "the cluster keeps running; stop it with: scripts/cluster.sh down"
