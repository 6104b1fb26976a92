//! Errors that need a cluster: a wrong key and an untrusted certificate stop `run` with exit 1
//! naming the cluster; an unreachable bootstrap and a missing or too small target topic are
//! counted while the other flows and topics run.

use super::*;

use crate::support::emulator::{EventHubsEmulator, KEY};
use crate::support::tansu::free_port;
use crate::support::topology::CONNECTION_STRING_VAR;

/// The port of `host:port`.
fn port_of(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap_or(addr)
}

/// Asserts that `recs` holds `n` records with distinct keys.
fn all_once(recs: &[Rec], n: usize) {
    assert_eq!(
        (kafka::count_by_key(recs).len(), recs.len()),
        (n, n),
        "all, once each"
    );
}

#[test]
fn a_wrong_key_stops_run_with_exit_1_naming_the_cluster_and_no_secret() {
    let (onprem, eh) = (Tansu::start(), EventHubsEmulator::start());
    let wrong_key = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5IQ==";
    let cs = eh.connection_string().replace(KEY, wrong_key);
    let work = Workdir::new();
    kafka::create_topic(&kafka::plain(&onprem.listener()), "t", 1);
    let topology = TopologyBuilder::new()
        .tansu("onprem", &onprem)
        .event_hubs("eventhub", &eh)
        .flow("onprem", "eventhub", &["t"])
        .write(&work);
    let mut run = Running::start(&topology, &[(CONNECTION_STRING_VAR, &cs)]);
    let failed = format!(
        "hubmirror: cluster 'eventhub' (localhost:{}): authentication failed",
        port_of(&eh.bootstrap())
    );
    run_fails(
        &mut run,
        &[&failed, "check the credentials of clusters.eventhub"],
    );
    let out = run.output();
    for secret in [wrong_key, KEY, cs.as_str()] {
        assert!(!out.contains(secret), "a secret was printed:\n{out}");
    }
}

#[test]
fn an_untrusted_certificate_stops_run_with_exit_1_naming_the_cluster_and_the_fix() {
    // No `tls.ca_file`: the emulator's certificate is signed by a CA nobody trusts. About one
    // run in twelve of this test used to crash on exit (OpenSSL's atexit cleanup under
    // librdkafka's threads: SIGSEGV instead of exit 1).
    let (onprem, eh) = (Tansu::start(), EventHubsEmulator::start());
    let work = Workdir::new();
    let cs = eh.connection_string();
    kafka::create_topic(&kafka::plain(&onprem.listener()), "t", 1);
    // By hand: the builder always gives an Event Hubs cluster a `tls.ca_file`; this one has none.
    let topology = work.topology(&format!(
        "clusters:\n  onprem: {{bootstrap_servers: \"{}\"}}\n  eventhub:\n    event_hubs: \
         {{connection_string: \"${{{CONNECTION_STRING_VAR}}}\"}}\nflows:\n  - {{source: onprem, \
         target: eventhub, topics: [t]}}\n",
        onprem.listener()
    ));
    let mut run = Running::start(&topology, &[(CONNECTION_STRING_VAR, &cs)]);
    let failed = format!(
        "hubmirror: cluster 'eventhub' (localhost:{}): TLS certificate not trusted",
        port_of(&eh.bootstrap())
    );
    run_fails(&mut run, &[&failed, "set clusters.eventhub.tls.ca_file"]);
}

#[test]
fn an_unreachable_bootstrap_is_counted_and_not_ready_while_the_other_flows_run() {
    // `a` is a closed port. hubmirror keeps running (a broker down now may come back), counts the
    // failures, reports flow a->b not ready, and says now and then which cluster to check.
    let (b, c) = (Tansu::start(), Tansu::start());
    let cc = kafka::plain(&c.listener());
    kafka::create_topic(&cc, "t", 2);
    kafka::produce_test_records(&cc, "t", 2, 0..200, 1_700_000_000_000);
    let work = Workdir::new();
    let topo = TopologyBuilder::new()
        .cluster("a", &format!("127.0.0.1:{}", free_port()))
        .tansu("b", &b)
        .tansu("c", &c)
        .flow("a", "b", &["t"])
        .flow("c", "b", &["t"])
        .replication("heartbeats_interval", "0s")
        .write(&work);
    let mut run = Running::start(&topo, &[]);
    all_once(&read(&b, "c.t", 200), 200);
    metric_at_least(
        &work,
        "hubmirror_errors_total",
        &["source=\"a\"", "kind=\"consume\""],
        1.0,
    );
    let (code, body) = http_status(&work.metrics_addr(), "/readyz").expect("/readyz answers");
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("flow a->b") && !body.contains("flow c->b"),
        "{body}"
    );
    let warning = "cluster 'a' (127.0.0.1:";
    let needles = [
        warning,
        "connection refused",
        "check the port in clusters.a.bootstrap_servers",
    ];
    let line = run.wait_for_line(&needles, Duration::from_secs(10));
    println!("{line}\n/readyz: {body:?}");
    let warnings = run.output().matches(warning).count();
    assert!(warnings <= 3, "{warnings} warnings: at most one per 30 s");
    assert!(run.wait(Duration::ZERO).is_none(), "still running");
    run.stop_cleanly();
}

/// `a` → `b` with `create_topics: false`: `alpha` is ready on `b`, `a.beta` has `beta_on_b`
/// partitions (0: missing) for 2 on the source. Reported once, counted once; `alpha` flows in full.
fn unservable_target_topic(beta_on_b: i32, needles: &[&str]) {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    for t in ["alpha", "beta"] {
        kafka::create_topic(&ca, t, 2);
        kafka::produce_test_records(&ca, t, 2, 0..300, 1_700_000_000_000);
    }
    kafka::create_topic(&cb, "a.alpha", 2);
    if beta_on_b > 0 {
        kafka::create_topic(&cb, "a.beta", beta_on_b);
    }
    let work = Workdir::new();
    let mut run = Running::start(&kafka_pair(&a, &b, false).write(&work), &[]);
    println!("{}", run.wait_for_line(needles, Duration::from_secs(30)));
    all_once(&read(&b, "a.alpha", 300), 300);
    let kind = ["source=\"a\"", "target=\"b\"", "kind=\"target_topic\""];
    metric_at_least(&work, "hubmirror_errors_total", &kind, 1.0);
    // Refreshed every second since: still counted once.
    let page = http_status(&work.metrics_addr(), "/metrics")
        .expect("/metrics")
        .1;
    assert_eq!(metric_sum(&page, "hubmirror_errors_total", &kind), 1.0);
    run.stop_cleanly();
}

#[test]
fn a_missing_target_topic_is_counted_and_the_other_topics_flow() {
    let missing = "target topic 'a.beta' is missing on cluster 'b'";
    unservable_target_topic(
        0,
        &[
            missing,
            "create_topics is false",
            "create it with 2 partitions",
        ],
    );
}

#[test]
fn a_target_with_fewer_partitions_is_counted_and_the_other_topics_flow() {
    let fewer = "target topic 'a.beta' on cluster 'b' has 1 of the source's 2 partitions";
    unservable_target_topic(1, &[fewer, "add 1 partitions to 'a.beta' on 'b'"]);
}
