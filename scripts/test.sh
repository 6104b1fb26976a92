#!/usr/bin/env bash
# The whole test suite: installs the test broker when missing, checks formatting and lints,
# then runs every unit and integration test of the workspace (integration tests start their own
# brokers). The fault suite is separate: scripts/test-faults.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

TANSU_BIN="$(scripts/install-tansu.sh)"
export TANSU_BIN

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
# Integration tests each start brokers; two at a time fit 2 cores.
log="$(mktemp)"
status=0
cargo test --workspace --locked --all-targets --no-fail-fast -- --test-threads "${HUBMIRROR_TEST_THREADS:-2}" 2>&1 | tee "$log" || status=$?
echo "suite took $(( $(date +%s) - start )) s"
# One closing line for the whole suite.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
rm -f "$log"
exit "$status"
