#!/usr/bin/env python3
"""The naive pipe of the benchmark: the consume -> produce loop a user writes first with
confluent-kafka, client defaults throughout. It copies `--count` records of `--topic` on the
source to `--to` on the target (same partition, key, value, headers), flushes, prints
{"records": N, ...} and exits; exit 1 if the count is not reached within `--timeout` seconds."""

import argparse
import json
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer


def vmhwm_kib():
    """Peak RSS of this process (VmHWM; ru_maxrss would include the forking parent's)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--source", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--timeout", type=float, default=300)
    a = p.parse_args()

    consumer = Consumer({
        "bootstrap.servers": a.source,
        "group.id": f"naive-pipe-{uuid.uuid4()}",
        "auto.offset.reset": "earliest",
    })
    producer = Producer({"bootstrap.servers": a.target})
    consumer.subscribe([a.topic])
    deadline = time.monotonic() + a.timeout
    copied, first_at = 0, None
    while copied < a.count and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            print(f"naive_pipe: consume error: {msg.error()}", file=sys.stderr)
            continue
        first_at = first_at or time.time()
        while True:
            try:
                producer.produce(a.to, value=msg.value(), key=msg.key(),
                                 headers=msg.headers(), partition=msg.partition())
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        copied += 1
    left = producer.flush(60)
    consumer.close()
    print(json.dumps({"records": copied, "first_at": first_at, "vmhwm_kib": vmhwm_kib()}))
    if copied < a.count or left:
        sys.exit(f"naive_pipe: copied {copied} of {a.count} records, {left} unacknowledged")


if __name__ == "__main__":
    main()
