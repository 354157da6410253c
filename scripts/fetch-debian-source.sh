#!/usr/bin/env bash
# Fetches a Debian source package (bookworm main) and copies its tree to DEST.
# Idempotent: does nothing when DEST/CHECK exists.
#
#   usage: fetch-debian-source.sh PACKAGE VERSION-PREFIX DEST CHECK
#     e.g. fetch-debian-source.sh cjson 1.7 examples/own-library/.deps/cjson cJSON.c
#
# apt runs with a private source list, in a temporary directory, holding one
# deb-src line for bookworm main on the same mirror as the system's own apt
# sources (read from them, not hard-coded). The system's apt configuration is
# not touched. DEST/DEBIAN_VERSION records the exact version fetched.
set -euo pipefail
if (($# != 4)); then
    echo "usage: $0 PACKAGE VERSION-PREFIX DEST CHECK" >&2
    exit 2
fi
package=$1 version_prefix=$2 dest=$3 check=$4
[[ -f $dest/$check ]] && exit 0

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
    echo "fetch-debian-source: no bookworm main mirror found in the system's apt sources" >&2
    exit 1
fi
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/src"
echo "deb-src [signed-by=$keyring] $mirror bookworm main" > "$tmp/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$tmp/lists" -o APT::Sandbox::User=root)
echo "fetch-debian-source: fetching $package's Debian source package from $mirror" >&2
apt-get -qq "${apt_opts[@]}" update >/dev/null
if ! (cd "$tmp/src" && apt-get -qq "${apt_opts[@]}" source "$package" >"$tmp/log" 2>&1); then
    echo "fetch-debian-source: apt-get source $package failed:" >&2
    cat "$tmp/log" >&2
    exit 1
fi
src=$(find "$tmp/src" -maxdepth 1 -type d -name "$package-$version_prefix*" | head -n1)
if [[ -z $src ]]; then
    echo "fetch-debian-source: apt-get source $package did not produce $package-$version_prefix* (got: $(ls "$tmp/src"))" >&2
    exit 1
fi
version=$(head -n1 "$src/debian/changelog" | sed -E 's/.*\(([^)]*)\).*/\1/')
# Some packages keep the library one level down (expat/ in expat's tree).
if [[ ! -f $src/$check ]]; then
    for sub in "$src"/*/; do
        if [[ -f $sub/$check ]]; then
            src=${sub%/}
            break
        fi
    done
fi
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
cp -r "$src" "$dest"
echo "$version" > "$dest/DEBIAN_VERSION"
if [[ ! -f $dest/$check ]]; then
    echo "fetch-debian-source: $package $version has no $check at the top of its tree" >&2
    exit 1
fi
echo "fetch-debian-source: $package $version source in $dest" >&2
