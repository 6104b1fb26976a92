#!/usr/bin/env bash
# Install the test broker, tansu 0.6.0 with the in-memory storage engine, into a cached
# location. A no-op when it is already there. Prints the path of the binary on stdout.
#
#   TANSU_HOME   where to install (default: ${XDG_CACHE_HOME:-$HOME/.cache}/hubmirror/tansu-0.6.0)
set -euo pipefail

version=0.6.0
root="${TANSU_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/hubmirror/tansu-$version}"
bin="$root/bin/tansu"

if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$version"; then
  echo "$bin"
  exit 0
fi

echo "installing tansu $version into $root (takes about 8-9 minutes on 2 cores)" >&2
mkdir -p "$root"
# `dynostore` brings the memory:// storage engine; without a storage feature tansu refuses to start.
cargo install tansu --version "$version" --locked --features dynostore --root "$root" >&2
"$bin" --version >&2
echo "$bin"
