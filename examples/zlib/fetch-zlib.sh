#!/usr/bin/env bash
# Fetches zlib's source from Debian's source package (bookworm main) into
# .deps/zlib, the way Sandlink fetches expat. Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/../../scripts/fetch-debian-source.sh" zlib 1.2 "$here/.deps/zlib" zlib.h
