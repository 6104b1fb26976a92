//! Topic handling of a flow between two plain Kafka clusters (real tansu brokers): remote names,
//! a missing target topic that may not be created, a target with fewer partitions.

use hubmirror_test_support as support;

use std::time::Duration;

use support::hubmirror::{Running, Workdir};
use support::kafka;
use support::tansu::Tansu;
use support::topology::TopologyBuilder;

fn topology(work: &Workdir, a: &Tansu, b: &Tansu, create_topics: bool) -> std::path::PathBuf {
    TopologyBuilder::new()
        .tansu("a", a)
        .tansu("b", b)
        .flow("a", "b", &["alpha", "beta", "gamma"])
        .replication("create_topics", &create_topics.to_string())
        .replication("refresh_topics_interval", "1s")
        .write(work)
}

#[test]
fn unservable_topics_are_reported_and_the_others_keep_flowing() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    for t in ["alpha", "beta", "gamma"] {
        kafka::create_topic(&ca, t, 2);
        kafka::produce_test_records(&ca, t, 2, 0..500, 1_700_000_000_000);
    }
    kafka::create_topic(&cb, "a.alpha", 2); // ready
    kafka::create_topic(&cb, "a.gamma", 1); // too few partitions; a.beta is missing

    let work = Workdir::new();
    let mut run = Running::start(&topology(&work, &a, &b, false), &[]);
    let copies = kafka::read_all(&cb, "a.alpha", 500, Duration::from_secs(60));
    assert_eq!(kafka::count_by_key(&copies).len(), 500, "alpha flows");

    let missing = run.wait_for_line(
        &["'a.beta'", "cluster 'b'", "missing"],
        Duration::from_secs(20),
    );
    println!("{missing}");
    let fewer = run.wait_for_line(
        &[
            "'a.gamma'",
            "cluster 'b'",
            "has 1 of the source's 2 partitions",
        ],
        Duration::from_secs(20),
    );
    println!("{fewer}");

    // Once the operator creates the missing topic, the next refresh picks it up.
    kafka::create_topic(&cb, "a.beta", 2);
    let copies = kafka::read_all(&cb, "a.beta", 500, Duration::from_secs(60));
    assert_eq!(
        kafka::count_by_key(&copies).len(),
        500,
        "beta flows after its topic was created"
    );
    run.stop_cleanly();
}

#[test]
fn missing_remote_topics_are_created_with_the_source_partition_count() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&ca, "alpha", 3);
    kafka::produce_test_records(&ca, "alpha", 3, 0..300, 1_700_000_000_000);

    let work = Workdir::new();
    let mut run = Running::start(&topology(&work, &a, &b, true), &[]);
    let copies = kafka::read_all(&cb, "a.alpha", 300, Duration::from_secs(60));
    assert_eq!(kafka::count_by_key(&copies).len(), 300);
    for r in &copies {
        let i: usize = std::str::from_utf8(&r.key.clone().unwrap()[1..])
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(r.partition, (i % 3) as i32, "same partition as the source");
    }
    run.stop_cleanly();
}
