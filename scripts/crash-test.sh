#!/usr/bin/env bash
# Crash harness, long mode: kill -9 of a storage (or every third round the tracker) at a random
# moment under a 16-thread upload/append/delete load, restart, and verify every acknowledged
# operation, the absence of partial and temp files, binlogs, marks, and replica convergence;
# then the same with small files in trunk slots (no slot shared by two live files)
# (tests/tests/crash.rs; CI runs the same tests with 3 and 2 rounds).
#
#   scripts/crash-test.sh [--rounds N] [--seed S]     (default 20 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=20
seed=${RFDFS_CRASH_SEED:-$(date +%s)}
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        *) echo "usage: $0 [--rounds N] [--seed S]" >&2; exit 2 ;;
    esac
done
cargo build --release --workspace --bins -q
echo "crash harness: $rounds rounds, seed $seed"
RFDFS_CRASH_ROUNDS=$rounds RFDFS_CRASH_SEED=$seed \
    cargo test --release -q -p rfdfs-tests --test crash -- --nocapture 2>&1 | grep -E "round [0-9]+( \(trunks\))?:|test result|panicked"
