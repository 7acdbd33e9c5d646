#!/usr/bin/env bash
# Power cuts, long mode (issue 29): a three-member group and its tracker, each on a file system
# that drops every write not fsynced when its power is cut (tests/cutfs, FUSE), take uploads
# and deletes from clients writing as the C library, the Java client and py3fdfs do; cut after
# cut (every member and the tracker at once, then one member, in turn), every acknowledged file
# is read back byte for byte from every member once the group has converged, and the members'
# binlogs, mark files and trunk state are checked. Prints a line per cut and a table per run.
#
#   scripts/power-cut.sh [cuts]            (default 200)
#
# Runs: durable mode (fsync_after_written_bytes > 0) with trunk files on and off, cuts/2 each,
# nothing unsynced surviving a cut; page-cache mode (upstream's default) with trunk files on,
# cuts/4, the kernel's 30 s writeback in effect. RFDFS_POWER_MODES=durable or =page-cache keeps
# to one. RFDFS_DAEMON_DIR=<dir holding fdfs_trackerd and fdfs_storaged> runs another build's
# daemons (upstream's, built beside the repository) in the same harness; nothing is asserted then.
# Needs root and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
cuts=${1:-200}
modes=${RFDFS_POWER_MODES:-durable,page-cache}
cargo build --release --workspace --bins -q
echo "power cuts: $cuts, daemons from ${RFDFS_DAEMON_DIR:-this build}"
failed=0
# every run goes on to the end and prints its table; the script fails if one did
run() {
    RFDFS_POWER_CUTS=$1 cargo test --release -q -p rfdfs-tests --test power_cut "$2" -- --nocapture 2>&1 |
        grep --line-buffered -E "^cut|^  |^\||daemons$|test result|panicked" || failed=1
}
if [[ $modes == *durable* ]]; then
    run $((cuts / 2)) durable_mode_keeps_every_acknowledged_file_through_power_cuts_with_trunk
    run $((cuts / 2)) durable_mode_keeps_every_acknowledged_file_through_power_cuts_without_trunk
fi
if [[ $modes == *page-cache* ]]; then
    run $((cuts / 4)) page_cache_mode
fi
exit $failed
