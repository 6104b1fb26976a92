//! Active-active on real brokers: paired flows both ways in one `hubmirror run`, both naming
//! policies, a three-cluster ring, and the Event Hubs emulator as one side. Records never loop.
//!
//! Producers on every cluster write at the same time, batched. Under the identity policy each
//! cluster's producer writes partitions of its own of the shared topic, and the copies of the
//! other clusters' records land in the others: tansu does not reliably serve a partition that
//! two producers write at once to a consumer following it (see the README's caveats), and
//! hubmirror's flows follow every partition of it. The loop rule still sees every copy come
//! back, and every flow still reads local records and copies in one topic.

use hubmirror_test_support as support;

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use support::emulator::EventHubsEmulator;
use support::hubmirror::{Running, Workdir};
use support::kafka;
use support::tansu::Tansu;
use support::topology::{TopologyBuilder, CONNECTION_STRING_VAR};

const PARTITIONS: i32 = 3;

/// `clusters`, `flows` between them over `topics`, the `policy`, heartbeats every 500 ms.
fn topology(
    clusters: &[(&str, &Tansu)],
    pairs: &[(&str, &str)],
    topics: &[&str],
    policy: &str,
) -> TopologyBuilder {
    let mut t = TopologyBuilder::new();
    for (alias, broker) in clusters {
        t = t.tansu(alias, broker);
    }
    for (source, target) in pairs {
        t = t.flow(source, target, topics);
    }
    t.replication("policy", policy)
        .replication("refresh_topics_interval", "1s")
        .replication("heartbeats_interval", "500ms")
}

/// The partitions the producer of side `k` of `n` writes: all of them, or (`own`) those
/// numbered `k` modulo `n`.
fn partitions_of(k: usize, n: usize, own: bool) -> Vec<i32> {
    (0..PARTITIONS)
        .filter(|p| !own || *p as usize % n == k)
        .collect()
}

/// Runs producers on several clusters at once, for `secs` each; returns the counts in order.
/// With `own_partitions`, each side writes only [`partitions_of`] its own.
fn produce_everywhere(
    sides: &[(&ClientConfig, &str, &str)],
    own_partitions: bool,
    per_second: usize,
    secs: u64,
) -> Vec<usize> {
    let n = sides.len();
    std::thread::scope(|s| {
        let handles: Vec<_> = sides
            .iter()
            .enumerate()
            .map(|(k, (cfg, topic, prefix))| {
                let partitions = partitions_of(k, n, own_partitions);
                s.spawn(move || {
                    kafka::produce_for(
                        cfg,
                        topic,
                        &partitions,
                        prefix,
                        per_second,
                        Duration::from_secs(secs),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("producer thread"))
            .collect()
    })
}

/// Polls until `topic` stops moving: the same reported high watermarks for `quiet`.
fn assert_stable(cfg: &ClientConfig, topic: &str, quiet: Duration) {
    let first = kafka::high_watermarks(cfg, topic);
    let until = Instant::now() + quiet;
    while Instant::now() < until {
        assert_eq!(
            kafka::high_watermarks(cfg, topic),
            first,
            "{topic} moved after quiescence"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn default_policy_both_ways_gives_each_side_exactly_the_other_sides_records() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&ca, "orders", PARTITIONS);
    kafka::create_topic(&cb, "orders", PARTITIONS);
    let work = Workdir::new();
    let topo = topology(
        &[("a", &a), ("b", &b)],
        &[("a", "b"), ("b", "a")],
        &[".*"],
        "default",
    )
    .write(&work);
    let mut run = Running::start(&topo, &[]);
    let n = produce_everywhere(
        &[(&ca, "orders", "a"), (&cb, "orders", "b")],
        false,
        1000,
        5,
    );
    let (na, nb) = (n[0], n[1]);

    let deadline = Duration::from_secs(90);
    println!(
        "{}",
        kafka::assert_exactly_once(
            &kafka::read_all(&ca, "orders", na, deadline),
            &[("a", na)],
            "a/orders"
        )
    );
    println!(
        "{}",
        kafka::assert_exactly_once(
            &kafka::read_all(&ca, "b.orders", nb, deadline),
            &[("b", nb)],
            "a/b.orders"
        )
    );
    println!(
        "{}",
        kafka::assert_exactly_once(
            &kafka::read_all(&cb, "orders", nb, deadline),
            &[("b", nb)],
            "b/orders"
        )
    );
    println!(
        "{}",
        kafka::assert_exactly_once(
            &kafka::read_all(&cb, "a.orders", na, deadline),
            &[("a", na)],
            "b/a.orders"
        )
    );
    for (cluster, cfg) in [("a", &ca), ("b", &cb)] {
        let names = kafka::topic_names(cfg);
        let looped: Vec<_> = names
            .iter()
            .filter(|t| t.starts_with("a.b.") || t.starts_with("b.a."))
            .collect();
        assert!(
            looped.is_empty(),
            "cluster {cluster} has looped topics {looped:?} (all: {names:?})"
        );
        println!("cluster {cluster} topics: {names:?}");
    }
    run.stop_cleanly();
}

#[test]
fn identity_policy_with_event_hubs_same_topic_both_ways_never_ping_pongs() {
    let onprem = Tansu::start();
    let eh = EventHubsEmulator::start();
    let (co, ce) = (kafka::plain(&onprem.listener()), eh.client_config());
    kafka::create_topic(&co, "testeh", PARTITIONS);
    kafka::create_topic(&ce, "testeh", PARTITIONS);
    let work = Workdir::new();
    let topo = topology(
        &[("onprem", &onprem)],
        &[("onprem", "eventhub"), ("eventhub", "onprem")],
        &["testeh"],
        "identity",
    )
    .event_hubs("eventhub", &eh)
    .write(&work);
    let mut run = Running::start(&topo, &[(CONNECTION_STRING_VAR, &eh.connection_string())]);
    let n = produce_everywhere(
        &[(&co, "testeh", "onprem"), (&ce, "testeh", "eventhub")],
        true,
        500,
        20,
    );
    let expected = [("onprem", n[0]), ("eventhub", n[1])];
    let total = n[0] + n[1];

    let deadline = Duration::from_secs(120);
    for (side, cfg) in [("onprem", &co), ("eventhub", &ce)] {
        let recs = kafka::read_all(cfg, "testeh", total, deadline);
        println!(
            "{}",
            kafka::assert_exactly_once(&recs, &expected, &format!("{side}/testeh"))
        );
    }
    assert_stable(&co, "testeh", Duration::from_secs(10));
    assert_stable(&ce, "testeh", Duration::from_secs(0));
    for (side, cfg) in [("onprem", &co), ("eventhub", &ce)] {
        let recs = kafka::read_all(cfg, "testeh", total, deadline);
        kafka::assert_exactly_once(&recs, &expected, &format!("{side}/testeh after quiescence"));
    }
    // Each flow dropped exactly the copies of the other side's records (the loop rule), counted.
    let metrics = support::hubmirror::http_get(&work.metrics_addr(), "/metrics").expect("metrics");
    let dropped = |s: &str, t: &str| {
        support::hubmirror::metric_sum(
            &metrics,
            "hubmirror_records_skipped_total",
            &[
                &format!("source=\"{s}\""),
                &format!("target=\"{t}\""),
                "reason=\"loop\"",
            ],
        )
    };
    println!(
        "dropped by the loop rule: onprem->eventhub {}, eventhub->onprem {}",
        dropped("onprem", "eventhub"),
        dropped("eventhub", "onprem")
    );
    assert_eq!(
        dropped("onprem", "eventhub") as usize,
        n[1],
        "copies of eventhub's records not sent back"
    );
    assert_eq!(
        dropped("eventhub", "onprem") as usize,
        n[0],
        "copies of onprem's records not sent back"
    );
    run.stop_cleanly();
}

/// Three brokers a, b, c with `topic` on each, `hubmirror run` with `flows` (identity policy),
/// producers on all three for 5 s; asserts every record is on every cluster exactly once.
struct Three {
    brokers: [Tansu; 3],
    cfgs: [ClientConfig; 3],
    work: Workdir,
    run: Running,
}

fn three_clusters_exactly_once(topic: &str, pairs: &[(&str, &str)]) -> Three {
    let brokers = [Tansu::start(), Tansu::start(), Tansu::start()];
    let cfgs = brokers.each_ref().map(|t| kafka::plain(&t.listener()));
    for cfg in &cfgs {
        kafka::create_topic(cfg, topic, PARTITIONS);
    }
    let work = Workdir::new();
    let clusters = [("a", &brokers[0]), ("b", &brokers[1]), ("c", &brokers[2])];
    let topo = topology(&clusters, pairs, &[topic], "identity").write(&work);
    let run = Running::start(&topo, &[]);
    let sides: Vec<_> = ["a", "b", "c"]
        .iter()
        .zip(&cfgs)
        .map(|(alias, cfg)| (cfg, topic, *alias))
        .collect();
    let n = produce_everywhere(&sides, true, 500, 5);
    let expected = [("a", n[0]), ("b", n[1]), ("c", n[2])];
    let total: usize = n.iter().sum();
    for (alias, cfg) in ["a", "b", "c"].iter().zip(&cfgs) {
        let recs = kafka::read_all(cfg, topic, total, Duration::from_secs(120));
        println!(
            "{}",
            kafka::assert_exactly_once(&recs, &expected, &format!("{alias}/{topic}"))
        );
    }
    Three {
        brokers,
        cfgs,
        work,
        run,
    }
}

#[test]
fn identity_ring_of_three_delivers_every_record_once_everywhere() {
    let Three {
        brokers: _brokers,
        cfgs,
        work,
        mut run,
    } = three_clusters_exactly_once("ring", &[("a", "b"), ("b", "c"), ("c", "a")]);
    let topo = work.path().join("topology.yaml");
    assert_stable(&cfgs[0], "ring", Duration::from_secs(3));

    // Upstream clusters of c, read off the replicated heartbeats: b at 1 hop, a at 2.
    let deadline = Instant::now() + Duration::from_secs(60);
    let upstream = loop {
        let out = support::hubmirror::run_to_end(
            &["status", "--json", "-c", topo.to_str().unwrap()],
            &[],
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let c_up = json["clusters"]
            .as_array()
            .and_then(|cl| cl.iter().find(|x| x["alias"] == "c"))
            .map(|x| x["upstream"].clone());
        if let Some(up) = c_up {
            if up.as_array().is_some_and(|u| u.len() == 2) {
                break up;
            }
        }
        assert!(
            Instant::now() < deadline,
            "status never showed two upstreams for c:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    println!("upstream of c: {upstream}");
    let hops = |alias: &str| {
        upstream
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["cluster"] == alias)
            .map(|u| u["hops"].as_u64())
    };
    assert_eq!(hops("b"), Some(Some(1)));
    assert_eq!(hops("a"), Some(Some(2)));
    run.stop_cleanly();
}

#[test]
fn identity_mesh_a_b_c_delivers_every_record_once_everywhere() {
    let Three {
        brokers: _brokers,
        mut run,
        ..
    } = three_clusters_exactly_once("mesh", &[("a", "b"), ("b", "a"), ("b", "c"), ("c", "b")]);
    run.stop_cleanly();
}
