#!/usr/bin/env python3
"""hubmirror benchmark (issue 7); run it through `scripts/bench.sh`.

For each record size (100 B x 600,000 and 1 KiB x 200,000 by default), on two fresh loopback
tansu brokers (memory engine), `source` and `target`: topic `bench` (4 partitions) is preloaded
on the source, then three readers of those records are measured one after the other:

- ceiling   -- `bench_client consume`: a plain rdkafka consumer reading every record, no produce;
               run with librdkafka defaults and again with `--ceiling-tuned` settings (default
               fetch.wait.max.ms=10: tansu holds every fetch for about its max wait even when
               records are there, so the default 500 ms caps a plain consumer far below what
               the broker serves). "vs ceiling" is relative to the faster of the two;
- naive     -- `bench/naive_pipe.py`: a confluent-kafka consume -> produce loop into `naive.bench`;
- hubmirror -- `hubmirror run` with one flow source -> target (remote topic `src.bench`), timed
               from spawn until its metric `hubmirror_records_replicated_total` (records the
               target acknowledged) reaches the count; then stopped with SIGTERM, and the target
               topic is read back by `bench_client consume --expect-exact` (no loss, no extra).

Each process's CPU (user + system) comes from os.wait4 on that process alone; its peak RSS (MiB)
is its VmHWM, sampled from /proc every 20 ms (and self-reported at exit by the clients). Wall time
is measured here (ceiling and naive: spawn to exit). records/s, MB/s (value bytes, 10^6), CPU
µs/record, peak RSS, and throughput relative to the ceiling are reported, then each run's time
to its first record and its rate after it (start-up vs steady state).

Then a latency run: fresh brokers, hubmirror started and ready before any load, and
`bench_client latency` producing a steady 10,000 records/s of 100 B for 30 s to the source
(linger.ms 5, librdkafka's default: at 1 ms the 1,000 batches/s make tansu 0.6 slower by the
second, seconds of latency within 20 s even without hubmirror) while reading the remote topic on
the target (reader started first, fetch.wait.max.ms 5). Latency is produce wall-clock
instant (µs, carried in the value) -> read on the target; the record-timestamp (ms) figure is
reported too, and first the same client alone on a broker of its own (the latency floor that
hubmirror does not add), with the worst latency of each second of both runs.
hubmirror's CPU per record and peak RSS over the whole latency run are reported.

The tables go to stdout and, with a machine description, to bench/out/latest.md; broker,
hubmirror and client logs go to bench/out/.
"""

import argparse
import atexit
import datetime
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import confluent_kafka
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
CLIENT = ROOT / "target" / "release" / "examples" / "bench_client"
PARTITIONS = 4
LIVE = []  # every process started here, killed at exit if still running


def log(msg):
    print(f"bench: {msg}", flush=True)


def cleanup():
    for p in LIVE:
        if p.returncode is None:
            try:
                p.kill()
                os.waitpid(p.pid, 0)
            except OSError:
                pass
            p.returncode = -9


atexit.register(cleanup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, cond, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class PeakRss(threading.Thread):
    """Samples a process's VmHWM every 20 ms. ru_maxrss from wait4 is not used for memory: Linux
    carries the forking parent's (this script's) peak RSS across exec into the child's."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.path, self.kib, self.done = f"/proc/{pid}/status", 0, threading.Event()
        self.start()

    def run(self):
        while not self.done.wait(0.02):
            try:
                with open(self.path) as f:
                    hwm = next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
                self.kib = max(self.kib, hwm)
            except (OSError, ValueError):
                pass

    def stop(self):
        self.done.set()
        self.join()
        return self.kib


def spawn(args, out, err=None, env=None):
    """Starts a process with stdout to `out` and stderr to `err` (default: the same file)."""
    with open(out, "wb") as o:
        e = open(err, "wb") if err else o
        with e:
            p = subprocess.Popen([str(a) for a in args], stdin=subprocess.DEVNULL, stdout=o,
                                 stderr=e if err else subprocess.STDOUT, env=env)
    LIVE.append(p)
    p.rss = PeakRss(p.pid)
    return p


def reap(p, timeout):
    """Waits for `p` (killed after `timeout` s); returns its rusage. Raises on timeout."""
    expired = threading.Event()

    def expire():
        expired.set()
        os.kill(p.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        _, status, ru = os.wait4(p.pid, 0)
    finally:
        timer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    p.rss.stop()
    if expired.is_set():
        raise RuntimeError(f"{Path(p.args[0]).name} did not finish within {timeout}s (killed)")
    return ru


def try_reap(p):
    """The rusage of `p` if it has exited (reaping it), else None."""
    pid, status, ru = os.wait4(p.pid, os.WNOHANG)
    if pid == 0:
        return None
    p.returncode = os.waitstatus_to_exitcode(status)
    p.rss.stop()
    return ru


CLK = os.sysconf("SC_CLK_TCK")


class Others:
    """CPU used by processes not started here, between construction and check(): the whole
    machine's busy time (/proc/stat) minus this script's, its children's and its live processes'.
    Another build or test run on the machine skews every number; this says when it happened."""

    def __init__(self):
        self.busy, self.ours, self.t0 = self.machine(), self.mine(), time.monotonic()

    @staticmethod
    def machine():
        f = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
        return (sum(f) - f[3] - f[4]) / CLK  # all but idle and iowait

    @staticmethod
    def mine():
        t = os.times()
        total = t.user + t.system + t.children_user + t.children_system
        for p in LIVE:
            if p.returncode is None:
                try:
                    f = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
                    total += (int(f[11]) + int(f[12])) / CLK
                except (OSError, IndexError, ValueError):
                    pass
        return total

    def check(self, label, notes):
        other = (self.machine() - self.busy) - (self.mine() - self.ours)
        wall = time.monotonic() - self.t0
        if other > max(0.1 * wall, 0.25):
            share = 100 * other / wall
            notes.append(f"WARNING {label}: other processes used {other:.1f} CPU-s ({share:.0f}% "
                         "of a core) meanwhile; these numbers may be skewed")
            log(notes[-1])


def tail(path, lines=40):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"({e})"


class Broker:
    """A tansu broker with the memory engine on a free loopback port."""

    def __init__(self, name):
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.log = OUT / f"tansu-{name}.log"
        self.proc = spawn([tansu_bin(), "broker", "--listener-url", f"tcp://{self.addr}",
                           "--advertised-listener-url", f"tcp://{self.addr}",
                           "--storage-engine", f"memory://{name}/"], self.log)
        wait_until(f"tansu {name} on {self.addr}",
                   lambda: port_open(self.port) or self.proc.poll() is not None, 30)
        if self.proc.returncode is not None:
            raise RuntimeError(f"tansu {name} exited:\n{tail(self.log)}")

    def stop(self):
        if self.proc.returncode is None:
            self.proc.kill()
            self.proc.wait()


def tansu_bin():
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return os.environ.get("TANSU_BIN") or default / "hubmirror/tansu-0.6.0/bin/tansu"


def create_topic(addr, name):
    admin = AdminClient({"bootstrap.servers": addr, "log.connection.close": False})
    for fut in admin.create_topics([NewTopic(name, PARTITIONS, 1)]).values():
        fut.result(30)
    wait_until(f"topic {name} on {addr}", lambda: topic_ready(admin, name), 30, 0.1)


def topic_ready(admin, name):
    t = admin.list_topics(name, timeout=5).topics.get(name)
    return t is not None and t.error is None and len(t.partitions) == PARTITIONS


def preload(addr, size, n):
    """Writes n records of exactly `size` value bytes, partition i % 4, and checks delivery."""
    done = {"ok": 0, "err": 0, "first": None}

    def delivered(err, _msg):
        if err is None:
            done["ok"] += 1
        else:
            done["err"] += 1
            done["first"] = done["first"] or err

    p = Producer({"bootstrap.servers": addr, "linger.ms": 50, "batch.size": 1_000_000,
                  "queue.buffering.max.messages": 2_000_000,
                  "queue.buffering.max.kbytes": 2_000_000, "on_delivery": delivered,
                  "log.connection.close": False})
    noise = os.urandom(size + 4096)
    t0 = time.monotonic()
    for i in range(n):
        off = (i * 7919) % 4096
        while True:
            try:
                p.produce("bench", noise[off:off + size], partition=i % PARTITIONS)
                break
            except BufferError:
                p.poll(0.1)
        if i % 10_000 == 0:
            p.poll(0)
    left = p.flush(120)
    if left or done["err"] or done["ok"] != n:
        raise RuntimeError(f"preload: {done['ok']} of {n} delivered, {done['err']} errors "
                           f"(first: {done['first']}), {left} not acknowledged")
    return time.monotonic() - t0


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
            if count >= n:
                seconds = time.monotonic() - t0
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
    return result("hubmirror", size, n, seconds, ru, p.rss.kib, first_s)


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


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout.strip()
    except OSError:
        return "?"


def first(v):
    return v[0] if isinstance(v, tuple) else v


def machine(load):
    model = next((line.split(":", 1)[1].strip() for line in sh("lscpu").splitlines()
                  if line.startswith("Model name")), "?")
    mem = next((line.split(":", 1)[1].strip() for line in Path("/proc/meminfo").read_text()
                .splitlines() if line.startswith("MemTotal")), "?")
    dirty = "-dirty" if sh("git", "status", "--porcelain", "--untracked-files=no") else ""
    return [f"- CPU: {model}, {os.cpu_count()} cores (nproc {sh('nproc')}); MemTotal {mem}",
            f"- kernel {platform.release()}; {sh('rustc', '--version')}",
            f"- broker: {sh(str(tansu_bin()), '--version')} (memory engine, loopback)",
            f"- confluent-kafka {first(confluent_kafka.version())}, librdkafka "
            f"{first(confluent_kafka.libversion())}",
            f"- hubmirror commit {sh('git', 'rev-parse', '--short', 'HEAD')}{dirty}",
            f"- date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; load "
            f"average (1 min) at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}"]


def fmt_size(size):
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"


def ceilings(rows):
    """Per record size: the fastest ceiling run's records/s (the broker's ceiling)."""
    best = {}
    for r in rows:
        if r["run"].startswith("ceiling") and "error" not in r:
            best[r["size"]] = max(best.get(r["size"], 0), r["records"] / r["seconds"])
    return best


def tables(rows, lat, notes, args):
    ceil = ceilings(rows)
    out = ["| run | record size | records | seconds | records/s | MB/s | CPU µs/record "
           "| peak RSS MB | vs ceiling |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['run']} | {fmt_size(r['size'])} | {r['records']:,} | FAILED: "
                       f"{r['error'].splitlines()[0][:80]} | | | | | |")
            continue
        rate = r["records"] / r["seconds"]
        vs = f"{100 * rate / ceil[r['size']]:.0f}%" if r["size"] in ceil else "-"
        out.append(f"| {r['run']} | {fmt_size(r['size'])} | {r['records']:,} | {r['seconds']:.2f} "
                   f"| {rate:,.0f} | {rate * r['size'] / 1e6:.1f} "
                   f"| {r['cpu'] * 1e6 / r['records']:.2f} | {r['rss_mib']:.0f} | {vs} |")
    out += ["", "Start-up vs steady state (first record: from spawn to the first record read; "
            "for hubmirror, to the first acknowledged copy, at 10 ms resolution):", "",
            "| run | record size | first record after s | records/s after the first |",
            "|---|---|---:|---:|"]
    for r in rows:
        if "error" not in r and r.get("first_s") is not None:
            rest = r["seconds"] - r["first_s"]
            out.append(f"| {r['run']} | {fmt_size(r['size'])} | {r['first_s']:.3f} | "
                       f"{r['records'] / rest if rest > 0 else float('inf'):,.0f} |")
    if lat:
        out += ["", "| rate | seconds | records | p50 ms | p99 ms | p99.9 ms | max ms | missing "
                "| hubmirror CPU µs/record | peak RSS MB |", "|---:|---:|---:|---:|---:|---:|---:"
                "|---:|---:|---:|"]
        if "error" in lat:
            out.append(f"| {args.rate:,}/s | {args.seconds} | FAILED: "
                       f"{lat['error'].splitlines()[0][:80]} | | | | | | | |")
        else:
            out.append(f"| {args.rate:,}/s | {args.seconds} | {lat['count']:,} | {lat['p50_ms']} "
                       f"| {lat['p99_ms']} | {lat['p999_ms']} | {lat['max_ms']} "
                       f"| {lat['missing']} | {lat['cpu_us']:.2f} | {lat['rss_mib']:.0f} |")
            out += ["", f"Latency from record timestamps (ms precision): p50 {lat['ts_p50_ms']}, "
                    f"p99 {lat['ts_p99_ms']}, p99.9 {lat['ts_p999_ms']}, "
                    f"max {lat['ts_max_ms']} ms; "
                    f"duplicates {lat['duplicates']}, produce errors {lat['produce_errors']}, "
                    f"producer took {lat['produce_seconds']:.2f} s for {lat['sent']:,} records.",
                    "", "Worst latency (ms) of the records produced in each second: "
                    + " ".join(f"{ms:.0f}" for ms in lat["worst_ms_by_second"])]
            b = lat.get("baseline")
            if b:
                out += ["", f"Without hubmirror (the same client producing to and reading from one "
                        f"broker of its own, {args.baseline_seconds} s at {args.rate:,}/s): "
                        f"p50 {b['p50_ms']}, "
                        f"p99 {b['p99_ms']}, p99.9 {b['p999_ms']}, max {b['max_ms']} ms, "
                        f"missing {b['missing']}; worst by second: "
                        + " ".join(f"{ms:.0f}" for ms in b["worst_ms_by_second"])]
    return out + [""] + [f"- {n}" for n in notes] + ["", targets(rows, lat, ceil)]


def targets(rows, lat, ceil):
    hm = [r for r in rows if r["run"] == "hubmirror" and "error" not in r]
    checks = []
    vs = [(r["size"], 100 * r["records"] / r["seconds"] / ceil[r["size"]])
          for r in hm if r["size"] in ceil]
    if vs:
        ok = all(v >= 95 for _, v in vs)
        detail = ", ".join(f"{fmt_size(s)} {v:.0f}%" for s, v in vs)
        checks.append(f"throughput ≥95% of ceiling: {'PASS' if ok else 'MISS'} ({detail})")
    cpu = [r["cpu"] * 1e6 / r["records"] for r in hm if r["size"] == 100]
    if cpu:
        checks.append(f"CPU ≤0.8 µs/100 B record: {'PASS' if cpu[0] <= 0.8 else 'MISS'} "
                      f"({cpu[0]:.2f})")
    if lat and "error" not in lat:
        b = lat.get("baseline")
        floor = f"; {b['p99_ms']} ms without hubmirror" if b else ""
        checks.append(f"p99 ≤20 ms: {'PASS' if lat['p99_ms'] <= 20 else 'MISS'} "
                      f"({lat['p99_ms']} ms{floor})")
    if hm:
        rss = max(r["rss_mib"] for r in hm)
        checks.append(f"RSS ≤128 MB: {'PASS' if rss <= 128 else 'MISS'} ({rss:.0f} MB)")
    return "Targets: " + ("; ".join(checks) if checks else "none measured")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="100,1024")
    p.add_argument("--records100", type=int, default=600_000)
    p.add_argument("--records1k", type=int, default=200_000)
    p.add_argument("--only", default="ceiling,naive,hubmirror,latency")
    p.add_argument("--hubmirror-bin", default=str(ROOT / "target" / "release" / "hubmirror"))
    p.add_argument("--hubmirror-client", default="",
                   help="librdkafka settings for hubmirror's clusters, e.g. "
                        "'src:fetch.wait.max.ms=5,dst:linger.ms=2' (default: none, its defaults)")
    p.add_argument("--ceiling-tuned", default="fetch.wait.max.ms=10",
                   help="librdkafka settings (k=v,...) of a second ceiling run ('': none)")
    p.add_argument("--rate", type=int, default=10_000, help="latency run: records/s")
    p.add_argument("--seconds", type=int, default=30, help="latency run: duration")
    p.add_argument("--baseline-seconds", type=int, default=None,
                   help="latency run: the client alone on one broker first, as long as the run "
                        "by default (0: skip)")
    p.add_argument("--linger-ms", default="5",
                   help="latency run: the source producer's linger.ms (librdkafka's default;\n"
                        "at 1 ms tansu 0.6 degrades within seconds, even without hubmirror)")
    p.add_argument("--fetch-wait-ms", default="5",
                   help="latency run: the target reader's fetch.wait.max.ms")
    args = p.parse_args()
    if args.baseline_seconds is None:
        args.baseline_seconds = args.seconds
    parts = set(args.only.split(","))
    OUT.mkdir(parents=True, exist_ok=True)
    started, load = time.monotonic(), os.getloadavg()
    rows, lat, notes, failed = [], None, [], False

    for size in [int(s) for s in args.sizes.split(",")]:
        n = args.records100 if size == 100 else args.records1k
        if not parts & {"ceiling", "naive", "hubmirror"}:
            break
        src, dst = Broker(f"src-{size}"), Broker(f"dst-{size}")
        try:
            create_topic(src.addr, "bench")
            secs = preload(src.addr, size, n)
            notes.append(f"{fmt_size(size)}: preloaded {n:,} records in {secs:.2f} s "
                         f"({n / secs:,.0f}/s, python producer, linger.ms=50, 1 MB batches)")
            log(notes[-1])
            runs = [("ceiling", lambda: run_ceiling(src, size, n, ""))]
            if args.ceiling_tuned:
                runs.append(("ceiling", lambda: run_ceiling(src, size, n, args.ceiling_tuned)))
            runs += [("naive", lambda: run_naive(src, dst, size, n)),
                     ("hubmirror", lambda: run_hubmirror(args, src, dst, size, n))]
            for part, run in runs:
                if part not in parts:
                    continue
                try:
                    others = Others()
                    rows.append(run())
                    others.check(f"{fmt_size(size)} {rows[-1]['run']}", notes)
                    r = rows[-1]
                    log(f"{fmt_size(size)} {r['run']}: {r['seconds']:.2f} s, "
                        f"{n / r['seconds']:,.0f} records/s, "
                        f"{r['cpu'] * 1e6 / n:.2f} µs CPU/record, {r['rss_mib']:.0f} MiB")
                except Exception as e:  # report, keep measuring the other parts
                    failed = True
                    log(f"FAILED {fmt_size(size)} {part}: {e}")
                    rows.append({"run": part, "size": size, "records": n, "error": str(e)})
        finally:
            src.stop()
            dst.stop()

    if "latency" in parts:
        try:
            others = Others()
            lat = run_latency(args)
            others.check("latency run", notes)
            log(f"latency: {json.dumps(lat)}")
        except Exception as e:
            failed = True
            log(f"FAILED latency: {e}")
            lat = {"error": str(e)}

    body = tables(rows, lat, notes, args)
    print("\n" + "\n".join(body), flush=True)
    header = ["# hubmirror benchmark", "", *machine(load), "",
              f"Command: `{' '.join(['scripts/bench.sh', *sys.argv[1:]])}`", ""]
    (OUT / "latest.md").write_text("\n".join(header + body) + "\n")
    log(f"wrote {OUT / 'latest.md'}; total {time.monotonic() - started:.0f} s")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
