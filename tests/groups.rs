//! Consumer groups and checkpoints on real tansu brokers (and one through the Event Hubs
//! emulator): listing and selecting groups, reading committed offsets, telling active groups
//! from idle ones, committing a group's offsets from outside so that its next consumer starts
//! exactly there, and reading the latest checkpoints back from a checkpoints topic.

use hubmirror_test_support as support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hubmirror::checkpoint::{
    checkpoints_topic, commit_group_offsets, committed_offsets, describe_group, group_is_active,
    list_groups, read_checkpoints, read_latest, select_groups, Checkpoint, CheckpointError,
};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::ClientConfig;
use regex::Regex;
use support::emulator::EventHubsEmulator;
use support::kafka::{self, Rec};
use support::tansu::Tansu;
use support::wait_for;

/// What every cluster call here may take.
const T: Duration = Duration::from_secs(15);

fn anchored(patterns: &[&str]) -> Vec<Regex> {
    patterns
        .iter()
        .map(|p| Regex::new(&format!("^(?:{p})$")).expect("regex"))
        .collect()
}

/// The first offset read per partition, and how many records per partition.
fn first_and_count(recs: &[Rec]) -> BTreeMap<i32, (i64, usize)> {
    let mut m: BTreeMap<i32, (i64, usize)> = BTreeMap::new();
    for r in recs {
        m.entry(r.partition)
            .and_modify(|(_, n)| *n += 1)
            .or_insert((r.offset, 1));
    }
    m
}

/// Consumes all `n` records of `topic` in `group` (subscribed), commits, and closes.
fn consume_and_commit(cfg: &ClientConfig, group: &str, topic: &str, n: usize) -> Vec<Rec> {
    let consumer = kafka::group_consumer(cfg, group, &[topic]);
    let recs = kafka::poll_records(&consumer, n, Duration::from_secs(60));
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    recs
}

#[test]
fn lists_groups_and_selects_them_by_pattern() {
    let broker = Tansu::start();
    let cfg = kafka::plain(&broker.listener());
    kafka::create_topic(&cfg, "orders", 2);
    kafka::produce_test_records(&cfg, "orders", 2, 0..10, 1_700_000_000_000);

    // Two groups that consumed as members, one that only stored offsets, and a flow's own group.
    consume_and_commit(&cfg, "orders-app", "orders", 10);
    consume_and_commit(&cfg, "orders-dev", "orders", 10);
    commit_group_offsets(cfg.clone(), "audit", &[("orders".into(), 0, 1)], T).expect("commit");
    commit_group_offsets(cfg.clone(), "hubmirror-a-b", &[("orders".into(), 0, 2)], T)
        .expect("commit");

    let want = ["audit", "hubmirror-a-b", "orders-app", "orders-dev"];
    let all = wait_for(
        "all four groups are listed",
        Duration::from_secs(30),
        || {
            let all = list_groups(cfg.clone(), T).expect("list_groups");
            want.iter()
                .all(|w| all.iter().any(|g| g == w))
                .then_some(all)
        },
    );
    eprintln!("groups on tansu: {all:?}");

    assert_eq!(
        select_groups(&all, &anchored(&[".*"]), &[]),
        ["audit", "orders-app", "orders-dev"],
        "hubmirror's own group is never selected"
    );
    assert_eq!(
        select_groups(&all, &anchored(&["orders-.*"]), &anchored(&[".*-dev"])),
        ["orders-app"]
    );
    assert!(select_groups(&all, &[], &[]).is_empty());
}

#[test]
fn reads_the_committed_offsets_of_a_group() {
    let broker = Tansu::start();
    let cfg = kafka::plain(&broker.listener());
    kafka::create_topic(&cfg, "orders", 3);
    kafka::create_topic(&cfg, "other", 2);
    // Partitions 0 and 1 only: 7 and 6 records; partition 2 stays empty.
    let records: Vec<Raw> = (0..13)
        .map(|i| (i % 2, format!("k{i}").into_bytes(), b"v".to_vec()))
        .collect();
    kafka::produce_batched(&cfg, "orders", &records);
    kafka::produce_test_records(&cfg, "other", 2, 0..4, 1_700_000_000_000);

    let recs = consume_and_commit(&cfg, "app", "orders", 13);
    assert_eq!(recs.len(), 13);

    let want = vec![("orders".to_string(), 0, 7), ("orders".to_string(), 1, 6)];
    let got = committed_offsets(cfg.clone(), "app", |t| t == "orders", T).expect("committed");
    assert_eq!(got, want, "partition 2 has no committed offset");
    // The filter decides which topics are asked about; `other` has nothing from `app`.
    let got = committed_offsets(cfg.clone(), "app", |_| true, T).expect("committed");
    assert_eq!(got, want);
    let got = committed_offsets(cfg.clone(), "app", |t| t == "other", T).expect("committed");
    assert!(got.is_empty(), "{got:?}");
    let got = committed_offsets(cfg.clone(), "app", |t| t == "missing", T).expect("committed");
    assert!(got.is_empty(), "{got:?}");
    // A group that never committed.
    let got = committed_offsets(cfg.clone(), "nobody", |_| true, T).expect("committed");
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn a_group_is_active_while_a_member_polls_and_idle_after_it_closed() {
    let broker = Tansu::start();
    let cfg = kafka::plain(&broker.listener());
    kafka::create_topic(&cfg, "orders", 2);
    kafka::produce_test_records(&cfg, "orders", 2, 0..10, 1_700_000_000_000);

    assert!(!group_is_active(cfg.clone(), "live", T).expect("describe"));
    let unknown = describe_group(cfg.clone(), "live", T).expect("describe");
    eprintln!("unknown group: {unknown:?}");
    assert_eq!(unknown.members, 0);

    // The member consumes everything, commits (tansu lists, and so describes, only groups
    // that have committed offsets), and keeps polling until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let member = {
        let (cfg, stop) = (cfg.clone(), stop.clone());
        std::thread::spawn(move || {
            let consumer = kafka::group_consumer(&cfg, "live", &["orders"]);
            let recs = kafka::poll_records(&consumer, 10, Duration::from_secs(60));
            consumer
                .commit_consumer_state(CommitMode::Sync)
                .expect("commit");
            while !stop.load(Ordering::Relaxed) {
                if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                    panic!("an 11th record: {:?}", m.map(|m| Rec::from(&m)));
                }
            }
            // Dropping the consumer closes it: it leaves the group.
            recs.len()
        })
    };

    let active = wait_for("the group becomes active", Duration::from_secs(30), || {
        let d = describe_group(cfg.clone(), "live", T).expect("describe");
        d.is_active().then_some(d)
    });
    eprintln!("while polling: {active:?}");
    assert!(group_is_active(cfg.clone(), "live", T).expect("describe"));

    // Its offsets cannot be moved from outside while it is active, and stay where they are.
    let err = commit_group_offsets(cfg.clone(), "live", &[("orders".into(), 0, 1)], T)
        .expect_err("commit onto an active group");
    assert!(
        matches!(err, CheckpointError::GroupActive { members: 1, .. }),
        "{err}"
    );
    eprintln!("{err}");
    let mine = [("orders".to_string(), 0, 5), ("orders".to_string(), 1, 5)];
    assert_eq!(
        committed_offsets(cfg.clone(), "live", |t| t == "orders", T).expect("committed"),
        mine
    );

    stop.store(true, Ordering::Relaxed);
    let consumed = member.join().expect("member thread");
    assert_eq!(consumed, 10);

    let idle = wait_for("the group becomes idle", Duration::from_secs(30), || {
        let d = describe_group(cfg.clone(), "live", T).expect("describe");
        (!d.is_active()).then_some(d)
    });
    eprintln!("after close: {idle:?}");
    assert!(!group_is_active(cfg.clone(), "live", T).expect("describe"));
    // Its offsets stay.
    let got = committed_offsets(cfg.clone(), "live", |t| t == "orders", T).expect("committed");
    assert_eq!(got, mine);
    // Now they can be moved.
    commit_group_offsets(cfg.clone(), "live", &[("orders".into(), 0, 1)], T).expect("commit");
    let got = committed_offsets(cfg.clone(), "live", |t| t == "orders", T).expect("committed");
    assert_eq!(
        got,
        [("orders".to_string(), 0, 1), ("orders".to_string(), 1, 5)]
    );
}

#[test]
fn committed_offsets_of_an_idle_group_are_where_its_next_consumer_starts() {
    let broker = Tansu::start();
    let cfg = kafka::plain(&broker.listener());
    kafka::create_topic(&cfg, "orders", 2);
    // Batched: the resume points below are inside record batches, where the consumer must
    // start exactly.
    let records: Vec<Raw> = (0..20)
        .map(|i| {
            (
                i % 2,
                format!("k{i}").into_bytes(),
                format!("v{i}").into_bytes(),
            )
        })
        .collect();
    kafka::produce_batched(&cfg, "orders", &records);

    let offsets = vec![("orders".to_string(), 0, 3), ("orders".to_string(), 1, 7)];
    commit_group_offsets(cfg.clone(), "moved", &offsets, T).expect("commit");
    assert_eq!(
        committed_offsets(cfg.clone(), "moved", |t| t == "orders", T).expect("committed"),
        offsets
    );
    // Committing again moves it (backwards too: that is the caller's decision).
    let offsets = vec![("orders".to_string(), 0, 2), ("orders".to_string(), 1, 8)];
    commit_group_offsets(cfg.clone(), "moved", &offsets, T).expect("commit");
    assert_eq!(
        committed_offsets(cfg.clone(), "moved", |t| t == "orders", T).expect("committed"),
        offsets
    );
    // Nothing to commit is a no-op; a negative offset is refused before anything is sent.
    commit_group_offsets(cfg.clone(), "moved", &[], T).expect("empty commit");
    let err = commit_group_offsets(cfg.clone(), "moved", &[("orders".into(), 0, -1)], T)
        .expect_err("negative offset");
    assert!(
        matches!(err, CheckpointError::InvalidOffset { offset: -1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("'moved'"), "{err}");

    // A fresh member of the group resumes exactly there: 10 - 2 + 10 - 8 = 10 records.
    let consumer = kafka::group_consumer(&cfg, "moved", &["orders"]);
    let recs = kafka::poll_records(&consumer, 10, Duration::from_secs(60));
    let extra = consumer.poll(Duration::from_millis(1000));
    assert!(extra.is_none(), "an 11th record: {extra:?}");
    let got = first_and_count(&recs);
    assert_eq!(
        got,
        BTreeMap::from([(0, (2, 8)), (1, (8, 2))]),
        "first offset and count per partition"
    );
}

fn checkpoint(group: &str, topic: &str, partition: i32, up: i64, down: i64) -> Checkpoint {
    Checkpoint {
        group: group.into(),
        topic: topic.into(),
        partition,
        upstream_offset: up,
        downstream_offset: down,
        metadata: String::new(),
    }
}

/// A record to produce: partition, key, value.
type Raw = (i32, Vec<u8>, Vec<u8>);

fn record(partition: i32, c: &Checkpoint) -> Raw {
    (
        partition,
        c.encode_key().expect("key"),
        c.encode_value().expect("value"),
    )
}

#[test]
fn reads_the_latest_checkpoint_per_group_topic_and_partition() {
    let broker = Tansu::start();
    let cfg = kafka::plain(&broker.listener());
    let topic = checkpoints_topic("onprem");

    // No topic: nothing, not an error.
    assert!(read_checkpoints(cfg.clone(), &topic, T)
        .expect("absent topic")
        .is_empty());
    kafka::create_topic(&cfg, &topic, 2);
    // An empty topic: its ends are found too.
    assert!(read_checkpoints(cfg.clone(), &topic, T)
        .expect("empty topic")
        .is_empty());

    // Several checkpoints per key, in separate batches (the ListOffsets bug shows with several
    // batches), and a record that is not a checkpoint.
    let mut batches: Vec<Vec<Raw>> = Vec::new();
    for round in 0..5i64 {
        batches.push(vec![
            record(
                0,
                &checkpoint("app", "onprem.orders", 0, 100 + round, 50 + round),
            ),
            record(
                0,
                &checkpoint("app", "onprem.orders", 1, 200 + round, 70 + round),
            ),
            record(
                1,
                &checkpoint("billing", "onprem.orders", 0, 10 * round, 5 * round),
            ),
        ]);
    }
    batches.push(vec![(1, b"garbage".to_vec(), b"not a checkpoint".to_vec())]);
    // The upstream offset went back: the latest record wins, not the largest offset.
    batches.push(vec![record(
        1,
        &checkpoint("billing", "onprem.orders", 0, 3, 1),
    )]);
    for b in &batches {
        kafka::produce_batched(&cfg, &topic, b);
    }

    let got = read_checkpoints(cfg.clone(), &topic, T).expect("read");
    assert_eq!(
        got,
        [
            checkpoint("app", "onprem.orders", 0, 104, 54),
            checkpoint("app", "onprem.orders", 1, 204, 74),
            checkpoint("billing", "onprem.orders", 0, 3, 1),
        ]
    );
    let stored = read_latest(cfg.clone(), &topic, T).expect("read");
    let where_: Vec<(i32, i64)> = stored
        .iter()
        .map(|s| (s.record_partition, s.record_offset))
        .collect();
    assert_eq!(where_, [(0, 8), (0, 9), (1, 6)]);
    assert!(stored.iter().all(|s| s.timestamp_ms.is_some()));
}

#[test]
fn groups_and_checkpoints_through_the_event_hubs_emulator() {
    let eh = EventHubsEmulator::start();
    let cfg = eh.client_config();
    kafka::create_topic(&cfg, "testeh", 2);
    kafka::produce_test_records(&cfg, "testeh", 2, 0..10, 1_700_000_000_000);

    commit_group_offsets(
        cfg.clone(),
        "functions",
        &[("testeh".into(), 0, 1), ("testeh".into(), 1, 4)],
        T,
    )
    .expect("commit");
    assert_eq!(
        committed_offsets(cfg.clone(), "functions", |t| t == "testeh", T).expect("committed"),
        [("testeh".to_string(), 0, 1), ("testeh".to_string(), 1, 4)]
    );
    assert!(!group_is_active(cfg.clone(), "functions", T).expect("describe"));
    let all = wait_for("the group is listed", Duration::from_secs(30), || {
        let all = list_groups(cfg.clone(), T).expect("list_groups");
        all.iter().any(|g| g == "functions").then_some(all)
    });
    assert_eq!(
        select_groups(&all, &anchored(&["func.*"]), &[]),
        ["functions"]
    );

    let topic = checkpoints_topic("onprem");
    assert!(read_checkpoints(cfg.clone(), &topic, T)
        .expect("absent")
        .is_empty());
    kafka::create_topic(&cfg, &topic, 1);
    kafka::produce_batched(
        &cfg,
        &topic,
        &[
            record(0, &checkpoint("functions", "testeh", 0, 5, 1)),
            record(0, &checkpoint("functions", "testeh", 0, 6, 2)),
        ],
    );
    assert_eq!(
        read_checkpoints(cfg.clone(), &topic, T).expect("read"),
        [checkpoint("functions", "testeh", 0, 6, 2)]
    );
}
