#!/usr/bin/env python3
"""The demo's independent Kafka client (Python confluent-kafka): create a topic, produce the
seed's two JSON records, and read records back with their headers -- through the Event Hubs
emulator exactly as one would through Azure (SASL_SSL, PLAIN, $ConnectionString)."""

import argparse
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

RECORDS = [
    {"id": 1, "message": "Hello from Strimzi Mirror Maker"},
    {"id": 2, "message": "Here another mirrored message"},
]


def config(args):
    conf = {"bootstrap.servers": args.bootstrap}
    if args.connection_string:
        conf.update({
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "PLAIN",
            "sasl.username": "$ConnectionString",
            "sasl.password": args.connection_string,
            "ssl.ca.location": args.ca_file,
        })
    return conf


def create(args):
    admin = AdminClient(config(args))
    for fut in admin.create_topics([NewTopic(args.topic, args.partitions, 1)]).values():
        fut.result(30)


def produce(args):
    producer = Producer(config(args))
    for record in RECORDS:
        producer.produce(args.topic, key=str(record["id"]), value=json.dumps(record))
    if producer.flush(30) != 0:
        sys.exit("demo: records not acknowledged by the on-prem broker")


def consume(args):
    conf = config(args)
    conf.update({"group.id": "demo-reader", "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer = Consumer(conf)
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        md = consumer.list_topics(args.topic, timeout=10).topics.get(args.topic)
        if md is not None and md.error is None and md.partitions:
            break
        time.sleep(0.2)
    else:
        sys.exit(f"demo: topic {args.topic} never appeared")
    consumer.assign([TopicPartition(args.topic, p, 0) for p in md.partitions])
    seen = 0
    while seen < args.count and time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        seen += 1
        print(f"{args.topic}[{msg.partition()}]@{msg.offset()}: {msg.value().decode()}")
        for name, value in msg.headers() or []:
            print(f"    {name}: {value.decode(errors='replace') if value is not None else None}")
    consumer.close()
    if seen < args.count:
        sys.exit(f"demo: read {seen} of {args.count} records within {args.timeout}s")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["create", "produce", "consume"])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--count", type=int, default=len(RECORDS))
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--connection-string")
    p.add_argument("--ca-file")
    args = p.parse_args()
    {"create": create, "produce": produce, "consume": consume}[args.command](args)


if __name__ == "__main__":
    main()
