//! Event Hubs hardening through the emulator: records too large for Event Hubs under each
//! `oversize` policy, a target that throttles past the request timeout (POLICY_VIOLATION), and
//! re-encoding with the configured compression whatever codec the source used.

use hubmirror_test_support as support;

use std::time::Duration;

use support::emulator::EventHubsEmulator;
use support::hubmirror::{http_status, metric_sum, Running, Workdir};
use support::kafka;
use support::tansu::Tansu;
use support::topology::{TopologyBuilder, CONNECTION_STRING_VAR};
use support::wait_for;

/// Larger than librdkafka's default `message.max.bytes` (1,000,000) and Event Hubs' 1 MB.
const BIG: usize = 1_200_000;

/// `onprem` → `eventhub` over `big`, no heartbeats; callers add keys and write it.
fn topology(onprem: &Tansu, eh: &EventHubsEmulator) -> TopologyBuilder {
    TopologyBuilder::new()
        .tansu("onprem", onprem)
        .event_hubs("eventhub", eh)
        .flow("onprem", "eventhub", &["big"])
        .replication("refresh_topics_interval", "2s")
        .replication("heartbeats_interval", "0s")
}

/// Source topic `big` (1 partition): small `k0`, oversize `k1`, small `k2`.
fn seed_with_one_oversize_record(onprem: &Tansu) -> rdkafka::ClientConfig {
    let src = kafka::plain(&onprem.listener());
    kafka::create_topic(&src, "big", 1);
    let mut big_ok = src.clone();
    big_ok.set("message.max.bytes", "2000000");
    kafka::produce_batched(
        &big_ok,
        "big",
        &[
            (0, b"k0".to_vec(), b"small".to_vec()),
            (0, b"k1".to_vec(), vec![b'x'; BIG]),
            (0, b"k2".to_vec(), b"small".to_vec()),
        ],
    );
    src
}

/// `hubmirror run` on `topo`, with the emulator's connection string in the environment.
fn start(topo: &std::path::Path, eh: &EventHubsEmulator) -> Running {
    Running::start(topo, &[(CONNECTION_STRING_VAR, &eh.connection_string())])
}

/// Waits until the samples of `name` with `labels` on /metrics sum to `value`.
fn wait_for_metric(addr: &str, name: &str, labels: &[&str], value: f64) -> String {
    wait_for(name, Duration::from_secs(60), || {
        let page = http_status(addr, "/metrics")?.1;
        (metric_sum(&page, name, labels) == value).then_some(page)
    })
}

/// Reads the copies of `big` on the emulator and asserts they are exactly `expected`, in order.
fn assert_copied(eh: &EventHubsEmulator, expected: &[&str]) {
    let copies = kafka::read_all(
        &eh.client_config(),
        "onprem.big",
        expected.len(),
        Duration::from_secs(60),
    );
    assert_eq!(keys(&copies), expected);
}

fn keys(recs: &[kafka::Rec]) -> Vec<String> {
    recs.iter()
        .map(|r| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

#[test]
fn oversize_fail_stops_with_a_message_naming_topic_partition_offset_and_size() {
    let onprem = Tansu::start();
    let eh = EventHubsEmulator::start();
    seed_with_one_oversize_record(&onprem);
    let work = Workdir::new();
    let topo = topology(&onprem, &eh).write(&work);
    let mut run = start(&topo, &eh);
    let status = run
        .wait(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("still running\n{}", run.output()));
    assert_eq!(status.code(), Some(1), "{}", run.output());
    let out = run.output();
    let line = out
        .lines()
        .find(|l| l.contains("topic 'big' partition 0 offset 1"))
        .unwrap_or_else(|| panic!("no line names the record:\n{out}"));
    assert!(line.contains(&format!("{} bytes", BIG + 2)), "{line}");
    assert!(line.contains("oversize: skip"), "says how to go on: {line}");
    // k0 went through before the stop; k1 and k2 did not.
    assert_copied(&eh, &["k0"]);
}

#[test]
fn oversize_skip_counts_it_and_goes_on() {
    let onprem = Tansu::start();
    let eh = EventHubsEmulator::start();
    seed_with_one_oversize_record(&onprem);
    let work = Workdir::new();
    let topo = topology(&onprem, &eh)
        .flow_set("oversize", "skip")
        .write(&work);
    let mut run = start(&topo, &eh);
    assert_copied(&eh, &["k0", "k2"]);
    wait_for_metric(
        &work.metrics_addr(),
        "hubmirror_records_skipped_total",
        &["topic=\"big\"", "reason=\"oversize\""],
        1.0,
    );
    run.wait_for_line(
        &["skipped an oversize record", "offset 1"],
        Duration::from_secs(5),
    );
    run.stop_cleanly();
}

#[test]
fn oversize_dead_letter_writes_it_to_the_source_cluster_with_its_coordinates() {
    let onprem = Tansu::start();
    let eh = EventHubsEmulator::start();
    let src = seed_with_one_oversize_record(&onprem);
    let work = Workdir::new();
    let topo = topology(&onprem, &eh)
        .flow_set("oversize", "dead_letter")
        .write(&work);
    let mut run = start(&topo, &eh);
    assert_copied(&eh, &["k0", "k2"]);
    let mut reader = src.clone();
    reader.set("fetch.max.bytes", "10000000");
    let dead = kafka::read_all(
        &reader,
        "hubmirror.dead-letter.eventhub.internal",
        1,
        Duration::from_secs(30),
    );
    assert_eq!(keys(&dead), ["k1"]);
    let d = &dead[0];
    assert_eq!(d.value.as_ref().map(Vec::len), Some(BIG), "value unchanged");
    assert_eq!(
        d.header("hubmirror.dead_letter.topic").as_deref(),
        Some("big")
    );
    assert_eq!(
        d.header("hubmirror.dead_letter.partition").as_deref(),
        Some("0")
    );
    assert_eq!(
        d.header("hubmirror.dead_letter.offset").as_deref(),
        Some("1")
    );
    assert_eq!(
        d.header("hubmirror.dead_letter.target").as_deref(),
        Some("eventhub")
    );
    wait_for_metric(
        &work.metrics_addr(),
        "hubmirror_records_dead_lettered_total",
        &["topic=\"big\""],
        1.0,
    );
    run.stop_cleanly();
}

#[test]
fn throttled_past_the_timeout_backs_off_and_loses_nothing_in_order() {
    const RECORDS: usize = 3_000;
    const PARTITIONS: i32 = 3;
    let onprem = Tansu::start();
    let eh = EventHubsEmulator::start();
    let src = kafka::plain(&onprem.listener());
    kafka::create_topic(&src, "big", PARTITIONS);
    kafka::produce_test_records(&src, "big", PARTITIONS, 0..RECORDS / 2, 1_700_000_000_000);
    let work = Workdir::new();
    // Event Hubs answers POLICY_VIOLATION to a produce throttled past its timeout; a short
    // timeout makes that happen within the test's 6 s window.
    let topo = topology(&onprem, &eh)
        .client("eventhub", "request.timeout.ms", "2000")
        .write(&work);
    let mut run = start(&topo, &eh);
    let addr = work.metrics_addr();
    let flow = ["source=\"onprem\"", "target=\"eventhub\"", "topic=\"big\""];
    let replicated = |page: &str| metric_sum(page, "hubmirror_records_replicated_total", &flow);
    wait_for_metric(
        &addr,
        "hubmirror_records_replicated_total",
        &flow,
        (RECORDS / 2) as f64,
    );

    eh.throttle_for(Duration::from_secs(6));
    kafka::produce_test_records(
        &src,
        "big",
        PARTITIONS,
        RECORDS / 2..RECORDS,
        1_700_000_000_000,
    );
    run.wait_for_line(&["throttled by the target"], Duration::from_secs(20));
    run.wait_for_line(&["recovered"], Duration::from_secs(60));
    let page = wait_for("second half replicated", Duration::from_secs(60), || {
        let page = http_status(&addr, "/metrics")?.1;
        (replicated(&page) >= RECORDS as f64).then_some(page)
    });
    assert!(
        eh.stats().produce_requests_rejected >= 1,
        "{:?}",
        eh.stats()
    );
    eprintln!(
        "throttling: {:?}; restarts {}; throttled errors {}",
        eh.stats(),
        metric_sum(
            &page,
            "hubmirror_flow_restarts_total",
            &["source=\"onprem\"", "target=\"eventhub\""]
        ),
        metric_sum(&page, "hubmirror_errors_total", &["kind=\"throttled\""])
    );
    let pair = ["source=\"onprem\"", "target=\"eventhub\""];
    assert!(metric_sum(&page, "hubmirror_errors_total", &["kind=\"throttled\""]) >= 1.0);
    assert!(metric_sum(&page, "hubmirror_flow_restarts_total", &pair) >= 1.0);
    // The restarted flow settles everything it sent: the records the failed run left
    // unsettled are not counted as in flight forever (that would make /readyz report a stall
    // as soon as the flow goes idle).
    let in_flight = |body: &str| {
        serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|s| s[0]["records_in_flight"].as_u64())
    };
    wait_for("nothing left in flight", Duration::from_secs(10), || {
        in_flight(&http_status(&addr, "/status")?.1).filter(|n| *n == 0)
    });
    let (code, body) = http_status(&addr, "/readyz").expect("/readyz answers");
    assert_eq!(code, 200, "{body}");

    // Nothing lost, nothing doubled, and per partition in source order.
    let copies = kafka::read_all(
        &eh.client_config(),
        "onprem.big",
        RECORDS,
        Duration::from_secs(60),
    );
    let counts = kafka::count_by_key(&copies);
    let lost = (0..RECORDS)
        .filter(|i| !counts.contains_key(format!("k{i}").as_bytes()))
        .count();
    let duplicated: usize = counts.values().map(|n| n - 1).sum();
    assert_eq!(
        (lost, duplicated),
        (0, 0),
        "lost, duplicated after throttling"
    );
    assert_eq!(copies.len(), RECORDS);
    for p in 0..PARTITIONS {
        let offsets: Vec<i64> = copies
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| {
                let source = r.header("hubmirror.source").expect("hubmirror.source");
                source
                    .rsplit('/')
                    .next()
                    .and_then(|o| o.parse().ok())
                    .expect("offset")
            })
            .collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "partition {p} out of order"
        );
    }
    assert_eq!(replicated(&page), RECORDS as f64, "counted once each");
    run.stop_cleanly();
}

#[test]
fn records_are_re_encoded_with_the_target_compression_whatever_the_source_used() {
    use support::emulator::Compression;
    const RECORDS: usize = 500;
    for (setting, expected) in [(None, Compression::None), (Some("gzip"), Compression::Gzip)] {
        let onprem = Tansu::start();
        let eh = EventHubsEmulator::start();
        let mut lz4 = kafka::plain(&onprem.listener());
        kafka::create_topic(&lz4, "big", 2);
        lz4.set("compression.type", "lz4");
        kafka::produce_test_records(&lz4, "big", 2, 0..RECORDS, 1_700_000_000_000);
        let work = Workdir::new();
        let mut topo = topology(&onprem, &eh);
        if let Some(codec) = setting {
            topo = topo.set("eventhub", "compression", codec);
        }
        let topo = topo.write(&work);
        let mut run = Running::start(&topo, &[(CONNECTION_STRING_VAR, &eh.connection_string())]);
        let copies = kafka::read_all(
            &eh.client_config(),
            "onprem.big",
            RECORDS,
            Duration::from_secs(60),
        );
        assert_eq!(copies.len(), RECORDS);
        run.stop_cleanly();
        let stats = eh.stats();
        for codec in Compression::ALL {
            let n = stats.batches(codec);
            if codec == expected {
                assert!(n > 0, "{setting:?}: no {codec:?} batch: {stats:?}");
            } else {
                assert_eq!(
                    n, 0,
                    "{setting:?}: {codec:?} batches reached Event Hubs: {stats:?}"
                );
            }
        }
    }
}
