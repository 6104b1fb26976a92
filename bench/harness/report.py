"""The report: the machine description (CPU, memory, kernel, toolchain, broker and client library
versions, commit, load), the results and latency tables with the start-up vs steady-state figures
and notes, and the verdict against the targets.
"""

import datetime
import os
import platform
import subprocess
from pathlib import Path

import confluent_kafka

from . import ROOT
from .brokers import tansu_bin


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
            # Both tansu builds print "tansu 0.6.0": the binary's path tells which one ran.
            f"- broker: {sh(str(tansu_bin()), '--version')}, {tansu_bin()} (memory engine, "
            f"loopback)",
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
            "| run | record size | first record after s | records/s after the first "
            "| CPU µs/record after the first |",
            "|---|---|---:|---:|---:|"]
    for r in rows:
        if "error" not in r and r.get("first_s") is not None:
            rest = r["seconds"] - r["first_s"]
            steady = f"{r['cpu_steady'] * 1e6:.2f}" if r.get("cpu_steady") is not None else "-"
            out.append(f"| {r['run']} | {fmt_size(r['size'])} | {r['first_s']:.3f} | "
                       f"{r['records'] / rest if rest > 0 else float('inf'):,.0f} | {steady} |")
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
