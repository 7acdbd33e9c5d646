#!/usr/bin/env bash
# The fault campaign (issue 28), long mode, by hand: a three-member group with trunk files takes
# uploads and deletes from three clients writing as the C library, the Java client and py3fdfs
# do, while faults are injected round after round (a full base_path, a full store path, a store
# path replaced by a blank one, a member rebuilt with the same id while another is stopped, a
# binlog cut short or its index removed, a member stopped with SIGSTOP, a byte flipped, a block
# made unreadable); after each round every acknowledged file is read back byte for byte from
# every member. Prints a line per round and, at the end, a table per fault. The suite runs the
# same test with each fault once and short holds (tests/tests/fault_campaign.rs).
#
#   scripts/fault-campaign.sh [minutes]                   (default 60)
#
# RFDFS_CAMPAIGN_FAULTS=<parts of fault names, comma-separated> (e.g. "EIO,flipped") keeps to
# those faults.
# RFDFS_DAEMON_DIR=<dir holding fdfs_trackerd and fdfs_storaged> runs another build's daemons
# (upstream's, built beside the repository) in the same campaign; nothing is asserted then.
# Needs root (tmpfs and loop mounts) and mkfs.btrfs (btrfs-progs).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-60}
if ! command -v mkfs.btrfs >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends btrfs-progs >/dev/null
fi
cargo build --release --workspace --bins -q
echo "fault campaign: $minutes minutes, daemons from ${RFDFS_DAEMON_DIR:-this build}"
RFDFS_CAMPAIGN_MINUTES=$minutes \
    cargo test --release -q -p rfdfs-tests --test fault_campaign -- --nocapture 2>&1 |
    grep -E "^round|^  |^\||^fault campaign|test result|panicked|acknowledged files lost"
