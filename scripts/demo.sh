#!/usr/bin/env bash
# The seed scenario on one machine: an on-prem Kafka (tansu on localhost:9092), an Event Hubs
# namespace (the emulator on localhost:9093: TLS + SASL PLAIN with a connection string, in
# front of a second tansu on 19093), `hubmirror run` with the top-level topology.yaml, two JSON
# records produced on-prem and read back from the Event Hubs side with their headers, then
# `hubmirror status`. Stops everything it started, and only that.
#
# Before starting anything it checks that its ports are free; a port in use (a broker of yours,
# another demo) makes it stop without touching it. Any of them can be moved:
#   DEMO_ONPREM_PORT=9092  DEMO_EVENTHUB_PORT=9093  DEMO_EVENTHUB_BROKER_PORT=19093
#   DEMO_METRICS_PORT=9464 (hubmirror's metrics.listen; `hubmirror status` asks it)
# Also:
#   DEMO_DIR=.demo          logs, the emulator's CA and hubmirror's store (emptied at start)
#   DEMO_TOPOLOGY=topology.yaml   the topology `hubmirror run` and `hubmirror status` read
#   DEMO_BIN_DIR=<dir>      use the hubmirror and hubmirror-emulator binaries there instead of
#                           building them (cargo build --workspace --bins, into target/debug)
# The defaults are relative to the repository; paths given are relative to where you run it.
set -euo pipefail
here=$PWD
cd "$(dirname "$0")/.."
given() { # path as given by the user: relative to where the demo was started
  case "$1" in /*) echo "$1" ;; *) echo "$here/$1" ;; esac
}

say() { echo "== $*"; }
fail() { echo "demo: $*" >&2; exit 1; }

# --- ports: all free before anything starts ----------------------------------------------------
port_vars=(DEMO_ONPREM_PORT DEMO_EVENTHUB_PORT DEMO_EVENTHUB_BROKER_PORT DEMO_METRICS_PORT)
port_defaults=(9092 9093 19093 9464)
port_roles=("the on-prem broker" "the Event Hubs emulator" "the Event Hubs side's broker" "hubmirror's metrics")
for i in "${!port_vars[@]}"; do
  var=${port_vars[$i]}
  printf -v "$var" '%s' "${!var:-${port_defaults[$i]}}"
  value=${!var}
  [[ $value =~ ^[0-9]{1,5}$ ]] && ((10#$value >= 1 && 10#$value <= 65535)) \
    || fail "$var=$value is not a port number (1-65535)"
  value=$((10#$value))
  printf -v "$var" '%s' "$value"
  for ((j = 0; j < i; j++)); do
    [ "${!port_vars[$j]}" != "$value" ] || fail "$var and ${port_vars[$j]} are both $value: give each its own port"
  done
done
command -v python3 >/dev/null || fail "python3 is needed (the demo's Kafka client is Python)"
port_in_use() { # port: true when 127.0.0.1:<port> cannot be bound; never connects to anything
  ! python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}
busy=0
for i in "${!port_vars[@]}"; do
  var=${port_vars[$i]}
  if port_in_use "${!var}"; then
    echo "demo: port ${!var} (${port_roles[$i]}) is in use by a process the demo did not start;" \
      "stop it, or run the demo on another port: $var=<free port> scripts/demo.sh" >&2
    busy=1
  fi
done
[ "$busy" = 0 ] || fail "nothing was started: the demo never touches a broker it did not start"
export DEMO_ONPREM_PORT DEMO_EVENTHUB_PORT DEMO_EVENTHUB_BROKER_PORT DEMO_METRICS_PORT

demo=.demo
[ -z "${DEMO_DIR:-}" ] || demo=$(given "$DEMO_DIR")
topology=topology.yaml
[ -z "${DEMO_TOPOLOGY:-}" ] || topology=$(given "$DEMO_TOPOLOGY")
[ -f "$topology" ] || fail "no topology file $topology"
# The topology reads ${DEMO_DIR:-./.demo} relative to its own directory: hand it an absolute path.
case "$demo" in /*) DEMO_DIR=$demo ;; *) DEMO_DIR=$PWD/$demo ;; esac
export DEMO_DIR

# --- the processes the demo starts: watched, reported when they die, stopped at exit -----------
names=() pids=() logs=()
helpers=() # short-lived clients: stopped at exit, not watched
cleanup() {
  for pid in "${helpers[@]}" "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

started() { # name pid log
  names+=("$1") pids+=("$2") logs+=("$3")
}

reaped() { # pid: once waited for, its number may be reused: never signal it again
  for i in "${!pids[@]}"; do [ "${pids[$i]}" != "$1" ] || unset "pids[$i]"; done
  for i in "${!helpers[@]}"; do [ "${helpers[$i]}" != "$1" ] || unset "helpers[$i]"; done
}

# Exits with the name, exit status and last log line of the first started process that is gone.
check_alive() {
  for i in "${!pids[@]}"; do
    kill -0 "${pids[$i]}" 2>/dev/null && continue
    local status=0
    wait "${pids[$i]}" || status=$?
    reaped "${pids[$i]}"
    local last
    last=$(grep -v '^[[:space:]]*$' "${logs[$i]}" 2>/dev/null | tail -n 1)
    echo "demo: ${names[$i]} exited with status $status (log: ${logs[$i]}); its last line:" >&2
    echo "    ${last:-(nothing logged)}" >&2
    exit 1
  done
}

wait_port() { # port what
  for _ in $(seq 1 300); do
    check_alive
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  fail "$2 did not start on 127.0.0.1:$1 within 30 s"
}

rm -rf "$demo" && mkdir -p "$demo/certs"

# --- tools -------------------------------------------------------------------------------------
say "installing the test broker when missing (tansu, scripts/install-tansu.sh)"
tansu="$(scripts/install-tansu.sh)"
python3 -c "import confluent_kafka" 2>/dev/null || {
  say "installing the demo's Python Kafka client (pip install confluent-kafka)"
  python3 -m pip install --quiet confluent-kafka >&2
}
if [ -n "${DEMO_BIN_DIR:-}" ]; then
  bin=$(given "$DEMO_BIN_DIR")
  say "using the binaries in $bin"
else
  say "compiling hubmirror and the Event Hubs emulator (cargo build --workspace --bins; the first build takes several minutes)"
  cargo build --locked --workspace --bins
  bin=target/debug
fi

# --- the on-prem Kafka and the Event Hubs namespace ----------------------------------------------
say "starting the on-prem broker (tansu, localhost:$DEMO_ONPREM_PORT)"
"$tansu" broker --listener-url "tcp://127.0.0.1:$DEMO_ONPREM_PORT" \
  --advertised-listener-url "tcp://localhost:$DEMO_ONPREM_PORT" \
  --storage-engine memory://onprem/ >"$demo/onprem.log" 2>&1 &
started "the on-prem broker" $! "$demo/onprem.log"

say "starting the Event Hubs emulator (localhost:$DEMO_EVENTHUB_PORT, in front of tansu on $DEMO_EVENTHUB_BROKER_PORT)"
key="$(head -c 32 /dev/urandom | base64)"
export EMULATOR_SHARED_ACCESS_KEY="$key"
"$bin/hubmirror-emulator" --listen "127.0.0.1:$DEMO_EVENTHUB_PORT" \
  --upstream "127.0.0.1:$DEMO_EVENTHUB_BROKER_PORT" --cert-dir "$demo/certs" \
  --key-name RootManageSharedAccessKey >"$demo/emulator.out" 2>"$demo/emulator.log" &
started "the Event Hubs emulator" $! "$demo/emulator.log"
"$tansu" broker --listener-url "tcp://127.0.0.1:$DEMO_EVENTHUB_BROKER_PORT" \
  --advertised-listener-url "tcp://localhost:$DEMO_EVENTHUB_PORT" \
  --storage-engine memory://eventhub/ >"$demo/eventhub.log" 2>&1 &
started "the Event Hubs side's broker" $! "$demo/eventhub.log"
wait_port "$DEMO_ONPREM_PORT" "the on-prem broker"
wait_port "$DEMO_EVENTHUB_BROKER_PORT" "the Event Hubs side's broker"
wait_port "$DEMO_EVENTHUB_PORT" "the Event Hubs emulator"
export EVENTHUB_CONNECTION_STRING="Endpoint=sb://localhost:$DEMO_EVENTHUB_PORT/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=$key"

say "creating topic testeh on-prem"
python3 scripts/demo_client.py create --bootstrap "localhost:$DEMO_ONPREM_PORT" --topic testeh

# --- hubmirror ---------------------------------------------------------------------------------
say "hubmirror run -c $topology (log: $demo/hubmirror.log)"
"$bin/hubmirror" run -c "$topology" >"$demo/hubmirror.log" 2>&1 &
hubmirror=$!
started hubmirror "$hubmirror" "$demo/hubmirror.log"

say "producing two records on-prem"
python3 scripts/demo_client.py produce --bootstrap "localhost:$DEMO_ONPREM_PORT" --topic testeh
check_alive

say "reading them back from the Event Hubs side (through the emulator, with the connection string)"
python3 scripts/demo_client.py consume --bootstrap "localhost:$DEMO_EVENTHUB_PORT" --topic testeh \
  --connection-string "$EVENTHUB_CONNECTION_STRING" --ca-file "$demo/certs/ca.pem" &
reader=$!
helpers+=("$reader")
# While the reader waits, a process that dies (hubmirror above all) is reported at once.
while kill -0 "$reader" 2>/dev/null; do
  check_alive
  sleep 0.2
done
reader_status=0
wait "$reader" || reader_status=$?
reaped "$reader"
check_alive
[ "$reader_status" = 0 ] || fail "the records did not arrive on the Event Hubs side (hubmirror log: $demo/hubmirror.log)"

say "hubmirror status -c $topology (what the running hubmirror reports)"
status=0
"$bin/hubmirror" status -c "$topology" || status=$?
[ "$status" = 0 ] || fail "hubmirror status exited with status $status"

say "stopping hubmirror (SIGTERM)"
kill -TERM "$hubmirror"
status=0
wait "$hubmirror" || status=$?
reaped "$hubmirror"
[ "$status" = 0 ] || fail "hubmirror exited with status $status after SIGTERM (log: $demo/hubmirror.log)"
echo "hubmirror exited 0"
