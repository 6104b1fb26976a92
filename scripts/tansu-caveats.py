#!/usr/bin/env python3
"""Re-checks, on the installed test broker, every tansu behaviour the README's caveats name.

Starts its own tansu (memory engine) on a free loopback port, measures each behaviour with
confluent-kafka, prints one line per caveat (`holds` or `gone`, with what was measured) and
exits 0; it describes the broker, it does not judge hubmirror. Takes about two and a half
minutes.

    TANSU_BIN=$(scripts/install-tansu.sh) python3 scripts/tansu-caveats.py
"""

import gc
import json
import os
import socket
import subprocess
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(binary):
    port = free_port()
    proc = subprocess.Popen(
        [binary, "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
         "--advertised-listener-url", f"tcp://127.0.0.1:{port}",
         "--storage-engine", f"memory://caveats-{port}/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("tansu did not start")


def create(bs, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bs})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(10)


def topic_names(bs):
    admin = AdminClient({"bootstrap.servers": bs})
    return set(admin.list_topics(timeout=10).topics)


def one_batch(bs, topic, n):
    """n records in one batch on partition 0."""
    p = Producer({"bootstrap.servers": bs, "linger.ms": 100, "batch.num.messages": 100000})
    for i in range(n):
        p.produce(topic, key=f"k{i}", value=f"v{i}", partition=0)
    p.flush(10)


def read_from(bs, topic, offset, wait=5.0):
    c = Consumer({"bootstrap.servers": bs, "group.id": "caveats-reader",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, offset)])
    got, deadline = [], time.time() + wait
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            break  # end of partition
        got.append(m.offset())
    c.close()
    return got


def mid_batch_fetch(bs):
    create(bs, "mid", 1)
    one_batch(bs, "mid", 10)
    got = read_from(bs, "mid", 5)
    holds = got != [5, 6, 7, 8, 9]
    return holds, f"10 records in one batch, fetch at offset 5 returned offsets {got}"


def list_offsets_latest(bs):
    create(bs, "latest", 1)
    one_batch(bs, "latest", 5)
    one_batch(bs, "latest", 10)
    c = Consumer({"bootstrap.servers": bs, "group.id": "caveats-offsets"})
    low, high = c.get_watermark_offsets(TopicPartition("latest", 0), timeout=10, cached=False)
    c.close()
    return high != 15, f"15 records in 2 batches: ListOffsets(latest) says {high} (log end 15)"


def list_groups_without_commits(bs):
    create(bs, "groups", 1)
    c = Consumer({"bootstrap.servers": bs, "group.id": "caveats-live",
                  "session.timeout.ms": 6000, "auto.offset.reset": "earliest"})
    assigned = []
    c.subscribe(["groups"], on_assign=lambda _c, ps: assigned.extend(ps))
    deadline = time.time() + 30
    while not assigned and time.time() < deadline:
        c.poll(0.1)
    admin = AdminClient({"bootstrap.servers": bs})
    listed = {g.group_id for g in admin.list_consumer_groups().result(10).valid}
    c.close()
    holds = "caveats-live" not in listed
    return holds, f"a live member that never committed: ListGroups {'omits' if holds else 'lists'} its group"


def first_join(bs, session_ms):
    topic = f"join{session_ms}"
    create(bs, topic, 1)
    c = Consumer({"bootstrap.servers": bs, "group.id": f"caveats-join-{session_ms}",
                  "session.timeout.ms": session_ms})
    t0, assigned = time.time(), []
    c.subscribe([topic], on_assign=lambda _c, ps: assigned.append(time.time() - t0))
    while not assigned and time.time() - t0 < 60:
        c.poll(0.1)
    c.close()
    return assigned[0] if assigned else float("inf")


def group_join_latency(bs):
    slow, fast = first_join(bs, 45000), first_join(bs, 6000)
    holds = slow > 10
    return holds, (f"first join of a new group: {slow:.1f} s with session.timeout.ms=45000 "
                   f"(librdkafka's default), {fast:.1f} s with 6000")


def auto_create_on_metadata(bs):
    """A Metadata request naming a missing topic, from a consumer (does not allow creation) and
    from a producer (librdkafka producers allow it by default)."""
    c = Consumer({"bootstrap.servers": bs, "group.id": "caveats-md"})
    try:
        c.list_topics("asked-by-a-consumer", timeout=5)
    except KafkaException:
        pass
    c.close()
    p = Producer({"bootstrap.servers": bs})
    try:
        p.list_topics("asked-by-a-producer", timeout=5)
    except KafkaException:
        pass
    admin = AdminClient({"bootstrap.servers": bs})
    topics = admin.list_topics(timeout=5).topics
    by_consumer = "asked-by-a-consumer" in topics
    by_producer = "asked-by-a-producer" in topics
    parts = len(topics["asked-by-a-producer"].partitions) if by_producer else 0
    holds = by_producer and not by_consumer
    return holds, (f"not allowed (consumer): {'created' if by_consumer else 'nothing created'}; "
                   f"allowed (producer): "
                   f"{'created with %d partitions' % parts if by_producer else 'nothing created'}")


def create_partitions(bs):
    create(bs, "grow", 1)
    admin = AdminClient({"bootstrap.servers": bs})
    try:
        admin.create_partitions([NewPartitions("grow", 2)])["grow"].result(10)
        return False, "CreatePartitions 1 -> 2 succeeded"
    except KafkaException as e:
        return True, f"CreatePartitions 1 -> 2 refused: {e.args[0].str()}"


def concurrent_writers(bs, rounds=4, n=2500):
    """Two producers writing the same partitions while a consumer tails them."""
    missed_total, seen = 0, []
    for r in range(rounds):
        topic = f"race{r}"
        create(bs, topic, 3)
        live, stop = [], threading.Event()

        def tail():
            c = Consumer({"bootstrap.servers": bs, "group.id": f"caveats-tail-{r}",
                          "enable.auto.commit": False, "fetch.wait.max.ms": 10})
            c.assign([TopicPartition(topic, p, 0) for p in range(3)])
            while not stop.is_set():
                m = c.poll(0.1)
                if m is not None and not m.error():
                    live.append((m.partition(), m.offset()))
            c.close()

        def produce(prefix, idempotent):
            p = Producer({"bootstrap.servers": bs, "linger.ms": 5,
                          "enable.idempotence": idempotent})
            t0 = time.time()
            for i in range(n):
                while time.time() - t0 < i / 500:
                    p.poll(0)
                    time.sleep(0.002)
                p.produce(topic, key=f"{prefix}-{i}", partition=i % 3)
            p.flush(30)

        reader = threading.Thread(target=tail)
        reader.start()
        writers = [threading.Thread(target=produce, args=(x, x == "b")) for x in "ab"]
        for w in writers:
            w.start()
        # Both cores busy while the writers run, as during a test suite.
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
        for w in writers:
            w.join()
        for b in burners:
            b.kill()
            b.wait()
        time.sleep(2)
        stop.set()
        reader.join()
        full = set()
        for p in range(3):
            full.update((p, o) for o in read_all_offsets(bs, topic, p))
        missed = len(full - set(live))
        missed_total += missed
        seen.append(f"{missed}/{len(full)}")
    holds = missed_total > 0
    return holds, ("two producers on the same partitions, a consumer tailing them: records it "
                   f"never saw, per round: {', '.join(seen)}")


def fetch_behind_busy_partition(bs):
    """A consumer starting behind a partition that gets a record every 2 ms."""
    create(bs, "busy", 1)
    p = Producer({"bootstrap.servers": bs, "linger.ms": 5})
    for i in range(20000):
        p.produce("busy", value=b"x" * 64, partition=0)
        if i % 1000 == 0:
            p.poll(0)
    p.flush(30)
    stop = threading.Event()

    def trickle():
        q = Producer({"bootstrap.servers": bs, "linger.ms": 0})
        while not stop.is_set():
            q.produce("busy", value=b"y", partition=0)
            q.poll(0)
            time.sleep(0.002)
        q.flush(10)

    writer = threading.Thread(target=trickle)
    writer.start()
    time.sleep(1)
    c = Consumer({"bootstrap.servers": bs, "group.id": "caveats-busy",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    c.assign([TopicPartition("busy", 0, 0)])
    t0, first, count = time.time(), None, 0
    while time.time() - t0 < 30 and count < 20000:
        m = c.poll(0.1)
        if m is not None and not m.error():
            first = first if first is not None else time.time() - t0
            count += 1
    stop.set()
    writer.join()
    c.close()
    took = time.time() - t0
    holds = first is None or first > 2
    shown = "no record within 30 s" if first is None else f"first record after {first:.2f} s"
    return holds, (f"a consumer starting behind a partition written every 2 ms: {shown}, "
                   f"{count} of the first 20,000 in {took:.1f} s")


def commit_metadata(bs):
    create(bs, "caveats-meta", 1)
    one_batch(bs, "caveats-meta", 5)
    consumer = Consumer({"bootstrap.servers": bs, "group.id": "caveats-meta",
                         "enable.auto.commit": False})
    stamp = "hubmirror/1 target=x cluster=- topic=t servers=h:1"
    consumer.commit(offsets=[TopicPartition("caveats-meta", 0, 3, metadata=stamp)],
                    asynchronous=False)
    got = consumer.committed([TopicPartition("caveats-meta", 0)], timeout=10)[0]
    consumer.close()
    holds = got.metadata != stamp
    return holds, f"committed offset 3 with metadata {stamp!r}: read back offset {got.offset}, metadata {got.metadata!r}"


# A group member in its own process, so it polls on its own and can be SIGKILLed. It prints its
# assignment (a JSON list of partitions) whenever that changes and closes when stdin closes.
MEMBER = r"""
import json, sys, threading
from confluent_kafka import Consumer
bs, topic, group, instance, client = sys.argv[1:6]
conf = {"bootstrap.servers": bs, "group.id": group, "client.id": client,
        "partition.assignment.strategy": "cooperative-sticky", "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000, "max.poll.interval.ms": 30000}
if instance != "-":
    conf["group.instance.id"] = instance
c = Consumer(conf)
c.subscribe([topic])
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
last = None
while not stop.is_set():
    c.poll(0.1)
    now = sorted(p.partition for p in c.assignment())
    if now != last:
        print(json.dumps(now), flush=True)
        last = now
c.close()
"""


class Member:
    """A consumer-group member (cooperative-sticky, session 10 s, max.poll 30 s) in a child
    process; `assignment` is what it last reported."""

    def __init__(self, bs, topic, group, name, static):
        self.name, self.assignment = name, []
        self.proc = subprocess.Popen(
            [sys.executable, "-c", MEMBER, bs, topic, group, name if static else "-", name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.assignment = json.loads(line)

    def kill(self):
        self.proc.kill()
        self.proc.wait()


def union(members):
    return set().union(*(m.assignment for m in members))


def wait_for(condition, limit):
    """Seconds until condition() held, or None after limit seconds."""
    t0 = time.time()
    while time.time() - t0 < limit:
        if condition():
            return time.time() - t0
        time.sleep(0.1)
    return None


def shown(members):
    return " ".join(f"{m.name}={m.assignment}" for m in members)


def balanced(members):
    return len(union(members)) == 6 and all(m.assignment for m in members)


def side_by_side(*runs):
    """Runs the callables at once in threads (each on its own group) and returns their results."""
    results = [None] * len(runs)

    def run(i):
        try:
            results[i] = runs[i]()
        except Exception as e:  # raised again below, in the check's thread
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(runs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        if isinstance(r, Exception):
            raise r
    return results


def join_late(bs, group, static, limit=40):
    """a takes all 6 partitions alone, then b and c join; returns the members after they
    balanced or limit seconds passed, and how long that took (None: never balanced)."""
    a = Member(bs, "six", group, "a", static)
    members = [a]
    try:
        if wait_for(lambda: len(a.assignment) == 6, 30) is None:
            raise RuntimeError(f"{group}: a alone got {a.assignment} of 6 partitions in 30 s")
        members += [Member(bs, "six", group, n, static) for n in "bc"]
        return members, wait_for(lambda: balanced(members), limit)
    finally:
        for m in members:
            m.kill()


def static_cooperative_rebalance(bs):
    create(bs, "six", 6)
    (static, took), (dynamic, dyn_took) = side_by_side(
        lambda: join_late(bs, "caveats-static", True),
        lambda: join_late(bs, "caveats-dynamic", False))
    holds = len(union(static)) < 6
    after = "after 40 s" if took is None else f"balanced after {took:.1f} s"
    control = ("never balanced in 40 s" if dyn_took is None
               else f"balanced after {dyn_took:.1f} s")
    return holds, (f"static a holding all 6, then static b and c join: {after}: {shown(static)} "
                   f"({len(union(static))} of 6 assigned); dynamic control: {control}: "
                   f"{shown(dynamic)} ({len(union(dynamic))} of 6)")


def kill_one(bs, group, newcomer_at):
    """x, y, z balance on 6 partitions, z is SIGKILLed and w joins newcomer_at seconds after the
    kill (before it if negative, never if None); returns the live members and the seconds from
    the kill until they own all 6 (None: not within 60 s)."""
    members = [Member(bs, "six", group, n, False) for n in "xyz"]
    try:
        if wait_for(lambda: balanced(members), 40) is None:
            raise RuntimeError(f"{group}: x, y, z did not balance in 40 s: {shown(members)}")
        if newcomer_at is not None and newcomer_at < 0:
            members.insert(2, Member(bs, "six", group, "w", False))
            time.sleep(-newcomer_at)
        members.pop().kill()
        killed = time.time()
        if newcomer_at is not None and newcomer_at > 0:
            time.sleep(newcomer_at)
            members.append(Member(bs, "six", group, "w", False))
        took = wait_for(lambda: len(union(members)) == 6, 60 - (time.time() - killed))
        return members, None if took is None else time.time() - killed
    finally:
        for m in members:
            m.kill()


def dead_member_rebalance(bs):
    """Session 10 s, max.poll (the rebalance timeout) 30 s: a rebalance that waited for the dead
    member instead of expiring it would leave its partitions unowned until 30 s after w joined."""
    create(bs, "six", 6)
    (after, after_took), (during, during_took), (alone, alone_took) = side_by_side(
        lambda: kill_one(bs, "caveats-dead-after", 3),
        lambda: kill_one(bs, "caveats-dead-during", -2),
        lambda: kill_one(bs, "caveats-dead-alone", None))
    holds = any(t is None or t - w_at >= 30 for t, w_at in [(after_took, 3), (during_took, -2)])

    def when(t, members):
        took = "not within 60 s" if t is None else f"{t:.1f} s after the kill"
        return f"{took} ({shown(members)})"

    return holds, (f"x, y, z steady on 6 partitions (session 10 s, max.poll 30 s), z SIGKILLed; "
                   f"all 6 owned again: w joining 3 s after the kill: {when(after_took, after)}; "
                   f"w joining 2 s before the kill: {when(during_took, during)}; "
                   f"no w: {when(alone_took, alone)}")


def describe_group_members(bs):
    create(bs, "probe", 1)
    c = Consumer({"bootstrap.servers": bs, "group.id": "g", "client.id": "probe-client",
                  "session.timeout.ms": 10000})
    assigned = []
    c.subscribe(["probe"], on_assign=lambda _c, ps: assigned.extend(ps))
    deadline = time.time() + 30
    while not assigned and time.time() < deadline:
        c.poll(0.1)
    if not assigned:
        c.close()
        raise RuntimeError("probe-client got no partition in 30 s")
    admin = AdminClient({"bootstrap.servers": bs})
    group = admin.describe_consumer_groups(["g"])["g"].result(10)
    c.close()
    members = [(m.member_id, m.client_id, m.host,
                [(tp.topic, tp.partition) for tp in m.assignment.topic_partitions])
               for m in group.members]
    holds = not members or any(not client or not parts for _id, client, _host, parts in members)
    shown_members = "; ".join(f"member_id={i!r} client_id={c!r} host={h!r} assignment={a}"
                              for i, c, h, a in members) or "none"
    return holds, (f"a member with client.id 'probe-client' owning probe/0: state "
                   f"{group.state.name}, members: {shown_members}")


def read_all_offsets(bs, topic, partition):
    c = Consumer({"bootstrap.servers": bs, "group.id": "caveats-all",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    c.assign([TopicPartition(topic, partition, 0)])
    out, deadline = [], time.time() + 20
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            break
        out.append(m.offset())
    c.close()
    return out


CAVEATS = [
    ("a fetch inside a record batch skips the rest of the batch", mid_batch_fetch),
    ("ListOffsets(latest) is not the log end", list_offsets_latest),
    ("ListGroups omits live groups without commits", list_groups_without_commits),
    ("a new group's first join waits about half the session timeout", group_join_latency),
    ("Metadata naming a missing topic creates it when the request allows it",
     auto_create_on_metadata),
    ("CreatePartitions is unsupported", create_partitions),
    ("offset commit metadata is dropped", commit_metadata),
    ("a fetch behind a busy partition is answered late", fetch_behind_busy_partition),
    ("a tailing consumer can miss records of two concurrent writers", concurrent_writers),
    ("static members never receive partitions moved in a cooperative rebalance",
     static_cooperative_rebalance),
    ("a rebalance waits for a dead member instead of expiring it", dead_member_rebalance),
    ("DescribeGroups describes members by member id only", describe_group_members),
]


def main():
    binary = os.environ.get("TANSU_BIN")
    if not binary:
        sys.exit("set TANSU_BIN (scripts/install-tansu.sh prints it)")
    print(f"tansu: {binary}")
    for what, check in CAVEATS:
        proc, bs = start_broker(binary)
        try:
            holds, measured = check(bs)
        except Exception as e:  # a check that cannot run says so and the others go on
            holds, measured = None, f"check failed: {e!r}"
        finally:
            gc.collect()  # close the check's clients before their broker goes away
            proc.kill()
            proc.wait()
        verdict = {True: "holds", False: "gone", None: "unknown"}[holds]
        print(f"{verdict:8} {what}: {measured}", flush=True)


if __name__ == "__main__":
    main()
