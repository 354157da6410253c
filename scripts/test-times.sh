#!/usr/bin/env bash
# The slowest tests of the workspace's `cargo test`, each timed by the test
# harness itself (libtest's --report-time), slowest first.
#
#   bash scripts/test-times.sh        # the 20 slowest
#   bash scripts/test-times.sh 50     # the 50 slowest
#
# Builds the test binaries as scripts/test.sh does (same profile and target
# dir, so nothing is compiled twice), then runs each binary directly.
# --report-time is unstable in libtest; RUSTC_BOOTSTRAP=1 in the binaries'
# environment alone (never cargo's, where it would change fingerprints)
# lets the stable harness accept it. Times are wall times of tests that run
# two at a time, as they do in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
top=${1:-20}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Each test binary with its package's directory (from the same build
# messages), where cargo test would run it.
cargo test --workspace --exclude sandlink-benches --locked --no-run --message-format=json 2>/dev/null \
    | python3 -c '
import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        print(m["executable"], os.path.dirname(m["manifest_path"]), sep="\t")
' >"$out/binaries"
while IFS=$'\t' read -r bin dir; do
    name=$(basename "$bin")
    (cd "$dir" && RUSTC_BOOTSTRAP=1 "$bin" -Z unstable-options --report-time 2>&1) \
        | sed -n "s/^test \(.*\) \.\.\. ok <\([0-9.]*\)s>$/\2 $name \1/p" >>"$out/times" || true
done <"$out/binaries"
sort -rn "$out/times" | head -n "$top" | awk '{ printf "%8.2fs  %s  %s\n", $1, $2, $3 }'
