#!/usr/bin/env bash
# Undo scripts/install.sh [PREFIX]: removes the binaries, units and samples it installed, and the
# configs it installed that are still identical to their samples. Configs the operator changed,
# and every data directory, are left in place.
set -euo pipefail
prefix=${1:-/}
prefix=${prefix%/}
manifest=$prefix/usr/share/rfdfs/installed.txt
if [ ! -f "$manifest" ]; then
    echo "nothing installed under ${prefix:-/} ($manifest not found)" >&2
    exit 1
fi
# configs first, while their samples are still there to compare with
while read -r f; do
    case $f in
        /etc/fdfs/*.sample) ;;
        /etc/fdfs/*)
            if [ -f "$prefix$f" ] && ! cmp -s "$prefix$f" "$prefix$f.sample"; then
                echo "kept $prefix$f (changed since install)"
            else
                rm -f "$prefix$f"
            fi
            ;;
    esac
done < "$manifest"
while read -r f; do
    case $f in
        /etc/fdfs/*.sample | /usr/*) rm -f "$prefix$f" ;;
    esac
done < "$manifest"
rm -f "$manifest"
rmdir "$prefix/usr/share/rfdfs" "$prefix/etc/fdfs" 2>/dev/null || true
if [ -z "$prefix" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
echo "uninstalled from ${prefix:-/}"
