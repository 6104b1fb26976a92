//! Each way of pointing hubmirror at the wrong thing gets one line naming the cluster, the
//! broker, the likely cause and the fix — the same line in `status` (within a few seconds,
//! whatever is down), in `run`'s log and `/readyz`, and in `topics`: a TLS client on a plaintext
//! port, a plaintext client on a TLS port, a web server's port, a wrong key, a closed port.
//! Also: `bootstrap_servers` is checked offline, and a pasted connection string is refused
//! without being repeated.

use hubmirror_test_support as support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use support::emulator::{EventHubsEmulator, KEY};
use support::hubmirror::{http_status, run_to_end, Running, Workdir};
use support::kafka;
use support::tansu::{free_port, Tansu};
use support::topology::{TopologyBuilder, CONNECTION_STRING_VAR};
use support::wait_for;

/// `status` must answer within this, whatever is down.
const STATUS_WITHIN: Duration = Duration::from_secs(6);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `hubmirror <cmd> -c <config>`; returns (exit code, stdout, stderr, time taken).
fn command(
    cmd: &str,
    config: &Path,
    env: &[(&str, &str)],
) -> (Option<i32>, String, String, Duration) {
    let started = Instant::now();
    let out = run_to_end(&[cmd, "-c", config.to_str().expect("utf-8")], env);
    let took = started.elapsed();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    println!(
        "{cmd}: exit {:?} after {took:?}\n{stdout}{stderr}",
        out.status.code()
    );
    (out.status.code(), stdout, stderr, took)
}

/// Asserts that `status` exits 1 within [`STATUS_WITHIN`] with the line `prefix...` for the
/// cluster, and no librdkafka warnings; returns the line.
fn status_names(config: &Path, env: &[(&str, &str)], prefix: &str, fix: &str) -> String {
    let (code, stdout, stderr, took) = command("status", config, env);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(took < STATUS_WITHIN, "status took {took:?}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?}:\n{stdout}"))
        .to_string();
    assert!(line.contains(fix), "lacks {fix:?}: {line}");
    assert!(!stderr.contains("WARN"), "librdkafka noise:\n{stderr}");
    line
}

/// Starts `run` and waits until `/readyz` is 503 with a body holding `line`.
fn run_not_ready_with(work: &Workdir, config: &Path, line: &str) -> Running {
    let run = Running::start(config, &[]);
    let body = wait_for(
        "/readyz naming the cause",
        Duration::from_secs(40),
        || match http_status(&work.metrics_addr(), "/readyz") {
            Some((503, body)) if body.contains(line) => Ok(body),
            other => Err(other),
        },
    );
    println!("/readyz: {body}");
    run
}

/// A flow from `bad` (the cluster under test, already in `b`) to the plain broker `t`.
fn with_good_target(b: TopologyBuilder, t: &Tansu) -> TopologyBuilder {
    b.tansu("east", t).flow("west", "east", &["orders"])
}

#[test]
fn a_tls_client_on_a_plaintext_port_is_named_in_status_readyz_and_topics() {
    let t = Tansu::start();
    kafka::create_topic(&kafka::plain(&t.listener()), "orders", 1);
    let work = Workdir::new();
    let config = with_good_target(
        TopologyBuilder::new()
            .tansu("west", &t)
            .set("west", "tls", "{}"),
        &t,
    )
    .write(&work);
    let line = status_names(
        &config,
        &[],
        &format!(
            "cluster 'west' ({}): TLS is configured but the port does not speak TLS",
            t.listener()
        ),
        "remove clusters.west.tls",
    );
    let mut run = run_not_ready_with(&work, &config, &line);
    let logged = run.wait_for_line(&[&line], Duration::from_secs(5));
    assert!(logged.contains("WARN"), "{logged}");
    let out = run.output();
    assert!(
        !out.contains("is experimental"),
        "gapless warning shown:\n{out}"
    );
    assert!(!out.contains("librdkafka: librdkafka:"), "{out}");
    // With the daemon running, `status` shows the flow not ready and why.
    let (_, stdout, _, took) = command("status", &config, &[]);
    assert!(took < STATUS_WITHIN, "status took {took:?}");
    assert!(
        stdout.contains(&format!("not ready: flow west->east: starting: {line}")),
        "{stdout}"
    );
    run.stop_cleanly();
    let (code, _, stderr, _) = command("topics", &config, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.trim_end(), format!("hubmirror: {line}"));
}

#[test]
fn a_plaintext_client_on_a_tls_port_is_named_in_status_and_readyz() {
    let (eh, t) = (EventHubsEmulator::start(), Tansu::start());
    kafka::create_topic(&kafka::plain(&t.listener()), "orders", 1);
    let work = Workdir::new();
    let config =
        with_good_target(TopologyBuilder::new().cluster("west", &eh.bootstrap()), &t).write(&work);
    let line = status_names(
        &config,
        &[],
        &format!(
            "cluster 'west' ({}): the port speaks TLS but TLS is not configured",
            eh.bootstrap()
        ),
        "add `tls: {}` to clusters.west",
    );
    let mut run = run_not_ready_with(&work, &config, &line);
    run.stop_cleanly();
}

/// A web server on a free port that answers every request with 400, like most do to bytes
/// that are not HTTP. Runs until the test process ends.
fn http_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    addr
}

#[test]
fn a_bootstrap_on_an_http_port_is_named_in_status_readyz_and_topics() {
    let t = Tansu::start();
    kafka::create_topic(&kafka::plain(&t.listener()), "orders", 1);
    let web = http_server();
    let work = Workdir::new();
    let config = with_good_target(TopologyBuilder::new().cluster("west", &web), &t).write(&work);
    let line = status_names(
        &config,
        &[],
        &format!("cluster 'west' ({web}): the port answers HTTP, not Kafka"),
        "check the port in clusters.west.bootstrap_servers",
    );
    assert!(!line.contains("receive.message.max.bytes"), "{line}");
    let (code, _, stderr, _) = command("topics", &config, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.trim_end(), format!("hubmirror: {line}"));
    let mut run = run_not_ready_with(&work, &config, &line);
    run.stop_cleanly();
}

#[test]
fn a_closed_port_is_named_in_status_readyz_and_topics() {
    let t = Tansu::start();
    kafka::create_topic(&kafka::plain(&t.listener()), "orders", 1);
    let closed = format!("127.0.0.1:{}", free_port());
    let work = Workdir::new();
    let config = with_good_target(TopologyBuilder::new().cluster("west", &closed), &t).write(&work);
    let line = status_names(
        &config,
        &[],
        &format!("cluster 'west' ({closed}): connection refused"),
        "check the port in clusters.west.bootstrap_servers",
    );
    let (code, _, stderr, _) = command("topics", &config, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.trim_end(), format!("hubmirror: {line}"));
    // With --log-format json the line is a JSON record like every other.
    let cfg = config.to_str().expect("utf-8");
    let out = run_to_end(&["topics", "--log-format", "json", "-c", cfg], &[]);
    let stderr = text(&out.stderr);
    let record: serde_json::Value = serde_json::from_str(stderr.trim())
        .unwrap_or_else(|e| panic!("not one JSON record ({e}):\n{stderr}"));
    assert_eq!(record["level"], "ERROR", "{stderr}");
    assert_eq!(
        record["fields"]["message"].as_str(),
        Some(format!("hubmirror: {line}").as_str())
    );
    let mut run = run_not_ready_with(&work, &config, &line);
    run.stop_cleanly();
}

#[test]
fn a_wrong_key_is_named_alike_by_status_topics_and_run_in_json_too() {
    let (eh, t) = (EventHubsEmulator::start(), Tansu::start());
    kafka::create_topic(&kafka::plain(&t.listener()), "orders", 1);
    let wrong_key = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5IQ==";
    let cs = eh.connection_string().replace(KEY, wrong_key);
    let env = [(CONNECTION_STRING_VAR, cs.as_str())];
    let work = Workdir::new();
    let config = TopologyBuilder::new()
        .tansu("onprem", &t)
        .event_hubs("eventhub", &eh)
        .flow("onprem", "eventhub", &["orders"])
        .write(&work);
    let line = status_names(
        &config,
        &env,
        "cluster 'eventhub' (localhost:",
        "): authentication failed; check the credentials of clusters.eventhub",
    );
    let (code, _, stderr, _) = command("topics", &config, &env);
    assert_eq!(code, Some(1));
    assert!(stderr.contains(&format!("hubmirror: {line}")), "{stderr}");
    // `run` stops with the same line, as a JSON record with --log-format json.
    let mut run = Running::start_with_args(&config, &["--log-format", "json"], &env);
    let status = run.wait(Duration::from_secs(60)).expect("run stops");
    assert_eq!(status.code(), Some(1), "{}", run.output());
    let stderr = std::fs::read_to_string(&run.stderr).expect("stderr");
    let expected = format!("hubmirror: {line}");
    let record = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|r| r["fields"]["message"].as_str() == Some(expected.as_str()))
        .unwrap_or_else(|| panic!("no JSON record {expected:?}:\n{stderr}"));
    assert_eq!(record["level"], "ERROR", "{record}");
    assert!(
        stderr.lines().all(|l| l.starts_with('{')),
        "a line that is not JSON:\n{stderr}"
    );
    for out in [&stderr, &line] {
        assert!(
            !out.contains(wrong_key) && !out.contains(KEY),
            "secret printed:\n{out}"
        );
    }
}

#[test]
fn a_pasted_connection_string_is_refused_without_repeating_it() {
    let key = "c2VjcmV0LXBhc3RlZC1rZXktZG8tbm90LWVjaG8=";
    let cs = format!(
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={key}"
    );
    let work = Workdir::new();
    let config = work.topology(&format!(
        "clusters:\n  west:\n    bootstrap_servers: \"{cs}\"\n  east: {{bootstrap_servers: \
         \"localhost:9092\"}}\nflows:\n  - {{source: west, target: east, topics: [t]}}\n"
    ));
    let (code, stdout, stderr, _) = command("validate", &config, &[]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains(
            "topology.yaml:3:24: clusters.west.bootstrap_servers looks like a connection string"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("event_hubs"), "{stderr}");
    for out in [&stdout, &stderr] {
        assert!(
            !out.contains(key) && !out.contains("servicebus"),
            "echoed:\n{out}"
        );
    }
    let config = work.topology(
        "clusters:\n  west: {bootstrap_servers: \"localhost:99999\"}\n  east: \
         {bootstrap_servers: \"localhost:9092\"}\nflows: []\n",
    );
    let (code, _, stderr, _) = command("validate", &config, &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("a number from 1 to 65535"), "{stderr}");
}
