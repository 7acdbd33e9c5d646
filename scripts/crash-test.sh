#!/usr/bin/env bash
# Crash harness, long mode: kill -9 of a storage (or every third round the tracker) at a random
# moment under a 16-thread upload/append/delete load, restart, and verify every acknowledged
# operation, the absence of partial and temp files, binlogs, marks, and replica convergence;
# then the same with small files in trunk slots (no slot shared by two live files)
# (tests/tests/crash.rs; CI runs the same tests with 3 and 2 rounds); then write_ack_copies = 2
# in a 3-member group, the answering storage killed right after an upload's answer, 200 kills
# (tests/tests/write_ack.rs; CI runs 6).
#
#   scripts/crash-test.sh [--rounds N] [--seed S] [--kills K]   (default 20 rounds, 200 kills)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=20
kills=200
seed=${RFDFS_CRASH_SEED:-$(date +%s)}
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --kills) kills=$2; shift 2 ;;
        *) echo "usage: $0 [--rounds N] [--seed S] [--kills K]" >&2; exit 2 ;;
    esac
done
cargo build --release --workspace --bins -q
echo "crash harness: $rounds rounds, seed $seed"
RFDFS_CRASH_ROUNDS=$rounds RFDFS_CRASH_SEED=$seed \
    cargo test --release -q -p rfdfs-tests --test crash -- --nocapture 2>&1 | grep -E "round [0-9]+( \(trunks\))?:|test result|panicked"
echo "write_ack_copies: $kills kills"
RFDFS_WRITE_ACK_KILLS=$kills \
    cargo test --release -q -p rfdfs-tests --test write_ack acknowledged -- --nocapture 2>&1 |
    grep -E "^kill [0-9]+:|test result|panicked"
