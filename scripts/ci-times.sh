#!/usr/bin/env bash
# Times a cold CI run as CI makes it: a fresh clone of this checkout's HEAD
# (committed work only) in a new folder, so the target dir starts empty, then
# `CI=true bash .ci/run < /dev/null`. Prints the phase times (scripts/test.sh
# prints them when it ends), the total, and how often wasmtime was compiled:
# the lines cargo prints (one per cargo command that compiles any wasmtime)
# and the wasmtime libraries in the target dir (one per feature set).
#
#   bash scripts/ci-times.sh              # clone into a new folder under /tmp
#   bash scripts/ci-times.sh /work/ci-x   # or into this one (must not exist)
#
# The clone is left in place, its log in ci.log beside it. Nothing else may
# use the cores meanwhile if the times are to be quoted.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$(mktemp -d /tmp/sandlink-ci.XXXXXX)/sandlink}
git clone -q "$here" "$dir"
log="$dir/../ci.log"
echo "ci-times: $(git -C "$dir" log --oneline -1) in $dir" >&2
start=$SECONDS
status=0
(cd "$dir" && CI=true bash .ci/run </dev/null) >"$log" 2>&1 || status=$?
took=$((SECONDS - start))
sed -n '/^test.sh: phase times/,$p' "$log"
printf 'ci-times: exit status %s after %d s (%d min %d s); log: %s\n' \
    "$status" "$took" $((took / 60)) $((took % 60)) "$log"
printf 'ci-times: "Compiling wasmtime v" lines: %s; wasmtime libraries built: %s\n' \
    "$(grep -c 'Compiling wasmtime v' "$log" || true)" \
    "$(find "$dir/target" -name 'libwasmtime-*.rlib' 2>/dev/null | wc -l)"
exit "$status"
