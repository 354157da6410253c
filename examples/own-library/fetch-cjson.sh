#!/usr/bin/env bash
# Fetches cJSON's source from Debian's source package (bookworm main) into
# .deps/cjson, the way Sandlink fetches expat. Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/../../scripts/fetch-debian-source.sh" cjson 1.7 "$here/.deps/cjson" cJSON.c
