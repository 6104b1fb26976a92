//! Topic discovery while `hubmirror run` is running, on real brokers: new topics are picked up
//! within the refresh interval, internal topics never are, and a target that refuses to create a
//! topic (the Event Hubs emulator) is reported once while the other topics keep flowing.

use hubmirror_test_support as support;

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use support::emulator::EventHubsEmulator;
use support::hubmirror::{Running, Workdir};
use support::kafka;
use support::tansu::Tansu;
use support::topology::{TopologyBuilder, CONNECTION_STRING_VAR};

const TS_BASE: i64 = 1_700_000_000_000;
const REFRESH: Duration = Duration::from_secs(1);
/// A new topic joins the flow group's subscription, and the group rebalances before its
/// partitions are assigned: on the test broker a rebalance takes about half the flow consumer's
/// session timeout of 10 s (README, "tansu caveats"); this allows twice that.
const REBALANCE: Duration = Duration::from_secs(10);

/// A flow `a → b` of `topics` between two plain brokers with a 1 s refresh.
fn plain_topology(work: &Workdir, a: &Tansu, b: &Tansu, topics: &[&str]) -> std::path::PathBuf {
    TopologyBuilder::new()
        .tansu("a", a)
        .tansu("b", b)
        .flow("a", "b", topics)
        .replication("refresh_topics_interval", "1s")
        .replication("heartbeats_interval", "0s")
        .write(work)
}

/// Reads `topic` from the beginning (polling until it exists) until `expected` records arrived;
/// returns when the first and the last of them arrived, or panics at `deadline`.
fn arrival_times(
    cfg: &ClientConfig,
    topic: &str,
    expected: usize,
    deadline: Instant,
) -> (Instant, Instant) {
    let consumer: BaseConsumer = cfg
        .clone()
        .set("group.id", "arrival-probe")
        .create()
        .expect("consumer");
    loop {
        assert!(
            Instant::now() < deadline,
            "{topic} never appeared on the target"
        );
        let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(5));
        let t = md.ok().and_then(|md| {
            md.topics()
                .first()
                .map(|t| (t.error(), t.partitions().len()))
        });
        if let Some((None, n)) = t.filter(|(_, n)| *n > 0) {
            let mut tpl = TopicPartitionList::new();
            for p in 0..n as i32 {
                tpl.add_partition_offset(topic, p, Offset::Beginning)
                    .expect("tpl");
            }
            consumer.assign(&tpl).expect("assign");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (mut first, mut count) = (None, 0);
    while count < expected {
        assert!(
            Instant::now() < deadline,
            "{count} of {expected} records on {topic} by the deadline"
        );
        if let Some(m) = consumer.poll(Duration::from_millis(20)) {
            m.expect("consume");
            first.get_or_insert_with(Instant::now);
            count += 1;
        }
    }
    (first.expect("at least one record"), Instant::now())
}

#[test]
fn a_topic_created_while_running_is_mirrored_within_the_refresh_interval() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&ca, "orders1", 2);
    kafka::produce_test_records(&ca, "orders1", 2, 0..100, TS_BASE);

    let work = Workdir::new();
    let mut run = Running::start(&plain_topology(&work, &a, &b, &["orders.*"]), &[]);
    let copies = kafka::read_all(&cb, "a.orders1", 100, Duration::from_secs(60));
    assert_eq!(kafka::count_by_key(&copies).len(), 100, "orders1 flows");

    kafka::create_topic(&ca, "orders2", 3);
    let created = Instant::now();
    kafka::produce_test_records(&ca, "orders2", 3, 0..200, TS_BASE);
    // Discovery runs every second: the copy must start within a few intervals and one
    // rebalance of the flow's group, not on restart.
    let (first, last) = arrival_times(&cb, "a.orders2", 200, created + 5 * REFRESH + REBALANCE);
    println!(
        "orders2 (refresh interval {REFRESH:?}): created → first copy on b {:?}, → 200th copy {:?}",
        first - created,
        last - created
    );
    let copies = kafka::read_all(&cb, "a.orders2", 200, Duration::from_secs(30));
    let counts = kafka::count_by_key(&copies);
    assert_eq!(counts.len(), 200, "every orders2 record arrived");
    assert!(counts.values().all(|n| *n == 1), "no duplicates");
    run.stop_cleanly();
}

#[test]
fn internal_topics_are_not_mirrored() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    let internal = ["__internal_x", ".hidden", "foo.internal", "foo-internal"];
    for t in internal.iter().chain(&["data"]) {
        kafka::create_topic(&ca, t, 1);
        kafka::produce_test_records(&ca, t, 1, 0..50, TS_BASE);
    }
    let on_a = kafka::topic_names(&ca);
    assert!(
        internal.iter().all(|t| on_a.contains(*t)),
        "the source holds the internal topics: {on_a:?}"
    );

    let work = Workdir::new();
    let mut run = Running::start(&plain_topology(&work, &a, &b, &[".*"]), &[]);
    let copies = kafka::read_all(&cb, "a.data", 50, Duration::from_secs(60));
    assert_eq!(kafka::count_by_key(&copies).len(), 50, "data flows");

    // Watch b for three refresh intervals after data arrived: no copy of an internal topic may
    // appear at any time, and nothing but a.data comes from a.
    let window_end = Instant::now() + 3 * REFRESH;
    let mut polls = 0;
    while Instant::now() < window_end {
        let on_b = kafka::topic_names(&cb);
        let mirrored: Vec<&String> = on_b.iter().filter(|t| t.starts_with("a.")).collect();
        assert_eq!(mirrored, ["a.data"], "topics from a on b: {on_b:?}");
        for t in internal {
            assert!(!on_b.contains(&format!("a.{t}")), "a.{t} was mirrored");
        }
        polls += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "b's topic list polled {polls} times over {:?}: only a.data",
        3 * REFRESH
    );
    run.stop_cleanly();
}

#[test]
fn emulator_refusing_create_topics_is_reported_and_other_topics_keep_flowing() {
    let onprem = Tansu::start();
    let eh = EventHubsEmulator::start_with(true);
    let c_onprem = kafka::plain(&onprem.listener());
    for t in ["alpha", "beta"] {
        kafka::create_topic(&c_onprem, t, 2);
        kafka::produce_test_records(&c_onprem, t, 2, 0..300, TS_BASE);
    }
    // The emulator refuses CreateTopics, so the event hub an operator made in the portal is
    // created on the broker behind it, through its own listener (see `EventHubsEmulator::create_topic_behind`).
    eh.create_topic_behind("onprem.alpha", 2);

    let work = Workdir::new();
    let topology = TopologyBuilder::new()
        .tansu("onprem", &onprem)
        .event_hubs("eventhub", &eh)
        .flow("onprem", "eventhub", &["alpha", "beta"])
        .replication("refresh_topics_interval", "1s")
        .replication("heartbeats_interval", "0s")
        .write(&work);
    let cs = eh.connection_string();
    let mut run = Running::start(&topology, &[(CONNECTION_STRING_VAR, &cs)]);
    let ceh = eh.client_config();
    let copies = kafka::read_all(&ceh, "onprem.alpha", 300, Duration::from_secs(60));
    assert_eq!(kafka::count_by_key(&copies).len(), 300, "alpha flows");

    let line = run.wait_for_line(
        &["'onprem.beta'", "cluster 'eventhub'", "Policy violation"],
        Duration::from_secs(20),
    );
    println!("reported: {line}");

    // After the error, alpha keeps flowing and hubmirror keeps running.
    kafka::produce_test_records(&c_onprem, "alpha", 2, 300..600, TS_BASE);
    let copies = kafka::read_all(&ceh, "onprem.alpha", 600, Duration::from_secs(60));
    let counts = kafka::count_by_key(&copies);
    assert_eq!(counts.len(), 600, "alpha still flows after the error");
    assert!(counts.values().all(|n| *n == 1), "no duplicates");
    assert!(
        run.wait(Duration::ZERO).is_none(),
        "hubmirror exited:\n{}",
        run.output()
    );
    // Retried on every refresh (several by now), reported once.
    let out = run.output();
    let reports = out
        .lines()
        .filter(|l| l.contains("'onprem.beta'") && l.contains("Policy violation"))
        .count();
    assert_eq!(reports, 1, "reported once:\n{out}");
    assert!(
        !out.contains(eh.connection_string().as_str()),
        "secret in output"
    );
    assert!(
        !kafka::topic_names(&ceh).contains("onprem.beta"),
        "the refused topic does not exist"
    );
    run.stop_cleanly();
}

/// With a long refresh interval, a topic that appears on the source just after the flows
/// started (as the remote topic a flow the other way creates does) flows within seconds: the
/// first refreshes after a start come 1 s, 2 s, 4 s, … apart.
#[test]
fn a_topic_created_just_after_start_flows_before_the_refresh_interval() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    let work = Workdir::new();
    let topo = TopologyBuilder::new()
        .tansu("a", &a)
        .tansu("b", &b)
        .flow("a", "b", &["orders"])
        .replication("refresh_topics_interval", "120s")
        .replication("heartbeats_interval", "0s")
        .write(&work);
    let mut run = Running::start(&topo, &[]);
    // Ready: the flow did its first refresh and found nothing.
    let addr = work.metrics_addr();
    support::wait_for("the flow ready", Duration::from_secs(60), || {
        support::hubmirror::http_status(&addr, "/readyz").filter(|(code, _)| *code == 200)
    });
    kafka::create_topic(&ca, "orders", 1);
    kafka::produce_batched(&ca, "orders", &[(0, b"k".to_vec(), b"v".to_vec())]);
    let got = kafka::read_all(&cb, "a.orders", 1, Duration::from_secs(40));
    assert_eq!(
        got.len(),
        1,
        "the record flows well before the 120 s refresh"
    );
    run.stop_cleanly();
}
