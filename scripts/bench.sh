#!/usr/bin/env bash
# Runs the criterion benchmarks (all strategies side by side, one run) and
# rewrites the table in BENCHMARKS.md from criterion's median estimates.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# expat_tree end to end is measured as a process, against the C printer.
cargo build --release --locked --example expat_tree
SANDLINK_EXPAT_TREE_BIN=$PWD/target/release/examples/expat_tree \
    cargo bench -p sandlink-benches --bench strategies -- "$@"
python3 scripts/bench_table.py > BENCHMARKS.md
cat BENCHMARKS.md
