"""The benchmark harness behind `bench/run.py` (whose docstring says what is measured and how):
`procs` starts, samples and reaps processes, `brokers` runs the tansu brokers and preloads them,
`runs` runs each measured reader (ceiling, naive pipe, hubmirror, latency) and `report` renders
the tables and the machine description. Here: the paths and the topic layout they share.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
OUT = ROOT / "bench" / "out"
PARTITIONS = 4
