#!/usr/bin/env bash
# The whole test suite: installs the test broker when missing, checks formatting and lints,
# then runs every unit and integration test (integration tests start their own brokers).
set -euo pipefail
cd "$(dirname "$0")/.."

TANSU_BIN="$(scripts/install-tansu.sh)"
export TANSU_BIN

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
# Integration tests each start brokers; two at a time fit 2 cores.
cargo test --locked -- --test-threads "${HUBMIRROR_TEST_THREADS:-2}"
