#!/usr/bin/env bash
# Installs what Sandlink's builds and tests need. Idempotent: when everything
# is in place it checks and prints nothing.
#
#   Debian packages: a C compiler and libffi (Dynamic strategy), a C++
#   compiler (libFuzzer, which the fuzz targets' check builds), clang-19 with
#   lld and wasi-libc (C libraries compiled to wasm32-wasi for the Sandbox
#   strategy), expat's headers and library (native comparisons), valgrind (the
#   Dynamic strategy's callbacks are checked under it), libclang (the
#   header generator, `sandlink-build`'s `generate` feature, loads it at run
#   time), python3 (examples/zlib checks its output against Python's zlib).
set -euo pipefail

packages=(
    gcc g++ libc6-dev pkg-config libffi-dev dpkg-dev
    clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32 libclang1-19
    libexpat1 libexpat1-dev
    valgrind
    python3
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        sudo=sudo
    else
        sudo=
    fi
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >/dev/null
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo is not on PATH; install Rust (stable) with rustup first" >&2
    exit 1
fi

# expat 2.5.0's source, from Debian's source package; cJSON's, for the
# examples/own-library crate; Lua 5.4's, for examples/lua; zlib's, for
# examples/zlib.
bash "$(dirname "$0")/fetch-expat.sh"
bash "$(dirname "$0")/../examples/own-library/fetch-cjson.sh"
bash "$(dirname "$0")/../examples/lua/fetch-lua.sh"
bash "$(dirname "$0")/../examples/zlib/fetch-zlib.sh"
