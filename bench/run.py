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
import json
import os
import sys
import time
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)  # bench/, where the harness package lives
if HERE not in sys.path:  # e.g. under `python3 -P`
    sys.path.insert(0, HERE)

from harness import OUT, ROOT  # noqa: E402
from harness.brokers import Broker, create_topic, preload  # noqa: E402
from harness.procs import Others, log  # noqa: E402
from harness.report import fmt_size, machine, tables  # noqa: E402
from harness.runs import run_ceiling, run_hubmirror, run_latency, run_naive  # noqa: E402


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
