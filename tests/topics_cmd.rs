//! `hubmirror topics [--json]` against real brokers: what a flow would replicate now, the remote
//! names, and whether the target can take them; and the failures (unreachable cluster, refused
//! authentication, bad topology) with their exit codes.

use hubmirror_test_support as support;

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{json, Value};
use support::emulator::EventHubsEmulator;
use support::hubmirror::{run_to_end, Workdir};
use support::kafka;
use support::tansu::{free_port, Tansu};
use support::topology::{TopologyBuilder, CONNECTION_STRING_VAR};

/// A flow `a → b` selecting `orders.*`.
fn topology(work: &Workdir, a: &str, b: &str) -> std::path::PathBuf {
    TopologyBuilder::new()
        .cluster("a", a)
        .cluster("b", b)
        .flow("a", "b", &["orders.*"])
        .write(work)
}

fn topics(config: &std::path::Path, json: bool, env: &[(&str, &str)]) -> std::process::Output {
    let config = config.to_str().expect("utf-8 path");
    let mut args = vec!["topics", "-c", config];
    if json {
        args.push("--json");
    }
    run_to_end(&args, env)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn lists_matching_topics_with_remote_names_and_target_state() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    for (t, n) in [
        ("orders1", 2),
        ("orders2", 1),
        ("other", 1),
        ("__consumer_x", 1),
    ] {
        kafka::create_topic(&ca, t, n);
    }
    kafka::create_topic(&cb, "a.orders1", 2);
    // The filter is only tested if the broker lists the topics it must leave out.
    let consumer: BaseConsumer = ca.create().expect("metadata client");
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    let on_a: Vec<&str> = md.topics().iter().map(|t| t.name()).collect();
    assert!(
        on_a.contains(&"other") && on_a.contains(&"__consumer_x"),
        "{on_a:?}"
    );
    let work = Workdir::new();
    let config = topology(&work, &a.listener(), &b.listener());

    let out = topics(&config, true, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    let want = json!([
        {"source": "a", "target": "b", "source_topic": "orders1", "partitions": 2,
         "remote_topic": "a.orders1", "target_state": "exists", "target_partitions": 2},
        {"source": "a", "target": "b", "source_topic": "orders2", "partitions": 1,
         "remote_topic": "a.orders2", "target_state": "missing", "target_partitions": null},
    ]);
    assert_eq!(got, want);

    let out = topics(&config, false, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    println!("{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "title, header, two rows:\n{stdout}");
    assert_eq!(lines[0], "FLOW a -> b");
    let header = ["SOURCE-TOPIC", "PARTITIONS", "REMOTE-TOPIC", "ON-TARGET"];
    let starts: Vec<usize> = header
        .iter()
        .map(|h| lines[1].find(h).expect("header column"))
        .collect();
    assert_eq!(starts[0], 0);
    let rows = [
        ["orders1", "2", "a.orders1", "exists"],
        ["orders2", "1", "a.orders2", "missing"],
    ];
    for (line, want) in lines[2..].iter().zip(rows) {
        // Each cell starts where its header does, after at least one space.
        for (c, cell) in want.iter().enumerate() {
            let end = starts.get(c + 1).copied().unwrap_or(line.len());
            assert_eq!(
                line[starts[c]..end].trim_end(),
                *cell,
                "column {c} of {line:?}"
            );
            if c > 0 {
                assert_eq!(&line[starts[c] - 1..starts[c]], " ", "{line:?}");
            }
        }
    }
}

#[test]
fn an_unreachable_cluster_fails_naming_it() {
    let a = Tansu::start();
    kafka::create_topic(&kafka::plain(&a.listener()), "orders1", 1);
    let work = Workdir::new();
    let nothing = format!("127.0.0.1:{}", free_port());
    let config = topology(&work, &a.listener(), &nothing);
    let started = Instant::now();
    let out = topics(&config, false, &[]);
    let took = started.elapsed();
    let stderr = text(&out.stderr);
    println!("exit {:?} after {took:?}: {stderr}", out.status.code());
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // Connection refused by every bootstrap broker: no need to wait for the 30 s timeout.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line:\n{stderr}");
    let refused = format!("hubmirror: cluster 'b' ({nothing}): connection refused");
    assert!(lines[0].starts_with(&refused), "{stderr}");
    assert!(
        lines[0].contains("check the port in clusters.b.bootstrap_servers"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no partial table");
}

#[test]
fn refused_authentication_fails_naming_the_cluster_without_the_secret() {
    let a = Tansu::start();
    let eh = EventHubsEmulator::start();
    let wrong_key = "d3Jvbmcta2V5LWQzSnZibWN0YTJWNQ==";
    let cs = eh
        .connection_string()
        .replace(support::emulator::KEY, wrong_key);
    assert!(cs.contains(wrong_key));
    let work = Workdir::new();
    let config = TopologyBuilder::new()
        .tansu("onprem", &a)
        .event_hubs("eventhub", &eh)
        .flow("onprem", "eventhub", &[".*"])
        .write(&work);
    let started = Instant::now();
    let out = topics(&config, true, &[(CONNECTION_STRING_VAR, &cs)]);
    let stderr = text(&out.stderr);
    println!(
        "exit {:?} after {:?}: {stderr}",
        out.status.code(),
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("hubmirror: "))
        .expect("an error line");
    assert!(
        line.starts_with("hubmirror: cluster 'eventhub' (localhost:")
            && line.contains("): authentication failed; check the credentials"),
        "{stderr}"
    );
    assert!(!stderr.contains(wrong_key), "secret printed:\n{stderr}");
    assert!(out.stdout.is_empty(), "no partial JSON");
}

#[test]
fn a_bad_topology_exits_2() {
    let work = Workdir::new();
    let config = work.topology("clusters:\n  a: {bootstrap_servers: 'x:1', colour: red}\n");
    let out = topics(&config, false, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("topology.yaml:2:"), "{stderr}");
    assert!(stderr.contains("colour"), "{stderr}");
}

/// A remote topic with fewer partitions than its source, or a missing one that `run` will not
/// create: the table is printed, each problem named on stderr, and the exit code is 1.
#[test]
fn a_target_that_cannot_take_a_topic_exits_1_naming_it() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&ca, "orders1", 2);
    kafka::create_topic(&ca, "orders2", 1);
    kafka::create_topic(&cb, "a.orders1", 1);
    let work = Workdir::new();
    let config = TopologyBuilder::new()
        .cluster("a", &a.listener())
        .cluster("b", &b.listener())
        .flow("a", "b", &["orders.*"])
        .replication("create_topics", "false")
        .write(&work);
    let out = topics(&config, false, &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("fewer partitions (1 < 2)"), "{stdout}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("hubmirror: "))
        .collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].contains("'a.orders1' on 'b' has 1 partition(s), fewer than the 2"));
    assert!(
        lines[1].contains("'a.orders2' is missing on 'b'"),
        "{stderr}"
    );
}
