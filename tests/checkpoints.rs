//! Checkpoints and group offset sync on real tansu brokers with the real `hubmirror run`: a
//! group's committed offsets on A become checkpoints in the store and in `a.checkpoints.internal`
//! on B that point at the copies of the records it would read next; they follow the group
//! forward, and back only when it is rewound; `checkpoints: false` keeps them out of B; with
//! `sync_group_offsets` an idle group on B follows them and an active one is left alone.
//!
//! B's `a.orders` starts with LOCAL records of its own per partition, so downstream offsets
//! differ from upstream ones (D = U + LOCAL). Records are produced batched and hubmirror batches
//! its copies on B, so groups stop and resume inside record batches.

use hubmirror_test_support as support;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hubmirror::checkpoint::{commit_group_offsets, committed_offsets, describe_group, Checkpoint};
use hubmirror::store::StoredCheckpoint;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use support::hubmirror::{http_get, metric_sum, Running, Workdir};
use support::kafka::{self, Rec};
use support::tansu::Tansu;
use support::topology::TopologyBuilder;
use support::wait_for;

/// What one cluster call may take, and how long a test waits for something to happen.
const T: Duration = Duration::from_secs(15);
const W: Duration = Duration::from_secs(30);
const RECORDS: usize = 1000;
const LOCAL: i64 = 7;
const INTERVAL: Duration = Duration::from_secs(1);
const CP_TOPIC: &str = "a.checkpoints.internal";

/// A group's offset per partition.
type Pos = BTreeMap<i32, i64>;

/// Hubmirror first, so it stops before its brokers.
struct Env {
    run: Running,
    work: Workdir,
    ca: ClientConfig,
    cb: ClientConfig,
    /// B's `a.orders`: the local records and the copies.
    copies: Vec<Rec>,
    _brokers: (Tansu, Tansu),
}

/// A with RECORDS in `orders` (2 partitions), B with LOCAL records per partition in `a.orders`,
/// and `hubmirror run` a → b, once every copy is on B.
fn start(cp_on_b: bool, sync: bool) -> Env {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&ca, "orders", 2);
    kafka::create_topic(&cb, "a.orders", 2);
    let raw = |n: usize, tag: &str| -> Vec<(i32, Vec<u8>, Vec<u8>)> {
        let rec = |i: usize| ((i % 2) as i32, format!("{tag}{i}").into_bytes(), vec![b'v']);
        (0..n).map(rec).collect()
    };
    kafka::produce_batched(&cb, "a.orders", &raw(2 * LOCAL as usize, "local"));
    kafka::produce_batched(&ca, "orders", &raw(RECORDS, "k"));
    let work = Workdir::new();
    let topology = TopologyBuilder::new()
        .tansu("a", &a)
        .tansu("b", &b)
        .set("b", "checkpoints", &cp_on_b.to_string())
        .flow("a", "b", &["orders"])
        .flow_set("groups", r#"[".*"]"#)
        .replication("checkpoints_interval", "1s")
        .replication("refresh_topics_interval", "1s")
        .replication("sync_group_offsets", &sync.to_string())
        .write(&work);
    let run = Running::start(&topology, &[]);
    let total = RECORDS + 2 * LOCAL as usize;
    let copies = kafka::read_all(&cb, "a.orders", total, 3 * W);
    assert_eq!(copies.len(), total, "every record is mirrored once");
    let (_brokers, work, run) = ((a, b), work, run);
    Env {
        run,
        work,
        ca,
        cb,
        copies,
        _brokers,
    }
}

/// [`wait_for`] until `done` accepts what `probe` returns, which is returned; the last value
/// seen is printed on timeout.
fn wait_seen<V: Debug>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> V,
    done: impl Fn(&V) -> bool,
) -> V {
    wait_for(what, timeout, || {
        let seen = probe();
        if done(&seen) {
            Ok(seen)
        } else {
            Err(seen)
        }
    })
}

/// Polls `n` more records in `consumer`'s group and commits exactly up to them; `pos` is the
/// group's position per partition, updated.
fn consume_and_commit(consumer: &BaseConsumer, n: usize, pos: &mut Pos) {
    for r in kafka::poll_records(consumer, n, Duration::from_secs(60)) {
        let at = pos.entry(r.partition).or_default();
        *at = (*at).max(r.offset + 1);
    }
    let mut tpl = TopicPartitionList::new();
    for (&p, &o) in pos.iter() {
        tpl.add_partition_offset("orders", p, Offset::Offset(o))
            .unwrap();
    }
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
}

/// Waits until the daemon's store checkpoints of `group` (GET /store/checkpoints) are at `pos`
/// (upstream, per partition); returns them.
fn stored_at(env: &Env, group: &str, pos: &Pos) -> Vec<StoredCheckpoint> {
    let path = format!("/store/checkpoints?group={group}");
    let probe = || -> Vec<StoredCheckpoint> {
        let body = http_get(&env.work.metrics_addr(), &path).unwrap_or_default();
        serde_json::from_str(&body).unwrap_or_default()
    };
    let at = |cps: &Vec<StoredCheckpoint>| {
        let at: Pos = cps
            .iter()
            .map(|c| (c.partition, c.upstream_offset))
            .collect();
        at == *pos
    };
    wait_seen(
        &format!("store checkpoints of {group} at {pos:?}"),
        W,
        probe,
        at,
    )
}

/// (partition, upstream, downstream) of each checkpoint.
type Rows = Vec<(i32, i64, i64)>;

/// Waits until the latest checkpoints of `group` in `a.checkpoints.internal` on B (read with an
/// independent consumer, one partition) equal `want`; returns every record's row, in order.
fn topic_matches(env: &Env, group: &str, want: &[StoredCheckpoint]) -> Rows {
    let want: Rows = want
        .iter()
        .map(|c| (c.partition, c.upstream_offset, c.downstream_offset))
        .collect();
    let probe = || {
        let reader: BaseConsumer = env
            .cb
            .clone()
            .set("group.id", "reader")
            .set("enable.partition.eof", "true")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(CP_TOPIC, 0, Offset::Beginning)
            .unwrap();
        reader.assign(&tpl).unwrap();
        let mut rows = Rows::new();
        // Until the end of the partition, or an error such as a missing topic.
        while let Some(Ok(m)) = reader.poll(T) {
            let c =
                Checkpoint::decode(m.key().unwrap(), m.payload().unwrap()).expect("a checkpoint");
            if c.group == group && c.topic == "a.orders" {
                rows.push((c.partition, c.upstream_offset, c.downstream_offset));
            }
        }
        rows
    };
    let latest = |rows: &Rows| {
        let last: BTreeMap<i32, (i64, i64)> = rows.iter().map(|&(p, u, d)| (p, (u, d))).collect();
        last.into_iter()
            .map(|(p, (u, d))| (p, u, d))
            .collect::<Rows>()
            == want
    };
    wait_seen(&format!("{CP_TOPIC} on b shows {want:?}"), W, probe, latest)
}

/// Each checkpoint points at the copy of the record at its upstream offset: the copy before D
/// is that of U - 1, and the copy at D that of U (or D is B's end, when U is A's).
fn check_downstream(env: &Env, cps: &[StoredCheckpoint]) {
    for c in cps {
        let (p, u, d) = (c.partition, c.upstream_offset, c.downstream_offset);
        assert_eq!(
            (c.source_topic.as_str(), c.remote_topic.as_str()),
            ("orders", "a.orders")
        );
        assert_eq!(d, u + LOCAL, "{c:?}");
        let copy = |o: i64| {
            env.copies
                .iter()
                .find(|r| r.partition == p && r.offset == o)
        };
        let source = |o: i64| copy(o).and_then(|r| r.header("hubmirror.source"));
        let of = |u: i64| (u < RECORDS as i64 / 2).then(|| format!("a/orders/{p}/{u}"));
        assert_eq!(source(d - 1), of(u - 1), "the copy before {c:?}");
        assert_eq!(source(d), of(u), "the copy at {c:?}");
    }
}

fn metric(env: &Env, name: &str, labels: &[&str]) -> f64 {
    metric_sum(
        &http_get(&env.work.metrics_addr(), "/metrics").unwrap_or_default(),
        name,
        labels,
    )
}

/// `group`'s committed offsets on `a.orders` on B.
fn on_b(env: &Env, group: &str) -> Pos {
    let got = committed_offsets(env.cb.clone(), group, |t| t == "a.orders", T).expect("committed");
    got.into_iter().map(|(_, p, o)| (p, o)).collect()
}

#[test]
fn checkpoints_point_at_the_copies_and_go_back_only_when_the_group_is_rewound() {
    let env = start(true, false);
    let consumer = kafka::group_consumer(&env.ca, "app", &["orders"]);
    let mut pos = Pos::new();
    for (n, total) in [(400, 400), (200, 600)] {
        consume_and_commit(&consumer, n, &mut pos);
        assert_eq!(pos.values().sum::<i64>(), total);
        let cps = stored_at(&env, "app", &pos);
        check_downstream(&env, &cps);
        let rows = topic_matches(&env, "app", &cps);
        eprintln!("app at {pos:?} on a: checkpoints (partition, upstream, downstream) {rows:?}");
    }
    assert!(metric(&env, "hubmirror_checkpoints_total", &[]) >= 3.0);
    drop(consumer);

    // Rewound while it has no members (once the consumer's leave went through).
    let rewound = [("orders".to_string(), 0, 50), ("orders".to_string(), 1, 50)];
    let rewind = || commit_group_offsets(env.ca.clone(), "app", &rewound, T);
    wait_seen("app is rewound on a", W, rewind, Result::is_ok).expect("rewound");
    let cps = stored_at(&env, "app", &[(0, 50), (1, 50)].into());
    check_downstream(&env, &cps);
    let rows = topic_matches(&env, "app", &cps);

    // Per partition, each record moved downstream forward, except the one that followed the
    // rewind (upstream backwards).
    let mut rewinds = 0;
    for p in 0..2 {
        let seq: Vec<_> = rows
            .iter()
            .filter(|r| r.0 == p)
            .map(|r| (r.1, r.2))
            .collect();
        for w in seq.windows(2) {
            if w[1].0 < w[0].0 {
                rewinds += 1;
            } else {
                assert!(
                    w[1].1 > w[0].1,
                    "partition {p}: a checkpoint went backwards: {seq:?}"
                );
            }
        }
        eprintln!("partition {p}: checkpoints written (upstream, downstream) {seq:?}");
    }
    assert_eq!(rewinds, 2, "one rewind per partition");
}

#[test]
fn checkpoints_off_on_the_target_keeps_them_in_the_store_only() {
    let mut env = start(false, false);
    let consumer = kafka::group_consumer(&env.ca, "app", &["orders"]);
    let mut pos = Pos::new();
    consume_and_commit(&consumer, 400, &mut pos);
    check_downstream(&env, &stored_at(&env, "app", &pos));

    // Two more rounds after the one that stored them: any write to B would have happened.
    let round = || {
        metric(
            &env,
            "hubmirror_checkpoints_last_success_timestamp_seconds",
            &[],
        )
    };
    let seen = round();
    assert!(seen > 0.0, "the round gauge is exported");
    wait_seen("two more checkpoint rounds", W, round, |&r| r >= seen + 2.0);
    let topics = kafka::topic_names(&env.cb);
    assert!(
        !topics.iter().any(|t| t == CP_TOPIC),
        "{CP_TOPIC} on b: {topics:?}"
    );
    assert!(
        topics.iter().any(|t| t == "a.heartbeats"),
        "b is written to: {topics:?}"
    );
    // The checkpoint task does not hold up a stop.
    let stopping = Instant::now();
    assert!(env.run.terminate(W).success(), "exit 0");
    eprintln!("stopped in {:?}", stopping.elapsed());
}

#[test]
fn sync_moves_idle_groups_on_the_target_and_leaves_active_ones_alone() {
    let env = start(true, true);
    let downstream = |cps: Vec<StoredCheckpoint>| -> Pos {
        cps.iter()
            .map(|c| (c.partition, c.downstream_offset))
            .collect()
    };

    // An idle group follows, forward, within two intervals of each new checkpoint.
    let consumer = kafka::group_consumer(&env.ca, "app", &["orders"]);
    let mut pos = Pos::new();
    for n in [400, 200] {
        consume_and_commit(&consumer, n, &mut pos);
        let want = downstream(stored_at(&env, "app", &pos));
        let seen = Instant::now();
        wait_seen(
            "app on b follows",
            2 * INTERVAL,
            || on_b(&env, "app"),
            |o| *o == want,
        );
        eprintln!(
            "app on b at {want:?} {:?} after the checkpoint",
            seen.elapsed()
        );
    }
    drop(consumer);

    // A member of `live` on B commits 10 records (tansu lists only groups that committed) and
    // keeps polling without committing again.
    let stop = Arc::new(AtomicBool::new(false));
    let member = {
        let (cb, stop) = (env.cb.clone(), stop.clone());
        std::thread::spawn(move || {
            let c = kafka::group_consumer(&cb, "live", &["a.orders"]);
            kafka::poll_records(&c, 10, Duration::from_secs(60));
            c.commit_consumer_state(CommitMode::Sync).expect("commit");
            while !stop.load(Ordering::Relaxed) {
                let _ = c.poll(Duration::from_millis(100));
            }
        })
    };
    let live = |env: &Env| describe_group(env.cb.clone(), "live", T).expect("describe");
    wait_seen("live is active on b", W, || live(&env), |d| d.is_active());
    let before = on_b(&env, "live");
    assert_eq!(before.values().sum::<i64>(), 10);

    let consumer = kafka::group_consumer(&env.ca, "live", &["orders"]);
    let mut pos = Pos::new();
    consume_and_commit(&consumer, 400, &mut pos);
    drop(consumer);
    let want = downstream(stored_at(&env, "live", &pos));
    let skipped = || {
        metric(
            &env,
            "hubmirror_group_sync_skipped_total",
            &[r#"reason="active""#],
        )
    };
    wait_seen("three syncs of live skipped", W, skipped, |&n| n >= 3.0);
    assert_eq!(
        on_b(&env, "live"),
        before,
        "an active group's offsets are left alone"
    );
    let out = env.run.output();
    let logged = out
        .lines()
        .filter(|l| l.contains("'live' has") && l.contains("active member"));
    assert_eq!(logged.count(), 1, "logged once while it stays active");

    // Once it has no members, it follows too: every partition with a checkpoint moves to it; a
    // partition without one (the 400 records may all come from one partition) keeps what the
    // member committed there.
    stop.store(true, Ordering::Relaxed);
    member.join().expect("member");
    let mut expected = before.clone();
    expected.extend(want.iter().map(|(&p, &o)| (p, o)));
    wait_seen(
        "live on b follows once idle",
        W,
        || on_b(&env, "live"),
        |o| *o == expected,
    );
    assert!(want.values().all(|&d| d > 10), "{want:?}");
    assert!(metric(&env, "hubmirror_group_offsets_synced_total", &[]) > 0.0);
}
