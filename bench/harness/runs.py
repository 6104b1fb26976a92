"""The measured runs: the ceiling consumer and the naive pipe (timed_client runs a client to
completion), hubmirror (its topology, start, progress from its metrics endpoint, stop, and the
read-back check of the target), and the latency run with its baseline; each returns the row
(result) or the figures that the report renders.
"""

import json
import os
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from confluent_kafka.admin import AdminClient

from . import OUT, PARTITIONS, ROOT
from .brokers import Broker, create_topic, topic_ready
from .procs import free_port, log, reap, spawn, tail, try_reap, wait_until

CLIENT = ROOT / "target" / "release" / "examples" / "bench_client"


def result(run, size, n, seconds, ru, rss_kib, first_s):
    return {"run": run, "size": size, "records": n, "seconds": seconds, "first_s": first_s,
            "cpu": ru.ru_utime + ru.ru_stime, "rss_mib": rss_kib / 1024}


def timed_client(name, args, timeout):
    """Runs a client to completion; returns (seconds, rusage, its JSON output) and adds to the
    output `rss_kib` (the larger of the sampled VmHWM and the one the client reports at exit) and
    `first_s` (spawn to its first record, from the wall-clock `first_at` it reports)."""
    out, err = OUT / f"{name}.out", OUT / f"{name}.err"
    wall0, t0 = time.time(), time.monotonic()
    p = spawn(args, out, err)
    ru = reap(p, timeout)
    seconds = time.monotonic() - t0
    try:
        data = json.loads(out.read_text().strip().splitlines()[-1])
    except (IndexError, ValueError):
        data = {}
    if p.returncode != 0:
        raise RuntimeError(f"{name} exited {p.returncode}: {tail(err, 10)}")
    data["rss_kib"] = max(p.rss.kib, data.get("vmhwm_kib") or 0)
    data["first_s"] = data["first_at"] - wall0 if data.get("first_at") else None
    return seconds, ru, data


def run_ceiling(src, size, n, settings):
    """`settings`: "k=v,k=v" librdkafka settings for the consumer ("" = librdkafka defaults)."""
    sets = [a for kv in settings.split(",") if kv for a in ("--set", kv)]
    name = f"ceiling-{size}" + ("-tuned" if sets else "")
    seconds, ru, data = timed_client(
        name, [CLIENT, "consume", "--bootstrap", src.addr, "--topic", "bench", "--partitions",
               PARTITIONS, "--count", n, *sets], 180)
    if data.get("records") != n or data.get("bytes") != n * size:
        raise RuntimeError(f"ceiling read {data}, expected {n} records of {size} B")
    label = f"ceiling, rdkafka consume ({settings or 'librdkafka defaults'})"
    return result(label, size, n, seconds, ru, data["rss_kib"], data["first_s"])


def run_naive(src, dst, size, n):
    create_topic(dst.addr, "naive.bench")
    seconds, ru, data = timed_client(
        f"naive-{size}", [sys.executable, ROOT / "bench" / "naive_pipe.py", "--source", src.addr,
                          "--target", dst.addr, "--topic", "bench", "--to", "naive.bench",
                          "--count", n], 600)
    if data.get("records") != n:
        raise RuntimeError(f"naive pipe copied {data}, expected {n}")
    return result("naive pipe (python)", size, n, seconds, ru, data["rss_kib"], data["first_s"])


def client_yaml(settings, alias):
    """The `client:` block of cluster `alias` from --hubmirror-client (`alias:key=value,...`)."""
    pairs = [kv.split(":", 1)[1].split("=", 1) for kv in settings.split(",")
             if kv.startswith(alias + ":")]
    if not pairs:
        return ""
    return "\n    client:\n" + "".join(f'      {k}: "{v}"\n' for k, v in pairs).rstrip("\n")


def start_hubmirror(args, src, dst, workdir, logfile):
    metrics = f"127.0.0.1:{free_port()}"
    topology = Path(workdir) / "topology.yaml"
    topology.write_text(f"""clusters:
  src:
    bootstrap_servers: "{src.addr}"{client_yaml(args.hubmirror_client, "src")}
  dst:
    bootstrap_servers: "{dst.addr}"{client_yaml(args.hubmirror_client, "dst")}
flows:
  - source: src
    target: dst
    topics: ["bench"]
replication:
  policy: default
  create_topics: true
store:
  path: {Path(workdir) / "store"}
metrics:
  listen: {metrics}
""")
    env = dict(os.environ)
    env.setdefault("RUST_LOG", "info")
    return spawn([args.hubmirror_bin, "run", "-c", topology], logfile, env=env), metrics


def http_get(url):
    """(status, body) of a GET, or (None, '') when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:
        return None, ""


def replicated(metrics):
    _, body = http_get(f"http://{metrics}/metrics")
    total = 0
    for line in body.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name == "hubmirror_records_replicated_total":
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def stop_hubmirror(p, logfile):
    """SIGTERM, then the rusage of the whole run (killed if not gone within 15 s)."""
    if p.returncode is not None:
        raise RuntimeError(f"hubmirror exited early ({p.returncode}):\n{tail(logfile)}")
    p.send_signal(signal.SIGTERM)
    ru = reap(p, 15)
    if p.returncode != 0:
        log(f"WARNING: hubmirror exited {p.returncode} after SIGTERM (see {logfile})")
    return ru


def run_hubmirror(args, src, dst, size, n):
    logfile = OUT / f"hubmirror-{size}.log"
    with tempfile.TemporaryDirectory(prefix="hubmirror-bench-") as work:
        t0, first_s = time.monotonic(), None
        p, metrics = start_hubmirror(args, src, dst, work, logfile)
        while True:
            count = replicated(metrics)
            if count and first_s is None:
                first_s = time.monotonic() - t0
                first = (cpu_seconds(p.pid), count)
            if count >= n:
                seconds = time.monotonic() - t0
                # CPU per record once copying began: start-up (a group join) left out.
                steady = (cpu_seconds(p.pid) - first[0]) / max(count - first[1], 1)
                break
            if try_reap(p) is not None:
                raise RuntimeError(f"hubmirror exited {p.returncode}:\n{tail(logfile)}")
            if time.monotonic() - t0 > 300:
                raise RuntimeError(f"hubmirror replicated {replicated(metrics)} of {n} in 300 s:\n"
                                   f"{tail(logfile)}")
            time.sleep(0.01)
        ru = stop_hubmirror(p, logfile)
    _, _, data = timed_client(
        f"verify-{size}", [CLIENT, "consume", "--bootstrap", dst.addr, "--topic", "src.bench",
                           "--partitions", PARTITIONS, "--count", n, "--expect-exact",
                           "--set", "fetch.wait.max.ms=10"], 180)
    if data.get("records") != n or data.get("bytes") != n * size:
        raise RuntimeError(f"target src.bench holds {data}, expected {n} records of {size} B")
    return dict(result("hubmirror", size, n, seconds, ru, p.rss.kib, first_s), cpu_steady=steady)


def cpu_seconds(pid):
    """User + system CPU seconds of a running process so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latency_client(args, name, source, target, topic, remote, seconds):
    _, _, data = timed_client(
        name, [CLIENT, "latency", "--source", source, "--target", target, "--topic", topic,
               "--remote", remote, "--partitions", PARTITIONS, "--rate", args.rate, "--seconds",
               seconds, "--size", 100, "--linger-ms", args.linger_ms, "--fetch-wait-ms",
               args.fetch_wait_ms], seconds + 120)
    return data


def run_latency(args):
    base = None
    if args.baseline_seconds > 0:  # the same client without hubmirror, on a broker of its own
        broker = Broker("latency-baseline")
        try:
            create_topic(broker.addr, "bench")
            base = latency_client(args, "latency-baseline", broker.addr, broker.addr, "bench",
                                  "bench", args.baseline_seconds)
        finally:
            broker.stop()
    src, dst = Broker("src-latency"), Broker("dst-latency")
    logfile = OUT / "hubmirror-latency.log"
    try:
        create_topic(src.addr, "bench")
        with tempfile.TemporaryDirectory(prefix="hubmirror-bench-") as work:
            p, metrics = start_hubmirror(args, src, dst, work, logfile)
            admin = AdminClient({"bootstrap.servers": dst.addr, "log.connection.close": False})
            wait_until("hubmirror /readyz and target topic src.bench",
                       lambda: p.poll() is not None or (
                           http_get(f"http://{metrics}/readyz")[0] == 200
                           and topic_ready(admin, "src.bench")), 60, 0.1)
            if p.returncode is not None:
                raise RuntimeError(f"hubmirror exited {p.returncode}:\n{tail(logfile)}")
            data = latency_client(args, "latency", src.addr, dst.addr, "bench", "src.bench",
                                  args.seconds)
            ru = stop_hubmirror(p, logfile)
        sent = args.rate * args.seconds
        data.update(cpu_us=(ru.ru_utime + ru.ru_stime) * 1e6 / sent, rss_mib=p.rss.kib / 1024,
                    baseline=base)
        if data["missing"] or data["duplicates"]:
            raise RuntimeError(f"through hubmirror {data['missing']} records missing, "
                               f"{data['duplicates']} duplicated (of {sent:,})")
        return data
    finally:
        src.stop()
        dst.stop()
