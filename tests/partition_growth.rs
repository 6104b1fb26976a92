//! Partition growth (issue 17) on real tansu brokers: a remote topic with fewer partitions than
//! its source serves the partitions it has while the others wait, reported once; the waiting
//! ones start once it has them — also when they moved to another instance meanwhile. tansu has
//! no CreatePartitions: the refusal is tested here, the growth decision by unit tests
//! (`src/flow/remote.rs`), and a remote topic gains partitions by being created again.

use hubmirror_test_support as support;

use std::time::Duration;

use support::fleet::Fleet;
use support::hubmirror::{Running, Workdir};
use support::kafka;
use support::tansu::Tansu;
use support::topology::TopologyBuilder;

fn builder(a: &Tansu, b: &Tansu, create_topics: bool) -> TopologyBuilder {
    TopologyBuilder::new()
        .tansu("a", a)
        .tansu("b", b)
        .flow("a", "b", &["gamma"])
        .replication("create_topics", &create_topics.to_string())
        .replication("refresh_topics_interval", "1s")
}

/// The record numbers of `recs` (keys `k<i>`), sorted.
fn numbers(recs: &[kafka::Rec]) -> Vec<usize> {
    let mut out: Vec<usize> = recs
        .iter()
        .map(|r| {
            std::str::from_utf8(&r.key.clone().expect("key")[1..])
                .expect("utf-8")
                .parse()
                .expect("number")
        })
        .collect();
    out.sort_unstable();
    out
}

/// A remote topic with fewer partitions than its source, `create_topics` off: the partitions it
/// has flow, the others wait, reported once naming the counts and the fix; once the remote topic
/// has them (here deleted and created again: tansu cannot add partitions), the waiting
/// partitions start from their beginning, in the same run.
#[test]
fn a_short_remote_topic_serves_the_partitions_it_has_until_it_grows() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&ca, "gamma", 2);
    kafka::produce_test_records(&ca, "gamma", 2, 0..500, 1_700_000_000_000);
    kafka::create_topic(&cb, "a.gamma", 1);

    let work = Workdir::new();
    let mut run = Running::start(&builder(&a, &b, false).write(&work), &[]);
    let line = run.wait_for_line(
        &[
            "'a.gamma' on cluster 'b' has 1 of the source's 2 partitions",
            "source partitions 1..1 wait",
            "add 1 partitions to 'a.gamma' on 'b'",
        ],
        Duration::from_secs(30),
    );
    println!("{line}");
    // Partition 0 (even record numbers) flows; more records go both ways meanwhile, and only
    // partition 0's arrive.
    let copies = kafka::read_all(&cb, "a.gamma", 250, Duration::from_secs(60));
    assert_eq!(numbers(&copies), (0..500).step_by(2).collect::<Vec<_>>());
    kafka::produce_test_records(&ca, "gamma", 2, 500..600, 1_700_000_000_000);
    let copies = kafka::read_all(&cb, "a.gamma", 300, Duration::from_secs(60));
    assert_eq!(
        numbers(&copies),
        (0..600).step_by(2).collect::<Vec<_>>(),
        "partition 0 exactly once, nothing of partition 1"
    );

    let now = kafka::recreate_topic(&cb, "a.gamma", 2);
    assert!(now >= 2, "a.gamma has {now} partitions");
    // Partition 0 was copied and committed up to its end: only partition 1 comes now, from its
    // beginning, to partition 1.
    let copies = kafka::read_all(&cb, "a.gamma", 300, Duration::from_secs(60));
    assert_eq!(
        numbers(&copies),
        (1..600).step_by(2).collect::<Vec<_>>(),
        "partition 1 exactly once, from its beginning"
    );
    assert!(copies.iter().all(|r| r.partition == 1));
    run.wait_for_line(&["the remote topic grew"], Duration::from_secs(5));
    let out = run.output();
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("ERROR") && l.contains("has 1 of the source's 2 partitions"))
            .count(),
        1,
        "reported once, not on every refresh: {out}"
    );
    run.stop_cleanly();
}

/// `create_topics` on and a target that cannot add partitions (tansu has no CreatePartitions):
/// one line names the topic, the counts, the refusal and the fix; the partitions it has flow.
#[test]
fn a_target_that_cannot_add_partitions_is_reported_once_and_the_rest_flows() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&ca, "gamma", 3);
    kafka::produce_test_records(&ca, "gamma", 3, 0..300, 1_700_000_000_000);
    kafka::create_topic(&cb, "a.gamma", 2);

    let work = Workdir::new();
    let mut run = Running::start(&builder(&a, &b, true).write(&work), &[]);
    let line = run.wait_for_line(
        &[
            "'a.gamma' on cluster 'b' has 2 of the source's 3 partitions",
            "refused to add 1 (it does not support CreatePartitions)",
            "source partitions 2..2 wait",
        ],
        Duration::from_secs(30),
    );
    println!("{line}");
    let copies = kafka::read_all(&cb, "a.gamma", 200, Duration::from_secs(60));
    let expected: Vec<usize> = (0..300).filter(|i| i % 3 != 2).collect();
    assert_eq!(numbers(&copies), expected);
    // Later refreshes ask again (each one), quietly.
    kafka::produce_test_records(&ca, "gamma", 3, 300..330, 1_700_000_000_000);
    let copies = kafka::read_all(&cb, "a.gamma", 220, Duration::from_secs(60));
    let expected: Vec<usize> = (0..330).filter(|i| i % 3 != 2).collect();
    assert_eq!(numbers(&copies), expected);
    let out = run.output();
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("ERROR") && l.contains("refused to add 1"))
            .count(),
        1,
        "reported once: {out}"
    );
    run.stop_cleanly();
}

/// Two instances of one topology; the remote topic has 2 of the source's 4 partitions. The
/// instance holding waiting partitions stops, they move to the other, and the remote topic then
/// gets its partitions: each record is copied once, every waiting partition from its beginning.
#[test]
fn waiting_partitions_that_moved_to_another_instance_start_once_the_topic_grows() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&ca, "gamma", 4);
    kafka::produce_test_records(&ca, "gamma", 4, 0..800, 1_700_000_000_000);
    kafka::create_topic(&cb, "a.gamma", 2);

    let mut fleet = Fleet::new(builder(&a, &b, false), &[]);
    fleet.start("i1");
    fleet.start("i2");
    let flows = [("a", "b")];
    let (split, took) =
        fleet.wait_split(&["i1", "i2"], "gamma", &flows, 4, Duration::from_secs(90));
    println!("split after {took:?}: {}", support::fleet::describe(&split));
    let copies = kafka::read_all(&cb, "a.gamma", 400, Duration::from_secs(60));
    let flowing: Vec<usize> = (0..800).filter(|i| i % 4 < 2).collect();
    assert_eq!(numbers(&copies), flowing, "partitions 0 and 1 exactly once");

    // Stop the instance that holds partition 3 (waiting): the other takes every partition.
    let holder = split
        .iter()
        .find(|(_, owned)| owned.iter().any(|o| o.partition == 3))
        .map(|(name, _)| name.clone())
        .expect("someone holds partition 3");
    let other = if holder == "i1" { "i2" } else { "i1" };
    fleet.stop(&holder);
    let (split, took) = fleet.wait_split(&[other], "gamma", &flows, 4, Duration::from_secs(90));
    println!(
        "after stopping {holder}, {took:?}: {}",
        support::fleet::describe(&split)
    );

    let now = kafka::recreate_topic(&cb, "a.gamma", 4);
    assert!(now >= 4, "a.gamma has {now} partitions");
    let copies = kafka::read_all(&cb, "a.gamma", 400, Duration::from_secs(90));
    let waited: Vec<usize> = (0..800).filter(|i| i % 4 >= 2).collect();
    assert_eq!(
        numbers(&copies),
        waited,
        "partitions 2 and 3 exactly once, from their beginning; nothing of 0 and 1 again"
    );
    for r in &copies {
        let i = numbers(std::slice::from_ref(r))[0];
        assert_eq!(r.partition, (i % 4) as i32, "same partition as the source");
    }
    fleet.assert_alive();
}

/// `start_from: latest` and a remote topic with fewer partitions: a waiting partition's start is
/// chosen (and recorded) when the flow takes it, not when the remote topic grows — the records
/// produced while it waited are copied, none from before the flow started.
#[test]
fn a_waiting_partition_under_start_from_latest_keeps_what_was_produced_while_it_waited() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&ca, "gamma", 2);
    kafka::produce_test_records(&ca, "gamma", 2, 0..400, 1_700_000_000_000);
    kafka::create_topic(&cb, "a.gamma", 1);

    let work = Workdir::new();
    let config = builder(&a, &b, false)
        .flow_set("start_from", "latest")
        .write(&work);
    let mut run = Running::start(&config, &[]);
    run.wait_for_line(
        &["partitions assigned, waiting", "partitions=[1]"],
        Duration::from_secs(60),
    );
    run.wait_for_line(
        &["partition assigned, starting", "partition=0"],
        Duration::from_secs(30),
    );
    kafka::produce_test_records(&ca, "gamma", 2, 400..500, 1_700_000_000_000);
    let copies = kafka::read_all(&cb, "a.gamma", 50, Duration::from_secs(60));
    let expected: Vec<usize> = (400..500).step_by(2).collect();
    assert_eq!(
        numbers(&copies),
        expected,
        "partition 0 from the flow's start"
    );

    kafka::recreate_topic(&cb, "a.gamma", 2);
    let copies = kafka::read_all(&cb, "a.gamma", 50, Duration::from_secs(60));
    let expected: Vec<usize> = (401..500).step_by(2).collect();
    assert_eq!(
        numbers(&copies),
        expected,
        "partition 1: what was produced while it waited, nothing from before the start"
    );
    run.stop_cleanly();
}
