#!/usr/bin/env bash
# The whole test suite: set-up (idempotent), then every crate's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Phase times, printed at the end (also when a step fails), so that a note
# can quote which step took how long: `bash scripts/test.sh 2>&1 | tail -20`.
phases=()
phase_name=
phase_start=$SECONDS
phase() {
    if [[ -n $phase_name ]]; then
        phases+=("$(printf '%6ds  %s' $((SECONDS - phase_start)) "$phase_name")")
    fi
    phase_name=$1
    phase_start=$SECONDS
    if [[ -n $1 ]]; then echo "test.sh: == $1" >&2; fi
}
started=$(mktemp)
report() {
    # The exit status: the argument when given, else the one the trap saw.
    local rc=${1:-$?}
    phase ""
    {
        echo "test.sh: phase times (exit status $rc)"
        printf '  %s\n' "${phases[@]}"
        printf '  %6ds  total\n' "$SECONDS"
        # From an empty target dir this is 2: the program's wasmtime and the
        # build scripts' (sandlink-build's `precompile`). More means some
        # build asked wasmtime's dependencies for other features.
        echo "test.sh: wasmtime compiled $(find "${CARGO_TARGET_DIR:-target}" -name 'libwasmtime-*.rlib' \
            -newer "$started" 2>/dev/null | wc -l) time(s) in this run"
    } >&2
    rm -f "$started"
}
trap report EXIT

# One target dir and one profile (dev, dependencies at opt-level 2: see
# Cargo.toml) for every build below, the crates outside the workspace
# included: a dependency compiled with the same features is compiled once.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

phase "set-up"
bash scripts/setup.sh
phase "each strategy's feature alone"
# Each strategy's feature alone, as a user who wants only that one builds it:
# a sandbox-only build must not pull in libffi or libloading, a dynamic-only
# build no wasmtime, a process-only build neither (its worker is C, with the
# system's libffi, built by sandlink's build script), a stubs-only build none
# of them (its calls go through generated C), and no feature at all is the
# binding vocabulary and the recorder that build scripts use.
cargo build -p sandlink --locked --no-default-features
for feature in dynamic process stubs; do
    cargo build -p sandlink --locked --no-default-features --features "$feature"
done
# The sandbox feature alone, through sandlink-expat's `precompiled` feature
# alone, which turns on sandlink's `sandbox` and nothing else. Its build
# script runs wasmtime (sandlink-build's `precompile`), as the examples' and
# the packaged crates' below do: the crates outside the workspace then find
# this wasmtime, build script's and program's, already compiled.
cargo build -p sandlink -p sandlink-expat --locked --no-default-features \
    --features sandlink-expat/precompiled
only() {
    cargo tree -p sandlink --locked --no-default-features --features "$1" -e normal --prefix none
}
sandbox_deps=$(only sandbox)
dynamic_deps=$(only dynamic)
process_deps=$(only process)
stubs_deps=$(only stubs)
if grep -Eq '^(libffi|libloading)' <<<"$sandbox_deps" || ! grep -q '^wasmtime ' <<<"$sandbox_deps"; then
    echo "test.sh: the sandbox feature alone must build wasmtime and neither libffi nor libloading" >&2
    exit 1
fi
if grep -q '^wasmtime' <<<"$dynamic_deps" || ! grep -q '^libffi-sys ' <<<"$dynamic_deps"; then
    echo "test.sh: the dynamic feature alone must build libffi and no wasmtime" >&2
    exit 1
fi
if grep -Eq '^(wasmtime|libffi|libloading)' <<<"$process_deps" || ! grep -q '^seccompiler ' <<<"$process_deps"; then
    echo "test.sh: the process feature alone must build seccompiler and no wasmtime, libffi-sys or libloading" >&2
    exit 1
fi
if grep -Eq '^(wasmtime|libffi|libloading|seccompiler)' <<<"$stubs_deps"; then
    echo "test.sh: the stubs feature alone must build no wasmtime, libffi, libloading or seccompiler" >&2
    exit 1
fi
# The runtime shares only the ABI crate with the build library: no cc, no
# stub generator in a user's runtime build.
if cargo tree -p sandlink --locked -e normal --prefix none | grep -Eq '^(cc|sandlink-build) '; then
    echo "test.sh: the runtime crate must not depend on cc or sandlink-build" >&2
    exit 1
fi
# The benchmarks' crate is left out of every workspace build (see
# benches/Cargo.toml): criterion would change wasmtime's feature set.
phase "the workspace's tests"
ws=(--workspace --exclude sandlink-benches --locked)
# The variable that runs test binaries through a wrapper (setpriv,
# valgrind).
host=$(rustc -vV | sed -n 's/^host: //p')
runner_var="CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$host")_RUNNER"
cargo test "${ws[@]}"
# The Process worker's confinement again with the host as an ordinary user:
# several acts of a hostile library only reach a host that is not root
# (the worker then keeps the host's uid). As root, the tests run as
# `nobody` through setpriv; the directories leading to the test binaries
# and the libraries they load must let `nobody` through, so any that do not
# get o+x for the run, restored at exit.
phase "Process confinement as an ordinary user"
if [[ $(id -u) -eq 0 ]]; then
    user=65534
    restore=()
    dir=$CARGO_TARGET_DIR
    while [[ $dir != / ]]; do
        if ! setpriv --reuid=$user --regid=$user --clear-groups -- test -x "$dir"; then
            restore+=("$(stat -c %a "$dir") $dir")
            chmod o+x "$dir"
        fi
        dir=$(dirname "$dir")
    done
    restore_modes() {
        local entry
        for entry in "${restore[@]}"; do chmod "${entry%% *}" "${entry#* }"; done
    }
    restore_then_report() {
        local rc=$?
        restore_modes
        report "$rc"
    }
    trap restore_then_report EXIT
    env "$runner_var=setpriv --reuid=$user --regid=$user --clear-groups --" \
        cargo test "${ws[@]}" --test process_confinement --test process_isolation
    restore_modes
    restore=()
    trap report EXIT
fi
# sandlink-expat's `native` feature: its own shared object and stubs parse
# as its embedded module does. `--workspace` with the one test keeps the
# workspace's feature set for every other crate, so only sandlink-expat is
# built again.
phase "sandlink-expat's native feature"
cargo test "${ws[@]}" --features sandlink-expat/native --test native
# The callbacks of Dynamic, Stubs and Sandbox again, under valgrind: a use
# after free in the host (a closure that drops its own handle while C runs
# it, say) is an error here, where a plain run could pass by luck. The
# Sandbox's pool is shrunk: valgrind cannot reserve 4 GiB per slot for the
# default 1000 slots.
phase "callbacks under valgrind"
for strategy in dynamic stubs sandbox; do
    env "$runner_var=valgrind --error-exitcode=1 -q" SANDLINK_TEST_MAX_INSTANCES=4 \
        cargo test "${ws[@]}" --test "$strategy" -- callback
done
# Each crate meant for the registry builds from its packaged files alone.
# `cargo package --no-verify` writes the .crate files; they are unpacked
# beside a throwaway crate that uses them as a user's would (sandlink, and
# sandlink-build with `precompile` in its build script), through a [patch]
# (they name each other by version, as on the registry). It is built with
# this workspace's lock file, profile and target dir: the dependencies are
# the ones already compiled, and only the packaged crates are built again,
# from what a user would download.
phase "the packaged crates, from their packaged files"
packaged=(sandlink-guest-shim sandlink-build sandlink)
cargo package --locked --no-verify --allow-dirty "${packaged[@]/#/-p}"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
check="$CARGO_TARGET_DIR/package-check"
rm -rf "$check"
mkdir -p "$check/src"
for crate in "${packaged[@]}"; do
    tar -xzf "$CARGO_TARGET_DIR/package/$crate-$version.crate" -C "$check"
done
{
    cat <<EOF
[package]
name = "packaged-crates-user"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
sandlink = "=$version"

[build-dependencies]
sandlink-build = { version = "=$version", features = ["precompile"] }

[workspace]

[patch.crates-io]
EOF
    for crate in "${packaged[@]}"; do
        echo "$crate = { path = \"$crate-$version\" }"
    done
    # The workspace's profile, so that the dependencies are shared.
    sed -n '/^\[profile\./,$p' Cargo.toml
} >"$check/Cargo.toml"
echo 'fn main() { let _ = sandlink_build::Library::new("user"); }' >"$check/build.rs"
echo 'fn main() { let _ = sandlink::SandboxConfig::default(); }' >"$check/src/main.rs"
cp Cargo.lock "$check/"
cargo build --manifest-path "$check/Cargo.toml"
# Users' crates outside the workspace, in the same target dir and profile
# (their manifests repeat the workspace's profile), so wasmtime is not built
# again for them:
# - own-library builds cJSON with sandlink-build (wasm module, shared
#   object, stubs checked against cJSON.h) and checks that Dynamic, Stubs
#   and Sandbox agree;
# - outside-expat depends on sandlink-expat alone and parses a document with
#   the expat embedded in it, sandboxed, checking every event;
# - lua builds Lua 5.4 from Debian's source, unmodified, and runs scripts
#   whose errors are setjmp/longjmp through all four strategies (which must
#   agree), then an endless loop and a memory bomb on the Sandbox;
# - zlib generates its bindings from zlib.h (sandlink-build's generator,
#   libclang) and runs deflate/inflate, compress2/uncompress, crc32 and
#   adler32 through all four strategies, checking each against Python's zlib.
phase "users' crates outside the workspace"
for example in own-library outside-expat lua zlib; do
    cargo run --locked --manifest-path "examples/$example/Cargo.toml"
done
# The fuzz targets (their own workspace) must keep compiling: an API change
# that breaks one fails here, not months later (running them is
# scripts/fuzz.sh's job, with its own flags and target dir).
phase "the fuzz targets compile"
cargo build --locked --manifest-path fuzz/Cargo.toml --bins
