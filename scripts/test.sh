#!/usr/bin/env bash
# The whole test suite, from a fresh clone: builds the daemons and tools, provides what the
# tests need beyond cargo (a virtualenv with the PyPI clients py3fdfs, boto3, awscli and
# s3cmd; Debian packages), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

RFDFS_PY3FDFS_PYTHON=$(scripts/py3fdfs-venv.sh)
export RFDFS_PY3FDFS_PYTHON

# the HTTP tests drive curl, and put Debian's nginx in front of the storages; the seed-setup
# test runs in its own network namespace (unshare from util-linux, ip from iproute2); the
# descriptor-exhaustion test lowers a running daemon's limit with prlimit (util-linux)
missing=()
command -v curl >/dev/null || missing+=(curl)
command -v ip >/dev/null || missing+=(iproute2)
command -v unshare >/dev/null && command -v prlimit >/dev/null || missing+=(util-linux)
# the progress-line test runs the tools on a pty made by script(1)
command -v script >/dev/null || missing+=(bsdutils)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx)
# the disk-fault tests make a block unreadable on a btrfs image (data checksums: EIO) mounted on
# a loop device, as this kernel has no device-mapper; the 4 GiB file test stores its zeros on a
# compressed btrfs image
command -v mkfs.btrfs >/dev/null || missing+=(btrfs-progs)
# the monitoring tests run promtool on scripts/monitoring/ and a real Prometheus on a cluster
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
# the partition tests cut links between the daemons' loopback addresses with nftables
command -v nft >/dev/null || missing+=(nftables)
# the clock-skew tests shift a daemon's wall clock with libfaketime (LD_PRELOAD)
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] || missing+=(faketime)
# the S3 tests drive rclone and restic (boto3, awscli and s3cmd come with the virtualenv)
command -v rclone >/dev/null || missing+=(rclone)
command -v restic >/dev/null || missing+=(restic)
# the power-cut tests mount tests/cutfs through FUSE: they need /dev/fuse (and root)
[ -c /dev/fuse ] || { echo "/dev/fuse is missing: the power-cut tests need FUSE" >&2; exit 1; }
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v tar >/dev/null || { echo "tar is required for the storage fixture test" >&2; exit 1; }

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -q -- -D warnings
echo "== build daemons and tools"
cargo build --workspace --bins -q
echo "== tests"
cargo test --workspace --no-fail-fast -q 2>&1 | tee target/test-output.txt
grep -q 'test result' target/test-output.txt
