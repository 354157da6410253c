#!/usr/bin/env bash
# Runs the libFuzzer targets with cargo-fuzz on the stable toolchain.
#
#   bash scripts/fuzz.sh            # short bounded run: 60 s per target
#   bash scripts/fuzz.sh 3600       # longer manual run: an hour per target
#   bash scripts/fuzz.sh 60 expat_diff   # one target
#   RUNS=10000000 bash scripts/fuzz.sh 3600   # stop at 10^7 executions or an hour
#
# cargo-fuzz needs nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets the
# stable compiler accept them. No sanitizer (`-s none`): the property under
# test is that the host survives whatever the sandboxed code does, and the
# host code is safe Rust apart from reviewed unsafe blocks.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(hostile_calls expat_diff marshalling worker_protocol)
bash scripts/setup.sh
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
    echo "== fuzzing $t for ${seconds}s" >&2
    mkdir -p "fuzz/corpus/$t" "fuzz/seeds/$t"
    # New inputs go to fuzz/corpus (not committed); fuzz/seeds (committed,
    # small) starts every run.
    cargo fuzz run -s none "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- -max_total_time="$seconds" -runs="${RUNS:--1}" -rss_limit_mb=4096 2>&1 \
        | tee "fuzz/last-$t.log" | grep -E "^#[0-9]+.*(DONE|pulse)|Done [0-9]+ runs|ERROR|panicked" || true
    grep -q "Done [0-9]* runs" "fuzz/last-$t.log" || { echo "fuzz target $t failed; see fuzz/last-$t.log" >&2; exit 1; }
done
