#!/usr/bin/env bash
# Fetches expat 2.5.0's source from Debian's source package into .deps/expat
# (ignored by git: the project keeps only code written here). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/fetch-debian-source.sh expat 2.5.0 .deps/expat lib/xmlparse.c
