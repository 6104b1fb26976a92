//! Data-loss detection on real brokers: an Event Hubs source (the emulator, whose retention is
//! emulated with `expire_before` — tansu's memory engine cannot delete records) drops records
//! the mirror had not copied yet. `on_data_loss: fail` stops with one line naming the loss;
//! `continue` counts it in `hubmirror_records_lost_total` and goes on from the log start, both
//! when the loss is found at start and when a fetch answers "offset out of range" while running.

use hubmirror_test_support as support;

use std::collections::BTreeSet;
use std::time::Duration;

use nix::sys::signal::Signal;
use support::emulator::EventHubsEmulator;
use support::hubmirror::{http_get, metric_sum, signal, Running, Workdir};
use support::kafka;
use support::tansu::Tansu;
use support::topology::{TopologyBuilder, CONNECTION_STRING_VAR};
use support::wait_for;

const TOPIC: &str = "orders";
const REMOTE: &str = "eventhub.orders";

fn topology(
    work: &Workdir,
    eh: &EventHubsEmulator,
    onprem: &Tansu,
    policy: &str,
) -> std::path::PathBuf {
    TopologyBuilder::new()
        .event_hubs("eventhub", eh)
        .set("eventhub", "heartbeats", "false")
        .tansu("onprem", onprem)
        .flow("eventhub", "onprem", &[TOPIC])
        .flow_set("on_data_loss", policy)
        .replication("refresh_topics_interval", "2s")
        .write(work)
}

/// Produces keys `p<partition>-k<i>` to `partition`, batched.
fn produce(eh: &EventHubsEmulator, partition: i32, keys: std::ops::Range<usize>) {
    let records: Vec<_> = keys
        .map(|i| {
            (
                partition,
                format!("p{partition}-k{i}").into_bytes(),
                b"v".to_vec(),
            )
        })
        .collect();
    kafka::produce_batched(&eh.client_config(), TOPIC, &records);
}

fn keys(partition: i32, range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(|i| format!("p{partition}-k{i}")).collect()
}

/// Waits until the target holds exactly `want` (each key once).
fn assert_target(onprem: &Tansu, want: &BTreeSet<String>) {
    let recs = kafka::read_all(
        &kafka::plain(&onprem.listener()),
        REMOTE,
        want.len(),
        Duration::from_secs(60),
    );
    let counts = kafka::count_by_key(&recs);
    let got: BTreeSet<String> = counts
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    let missing: Vec<_> = want.difference(&got).take(3).collect();
    let extra: Vec<_> = got.difference(want).take(3).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
    let twice: Vec<_> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, n)| (String::from_utf8_lossy(k).into_owned(), *n))
        .collect();
    assert!(
        twice.is_empty(),
        "records written more than once: {twice:?}"
    );
}

fn lost(work: &Workdir, partition: &str) -> f64 {
    let text = http_get(&work.metrics_addr(), "/metrics").unwrap_or_default();
    metric_sum(
        &text,
        "hubmirror_records_lost_total",
        &[&format!("partition=\"{partition}\"")],
    )
}

#[test]
fn data_loss_fails_by_default_and_continue_counts_it_at_start_and_while_running() {
    let eh = EventHubsEmulator::start();
    let onprem = Tansu::start();
    kafka::create_topic(&eh.client_config(), TOPIC, 2);
    let env = [(CONNECTION_STRING_VAR, eh.connection_string())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let work = Workdir::new();

    // Copied: offsets 0..50 of both partitions.
    produce(&eh, 0, 0..50);
    produce(&eh, 1, 0..50);
    let mut want = keys(0, 0..50);
    want.extend(keys(1, 0..50));
    let mut run = Running::start(&topology(&work, &eh, &onprem, "fail"), &env);
    assert_target(&onprem, &want);
    run.stop_cleanly();

    // While hubmirror is down, 50 more arrive and retention drops partition 0 below 70.
    produce(&eh, 0, 50..100);
    produce(&eh, 1, 50..100);
    eh.expire_before(TOPIC, 0, 70);

    let mut run = Running::start(&topology(&work, &eh, &onprem, "fail"), &env);
    let status = run
        .wait(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("still running\n{}", run.output()));
    assert_eq!(status.code(), Some(1), "{}", run.output());
    let line = run.wait_for_line(
        &["data loss: cluster 'eventhub' deleted 20 records of topic 'orders' partition 0 (offsets 50 to 69)", "on_data_loss: continue"],
        Duration::from_secs(1),
    );
    println!("fail: {line}");
    assert_target(&onprem, &want);

    // `continue`: partition 0 goes on at 70, partition 1 at 50; 20 counted lost.
    let mut run = Running::start(&topology(&work, &eh, &onprem, "continue"), &env);
    want.extend(keys(0, 70..100));
    want.extend(keys(1, 50..100));
    assert_target(&onprem, &want);
    let line = run.wait_for_line(
        &[
            "ERROR",
            "deleted 20 records",
            "partition 0",
            "resuming at offset 70",
        ],
        Duration::from_secs(5),
    );
    println!("continue at start: {line}");
    wait_for(
        "records_lost_total{partition=0} = 20",
        Duration::from_secs(10),
        || (lost(&work, "0") == 20.0).then_some(()),
    );

    // While running: retention overtakes the mirror on partition 1. hubmirror is frozen while
    // 60 records arrive and the first 20 of them expire, so the next fetch is out of range.
    signal(run.pid(), Signal::SIGSTOP);
    // Hold the freeze past the fetch librdkafka may have in flight (fetch.wait.max.ms=100).
    std::thread::sleep(Duration::from_secs(1));
    produce(&eh, 1, 100..160);
    eh.expire_before(TOPIC, 1, 120);
    signal(run.pid(), Signal::SIGCONT);
    want.extend(keys(1, 120..160));
    assert_target(&onprem, &want);
    let line = run.wait_for_line(
        &[
            "ERROR",
            "deleted 20 records",
            "partition 1",
            "resuming at offset 120",
        ],
        Duration::from_secs(10),
    );
    println!("continue while running: {line}");
    wait_for(
        "records_lost_total{partition=1} = 20",
        Duration::from_secs(10),
        || (lost(&work, "1") == 20.0).then_some(()),
    );
    assert_eq!(lost(&work, "0"), 20.0);
    run.stop_cleanly();
}
