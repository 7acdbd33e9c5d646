#!/usr/bin/env bash
# Install rfdfs where an operator's FastDFS lives, under upstream's names:
#   PREFIX/usr/bin/            fdfs_trackerd, fdfs_storaged and every fdfs_* tool (+ rfdfs_bench,
#                              rfdfs_http_url, rfdfs_admin)
#   PREFIX/etc/fdfs/           tracker.conf, storage.conf, client.conf, http.conf, mime.types,
#                              storage_ids.conf: each also as <name>.sample; an existing file is
#                              never overwritten (the new sample is put beside it)
#   PREFIX/usr/lib/systemd/system/   fdfs_trackerd.service, fdfs_storaged.service
#
#   scripts/install.sh [PREFIX]      PREFIX defaults to / (a real install; run as root)
# Environment: RFDFS_BIN_DIR installs the binaries found there instead of building release ones.
# What was installed is listed in PREFIX/usr/share/rfdfs/installed.txt for scripts/uninstall.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/}
prefix=${prefix%/}
bin_dir=${RFDFS_BIN_DIR:-}
if [ -z "$bin_dir" ]; then
    echo "== building release binaries"
    cargo build --release --workspace --bins -q
    bin_dir=target/release
fi

manifest_dir=$prefix/usr/share/rfdfs
manifest=$manifest_dir/installed.txt
mkdir -p "$prefix/usr/bin" "$prefix/etc/fdfs" "$prefix/usr/lib/systemd/system" "$manifest_dir"
touch "$manifest"
record() { grep -qxF "$1" "$manifest" || echo "$1" >> "$manifest"; }

echo "== binaries -> $prefix/usr/bin"
for b in "$bin_dir"/fdfs_* "$bin_dir"/rfdfs_bench "$bin_dir"/rfdfs_http_url "$bin_dir"/rfdfs_admin; do
    [ -f "$b" ] && [ -x "$b" ] || continue
    name=$(basename "$b")
    # a new inode, so that running daemons keep their old binary until restarted
    install -m 0755 "$b" "$prefix/usr/bin/$name.new"
    mv -f "$prefix/usr/bin/$name.new" "$prefix/usr/bin/$name"
    record "/usr/bin/$name"
done

echo "== configs -> $prefix/etc/fdfs"
for f in tracker.conf storage.conf client.conf http.conf mime.types storage_ids.conf; do
    install -m 0644 "conf/$f" "$prefix/etc/fdfs/$f.sample"
    record "/etc/fdfs/$f.sample"
    if [ -e "$prefix/etc/fdfs/$f" ]; then
        echo "   kept existing $prefix/etc/fdfs/$f (new sample: $f.sample)"
    else
        install -m 0644 "conf/$f" "$prefix/etc/fdfs/$f"
        record "/etc/fdfs/$f"
    fi
done

echo "== systemd units -> $prefix/usr/lib/systemd/system"
for u in fdfs_trackerd.service fdfs_storaged.service; do
    install -m 0644 "scripts/systemd/$u" "$prefix/usr/lib/systemd/system/$u"
    record "/usr/lib/systemd/system/$u"
done
if [ -z "$prefix" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
echo "installed; set base_path, store_path0 and tracker_server in $prefix/etc/fdfs/*.conf, then"
echo "  systemctl enable --now fdfs_trackerd fdfs_storaged"
