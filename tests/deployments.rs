//! A flow never resumes from offsets committed for another deployment's target: the same
//! aliases pointed at a new, empty cluster copy everything there (the committed offsets of the
//! old target are set aside with one warning line), the original deployment still resumes
//! exactly where it stopped, and a deployment `name` gives each deployment groups of its own.

use hubmirror_test_support as support;

use std::path::PathBuf;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use support::hubmirror::{Running, Workdir};
use support::kafka;
use support::tansu::Tansu;
use support::topology::TopologyBuilder;

const PARTITIONS: i32 = 2;

/// `west` → `east` for topic `t`, `east` being `target`; the store beside the file.
fn topology(work: &Workdir, west: &Tansu, target: &Tansu, name: Option<&str>) -> PathBuf {
    let mut b = TopologyBuilder::new()
        .tansu("west", west)
        .set("west", "heartbeats", "false")
        .tansu("east", target)
        .set("east", "heartbeats", "false")
        .flow("west", "east", &["t"])
        .replication("refresh_topics_interval", "2s");
    if let Some(n) = name {
        b = b.name(n);
    }
    b.write(work)
}

/// `n` records `<prefix>-<i>`, batched as producers batch them.
fn produce(west: &Tansu, prefix: &str, n: usize) {
    let records: Vec<(i32, Vec<u8>, Vec<u8>)> = (0..n)
        .map(|i| {
            let k = format!("{prefix}-{i}").into_bytes();
            ((i as i32) % PARTITIONS, k.clone(), k)
        })
        .collect();
    kafka::produce_batched(&kafka::plain(&west.listener()), "t", &records);
}

/// Reads `west.t` on `target` until the `expected` records are there, and asserts each key
/// `<prefix>-<i>` once and nothing else.
fn assert_copied_once(target: &Tansu, expected: &[(&str, usize)]) {
    let want = expected.iter().map(|(_, n)| n).sum();
    let recs = kafka::read_all(
        &kafka::plain(&target.listener()),
        "west.t",
        want,
        Duration::from_secs(90),
    );
    let summary = kafka::assert_exactly_once(&recs, expected, "west.t");
    println!("{summary}");
}

/// The committed offset of each partition of `t` in `group` on `west` (`None`: nothing).
fn committed(west: &Tansu, group: &str) -> Vec<Option<i64>> {
    let consumer: BaseConsumer = kafka::plain(&west.listener())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition("t", p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    got.elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(n) => Some(n),
            _ => None,
        })
        .collect()
}

#[test]
fn an_alias_pointed_at_a_new_cluster_gets_every_record_and_the_old_one_resumes_exactly() {
    let (west, old, new) = (Tansu::start(), Tansu::start(), Tansu::start());
    kafka::create_topic(&kafka::plain(&west.listener()), "t", PARTITIONS);
    produce(&west, "first", 3_000);

    // The original deployment copies everything into `old` and stops.
    let first = Workdir::new();
    let first_topo = topology(&first, &west, &old, None);
    let mut run = Running::start(&first_topo, &[]);
    assert_copied_once(&old, &[("first", 3_000)]);
    run.stop_cleanly();
    assert_eq!(
        committed(&west, "hubmirror-west-east"),
        vec![Some(1_500); 2]
    );

    // Another deployment with the same aliases, `east` now a new, empty cluster, a fresh store.
    let second = Workdir::new();
    let mut run = Running::start(&topology(&second, &west, &new, None), &[]);
    let line = run.wait_for_line(
        &["not resuming 't' partition", "committed offset 1500"],
        Duration::from_secs(60),
    );
    println!("{line}");
    assert_copied_once(&new, &[("first", 3_000)]);
    run.stop_cleanly();

    // The original deployment, restarted on its own store and target, resumes where it
    // stopped: the new records once, nothing written twice.
    produce(&west, "second", 500);
    let mut run = Running::start(&first_topo, &[]);
    assert_copied_once(&old, &[("first", 3_000), ("second", 500)]);
    run.stop_cleanly();
    assert!(
        !run.output().contains("not resuming"),
        "the original deployment trusted its own offsets:\n{}",
        run.output()
    );
}

#[test]
fn a_named_deployment_commits_in_a_group_of_its_own() {
    let (west, east) = (Tansu::start(), Tansu::start());
    kafka::create_topic(&kafka::plain(&west.listener()), "t", PARTITIONS);
    produce(&west, "r", 100);
    let work = Workdir::new();
    let mut run = Running::start(&topology(&work, &west, &east, Some("staging")), &[]);
    assert_copied_once(&east, &[("r", 100)]);
    run.stop_cleanly();
    assert_eq!(
        committed(&west, "hubmirror-staging-west-east"),
        vec![Some(50); 2]
    );
    assert_eq!(committed(&west, "hubmirror-west-east"), vec![None; 2]);
}
