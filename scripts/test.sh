#!/usr/bin/env bash
# The whole test suite: set-up (idempotent), then every crate's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Each strategy's feature alone, as a user who wants only that one builds it:
# a sandbox-only build must not pull in libffi or libloading, a dynamic-only
# build no wasmtime, a process-only build neither (its worker is C, with the
# system's libffi, built by sandlink's build script), a stubs-only build none
# of them (its calls go through generated C), and no feature at all is the
# binding vocabulary and the recorder that build scripts use.
cargo check -p sandlink --locked --no-default-features
for feature in sandbox dynamic process stubs; do
    cargo check -p sandlink --locked --no-default-features --features "$feature"
done
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
# Each crate meant for the registry builds from its packaged files alone.
# The verification builds them as registry crates, whose artifacts cargo
# never rebuilds for a changed source of the same version: it gets its own
# target dir, where our crates' fingerprints are dropped first (and the
# copies an earlier run unpacked into cargo's registry cache go too).
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/{src,cache}/*/sandlink-{guest-shim,build}-[0-9]* \
    "${CARGO_HOME:-$HOME/.cargo}"/registry/{src,cache}/*/sandlink-[0-9]* \
    target/package-verify/debug/.fingerprint/sandlink-*
CARGO_TARGET_DIR="$PWD/target/package-verify" \
    cargo package --allow-dirty -p sandlink-guest-shim -p sandlink-build -p sandlink
cargo test --workspace --locked
# sandlink-expat's `native` feature: its own shared object and stubs parse
# as its embedded module does.
cargo test --locked -p sandlink-expat --features native --test native
# The callbacks of Dynamic, Stubs and Sandbox again, under valgrind: a use
# after free in the host (a closure that drops its own handle while C runs
# it, say) is an error here, where a plain run could pass by luck. The
# Sandbox's pool is shrunk: valgrind cannot reserve 4 GiB per slot for the
# default 1000 slots.
host=$(rustc -vV | sed -n 's/^host: //p')
runner_var="CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$host")_RUNNER"
for strategy in dynamic stubs sandbox; do
    env "$runner_var=valgrind --error-exitcode=1 -q" SANDLINK_TEST_MAX_INSTANCES=4 \
        cargo test --locked -p sandlink-tests --test "$strategy" -- callback
done
# Users' crates outside the workspace, sharing one target dir (so wasmtime
# is built once for both):
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
export CARGO_TARGET_DIR="$PWD/target/standalone"
cargo run --release --locked --manifest-path examples/own-library/Cargo.toml
cargo run --release --locked --manifest-path examples/outside-expat/Cargo.toml
cargo run --release --locked --manifest-path examples/lua/Cargo.toml
cargo run --release --locked --manifest-path examples/zlib/Cargo.toml
# The fuzz targets (their own workspace) must keep compiling: an API change
# that breaks one fails here, not months later (running them is
# scripts/fuzz.sh's job).
cargo check --locked --manifest-path fuzz/Cargo.toml --bins
unset CARGO_TARGET_DIR
