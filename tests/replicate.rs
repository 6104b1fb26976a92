//! One flow, end to end, on real brokers: on-prem tansu ↔ the Event Hubs emulator (TLS, SASL
//! PLAIN with a connection string, in front of tansu), through the real `hubmirror run`.

use hubmirror_test_support as support;

use std::collections::HashMap;
use std::time::Duration;

use support::emulator::EventHubsEmulator;
use support::hubmirror::{Running, Workdir};
use support::kafka::{self, Rec};
use support::tansu::Tansu;
use support::topology::{TopologyBuilder, CONNECTION_STRING_VAR};

const RECORDS: usize = 10_000;
const PARTITIONS: i32 = 4;
const TS_BASE: i64 = 1_700_000_000_000;

/// The topology of a test: `onprem` is plain Kafka, `eventhub` is the emulator, reached only
/// through its connection string (from the environment) and its CA file.
fn topology(
    work: &Workdir,
    onprem: &Tansu,
    eh: &EventHubsEmulator,
    source: &str,
    target: &str,
    topic: &str,
) -> std::path::PathBuf {
    TopologyBuilder::new()
        .tansu("onprem", onprem)
        .event_hubs("eventhub", eh)
        .flow(source, target, &[topic])
        .replication("policy", "default")
        .replication("refresh_topics_interval", "2s")
        .write(work)
}

/// Asserts that `target` holds exactly one faithful copy of each record of `source`.
fn assert_mirrored(source: &[Rec], target: &[Rec], source_alias: &str, target_alias: &str) {
    let by_key: HashMap<&[u8], &Rec> = source
        .iter()
        .map(|r| (r.key.as_deref().unwrap(), r))
        .collect();
    assert_eq!(by_key.len(), source.len(), "test keys are unique");
    let counts = kafka::count_by_key(target);
    let missing: Vec<_> = by_key
        .keys()
        .filter(|k| !counts.contains_key(**k))
        .collect();
    assert!(
        missing.is_empty(),
        "{} records lost, e.g. {:?}",
        missing.len(),
        missing
            .iter()
            .take(3)
            .map(|k| String::from_utf8_lossy(k))
            .collect::<Vec<_>>()
    );
    let dups = counts.values().filter(|n| **n > 1).count();
    assert_eq!(dups, 0, "records written more than once");
    assert_eq!(target.len(), source.len());

    let mut last_source_offset: HashMap<i32, i64> = HashMap::new();
    let mut last_target_offset: HashMap<i32, i64> = HashMap::new();
    for copy in target {
        let orig = by_key[copy.key.as_deref().unwrap()];
        assert_eq!(copy.partition, orig.partition, "same partition");
        assert_eq!(copy.value, orig.value, "same value");
        assert_eq!(copy.timestamp, orig.timestamp, "same timestamp");
        assert_eq!(
            copy.header("app-id"),
            orig.header("app-id"),
            "own headers kept"
        );
        assert_eq!(
            copy.header("hubmirror.origin").as_deref(),
            Some(source_alias)
        );
        assert_eq!(copy.header("hubmirror.hops").as_deref(), Some(target_alias));
        assert_eq!(
            copy.header("hubmirror.source"),
            Some(format!(
                "{source_alias}/{}/{}/{}",
                orig.topic, orig.partition, orig.offset
            ))
        );
        // In order per partition: target offsets and source offsets rise together.
        let ls = last_source_offset.insert(copy.partition, orig.offset);
        let lt = last_target_offset.insert(copy.partition, copy.offset);
        if let (Some(ls), Some(lt)) = (ls, lt) {
            assert!(
                copy.offset > lt && orig.offset > ls,
                "order kept in partition {}",
                copy.partition
            );
        }
    }
}

#[test]
fn onprem_to_event_hubs_exactly_once_each_in_order() {
    let onprem = Tansu::start();
    let eh = EventHubsEmulator::start();
    let src = kafka::plain(&onprem.listener());
    kafka::create_topic(&src, "testeh", PARTITIONS);
    kafka::produce_test_records(&src, "testeh", PARTITIONS, 0..RECORDS, TS_BASE);

    let work = Workdir::new();
    let topo = topology(&work, &onprem, &eh, "onprem", "eventhub", "testeh");
    let mut run = Running::start(&topo, &[(CONNECTION_STRING_VAR, &eh.connection_string())]);

    let copies = kafka::read_all(
        &eh.client_config(),
        "onprem.testeh",
        RECORDS,
        Duration::from_secs(120),
    );
    let originals = kafka::read_all(&src, "testeh", RECORDS, Duration::from_secs(30));
    assert_mirrored(&originals, &copies, "onprem", "eventhub");
    run.stop_cleanly();
}

#[test]
fn event_hubs_to_onprem_exactly_once_each_in_order() {
    let onprem = Tansu::start();
    let eh = EventHubsEmulator::start();
    let hub = eh.client_config();
    kafka::create_topic(&hub, "testeh", PARTITIONS);
    kafka::produce_test_records(&hub, "testeh", PARTITIONS, 0..RECORDS, TS_BASE);

    let work = Workdir::new();
    let topo = topology(&work, &onprem, &eh, "eventhub", "onprem", "testeh");
    let mut run = Running::start(&topo, &[(CONNECTION_STRING_VAR, &eh.connection_string())]);

    let copies = kafka::read_all(
        &kafka::plain(&onprem.listener()),
        "eventhub.testeh",
        RECORDS,
        Duration::from_secs(120),
    );
    let originals = kafka::read_all(&hub, "testeh", RECORDS, Duration::from_secs(30));
    assert_mirrored(&originals, &copies, "eventhub", "onprem");
    run.stop_cleanly();
}

#[test]
fn wrong_shared_access_key_fails_fast_with_one_clear_line_and_no_secret() {
    let onprem = Tansu::start();
    let eh = EventHubsEmulator::start();
    kafka::create_topic(&kafka::plain(&onprem.listener()), "testeh", 1);
    let right = eh.connection_string();
    let wrong_key = "WrongKeyWrongKeyWrongKeyWrongKey0123456789=";
    let wrong = right
        .split(';')
        .map(|p| {
            if p.starts_with("SharedAccessKey=") {
                format!("SharedAccessKey={wrong_key}")
            } else {
                p.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(";");
    assert_ne!(wrong, right);

    let work = Workdir::new();
    let topo = topology(&work, &onprem, &eh, "onprem", "eventhub", "testeh");
    let mut run = Running::start(&topo, &[(CONNECTION_STRING_VAR, &wrong)]);
    let status = run
        .wait(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("still running after 30 s\n{}", run.output()));
    assert!(!status.success());
    let output = run.output();
    let line = output
        .lines()
        .find(|l| l.contains("cluster 'eventhub'") && l.contains("authentication failed"))
        .unwrap_or_else(|| {
            panic!("no line names the cluster and the authentication failure:\n{output}")
        });
    println!("the failure line: {line}");
    assert!(!output.contains(wrong_key), "the key leaked:\n{output}");
    assert!(!output.contains(&wrong), "the connection string leaked");
    let right_key = right.split("SharedAccessKey=").nth(1).unwrap();
    assert!(!output.contains(right_key));
}

#[test]
fn stop_and_restart_loses_nothing() {
    let onprem = Tansu::start();
    let eh = EventHubsEmulator::start();
    let src = kafka::plain(&onprem.listener());
    kafka::create_topic(&src, "testeh", PARTITIONS);
    kafka::produce_test_records(&src, "testeh", PARTITIONS, 0..RECORDS, TS_BASE);

    let work = Workdir::new();
    let topo = topology(&work, &onprem, &eh, "onprem", "eventhub", "testeh");
    let env = [(CONNECTION_STRING_VAR, eh.connection_string())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let mut first = Running::start(&topo, &env);
    // Stop as soon as part of the stream has arrived.
    let some = kafka::read_all(
        &eh.client_config(),
        "onprem.testeh",
        1,
        Duration::from_secs(60),
    );
    assert!(!some.is_empty());
    let status = first.terminate(Duration::from_secs(10));
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        first.output()
    );

    kafka::produce_test_records(&src, "testeh", PARTITIONS, RECORDS..2 * RECORDS, TS_BASE);
    let mut second = Running::start(&topo, &env);
    let copies = kafka::read_all(
        &eh.client_config(),
        "onprem.testeh",
        2 * RECORDS,
        Duration::from_secs(120),
    );
    let counts = kafka::count_by_key(&copies);
    let lost = (0..2 * RECORDS)
        .filter(|i| !counts.contains_key(format!("k{i}").as_bytes()))
        .count();
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    println!(
        "stop/restart: {} records sent, {} copies read, lost {lost}, duplicates {duplicates}",
        2 * RECORDS,
        copies.len()
    );
    assert_eq!(lost, 0, "records lost across a stop and restart");
    second.stop_cleanly();
}
