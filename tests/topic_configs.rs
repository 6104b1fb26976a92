//! Topic config sync on real brokers: a compacted source topic becomes a compacted remote topic
//! with the same retention, a change on the source follows within a refresh, excluded configs
//! never go over, `sync_topic_configs: false` copies nothing, an Event Hubs target (the
//! emulator) that refuses configs is reported once per config while records keep flowing, and
//! with two instances only one alters. Target configs are read back with rdkafka; the source's
//! configs are changed with hubmirror's own IncrementalAlterConfigs call (rdkafka has none and
//! tansu refuses AlterConfigs).

use hubmirror_test_support as support;

use std::collections::BTreeMap;
use std::time::Duration;

use hubmirror::cluster::alter_configs::{incremental_alter_topic, ConfigOp};
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use support::emulator::EventHubsEmulator;
use support::hubmirror::{daemon_status, http_get, metric_sum, Running, Workdir};
use support::kafka;
use support::tansu::Tansu;
use support::topology::{TopologyBuilder, CONNECTION_STRING_VAR};
use support::wait_for;

const W: Duration = Duration::from_secs(60);

/// The source topic's configs: compacted, a retention, a size limit, a default exclusion and
/// one the test's own regex excludes.
const SOURCE_CONFIGS: [(&str, &str); 5] = [
    ("cleanup.policy", "compact"),
    ("retention.ms", "3600000"),
    ("max.message.bytes", "50000"),
    ("min.insync.replicas", "1"),
    ("segment.ms", "100000"),
];

fn builder(a: &Tansu, b: &Tansu) -> TopologyBuilder {
    TopologyBuilder::new()
        .tansu("a", a)
        .tansu("b", b)
        .flow("a", "b", &["orders"])
        .replication("refresh_topics_interval", "1s")
        .replication("heartbeats_interval", "0s")
}

fn seed(cfg: &ClientConfig, partitions: i32, configs: &[(&str, &str)], n: usize) {
    kafka::create_topic_with_configs(cfg, "orders", partitions, configs);
    let records: Vec<_> = (0..n)
        .map(|i| {
            (
                i as i32 % partitions,
                format!("k{i}").into_bytes(),
                b"v".to_vec(),
            )
        })
        .collect();
    kafka::produce_batched(cfg, "orders", &records);
}

/// Changes configs of `topic` on the broker `cfg` points at.
fn alter(cfg: &ClientConfig, topic: &str, ops: &[ConfigOp]) {
    let admin: AdminClient<DefaultClientContext> = cfg.create().expect("admin client");
    incremental_alter_topic(&admin, topic, ops, Duration::from_secs(10)).expect("alter source");
}

fn set(name: &str, value: &str) -> ConfigOp {
    ConfigOp::Set(name.into(), value.into())
}

/// Waits until `topic`'s configs on `cfg` satisfy `ok`; returns them.
fn wait_configs(
    cfg: &ClientConfig,
    topic: &str,
    what: &str,
    ok: impl Fn(&BTreeMap<String, String>) -> bool,
) -> BTreeMap<String, String> {
    wait_for(what, W, || {
        let c = kafka::topic_configs(cfg, topic);
        if ok(&c) {
            Ok(c)
        } else {
            Err(format!("{c:?}"))
        }
    })
}

fn has(c: &BTreeMap<String, String>, k: &str, v: &str) -> bool {
    c.get(k).map(String::as_str) == Some(v)
}

#[test]
fn compacted_source_is_copied_and_changes_follow_without_excluded_configs() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    seed(&ca, 1, &SOURCE_CONFIGS, 50);
    let work = Workdir::new();
    let topo = builder(&a, &b)
        .replication("topic_configs_exclude", "['segment\\..*']")
        .write(&work);
    let mut run = Running::start(&topo, &[]);
    let copies = kafka::read_all(&cb, "a.orders", 50, W);
    assert_eq!(kafka::count_by_key(&copies).len(), 50);

    let created = kafka::topic_configs(&cb, "a.orders");
    let expected: BTreeMap<String, String> = SOURCE_CONFIGS[..3]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        created, expected,
        "created with the source's configs, exclusions left out"
    );

    // A change and a deletion on the source follow within a refresh.
    alter(&ca, "orders", &[set("retention.ms", "7200000")]);
    alter(
        &ca,
        "orders",
        &[ConfigOp::Delete("max.message.bytes".into())],
    );
    alter(&ca, "orders", &[set("segment.ms", "5")]);
    let after = wait_configs(&cb, "a.orders", "the change and the deletion", |c| {
        has(c, "retention.ms", "7200000") && !c.contains_key("max.message.bytes")
    });
    assert!(has(&after, "cleanup.policy", "compact"), "{after:?}");
    assert!(!after.contains_key("segment.ms"), "excluded: {after:?}");
    assert!(
        !after.contains_key("min.insync.replicas"),
        "excluded: {after:?}"
    );

    let page = http_get(&work.metrics_addr(), "/metrics").expect("/metrics");
    let synced = metric_sum(
        &page,
        "hubmirror_topic_configs_synced_total",
        &["topic=\"orders\""],
    );
    assert_eq!(synced, 5.0, "3 at creation, 1 set, 1 deleted");
    run.stop_cleanly();
}

#[test]
fn sync_off_copies_nothing() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    seed(&ca, 1, &SOURCE_CONFIGS, 20);
    let work = Workdir::new();
    let topo = builder(&a, &b)
        .replication("sync_topic_configs", "false")
        .write(&work);
    let mut run = Running::start(&topo, &[]);
    kafka::read_all(&cb, "a.orders", 20, W);
    assert_eq!(kafka::topic_configs(&cb, "a.orders"), BTreeMap::new());
    // A change on the source does not go over either: the records produced after it arrive
    // (several refreshes later) and the target still has no config.
    alter(&ca, "orders", &[set("retention.ms", "7200000")]);
    kafka::produce_batched(&ca, "orders", &[(0, b"late".to_vec(), b"v".to_vec())]);
    kafka::read_all(&cb, "a.orders", 21, W);
    assert_eq!(kafka::topic_configs(&cb, "a.orders"), BTreeMap::new());
    run.stop_cleanly();
}

#[test]
fn event_hubs_target_refusals_are_reported_once_and_records_keep_flowing() {
    let (a, eh) = (Tansu::start(), EventHubsEmulator::start());
    let ca = kafka::plain(&a.listener());
    seed(&ca, 1, &SOURCE_CONFIGS[..3], 30);
    let work = Workdir::new();
    let topo = TopologyBuilder::new()
        .tansu("a", &a)
        .event_hubs("eh", &eh)
        .set("eh", "checkpoints", "false")
        .flow("a", "eh", &["orders"])
        .replication("refresh_topics_interval", "1s")
        .replication("heartbeats_interval", "0s")
        .write(&work);
    let conn = eh.connection_string();
    let mut run = Running::start(&topo, &[(CONNECTION_STRING_VAR, conn.as_str())]);
    let target = eh.client_config();
    kafka::read_all(&target, "a.orders", 30, W);

    // Created with what Event Hubs takes at creation; max.message.bytes refused and reported.
    let created = kafka::topic_configs(&target, "a.orders");
    assert!(has(&created, "cleanup.policy", "compact"), "{created:?}");
    assert!(has(&created, "retention.ms", "3600000"), "{created:?}");
    assert!(!created.contains_key("max.message.bytes"), "{created:?}");
    let line = run.wait_for_line(
        &[
            "refused topic config",
            "max.message.bytes",
            "'a.orders'",
            "'eh'",
        ],
        W,
    );
    assert!(
        line.contains("topic_configs_exclude"),
        "names the fix: {line}"
    );

    // A later change needs AlterConfigs, which Event Hubs lacks: reported once, records flow.
    alter(&ca, "orders", &[set("retention.ms", "7200000")]);
    run.wait_for_line(&["refused topic config", "retention.ms=7200000"], W);
    let late: Vec<_> = (0..10)
        .map(|i| (0, format!("late{i}").into_bytes(), b"v".to_vec()))
        .collect();
    kafka::produce_batched(&ca, "orders", &late);
    kafka::read_all(&target, "a.orders", 40, W);

    let out = run.output();
    let count = |config: &str| {
        out.lines()
            .filter(|l| l.contains("refused topic config") && l.contains(config))
            .count()
    };
    assert_eq!(count("max.message.bytes"), 1, "{out}");
    assert_eq!(count("retention.ms"), 1, "{out}");
    let page = http_get(&work.metrics_addr(), "/metrics").expect("/metrics");
    let refused = metric_sum(
        &page,
        "hubmirror_topic_configs_refused_total",
        &["topic=\"orders\""],
    );
    assert_eq!(refused, 2.0);
    run.stop_cleanly();
}

#[test]
fn with_two_instances_only_the_owner_of_partition_0_alters() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    seed(&ca, 2, &[("retention.ms", "3600000")], 40);
    let builder = builder(&a, &b);
    let works = [Workdir::new(), Workdir::new()];
    let mut runs: Vec<Running> = works
        .iter()
        .zip(["one", "two"])
        .map(|(w, name)| Running::start(&builder.write(w), &[("HUBMIRROR_INSTANCE", name)]))
        .collect();
    kafka::read_all(&cb, "a.orders", 40, W);
    // Both instances joined, each owning one partition; which one owns partition 0?
    let owner = owner_of_partition_0(&works);
    // Four changes, each applied once, by the owner of partition 0. (Both instances refresh
    // every second, so the other one would mostly find the change applied already: the
    // Event Hubs test below is the one that tells the rule apart.)
    for i in 1..=4 {
        let value = (7_200_000 + i).to_string();
        alter(&ca, "orders", &[set("retention.ms", &value)]);
        wait_configs(&cb, "a.orders", "the change", |c| {
            has(c, "retention.ms", &value)
        });
    }
    // A few more refreshes: records produced now arrive after them.
    kafka::produce_batched(&ca, "orders", &[(1, b"late".to_vec(), b"v".to_vec())]);
    kafka::read_all(&cb, "a.orders", 41, W);
    let synced: f64 = works
        .iter()
        .map(|w| {
            let page = http_get(&w.metrics_addr(), "/metrics").expect("/metrics");
            metric_sum(
                &page,
                "hubmirror_topic_configs_synced_total",
                &["topic=\"orders\""],
            )
        })
        .sum();
    assert_eq!(
        synced, 5.0,
        "one creation config and four alterations, over both instances"
    );
    let alters: Vec<usize> = runs
        .iter()
        .map(|r| {
            r.output()
                .lines()
                .filter(|l| l.contains("set topic config to match the source"))
                .count()
        })
        .collect();
    let mut expected = vec![0, 0];
    expected[owner] = 4;
    assert_eq!(alters, expected, "instance {owner} owns partition 0");
    for r in &mut runs {
        r.stop_cleanly();
    }
}

/// Which of the two instances owns partition 0, once each owns one partition.
fn owner_of_partition_0(works: &[Workdir]) -> usize {
    wait_for("each instance owns one partition", W, || {
        let owned: Vec<Vec<i64>> = works
            .iter()
            .filter_map(|w| daemon_status(&w.metrics_addr()))
            .filter_map(|s| {
                let parts = s.as_array()?[0]["owned_partitions"].as_array()?.clone();
                Some(
                    parts
                        .iter()
                        .filter_map(|p| p["partition"].as_i64())
                        .collect(),
                )
            })
            .collect();
        match owned.as_slice() {
            [x, y] if x.len() == 1 && y.len() == 1 => Ok(usize::from(y[0] == 0)),
            _ => Err(format!("{owned:?}")),
        }
    })
}

#[test]
fn with_two_instances_only_the_owner_of_partition_0_tries_a_refused_change() {
    let (a, eh) = (Tansu::start(), EventHubsEmulator::start());
    let ca = kafka::plain(&a.listener());
    seed(&ca, 2, &[("retention.ms", "3600000")], 40);
    let builder = TopologyBuilder::new()
        .tansu("a", &a)
        .event_hubs("eh", &eh)
        .set("eh", "checkpoints", "false")
        .flow("a", "eh", &["orders"])
        .replication("refresh_topics_interval", "1s")
        .replication("heartbeats_interval", "0s");
    let conn = eh.connection_string();
    let works = [Workdir::new(), Workdir::new()];
    let mut runs: Vec<Running> = works
        .iter()
        .zip(["one", "two"])
        .map(|(w, name)| {
            let env = [
                (CONNECTION_STRING_VAR, conn.as_str()),
                ("HUBMIRROR_INSTANCE", name),
            ];
            Running::start(&builder.write(w), &env)
        })
        .collect();
    let target = eh.client_config();
    kafka::read_all(&target, "a.orders", 40, W);
    let owner = owner_of_partition_0(&works);
    // Event Hubs refuses every alteration, so an instance that tried would report it: only the
    // owner of partition 0 does.
    alter(&ca, "orders", &[set("retention.ms", "7200000")]);
    runs[owner].wait_for_line(&["refused topic config", "retention.ms=7200000"], W);
    // Several refreshes later (records produced now arrive after them), still one report.
    let late: Vec<_> = (0..10)
        .map(|i| (i % 2, format!("late{i}").into_bytes(), b"v".to_vec()))
        .collect();
    kafka::produce_batched(&ca, "orders", &late);
    kafka::read_all(&target, "a.orders", 50, W);
    let reports: Vec<usize> = runs
        .iter()
        .map(|r| {
            r.output()
                .lines()
                .filter(|l| l.contains("refused topic config"))
                .count()
        })
        .collect();
    let mut expected = vec![0, 0];
    expected[owner] = 1;
    assert_eq!(reports, expected, "instance {owner} owns partition 0");
    for r in &mut runs {
        r.stop_cleanly();
    }
}
