//! Crash-consistent resume on real brokers: a flow whose committed offsets lag behind what the
//! target already holds (as after a kill -9 between acknowledgement and commit) resumes after
//! the target's last copy, not at the committed offset — nothing written twice, nothing lost.

use hubmirror_test_support as support;

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use support::hubmirror::{Running, Workdir};
use support::kafka::{self, Rec};
use support::tansu::Tansu;
use support::topology::TopologyBuilder;

const PARTITIONS: i32 = 3;

fn topology(work: &Workdir, a: &Tansu, b: &Tansu, policy: &str) -> std::path::PathBuf {
    TopologyBuilder::new()
        .tansu("a", a)
        .set("a", "heartbeats", "false")
        .tansu("b", b)
        .set("b", "heartbeats", "false")
        .flow("a", "b", &["t"])
        .replication("policy", policy)
        .replication("refresh_topics_interval", "2s")
        .write(work)
}

/// `n` records `<prefix>-<i>` spread over the partitions, batched on the source.
fn produce(a: &Tansu, prefix: &str, n: usize) {
    let records: Vec<(i32, Vec<u8>, Vec<u8>)> = (0..n)
        .map(|i| {
            let k = format!("{prefix}-{i}").into_bytes();
            ((i as i32) % PARTITIONS, k.clone(), k)
        })
        .collect();
    kafka::produce_batched(&kafka::plain(&a.listener()), "t", &records);
}

/// Commits offset `to` for every partition of `t` in the flow's group on `a`: the state a
/// crash leaves when the target acknowledged records whose commit never happened.
fn rewind_commits(a: &Tansu, to: i64) {
    let consumer: BaseConsumer = kafka::plain(&a.listener())
        .set("group.id", "hubmirror-a-b")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("t", p, Offset::Offset(to))
            .unwrap();
    }
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
}

/// Records of other writers in `b`'s `t`, some with `hubmirror.source` values that are not
/// the flow's (malformed, other partition, no offset).
fn foreign_writes(b: &Tansu, tag: &str) -> usize {
    let producer: BaseProducer = kafka::plain(&b.listener()).create().expect("producer");
    let values: [&[u8]; 5] = [
        b"a/t/0/",
        b"a/t/0/x1",
        b"a/t/9/1",
        &[0xff, 0xfe],
        b"c/t/0/7",
    ];
    for (i, v) in values.iter().enumerate() {
        let key = format!("foreign-{tag}-{i}");
        let headers = OwnedHeaders::new().insert(Header {
            key: "hubmirror.source",
            value: Some(*v),
        });
        let rec = BaseRecord::to("t")
            .partition(0)
            .key(&key)
            .payload(&key)
            .headers(headers);
        producer.send(rec).map_err(|(e, _)| e).expect("enqueue");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
    values.len()
}

fn assert_once(recs: &[Rec], want: usize) {
    let counts = kafka::count_by_key(recs);
    let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        dups.is_empty(),
        "{} keys written twice, e.g. {:?}",
        dups.len(),
        dups.first()
    );
    assert_eq!(counts.len(), want, "distinct keys on the target");
}

fn resumes_after_the_tail(policy: &str, target_topic: &str) {
    let (a, b) = (Tansu::start(), Tansu::start());
    kafka::create_topic(&kafka::plain(&a.listener()), "t", PARTITIONS);
    let identity = policy == "identity";
    if identity {
        kafka::create_topic(&kafka::plain(&b.listener()), "t", PARTITIONS);
    }
    let foreign_before = if identity {
        foreign_writes(&b, "before")
    } else {
        0
    };
    let work = Workdir::new();
    let topo = topology(&work, &a, &b, policy);
    let b_cfg = kafka::plain(&b.listener());

    produce(&a, "first", 300);
    let mut run = Running::start(&topo, &[]);
    let want = foreign_before + 300;
    assert_once(
        &kafka::read_all(&b_cfg, target_topic, want, Duration::from_secs(60)),
        want,
    );
    run.stop_cleanly();

    let foreign_after = if identity {
        foreign_writes(&b, "after")
    } else {
        0
    };
    rewind_commits(&a, 0);
    let mut run = Running::start(&topo, &[]);
    let line = run.wait_for_line(
        &[
            "partition 1 already holds copies up to source offset 99",
            "past the committed offset 0: resuming at 100 (100 records not written again)",
        ],
        Duration::from_secs(30),
    );
    println!("{line}");
    produce(&a, "second", 30);
    let want = want + foreign_after + 30;
    assert_once(
        &kafka::read_all(&b_cfg, target_topic, want, Duration::from_secs(60)),
        want,
    );
    run.stop_cleanly();
}

#[test]
fn resumes_after_the_targets_last_copy_not_the_committed_offset() {
    resumes_after_the_tail("default", "a.t");
}

/// Under identity naming other writers share the target partition; their records, even with
/// `hubmirror.source` headers that are malformed or name another partition, do not move the
/// resume point.
#[test]
fn resumes_past_other_writers_records_under_identity_naming() {
    resumes_after_the_tail("identity", "t");
}
