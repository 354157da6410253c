#!/usr/bin/env bash
# The whole test suite: set-up (idempotent), then every crate's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --locked
