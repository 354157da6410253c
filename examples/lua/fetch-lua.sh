#!/usr/bin/env bash
# Fetches Lua 5.4's source from Debian's source package lua5.4 (bookworm
# main) into .deps/lua5.4. Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/../../scripts/fetch-debian-source.sh" lua5.4 5.4 "$here/.deps/lua5.4" src/lapi.c
