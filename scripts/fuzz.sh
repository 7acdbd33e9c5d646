#!/usr/bin/env bash
# Coverage-guided fuzzing of every decoder with cargo-fuzz (libFuzzer), by hand:
#
#   scripts/fuzz.sh [seconds per target] [target ...]      (default 3600 s, all targets)
#   scripts/fuzz.sh --stateful [seconds] [seed]               (default 3600 s)
#
# --stateful runs tests/tests/stateful_fuzz.rs for that long instead: sequences of legitimate and
# hostile commands against a running two-member trunk group, the group checked every 20 steps
# (the suite runs it for 20 s).
#
# Targets: tests/fuzz/fuzz_targets/ (the functions in tests/src/fuzz.rs). Seeds: the committed
# corpus in tests/fuzz-corpus/<target>/, plus, for `packets`, every packet body of the golden
# vectors in tests/golden/. What libFuzzer finds is kept in
# target/fuzz-work/corpus/<target>/ (not committed); a crash is written to
# tests/fuzz/artifacts/<target>/ and makes this script fail. The machine's stable toolchain
# runs cargo-fuzz with RUSTC_BOOTSTRAP=1 (it needs -Z flags); cargo-fuzz is installed when
# missing. The test suite runs the same functions for a few seconds (tests/tests/fuzz_smoke.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
if [ "${1:-}" = --stateful ]; then
    cargo build --workspace --bins -q
    export RFDFS_STATEFUL_FUZZ_SECONDS=${2:-3600} RFDFS_STATEFUL_FUZZ_SEED=${3:-$(date +%s)}
    exec cargo test -q -p rfdfs-tests --test stateful_fuzz -- --nocapture
fi
seconds=${1:-3600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(packets file_id config storage_ids binlog mark http_request)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build --fuzz-dir tests/fuzz -O
work=$root/target/fuzz-work
mkdir -p "$work"
vectors=$root/tests/golden
failed=0
for t in "${targets[@]}"; do
    corpus=$work/corpus/$t
    mkdir -p "$corpus"
    if [ "$t" = packets ] && [ -d "$vectors" ]; then
        python3 - "$vectors" "$corpus" <<'PY'
import json, sys, zlib
src, out = sys.argv[1], sys.argv[2]
for f in ("client-commands.json", "cluster-commands.json"):
    for x in json.load(open(f"{src}/{f}"))["exchanges"]:
        for k in ("request_hex", "response_hex"):
            b = bytes.fromhex(x.get(k) or "")
            if 10 < len(b) < 65536:
                open(f"{out}/vector-{zlib.crc32(b[10:]):08x}", "wb").write(b[10:])
PY
    fi
    seeds=()
    [ -d "tests/fuzz-corpus/$t" ] && seeds=("tests/fuzz-corpus/$t")
    log=$work/$t.log
    echo "fuzz $t: ${seconds}s"
    if cargo fuzz run --fuzz-dir tests/fuzz -O "$t" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
        echo "fuzz $t: $runs inputs, no crash, corpus $(ls "$corpus" | wc -l) inputs"
    else
        echo "fuzz $t: FAILED (see $log and tests/fuzz/artifacts/$t/)"
        failed=1
    fi
done
exit $failed
