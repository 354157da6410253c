#!/usr/bin/env bash
# Fetches expat 2.5.0's source from Debian's source package into .deps/expat
# (ignored by git: the project keeps only code written here). Idempotent.
#
# apt runs with a private source list holding one deb-src line for bookworm
# main, on the same mirror as the system's own apt sources; the system's apt
# configuration is not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.deps/expat
[[ -f $dest/lib/xmlparse.c ]] && exit 0

# The mirror: the URI of the system source that serves bookworm main.
mirror=$(awk '
    /^[[:space:]]*$/ { if (uri != "" && suites ~ /(^| )bookworm( |$)/ && comps ~ /main/) { print uri; exit } uri = suites = comps = ""; next }
    /^URIs:/       { uri = $2 }
    /^Suites:/     { $1 = ""; suites = $0 " " }
    /^Components:/ { $1 = ""; comps = $0 }
    END { if (uri != "" && suites ~ /(^| )bookworm( |$)/ && comps ~ /main/) print uri }
' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
if [[ -z $mirror ]]; then
    mirror=$(awk '$1 == "deb" && $3 == "bookworm" && / main/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n1)
fi
if [[ -z $mirror ]]; then
    echo "fetch-expat: no bookworm main mirror found in the system's apt sources" >&2
    exit 1
fi
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/src"
echo "deb-src [signed-by=$keyring] $mirror bookworm main" > "$tmp/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$tmp/lists" -o APT::Sandbox::User=root)
echo "fetch-expat: fetching expat's Debian source package from $mirror" >&2
apt-get -qq "${apt_opts[@]}" update >/dev/null
(cd "$tmp/src" && apt-get -qq "${apt_opts[@]}" source expat >/dev/null 2>&1)
src=$(find "$tmp/src" -maxdepth 1 -type d -name 'expat-2.5.0*' | head -n1)
if [[ -z $src ]]; then
    echo "fetch-expat: apt-get source expat did not produce expat-2.5.0 (got: $(ls "$tmp/src"))" >&2
    exit 1
fi
version=$(head -n1 "$src/debian/changelog" | sed -E 's/.*\(([^)]*)\).*/\1/')
# Debian's tree has the library under expat/ in some versions, at the top in others.
[[ -f $src/expat/lib/xmlparse.c ]] && src=$src/expat
mkdir -p .deps
rm -rf "$dest"
cp -r "$src" "$dest"
echo "$version" > "$dest/DEBIAN_VERSION"
echo "fetch-expat: expat $version source in $dest" >&2
