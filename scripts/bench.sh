#!/usr/bin/env bash
# Runs the criterion benchmarks (all strategies side by side, one run) and
# rewrites the table in BENCHMARKS.md from criterion's median estimates.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo bench -p sandlink-tests --bench strategies -- "$@"
python3 scripts/bench_table.py > BENCHMARKS.md
cat BENCHMARKS.md
