//! `flows[].start_from` on real brokers: where partitions the flow has never replicated start
//! (`latest`, a time), that the choice is recorded so a restart or another instance resumes
//! there instead of choosing again, and that a committed offset or copies on the target win
//! over it.
//!
//! The records already on the source when a flow starts are produced in large record batches
//! (`linger.ms`): tansu reports a partition's end as the last batch's base offset + 1, so a
//! start taken from that report would copy the rest of the last batch — caught here, as not one
//! earlier record may reach the target.

use hubmirror_test_support as support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use support::emulator::EventHubsEmulator;
use support::fleet::Fleet;
use support::hubmirror::{Running, Workdir};
use support::kafka::{self, stream_key, Ledger, Sent, Stream};
use support::tansu::Tansu;
use support::topology::{TopologyBuilder, CONNECTION_STRING_VAR};

const PARTITIONS: i32 = 3;
/// The flow's copy of `t` on the target.
const REMOTE: &str = "a.t";

/// `a` → `b` over `t`, heartbeats off, with `start_from` when given.
fn topology(a: &Tansu, b: &Tansu, start_from: Option<&str>) -> TopologyBuilder {
    let t = TopologyBuilder::new()
        .tansu("a", a)
        .set("a", "heartbeats", "false")
        .tansu("b", b)
        .set("b", "heartbeats", "false")
        .flow("a", "b", &["t"])
        .replication("refresh_topics_interval", "2s");
    match start_from {
        Some(v) => t.flow_set("start_from", v),
        None => t,
    }
}

/// Produces `<prefix>-<i>` for `i < n` round-robin over the partitions of `topic` (see
/// [`produce_keys`]).
fn produce(cfg: &ClientConfig, topic: &str, prefix: &str, n: usize, ts: Option<i64>) {
    produce_to(cfg, topic, prefix, n, ts, PARTITIONS);
}

/// [`produce`] over partitions `0..partitions`.
fn produce_to(
    cfg: &ClientConfig,
    topic: &str,
    prefix: &str,
    n: usize,
    ts: Option<i64>,
    partitions: i32,
) {
    let keys: Vec<(i32, String)> = (0..n)
        .map(|i| (i as i32 % partitions, format!("{prefix}-{i}")))
        .collect();
    produce_keys(cfg, topic, &keys, ts);
}

/// Produces `(partition, key)` records (the key is the value too) in record batches of many
/// records (`linger.ms=200`), each with timestamp `ts` (ms; now when `None`). Returns once the
/// source acknowledged every one.
fn produce_keys(cfg: &ClientConfig, topic: &str, keys: &[(i32, String)], ts: Option<i64>) {
    let producer: FutureProducer = cfg
        .clone()
        .set("linger.ms", "200")
        .set("batch.num.messages", "100000")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    support::block_on(async {
        let mut acks = Vec::with_capacity(keys.len());
        for (p, key) in keys {
            let mut rec = FutureRecord::to(topic).partition(*p).key(key).payload(key);
            if let Some(ts) = ts {
                rec = rec.timestamp(ts);
            }
            acks.push(
                producer
                    .send_result(rec)
                    .map_err(|(e, _)| e)
                    .expect("enqueue"),
            );
        }
        for a in acks {
            a.await.expect("delivery future").expect("delivered");
        }
    });
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// Waits until `run` chose where each partition of `t` starts.
fn wait_started(run: &Running) {
    for p in 0..PARTITIONS {
        let line = run.wait_for_line(
            &[
                &format!("'t' partition {p} was never replicated"),
                "starting at offset",
            ],
            Duration::from_secs(60),
        );
        println!("{line}");
    }
}

#[test]
fn latest_copies_only_records_produced_after_the_start() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (src, dst) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&src, "t", PARTITIONS);
    produce(&src, "t", "before", 3000, None);
    let work = Workdir::new();
    let mut run = Running::start(&topology(&a, &b, Some("latest")).write(&work), &[]);
    wait_started(&run);
    produce(&src, "t", "after", 300, None);
    let recs = kafka::read_all(&dst, REMOTE, 300, Duration::from_secs(60));
    println!(
        "{}",
        kafka::assert_exactly_once(&recs, &[("after", 300)], "start_from: latest")
    );
    run.stop_cleanly();
}

#[test]
fn a_time_copies_records_from_that_time_on() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (src, dst) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&src, "t", PARTITIONS);
    let t = now_ms() - 10 * 60_000;
    produce(&src, "t", "older", 900, Some(t - 60_000));
    // Partitions 0 and 1 get records from the time on before the flow starts; partition 2
    // has none, so it starts at its end (a broker's answer for it is checked by reading).
    produce_to(&src, "t", "newer", 200, Some(t + 1_000), 2);
    let at = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(t as u64));
    let work = Workdir::new();
    let topo = topology(&a, &b, Some(&format!("'{at}'"))).write(&work);
    let mut run = Running::start(&topo, &[]);
    wait_started(&run);
    produce(&src, "t", "after", 300, None);
    let recs = kafka::read_all(&dst, REMOTE, 500, Duration::from_secs(60));
    println!(
        "{}",
        kafka::assert_exactly_once(
            &recs,
            &[("newer", 200), ("after", 300)],
            &format!("start_from: {at}")
        )
    );
    run.stop_cleanly();
}

/// A time older than the log start (an Event Hubs source whose retention deleted the first
/// records) starts at the log start: not data loss — `on_data_loss: fail` (the default) does not
/// stop the flow, nothing is counted lost.
#[test]
fn a_time_before_the_log_start_starts_there_without_data_loss() {
    let (eh, onprem) = (EventHubsEmulator::start(), Tansu::start());
    let (src, dst) = (eh.client_config(), kafka::plain(&onprem.listener()));
    kafka::create_topic(&src, "t", 1);
    let t = now_ms() - 60 * 60_000;
    produce_to(&src, "t", "old", 100, Some(t + 60_000), 1);
    eh.expire_before("t", 0, 40);
    let at = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(t as u64));
    let work = Workdir::new();
    let topo = TopologyBuilder::new()
        .event_hubs("eventhub", &eh)
        .set("eventhub", "heartbeats", "false")
        .tansu("onprem", &onprem)
        .flow("eventhub", "onprem", &["t"])
        .flow_set("start_from", &format!("'{at}'"))
        .replication("refresh_topics_interval", "2s")
        .write(&work);
    let mut run = Running::start(&topo, &[(CONNECTION_STRING_VAR, &eh.connection_string())]);
    let line = run.wait_for_line(
        &[
            "'t' partition 0 was never replicated",
            "starting at offset 40",
        ],
        Duration::from_secs(60),
    );
    println!("{line}");
    produce_to(&src, "t", "new", 50, None, 1);
    let recs = kafka::read_all(&dst, "eventhub.t", 110, Duration::from_secs(60));
    let counts = kafka::count_by_key(&recs);
    let want: Vec<String> = (40..100)
        .map(|i| format!("old-{i}"))
        .chain((0..50).map(|i| format!("new-{i}")))
        .collect();
    for k in &want {
        assert_eq!(counts.get(k.as_bytes()), Some(&1), "{k}: {counts:?}");
    }
    assert_eq!(recs.len(), want.len(), "nothing else copied");
    assert!(
        run.wait(Duration::ZERO).is_none(),
        "stopped:\n{}",
        run.output()
    );
    assert!(!run.output().contains("data loss"), "{}", run.output());
    run.stop_cleanly();
}

/// Stopped after choosing `latest` but before any record came: the restart resumes where the
/// first start chose, so what was produced while it was down is copied (choosing `latest`
/// again would skip it).
#[test]
fn a_restart_resumes_where_latest_was_chosen() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (src, dst) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&src, "t", PARTITIONS);
    produce(&src, "t", "before", 1500, None);
    let work = Workdir::new();
    let topo = topology(&a, &b, Some("latest")).write(&work);
    let mut run = Running::start(&topo, &[]);
    wait_started(&run);
    run.stop_cleanly();
    produce(&src, "t", "down", 150, None);
    let mut run = Running::start(&topo, &[]);
    produce(&src, "t", "after", 150, None);
    let recs = kafka::read_all(&dst, REMOTE, 300, Duration::from_secs(60));
    println!(
        "{}",
        kafka::assert_exactly_once(
            &recs,
            &[("down", 150), ("after", 150)],
            "restarted before the first record"
        )
    );
    run.stop_cleanly();
}

/// A flow that copied from the beginning keeps its place when restarted with `latest`: its
/// committed offsets win; and with a new group (another `name:`, no committed offsets) the
/// copies on the target win. Nothing is copied twice, nothing skipped.
#[test]
fn committed_offsets_and_copies_on_the_target_win_over_start_from() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (src, dst) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&src, "t", PARTITIONS);
    produce(&src, "t", "first", 300, None);
    let work = Workdir::new();
    let mut run = Running::start(&topology(&a, &b, None).write(&work), &[]);
    kafka::read_all(&dst, REMOTE, 300, Duration::from_secs(60));
    run.stop_cleanly();

    produce(&src, "t", "second", 150, None);
    let mut run = Running::start(&topology(&a, &b, Some("latest")).write(&work), &[]);
    let recs = kafka::read_all(&dst, REMOTE, 450, Duration::from_secs(60));
    kafka::assert_exactly_once(&recs, &[("first", 300), ("second", 150)], "same group");
    assert!(
        !run.output().contains("was never replicated"),
        "start_from applied to a replicated partition:\n{}",
        run.output()
    );
    run.stop_cleanly();

    produce(&src, "t", "third", 150, None);
    let renamed = topology(&a, &b, Some("latest")).name("renamed");
    let mut run = Running::start(&renamed.write(&work), &[]);
    let recs = kafka::read_all(&dst, REMOTE, 600, Duration::from_secs(60));
    println!(
        "{}",
        kafka::assert_exactly_once(
            &recs,
            &[("first", 300), ("second", 150), ("third", 150)],
            "new group, copies on the target"
        )
    );
    assert!(
        !run.output().contains("was never replicated"),
        "start_from applied to a partition with copies on the target:\n{}",
        run.output()
    );
    run.stop_cleanly();
}

/// Several instances with `latest`: the first chooses and stops before any record came; records
/// arrive while no instance runs; two others take the partitions over (each with a store of its
/// own) and must start where the first chose; then partitions move again while a stream
/// produces. Every record produced after the first start is copied once, none from before.
#[test]
fn instances_taking_partitions_over_keep_the_first_choice() {
    const TOPIC: &str = "orders";
    const PARTS: i32 = 6;
    let (a, b) = (Tansu::start(), Tansu::start());
    let (src, dst) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&src, TOPIC, PARTS);
    produce_to(&src, TOPIC, "before", 3000, None, PARTS);
    let topology = TopologyBuilder::new()
        .tansu("a", &a)
        .set("a", "heartbeats", "false")
        .tansu("b", &b)
        .set("b", "heartbeats", "false")
        .flow("a", "b", &[TOPIC])
        .flow_set("start_from", "latest")
        .replication("refresh_topics_interval", "2s");
    let flows = [("a", "b")];
    let limit = Duration::from_secs(60);
    let ledger = Ledger::start(&dst, "a.orders");
    let mut fleet = Fleet::new(topology, &[]);
    fleet.start("m1");
    fleet.wait_split(&["m1"], TOPIC, &flows, PARTS, limit);
    fleet.stop("m1");
    // Produced after the first start, while no instance runs: keys `gap-<partition>-<seq>`.
    let gap = Sent {
        prefix: "gap".into(),
        per_partition: (0..PARTS).map(|p| (p, 100)).collect(),
    };
    let keys: Vec<(i32, String)> = (0..100)
        .flat_map(|seq| (0..PARTS).map(move |p| (p, stream_key("gap", p, seq))))
        .collect();
    produce_keys(&src, TOPIC, &keys, None);
    fleet.start("m2");
    fleet.start("m3");
    fleet.wait_split(&["m2", "m3"], TOPIC, &flows, PARTS, limit);
    let all: Vec<i32> = (0..PARTS).collect();
    let stream = Stream::start(&src, TOPIC, &all, "s", 300);
    ledger.wait_past("s", &stream.marks(), limit);
    // Moved while records arrive: m2 stops, m1 comes back.
    fleet.stop("m2");
    fleet.start("m1");
    fleet.wait_split(&["m1", "m3"], TOPIC, &flows, PARTS, limit);
    ledger.wait_past("s", &stream.marks(), limit);
    let sent = stream.stop();
    let tally = ledger.tally(&[&gap, &sent], Duration::from_secs(90));
    println!("start_from: latest, 3 instances: {tally}");
    tally.assert_exact("start_from: latest with partitions moving");
}
