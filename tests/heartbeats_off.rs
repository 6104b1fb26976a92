//! Heartbeats switched off — for one target (`heartbeats: false`) or everywhere
//! (`heartbeats_interval: 0s`): `run` copies no heartbeats topic there, and `topics` does not
//! list one as a route (`validate` is covered by its unit tests); the flow still reports a
//! replication latency and exports `hubmirror_last_ack_age_seconds`, for the stale alert.

use hubmirror_test_support as support;

use std::time::Duration;

use serde_json::Value;
use support::hubmirror::{daemon_status, http_get, metric_sum, run_to_end, Running, Workdir};
use support::kafka;
use support::tansu::Tansu;
use support::topology::TopologyBuilder;

const W: Duration = Duration::from_secs(60);

/// a with `heartbeats` (one record) and `orders` (5 records); a flow a → b of `orders` with
/// `key: value` set on b or in `replication:`. Returns what `topics --json` routes (source
/// topics) and the topics on b once `orders` was copied.
fn routes_and_copies(on_b: Option<(&str, &str)>, replication: Option<(&str, &str)>) -> Value {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&ca, "heartbeats", 1);
    kafka::produce_batched(&ca, "heartbeats", &[(0, b"hb".to_vec(), b"v".to_vec())]);
    kafka::create_topic(&ca, "orders", 1);
    let recs: Vec<_> = (0..5)
        .map(|i| (0, format!("k{i}").into_bytes(), b"v".to_vec()))
        .collect();
    kafka::produce_batched(&ca, "orders", &recs);
    let work = Workdir::new();
    let mut builder =
        TopologyBuilder::new()
            .tansu("a", &a)
            .tansu("b", &b)
            .flow("a", "b", &["orders"]);
    if let Some((k, v)) = on_b {
        builder = builder.set("b", k, v);
    }
    if let Some((k, v)) = replication {
        builder = builder.replication(k, v);
    }
    let topo = builder.write(&work);
    let cfg = topo.to_str().unwrap();
    let out = run_to_end(&["topics", "--json", "-c", cfg], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_slice(&out.stdout).expect("json");
    let routed: Vec<Value> = rows
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["source_topic"].clone())
        .collect();

    let mut run = Running::start(&topo, &[("HUBMIRROR_INSTANCE", "hb-off")]);
    // Both topics are considered in the same refresh (sorted: heartbeats first): once
    // `a.orders` holds its copies, a heartbeats copy would exist too.
    kafka::read_all(&cb, "a.orders", 5, W);
    let on_b: Vec<String> = kafka::topic_names(&cb)
        .into_iter()
        .filter(|t| t.contains("heartbeats"))
        .collect();
    // The flow's latency and freshness without a heartbeats topic on b.
    let addr = work.metrics_addr();
    // The acknowledgement is counted a moment after the copy is readable on b.
    let deadline = std::time::Instant::now() + W;
    let mut latency = Value::Null;
    while latency.is_null() && std::time::Instant::now() < deadline {
        let status = daemon_status(&addr).expect("/status");
        latency = status[0]["replication_latency_ms"].clone();
        if latency.is_null() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let metrics = http_get(&addr, "/metrics").expect("/metrics");
    // Every sample names the instance.
    let acked = metrics
        .contains("hubmirror_last_ack_age_seconds{source=\"a\",target=\"b\",instance=\"hb-off\"}");
    let age = metric_sum(&metrics, "hubmirror_last_ack_age_seconds", &[]);
    run.stop_cleanly();
    serde_json::json!({"routed": routed, "heartbeats_on_b": on_b, "latency_ms": latency,
        "last_ack_age_exported": acked, "last_ack_age": age})
}

#[test]
fn a_target_with_heartbeats_false_gets_no_heartbeats_topic_and_topics_lists_none() {
    let got = routes_and_copies(Some(("heartbeats", "false")), None);
    assert_eq!(got["routed"], serde_json::json!(["orders"]), "{got}");
    assert_eq!(got["heartbeats_on_b"], serde_json::json!([]), "{got}");
    // Still a latency (the records') and a freshness signal for the stale alert.
    assert!(got["latency_ms"].is_i64(), "{got}");
    assert_eq!(got["last_ack_age_exported"], true, "{got}");
    assert!(got["last_ack_age"].as_f64().unwrap() < 60.0, "{got}");
}

#[test]
fn heartbeats_interval_0s_copies_no_heartbeats_topic() {
    let got = routes_and_copies(None, Some(("heartbeats_interval", "0s")));
    assert_eq!(got["routed"], serde_json::json!(["orders"]), "{got}");
    assert_eq!(got["heartbeats_on_b"], serde_json::json!([]), "{got}");
}
