//! Active-active on real brokers: paired flows both ways in one `hubmirror run`, both naming
//! policies, a three-cluster ring, and the Event Hubs emulator as one side. Records never loop.

mod support;

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use support::emulator::EventHubsEmulator;
use support::hubmirror::{Running, Workdir};
use support::kafka;
use support::tansu::Tansu;

const PARTITIONS: i32 = 3;

/// `clusters:` entries for plain tansu brokers.
fn plain_cluster(alias: &str, t: &Tansu) -> String {
    format!("  {alias}:\n    bootstrap_servers: \"{}\"\n", t.listener())
}

fn flows(pairs: &[(&str, &str)], topics: &str) -> String {
    pairs
        .iter()
        .map(|(s, t)| format!("  - source: {s}\n    target: {t}\n    topics: {topics}\n"))
        .collect()
}

fn replication(policy: &str) -> String {
    format!("replication:\n  policy: {policy}\n  refresh_topics_interval: 1s\n  heartbeats_interval: 500ms\nstore:\n  path: ./data\n")
}

/// Runs producers on several clusters at once, for `secs` each; returns the counts in order.
fn produce_everywhere(
    sides: &[(&ClientConfig, &str, &str)],
    per_second: usize,
    secs: u64,
) -> Vec<usize> {
    std::thread::scope(|s| {
        let handles: Vec<_> = sides
            .iter()
            .map(|(cfg, topic, prefix)| {
                s.spawn(move || {
                    kafka::produce_for(
                        cfg,
                        topic,
                        PARTITIONS,
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
    let topo = work.topology(&format!(
        "clusters:\n{}{}flows:\n{}{}",
        plain_cluster("a", &a),
        plain_cluster("b", &b),
        flows(&[("a", "b"), ("b", "a")], "[\".*\"]"),
        replication("default")
    ));
    let mut run = Running::start(&topo, &[]);
    let n = produce_everywhere(&[(&ca, "orders", "a"), (&cb, "orders", "b")], 1000, 5);
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
    let topo = work.topology(&format!(
        "clusters:\n{}  eventhub:\n    event_hubs:\n      connection_string: ${{EVENTHUB_CONNECTION_STRING}}\n    tls:\n      ca_file: \"{}\"\nflows:\n{}{}",
        plain_cluster("onprem", &onprem),
        eh.ca_file().display(),
        flows(&[("onprem", "eventhub"), ("eventhub", "onprem")], "[testeh]"),
        replication("identity")
    ));
    let mut run = Running::start(
        &topo,
        &[("EVENTHUB_CONNECTION_STRING", &eh.connection_string())],
    );
    let n = produce_everywhere(
        &[(&co, "testeh", "onprem"), (&ce, "testeh", "eventhub")],
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
    let topo = work.topology(&format!(
        "clusters:\n{}{}{}flows:\n{}{}",
        plain_cluster("a", &brokers[0]),
        plain_cluster("b", &brokers[1]),
        plain_cluster("c", &brokers[2]),
        flows(pairs, &format!("[{topic}]")),
        replication("identity")
    ));
    let run = Running::start(&topo, &[]);
    let sides: Vec<_> = ["a", "b", "c"]
        .iter()
        .zip(&cfgs)
        .map(|(alias, cfg)| (cfg, topic, *alias))
        .collect();
    let n = produce_everywhere(&sides, 500, 5);
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
