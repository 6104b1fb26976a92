//! The bad-input suite: each kind of wrong input gets one clear line naming the cause (file:line:col,
//! cluster, topic or path) and the fix, with the contract's exit code (2 bad configuration, 1
//! runtime failure) — or, where it shows only at run time and hubmirror rightly goes on, a counted
//! error (`hubmirror_errors_total{kind}`) while the other topics and flows lose nothing.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use support::emulator::{EventHubsEmulator, KEY};
use support::hubmirror::{http_status, metric_sum, poll, run_to_end, Running, Workdir};
use support::kafka::{self, Rec};
use support::tansu::{free_port, Tansu};

/// Clusters for errors found before anything connects (nothing listens on ports 1 and 2).
const AB: &str =
    "clusters:\n  a:\n    bootstrap_servers: localhost:1\n  b:\n    bootstrap_servers: localhost:2\n";
const FLOW: &str = "flows:\n  - source: a\n    target: b\n    topics: [t]\n";
const MINUTE: Duration = Duration::from_secs(60);

/// `hubmirror <cmd> -c <file>`: the exit code and stderr, which must be one line.
fn one_line(cmd: &str, file: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let env = [env, &[("RUST_LOG", "info")][..]].concat();
    let out = run_to_end(&[cmd, "-c", &file.display().to_string()], &env);
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(stderr.lines().count(), 1, "{cmd}: one line:\n{stderr}");
    assert!(out.stdout.is_empty(), "{cmd}: nothing on stdout");
    (out.status.code(), stderr)
}

/// Asserts that `validate` and `run` refuse `file` with exit 2 and the same line
/// `<file>:<line>:<col>: ...` holding every needle; returns that line.
fn refused_file(file: &Path, env: &[(&str, &str)], at: (usize, usize), needles: &[&str]) -> String {
    let prefix = format!("{}:{}:{}: ", file.display(), at.0, at.1);
    let (code, validate) = one_line("validate", file, env);
    assert_eq!(code, Some(2), "validate: {validate}");
    let (code, run) = one_line("run", file, env);
    assert_eq!(
        (code, &run),
        (Some(2), &validate),
        "run: exit 2, the same line"
    );
    assert!(run.starts_with(&prefix), "starts with {prefix:?}: {run}");
    for n in needles {
        assert!(run.contains(n), "lacks {n:?}: {run}");
    }
    println!("{run}");
    run
}

/// [`refused_file`] for a topology `text`, with `env`.
fn refused_env(text: &str, env: &[(&str, &str)], at: (usize, usize), needles: &[&str]) -> String {
    let work = Workdir::new();
    let file = work.path().join("topology.yaml");
    std::fs::write(&file, text).expect("write topology");
    refused_file(&file, env, at, needles)
}

fn refused(text: &str, at: (usize, usize), needles: &[&str]) {
    refused_env(text, &[], at, needles);
}

/// Waits for `run` to exit by itself; asserts exit 1 and a line starting with `hubmirror: `
/// that holds every needle.
fn run_fails(run: &mut Running, needles: &[&str]) {
    let status = run
        .wait(MINUTE)
        .unwrap_or_else(|| panic!("running\n{}", run.output()));
    let line = run.wait_for_line(&["hubmirror: "], Duration::from_secs(1));
    println!("{status}: {line}");
    assert_eq!(status.code(), Some(1), "{status}\n{}", run.output());
    for n in needles {
        assert!(line.contains(n), "lacks {n:?}: {line}");
    }
}

/// The sum of `name{labels}` on the daemon's /metrics, once it reaches `at_least`.
fn metric_at_least(work: &Workdir, name: &str, labels: &[&str], at_least: f64) -> f64 {
    poll(MINUTE, name, || {
        let v = metric_sum(
            &http_status(&work.metrics_addr(), "/metrics")?.1,
            name,
            labels,
        );
        (v >= at_least).then_some(v)
    })
}

/// Every record of `topic` on `broker`, once `n` arrived.
fn read(broker: &Tansu, topic: &str, n: usize) -> Vec<Rec> {
    kafka::read_all(&kafka::plain(&broker.listener()), topic, n, MINUTE)
}

/// Asserts that `recs` holds `n` records with distinct keys.
fn all_once(recs: &[Rec], n: usize) {
    assert_eq!(
        (kafka::count_by_key(recs).len(), recs.len()),
        (n, n),
        "all, once each"
    );
}

fn keys(recs: &[Rec]) -> Vec<String> {
    let key = |r: &Rec| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
    recs.iter().map(key).collect()
}

/// A topology `a` → `b` (tansu brokers), `extra` under `b`.
fn kafka_pair(work: &Workdir, a: &Tansu, b: &Tansu, create: bool, extra: &str) -> PathBuf {
    work.topology(&format!(
        "clusters:\n  a: {{bootstrap_servers: \"{}\"}}\n  b:\n    bootstrap_servers: \"{}\"\n{extra}\n\
         flows:\n  - {{source: a, target: b, topics: [t, alpha, beta]}}\nreplication:\n  \
         refresh_topics_interval: 1s\n  heartbeats_interval: 0s\n  create_topics: {create}\n",
        a.listener(),
        b.listener()
    ))
}

#[test]
fn malformed_yaml_exits_2_at_the_spot() {
    let tab = format!("{AB}flows:\n\t- source: a\n");
    refused(&tab, (7, 2), &["YAML syntax error", "tabs disallowed"]);
    let colon = format!("{AB}flows:\n  - source: a\n    target: b: c\n");
    refused(
        &colon,
        (8, 14),
        &["YAML syntax error", "mapping values are not allowed"],
    );
}

#[test]
fn wrong_types_exit_2_naming_the_key_and_what_it_takes() {
    let cases = [
        (
            "replication:\n  create_topics: maybe",
            (11, 18),
            "create_topics must be `true` or `false`",
        ),
        (
            "replication:\n  heartbeats_interval: 10",
            (11, 24),
            "`10` is not a duration",
        ),
        (
            "metrics:\n  listen: 9464",
            (11, 11),
            "listen `9464` is not an IP address and port",
        ),
        (
            "replication:\n  policy: [x]",
            (11, 11),
            "`replication.policy` must be a single value",
        ),
        (
            "store: ./data",
            (10, 8),
            "`store` must be a mapping, found a single value",
        ),
    ];
    for (tail, at, needle) in cases {
        refused(&format!("{AB}{FLOW}{tail}\n"), at, &[needle]);
    }
}

#[test]
fn unknown_keys_exit_2_naming_the_key_and_the_allowed_ones() {
    let typo = format!("{AB}{FLOW}replication:\n  create_topic: false\n");
    refused(
        &typo,
        (11, 3),
        &["unknown key `create_topic` in replication", "create_topics"],
    );
    let flow = format!("{AB}flows:\n  - source: a\n    target: b\n    topic: [t]\n");
    refused(
        &flow,
        (9, 5),
        &["unknown key `topic` in flows[0]", "topics"],
    );
}

#[test]
fn a_missing_variable_exits_2_naming_it_and_where_it_is_used() {
    let eh = "  eh:\n    event_hubs:\n      connection_string: ${HM_BAD_INPUT_UNSET}\n";
    let needle = "variable HM_BAD_INPUT_UNSET is not set (used in clusters.eh.event_hubs";
    refused(&format!("{AB}{eh}{FLOW}"), (8, 26), &[needle]);
}

#[test]
fn an_unreadable_secret_file_exits_2_naming_the_file_and_the_key() {
    // A directory, and a missing file (mode 000 would not do: tests may run as root).
    let work = Workdir::new();
    std::fs::create_dir(work.path().join("secrets")).expect("mkdir");
    let file = work.path().join("topology.yaml");
    let eh = "  eh:\n    event_hubs:\n      connection_string_file: secrets\n";
    std::fs::write(&file, format!("{AB}{eh}{FLOW}")).expect("write");
    let dir = format!("`{}`", work.path().join("secrets").display());
    let from = "(from clusters.eh.event_hubs.connection_string_file)";
    refused_file(&file, &[], (8, 7), &[&dir, from, "Is a directory"]);
    let sasl = "    sasl: {username: app, password_file: secrets/pw}\n  b:";
    std::fs::write(&file, format!("{}{FLOW}", AB.replacen("  b:", sasl, 1))).expect("write");
    let from = "secrets/pw` (from clusters.a.sasl.password_file)";
    refused_file(&file, &[], (4, 27), &[from, "No such file"]);
}

#[test]
fn a_malformed_connection_string_exits_2_without_echoing_it() {
    let key = "SharedAccessKey=S3cretKeyThatMustNotBePrinted=";
    let eh = "  eh:\n    event_hubs:\n      connection_string: ${CS}\n";
    for (cs, needle) in [
        (
            format!("Endpoint=https://ns/;SharedAccessKeyName=k;{key}"),
            "must start with `sb://`",
        ),
        (
            format!("Endpoint=sb://ns/;{key}"),
            "no `SharedAccessKeyName=<policy name>` part",
        ),
        (
            format!("S3cret=;{key}"),
            "no `Endpoint=sb://<namespace>.servicebus.windows.net/` part",
        ),
    ] {
        let at = (8, 26);
        let what = "clusters.eh.event_hubs.connection_string is not valid";
        let line = refused_env(
            &format!("{AB}{eh}{FLOW}"),
            &[("CS", &cs)],
            at,
            &[what, needle],
        );
        assert!(!line.contains("S3cret"), "the key leaked: {line}");
    }
}

#[test]
fn an_unknown_cluster_alias_exits_2_listing_the_known_ones() {
    let text = format!("{AB}flows:\n  - source: a\n    target: c\n    topics: [t]\n");
    refused(
        &text,
        (8, 13),
        &["flows[0].target: unknown cluster `c`; the clusters are: a, b"],
    );
}

/// `onprem` (tansu, topic `t`) → `eventhub` (the emulator), with `tls` under `eventhub`.
fn to_event_hubs(work: &Workdir, onprem: &Tansu, tls: &str) -> PathBuf {
    kafka::create_topic(&kafka::plain(&onprem.listener()), "t", 1);
    work.topology(&format!(
        "clusters:\n  onprem: {{bootstrap_servers: \"{}\"}}\n  eventhub:\n    event_hubs: \
         {{connection_string: \"${{CS}}\"}}\n{tls}\nflows:\n  - {{source: onprem, target: eventhub, \
         topics: [t]}}\n",
        onprem.listener()
    ))
}

#[test]
fn a_wrong_key_stops_run_with_exit_1_naming_the_cluster_and_no_secret() {
    let (onprem, eh) = (Tansu::start(), EventHubsEmulator::start());
    let wrong_key = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5IQ==";
    let cs = eh.connection_string().replace(KEY, wrong_key);
    let work = Workdir::new();
    let tls = format!("    tls: {{ca_file: \"{}\"}}", eh.ca_file().display());
    let mut run = Running::start(&to_event_hubs(&work, &onprem, &tls), &[("CS", &cs)]);
    let failed = "hubmirror: cluster 'eventhub': authentication failed";
    run_fails(
        &mut run,
        &[failed, "check the credentials of clusters.eventhub"],
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
    let mut run = Running::start(&to_event_hubs(&work, &onprem, ""), &[("CS", &cs)]);
    let failed = "hubmirror: cluster 'eventhub': TLS certificate not trusted";
    run_fails(&mut run, &[failed, "set clusters.eventhub.tls.ca_file"]);
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
    let topo = work.topology(&format!(
        "clusters:\n  a: {{bootstrap_servers: \"127.0.0.1:{}\"}}\n  b: {{bootstrap_servers: \"{}\"}}\n  \
         c: {{bootstrap_servers: \"{}\"}}\nflows:\n  - {{source: a, target: b, topics: [t]}}\n  \
         - {{source: c, target: b, topics: [t]}}\nreplication: {{heartbeats_interval: 0s}}\n",
        free_port(),
        b.listener(),
        c.listener()
    ));
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
    let warning = "cluster 'a': cannot reach its brokers";
    let needles = [
        warning,
        "Connection refused",
        "check clusters.a.bootstrap_servers",
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
    let mut run = Running::start(&kafka_pair(&work, &a, &b, false, ""), &[]);
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
    let fewer = "target topic 'a.beta' on cluster 'b' has 1 partition but the source has 2";
    unservable_target_topic(1, &[fewer, "add partitions to 'a.beta'"]);
}

#[test]
fn an_oversize_record_stops_run_with_exit_1_naming_it_and_how_to_go_on() {
    // Every `oversize` policy, through the emulator: tests/event_hubs_hardening.rs.
    let (a, b) = (Tansu::start(), Tansu::start());
    let ca = kafka::plain(&a.listener());
    kafka::create_topic(&ca, "t", 1);
    let rec = |k: &str, size| (0, k.as_bytes().to_vec(), vec![b'x'; size]);
    kafka::produce_raw(&ca, "t", &[rec("k0", 10), rec("k1", 20_000), rec("k2", 10)]);
    let work = Workdir::new();
    let limit = "    client: {message.max.bytes: \"10000\"}";
    let mut run = Running::start(&kafka_pair(&work, &a, &b, true, limit), &[]);
    let record = "record at topic 't' partition 0 offset 1 on cluster 'a' is 20002 bytes";
    run_fails(
        &mut run,
        &[record, "message.max.bytes 10000", "set `oversize: skip`"],
    );
    assert_eq!(
        keys(&read(&b, "a.t", 1)),
        ["k0"],
        "nothing from the oversize record on"
    );
}

/// Each file of `dir`: name, length and hash.
fn snapshot(dir: &Path) -> Vec<(String, usize, u64)> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("ls").path())
        .collect();
    files.sort();
    let file = |p: PathBuf| {
        let bytes = std::fs::read(&p).unwrap_or_default();
        let mut h = DefaultHasher::new();
        bytes.hash(&mut h);
        (p.display().to_string(), bytes.len(), h.finish())
    };
    files.into_iter().map(file).collect()
}

#[test]
fn a_corrupt_store_is_refused_with_exit_1_naming_the_path_and_left_alone() {
    let work = Workdir::new();
    let topo = work.topology(&format!("{AB}{FLOW}store:\n  path: ./data\n"));
    let data = work.path().join("data");
    let store = format!("hubmirror: store.path: store {}: ", data.display());
    let fix = "move it away or point store.path elsewhere";
    // A store whose data file was overwritten: sled reads it as empty (and rewrites it).
    drop(hubmirror::store::Store::open(&data).expect("a fresh store"));
    std::fs::write(data.join("db"), vec![0x5a; 4096]).expect("overwrite db");
    let names = |s: Vec<(String, usize, u64)>| s.into_iter().map(|f| f.0).collect::<Vec<_>>();
    let before = names(snapshot(&data));
    run_fails(
        &mut Running::start(&topo, &[]),
        &[&store, "could not read back", fix],
    );
    assert_eq!(names(snapshot(&data)), before, "no file added or removed");
    // A sled directory of garbage: refused before sled writes anything.
    std::fs::remove_dir_all(&data).expect("rm");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(data.join("conf"), "not sled's\n").expect("conf");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(data.join("db"), garbage).expect("db");
    let before = snapshot(&data);
    let corrupt = "corrupt data (sled found damaged files)";
    run_fails(&mut Running::start(&topo, &[]), &[&store, corrupt, fix]);
    assert_eq!(snapshot(&data), before, "left as it was");
}

type Headers<'a> = Vec<(&'a str, Option<&'a [u8]>)>;

/// Produces `(key, headers)` records to partition 0 of `topic`, in order, each with `app: kept`.
fn produce_with_headers(cfg: &rdkafka::ClientConfig, topic: &str, records: &[(&str, Headers)]) {
    let producer: FutureProducer = cfg
        .clone()
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for (key, headers) in records {
        let app = Header {
            key: "app",
            value: Some("kept"),
        };
        let h = headers
            .iter()
            .fold(OwnedHeaders::new().insert(app), |h, (key, value)| {
                h.insert(Header { key, value: *value })
            });
        let rec = FutureRecord::to(topic)
            .partition(0)
            .key(*key)
            .payload("v")
            .headers(h);
        rt.block_on(producer.send(rec, MINUTE)).expect("delivered");
    }
}

#[test]
fn malformed_hubmirror_headers_are_foreign_data_replicated_with_fresh_headers() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let ca = kafka::plain(&a.listener());
    kafka::create_topic(&ca, "t", 1);
    let (origin, hops, source) = ("hubmirror.origin", "hubmirror.hops", "hubmirror.source");
    let records: Vec<(&str, Headers)> = vec![
        ("hops-not-utf8", vec![(hops, Some(&[0xff, 0xfe, 0x00]))]),
        ("origin-empty", vec![(origin, Some(b""))]),
        ("source-garbage", vec![(source, Some(b"\x00//garbage/-1"))]),
        (
            "not-aliases",
            vec![(origin, Some(b"Not An Alias!")), (hops, Some(b"X,,Y"))],
        ),
        ("origin-null", vec![(origin, None)]),
        ("loop-origin", vec![(origin, Some(b"b"))]),
        (
            "loop-hops",
            vec![(origin, Some(&[0xc3])), (hops, Some(b"c,b"))],
        ),
        ("plain", vec![]),
    ];
    produce_with_headers(&ca, "t", &records);
    let work = Workdir::new();
    let mut run = Running::start(&kafka_pair(&work, &a, &b, true, ""), &[]);
    let copies = read(&b, "a.t", 6);
    let mut expected: Vec<&str> = records.iter().map(|r| r.0).collect();
    expected.retain(|k| !k.starts_with("loop"));
    assert_eq!(
        keys(&copies),
        expected,
        "each foreign record once, in order; the loops not"
    );
    for (r, offset) in copies.iter().zip([0, 1, 2, 3, 4, 7]) {
        let ours = r
            .headers
            .iter()
            .filter(|(k, _)| k.starts_with("hubmirror."));
        assert_eq!(ours.count(), 3, "{r:?}");
        let fresh = (
            Some("a".into()),
            Some("b".into()),
            Some(format!("a/t/0/{offset}")),
        );
        assert_eq!(
            (r.header(origin), r.header(hops), r.header(source)),
            fresh,
            "{r:?}"
        );
        assert_eq!(r.header("app").as_deref(), Some("kept"), "{r:?}");
    }
    let loops = ["topic=\"t\"", "reason=\"loop\""];
    assert_eq!(
        metric_at_least(&work, "hubmirror_records_skipped_total", &loops, 2.0),
        2.0
    );
    run.stop_cleanly();
}
