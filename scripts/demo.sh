#!/usr/bin/env bash
# The seed scenario on one machine: an on-prem Kafka (tansu on localhost:9092), an Event Hubs
# namespace (the emulator on localhost:9093: TLS + SASL PLAIN with a connection string, in
# front of a second tansu), `hubmirror run` with the top-level topology.yaml, two JSON records
# produced on-prem and read back from the Event Hubs side with their headers. Stops everything
# it started. Ports: 9092, 9093 and 19093 must be free.
set -euo pipefail
cd "$(dirname "$0")/.."

demo=.demo
rm -rf "$demo" && mkdir -p "$demo/certs"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_port() { # host port what
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "demo: $3 did not start on $1:$2" >&2; exit 1
}

tansu="$(scripts/install-tansu.sh)"
python3 -c "import confluent_kafka" 2>/dev/null || pip install --quiet confluent-kafka >&2
cargo build --quiet --workspace --bins
bin=target/debug

echo "== starting the on-prem broker (tansu, localhost:9092)"
"$tansu" broker --listener-url tcp://127.0.0.1:9092 --advertised-listener-url tcp://localhost:9092 \
  --storage-engine memory://onprem/ >"$demo/onprem.log" 2>&1 & pids+=($!)

echo "== starting the Event Hubs emulator (localhost:9093, in front of tansu on 19093)"
key="$(head -c 32 /dev/urandom | base64)"
export EMULATOR_SHARED_ACCESS_KEY="$key"
"$bin/hubmirror-emulator" --listen 127.0.0.1:9093 --upstream 127.0.0.1:19093 --cert-dir "$demo/certs" \
  --key-name RootManageSharedAccessKey >"$demo/emulator.out" 2>"$demo/emulator.log" & pids+=($!)
"$tansu" broker --listener-url tcp://127.0.0.1:19093 --advertised-listener-url tcp://localhost:9093 \
  --storage-engine memory://eventhub/ >"$demo/eventhub.log" 2>&1 & pids+=($!)
wait_port 127.0.0.1 9092 "on-prem broker"
wait_port 127.0.0.1 19093 "Event Hubs broker"
wait_port 127.0.0.1 9093 "Event Hubs emulator"
export EVENTHUB_CONNECTION_STRING="Endpoint=sb://localhost:9093/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=$key"

echo "== creating topic testeh on-prem"
python3 scripts/demo_client.py create --bootstrap localhost:9092 --topic testeh

echo "== hubmirror run -c topology.yaml (log: $demo/hubmirror.log)"
"$bin/hubmirror" run -c topology.yaml >"$demo/hubmirror.log" 2>&1 & hubmirror=$!; pids+=($hubmirror)

echo "== producing two records on-prem"
python3 scripts/demo_client.py produce --bootstrap localhost:9092 --topic testeh

echo "== reading them back from the Event Hubs side (through the emulator, with the connection string)"
python3 scripts/demo_client.py consume --bootstrap localhost:9093 --topic testeh \
  --connection-string "$EVENTHUB_CONNECTION_STRING" --ca-file "$demo/certs/ca.pem"

echo "== stopping hubmirror (SIGTERM)"
kill -TERM "$hubmirror"
wait "$hubmirror" && echo "hubmirror exited 0"
