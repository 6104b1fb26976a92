#!/usr/bin/env bash
# The benchmark (issue 7): hubmirror against a consume-only ceiling and a naive Python pipe, on
# two loopback tansu brokers, plus a latency run; see bench/run.py for what is measured and how.
# Arguments go to bench/run.py (e.g. --only ceiling,hubmirror --records100 100000).
# Prints the tables and writes them, with the machine description, to bench/out/latest.md.
set -euo pipefail
cd "$(dirname "$0")/.."

TANSU_BIN="$(scripts/install-tansu.sh)"
export TANSU_BIN
python3 -c 'import confluent_kafka' 2>/dev/null || python3 -m pip install --quiet confluent-kafka
cargo build --release --locked --bin hubmirror --example bench_client
exec python3 bench/run.py "$@"
