#!/usr/bin/env bash
# Partitions and bad links, long randomised run (issue 29): three members with
# write_ack_copies = 2 and three trackers under client load (the C library's, the Java
# client's and py3fdfs's write patterns), round after round one or two faults drawn at random
# and held 3-15 s: a member cut off from its peers, from the trackers or from everyone (links
# down), a member's links losing 10-50 % of packets, reset, or 100-700 ms slow each way, a
# tracker cut off from the others. In each round every file acknowledged during the faults
# must have two copies; after each heal every acknowledged file is read back byte for byte
# from every member and no deleted file may be served. Prints a line per round and the total.
#
#   scripts/partition-test.sh [minutes] [seed]        (default 30 minutes)
#
# The links are cut with nftables and slowed by a proxy of the tests' own
# (tests/src/partition.rs, tests/src/delay.rs); needs root and nft (scripts/test.sh installs
# nftables). The suite runs one round of the same test.
set -euo pipefail
cd "$(dirname "$0")/.."
export RFDFS_PARTITION_MINUTES=${1:-30}
export RFDFS_PARTITION_SEED=${2:-$(date +%s)}
cargo build --release --workspace --bins -q
echo "partitions: ${RFDFS_PARTITION_MINUTES} minutes, seed ${RFDFS_PARTITION_SEED}"
cargo test --release -q -p rfdfs-tests --test partitions randomised_partitions_lose_nothing \
    -- --nocapture 2>&1 |
    grep --line-buffered --no-group-separator -A3 -E "^round|^partitions:|panicked|test result"
