#!/usr/bin/env bash
# The fault tests (tests/faults.rs, ignored by the main suite), one at a time: hubmirror killed with SIGKILL mid-stream, the
# source or the target frozen, connections to the Event Hubs emulator cut, the emulator restarted.
# Installs the test broker when missing; prints each test's `FAULT ...` summary line at the end.
#   FAULT_SEED=<n>   repeats the kill test's random kill moments (the test prints its seed)
#   FAULT_DEBUG=1    prints hubmirror's log after each recovery
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

TANSU_BIN="$(scripts/install-tansu.sh)"
export TANSU_BIN

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked --test faults -- --ignored --test-threads 1 --nocapture 2>&1 | tee "$log" || status=$?
echo "fault tests took $(( $(date +%s) - start )) s"
echo "== fault summary"
grep -o 'FAULT .*' "$log" || echo "(no FAULT line: no fault test got to its summary)"
exit "$status"
