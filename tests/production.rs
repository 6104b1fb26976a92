//! Running it in production: the /metrics page counts exactly what was replicated, /healthz and
//! /readyz tell the truth while the target is frozen and after it recovers, logs are one JSON
//! object per line with a line per state change, and the connection string's key appears in no
//! output stream and on no page — all against real brokers (tansu, and the Event Hubs emulator).

use hubmirror_test_support as support;

use std::time::Duration;

use support::emulator::EventHubsEmulator;
use support::hubmirror::{http_status, metric_sum, Running, Workdir};
use support::kafka;
use support::tansu::Tansu;
use support::topology::{TopologyBuilder, CONNECTION_STRING_VAR};
use support::wait_for;

const PARTITIONS: i32 = 3;
const FIRST: usize = 3_000;
const SECOND: usize = 1_000;

fn topology(work: &Workdir, onprem: &Tansu, eh: &EventHubsEmulator) -> std::path::PathBuf {
    TopologyBuilder::new()
        .tansu("onprem", onprem)
        .event_hubs("eventhub", eh)
        .flow("onprem", "eventhub", &["orders"])
        .flow_set("groups", r#"[".*"]"#)
        .replication("refresh_topics_interval", "2s")
        .replication("heartbeats_interval", "200ms")
        .replication("checkpoints_interval", "1s")
        // The flow producer gives a record up after half the source's session timeout (10 s by
        // default, so 5 s): a target frozen that long would time out the records in flight,
        // which the restart then finds on the target and does not write — or count — again.
        // With 20 s the freeze below (held until /readyz says 503, about 5 s) ends before the
        // records in flight expire, and every counter can be checked exactly.
        .client("onprem", "session.timeout.ms", "20000")
        .write(work)
}

/// The /metrics page, when the daemon answers 200.
fn scrape(addr: &str) -> Option<String> {
    http_status(addr, "/metrics")
        .filter(|(code, _)| *code == 200)
        .map(|(_, body)| body)
}

/// `hubmirror_lag_records` of every partition of `orders`, when all are exported.
fn lags(page: &str) -> Option<Vec<f64>> {
    (0..PARTITIONS)
        .map(|p| {
            let label = format!("partition=\"{p}\"");
            page.lines()
                .find(|l| {
                    l.starts_with("hubmirror_lag_records{")
                        && l.contains("topic=\"orders\"")
                        && l.contains(&label)
                })
                .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        })
        .collect()
}

#[test]
fn metrics_health_and_json_logs_match_what_was_replicated_and_no_secret_leaks() {
    let onprem = Tansu::start();
    let eh = EventHubsEmulator::start();
    let src = kafka::plain(&onprem.listener());
    kafka::create_topic(&src, "orders", PARTITIONS);
    kafka::produce_test_records(&src, "orders", PARTITIONS, 0..FIRST, 1_700_000_000_000);
    let value_bytes = |range: std::ops::Range<usize>| -> f64 {
        range
            .map(|i| {
                let (_, k, v, _) = kafka::test_record(i, PARTITIONS, 0);
                (k.len() + v.len()) as f64
            })
            .sum()
    };

    let work = Workdir::new();
    let topo = topology(&work, &onprem, &eh);
    let addr = work.metrics_addr();
    let conn = eh.connection_string();
    let key = conn
        .split(';')
        .find_map(|p| p.strip_prefix("SharedAccessKey="))
        .expect("key in the connection string")
        .to_string();
    let mut run = Running::start_with_args(
        &topo,
        &["--log-format", "json"],
        &[(CONNECTION_STRING_VAR, &conn), ("RUST_LOG", "debug")],
    );

    // Everything replicated: the counters equal what the test produced, lag is 0 everywhere.
    let flow = [
        "source=\"onprem\"",
        "target=\"eventhub\"",
        "topic=\"orders\"",
    ];
    let page = wait_for("all records replicated", Duration::from_secs(90), || {
        let page = scrape(&addr)?;
        let done = metric_sum(&page, "hubmirror_records_replicated_total", &flow) == FIRST as f64
            && lags(&page).is_some_and(|l| l.iter().all(|x| *x == 0.0));
        done.then_some(page)
    });
    assert_eq!(
        metric_sum(&page, "hubmirror_bytes_replicated_total", &flow),
        value_bytes(0..FIRST)
    );
    assert_eq!(
        metric_sum(&page, "hubmirror_replication_latency_seconds_count", &flow),
        FIRST as f64,
        "one latency sample per record"
    );
    assert_eq!(
        metric_sum(&page, "hubmirror_record_age_seconds_count", &flow),
        FIRST as f64,
        "one age sample per consumed record"
    );
    let pair = ["source=\"onprem\"", "target=\"eventhub\""];
    assert_eq!(metric_sum(&page, "hubmirror_flow_up", &pair), 1.0);
    assert_eq!(
        metric_sum(
            &page,
            "hubmirror_records_skipped_total",
            &["reason=\"oversize\""]
        ),
        0.0
    );
    let page = wait_for(
        "heartbeat and checkpoint ages",
        Duration::from_secs(30),
        || {
            let page = scrape(&addr)?;
            let ok = page.contains("hubmirror_heartbeat_age_seconds{")
                && page.contains("hubmirror_checkpoint_age_seconds{");
            ok.then_some(page)
        },
    );
    let hb_age = metric_sum(&page, "hubmirror_heartbeat_age_seconds", &pair);
    assert!(hb_age < 10.0, "heartbeat age {hb_age}");
    let cp_age = metric_sum(&page, "hubmirror_checkpoint_age_seconds", &pair);
    assert!(cp_age < 10.0, "checkpoint age {cp_age}");
    assert_eq!(http_status(&addr, "/healthz").map(|r| r.0), Some(200));
    assert_eq!(http_status(&addr, "/readyz").map(|r| r.0), Some(200));

    // The target freezes: records pile up as lag, /readyz says why it is not ready, /healthz
    // still answers.
    support::hubmirror::signal(eh.tansu.pid(), nix::sys::signal::Signal::SIGSTOP);
    kafka::produce_test_records(
        &src,
        "orders",
        PARTITIONS,
        FIRST..FIRST + SECOND,
        1_700_000_000_000,
    );
    let (_, why) = wait_for("/readyz 503 while frozen", Duration::from_secs(30), || {
        http_status(&addr, "/readyz").filter(|(code, _)| *code == 503)
    });
    assert!(
        why.contains("onprem->eventhub") && why.contains("none acknowledged by 'eventhub'"),
        "{why}"
    );
    wait_for(
        "lag = records produced while frozen",
        Duration::from_secs(30),
        || {
            let page = scrape(&addr)?;
            let lag: f64 = lags(&page)?.iter().sum();
            (lag == SECOND as f64).then_some(())
        },
    );
    assert_eq!(
        metric_sum(
            &scrape(&addr).expect("/metrics"),
            "hubmirror_flow_up",
            &pair
        ),
        0.0
    );
    assert_eq!(http_status(&addr, "/healthz").map(|r| r.0), Some(200));

    // Thawed: everything arrives, lag back to 0, ready again.
    support::hubmirror::signal(eh.tansu.pid(), nix::sys::signal::Signal::SIGCONT);
    let page = wait_for(
        "recovered after the freeze",
        Duration::from_secs(60),
        || {
            let page = scrape(&addr)?;
            let done = metric_sum(&page, "hubmirror_records_replicated_total", &flow)
                == (FIRST + SECOND) as f64
                && lags(&page).is_some_and(|l| l.iter().all(|x| *x == 0.0))
                && http_status(&addr, "/readyz").map(|r| r.0) == Some(200);
            done.then_some(page)
        },
    );
    assert_eq!(metric_sum(&page, "hubmirror_flow_up", &pair), 1.0);
    assert_eq!(
        metric_sum(&page, "hubmirror_bytes_replicated_total", &flow),
        value_bytes(0..FIRST + SECOND)
    );
    let copies = kafka::read_all(
        &eh.client_config(),
        "onprem.orders",
        FIRST + SECOND,
        Duration::from_secs(60),
    );
    assert_eq!(copies.len(), FIRST + SECOND, "every record exactly once");

    // A sample of the page, for humans (`cargo test --test production -- --nocapture`).
    eprintln!(
        "/metrics sample:\n{}",
        page.lines()
            .filter(|l| !l.contains("_bucket{") && !l.starts_with("# HELP"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // `hubmirror status --json` shows the lag per partition the daemon computes.
    let out = support::hubmirror::run_to_end(
        &["status", "--json", "-c", topo.to_str().expect("utf-8 path")],
        &[(CONNECTION_STRING_VAR, &conn)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    let lag = &status["flows"][0]["lag"];
    let orders: Vec<&serde_json::Value> = lag
        .as_array()
        .expect("lag array")
        .iter()
        .filter(|l| l["topic"] == "orders")
        .collect();
    assert_eq!(orders.len(), PARTITIONS as usize, "{lag}");
    assert!(orders.iter().all(|l| l["lag"] == 0), "{lag}");

    // Every page the daemon serves, then every output stream: no key, no connection string.
    let mut pages = vec![scrape(&addr).expect("/metrics")];
    for path in ["/status", "/readyz", "/healthz"] {
        pages.push(http_status(&addr, path).expect(path).1);
    }
    run.stop_cleanly();
    let stdout = std::fs::read_to_string(&run.stdout).expect("stdout");
    let stderr = std::fs::read_to_string(&run.stderr).expect("stderr");
    for (what, text) in pages
        .iter()
        .map(|p| ("an HTTP page", p))
        .chain([("stdout", &stdout), ("stderr", &stderr)])
    {
        assert!(!text.contains(&key), "{what} shows the SharedAccessKey");
        assert!(!text.contains(&conn), "{what} shows the connection string");
    }

    // JSON logs: every line an object; one line per state change; no per-record info lines.
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .chain(stdout.lines())
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let message = |v: &serde_json::Value| {
        v["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let info: Vec<String> = lines
        .iter()
        .filter(|v| v["level"] == "INFO")
        .map(message)
        .collect();
    for change in [
        "flow started",
        "partition assigned",
        "created target topic",
        "stopped",
    ] {
        assert!(
            info.iter().any(|m| m.contains(change)),
            "no info line for '{change}'"
        );
    }
    assert_eq!(
        info.iter()
            .filter(|m| m.contains("partition assigned"))
            .count(),
        PARTITIONS as usize + 1,
        "one line per assigned partition (orders and heartbeats)"
    );
    assert!(
        info.len() < 60,
        "{} info lines for {} records: per-record logging?",
        info.len(),
        FIRST + SECOND
    );
}
