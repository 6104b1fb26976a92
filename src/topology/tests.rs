//! End-to-end tests of [`super::parse_with_env`]: a full file, defaults, and one case per error
//! kind with its exact `file:line:col: message`.

use std::path::Path;
use std::time::Duration;

use super::*;

const KEY: &str = "FAKEKEYdoNotLeak0123456789abcdefABCDEF=";

fn env(name: &str) -> Option<String> {
    match name {
        "EVENTHUB_CONNECTION_STRING" => Some(format!(
            "Endpoint=sb://myns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={KEY}"
        )),
        "TRICKY" => Some("a: b # not a comment".to_string()),
        "SECS" => Some("7s".to_string()),
        _ => None,
    }
}

fn ok(text: &str) -> Topology {
    parse_with_env(Path::new("t.yaml"), text, &env).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    let e = parse_with_env(Path::new("t.yaml"), text, &env)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(!e.contains(KEY), "error leaks the key: {e}");
    e
}

const MIN: &str = "clusters:\n  a: {bootstrap_servers: 'x:1'}\n  b: {bootstrap_servers: 'y:1'}\n\
                   flows:\n  - {source: a, target: b, topics: [t]}\n";

#[test]
fn full_file() {
    let text = r#"
clusters:
  onprem:
    bootstrap_servers: "localhost:9092"
    client:
      socket.keepalive.enable: true
      fetch.wait.max.ms: 50
      client.id: ${TRICKY}
  eventhub:
    event_hubs:
      connection_string: ${EVENTHUB_CONNECTION_STRING}
    heartbeats: false
    checkpoints: "False"
flows:
  - source: onprem
    target: eventhub
    topics: ["testeh", "orders\\..*"]
    topics_exclude: []
    groups: [".*"]
    groups_exclude:
  - source: eventhub
    target: onprem
    topics: ["testeh"]
replication:
  policy: identity
  separator: "_"
  create_topics: false
  refresh_topics_interval: 2m
  heartbeats_interval: 0s
  checkpoints_interval: ${SECS}
  sync_group_offsets: true
store:
  path: data/store
metrics:
  listen: 0.0.0.0:9999
"#;
    let t = ok(text);
    let on = &t.clusters["onprem"];
    assert_eq!(on.bootstrap_servers, "localhost:9092");
    assert!(on.tls.is_none() && on.sasl.is_none());
    assert_eq!(on.client["socket.keepalive.enable"], "true");
    assert_eq!(on.client["fetch.wait.max.ms"], "50");
    assert_eq!(on.client["client.id"], "a: b # not a comment");
    assert!(on.heartbeats && on.checkpoints, "both default to true");
    let eh = &t.clusters["eventhub"];
    assert_eq!(eh.bootstrap_servers, "myns.servicebus.windows.net:9093");
    assert!(eh.tls.as_ref().is_some_and(|t| t.ca_file.is_none()));
    let sasl = eh.sasl.as_ref().expect("derived sasl");
    assert_eq!(sasl.mechanism, SaslMechanism::Plain);
    assert_eq!(sasl.username, "$ConnectionString");
    assert_eq!(
        sasl.password.expose(),
        env("EVENTHUB_CONNECTION_STRING").expect("set")
    );
    assert_eq!(
        eh.event_hubs
            .as_ref()
            .and_then(|e| e.shared_access_key())
            .map(|k| k.key_name.as_str()),
        Some("Root")
    );
    assert!(!eh.heartbeats && !eh.checkpoints);
    assert_eq!(t.flows.len(), 2);
    let f = &t.flows[0];
    assert!(f.selects_topic("testeh") && f.selects_topic("orders.eu"));
    assert!(!f.selects_topic("xtesteh") && !f.selects_topic("ordersXeu"));
    assert_eq!(f.groups.len(), 1);
    assert!(f.groups_exclude.is_empty());
    let r = &t.replication;
    assert_eq!(r.policy, Policy::Identity);
    assert_eq!(r.separator, "_");
    assert!(!r.create_topics && r.sync_group_offsets);
    assert_eq!(r.refresh_topics_interval, Duration::from_secs(120));
    assert_eq!(r.heartbeats_interval, Duration::ZERO);
    assert_eq!(r.checkpoints_interval, Duration::from_secs(7));
    assert_eq!(t.store.path, Path::new("data/store"));
    assert_eq!(t.metrics.listen.to_string(), "0.0.0.0:9999");
    assert!(!format!("{t:?}").contains(KEY), "Debug leaks the key");
}

#[test]
fn defaults() {
    let t = ok(MIN);
    let r = &t.replication;
    assert_eq!(r.policy, Policy::Default);
    assert_eq!(r.separator, ".");
    assert!(r.create_topics && !r.sync_group_offsets);
    assert_eq!(r.refresh_topics_interval, Duration::from_secs(30));
    assert_eq!(r.heartbeats_interval, Duration::from_secs(1));
    assert_eq!(r.checkpoints_interval, Duration::from_secs(5));
    assert_eq!(t.store.path, Path::new("hubmirror-data"));
    assert_eq!(t.metrics.listen.to_string(), "127.0.0.1:9464");
    assert!(t.flows[0].groups.is_empty());
}

#[test]
fn relative_paths_and_secret_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("pw"), "s3cret\n").expect("write");
    std::fs::write(dir.path().join("ca.pem"), "pem").expect("write");
    std::fs::write(
        dir.path().join("cs"),
        format!("Endpoint=sb://n.servicebus.chinacloudapi.cn/;SharedAccessKeyName=k;SharedAccessKey={KEY}\n"),
    )
    .expect("write");
    let text = "clusters:\n  a:\n    bootstrap_servers: 'x:1'\n    tls: {ca_file: ca.pem}\n    \
                sasl: {mechanism: scram-sha-512, username: u, password_file: ./pw}\n  \
                b:\n    bootstrap_servers: 'emu:9092'\n    tls:\n    event_hubs: {connection_string_file: cs}\n\
                flows:\n  - {source: a, target: b, topics: [t]}\nstore: {path: st}\n";
    let t = parse_with_env(&dir.path().join("topology.yaml"), text, &env).expect("valid");
    let a = &t.clusters["a"];
    assert_eq!(
        a.tls.as_ref().and_then(|t| t.ca_file.clone()),
        Some(dir.path().join("ca.pem"))
    );
    let sasl = a.sasl.as_ref().expect("sasl");
    assert_eq!(sasl.password.expose(), "s3cret");
    assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
    let b = &t.clusters["b"];
    assert_eq!(b.bootstrap_servers, "emu:9092", "given bootstrap wins");
    assert!(b.tls.is_some());
    assert!(b
        .sasl
        .as_ref()
        .is_some_and(|s| !s.password.expose().ends_with('\n')));
    assert_eq!(t.store.path, dir.path().join("st"));
}

#[test]
fn error_messages() {
    let cases: &[(&str, &str)] = &[
        (
            "clusters:\n  eventhub:\n    event_hubs: {connection_string: \"${NOPE_CS}\"}\n",
            "t.yaml:3:37: environment variable NOPE_CS is not set (used in clusters.eventhub.event_hubs.connection_string)",
        ),
        (
            "clusters:\n  onprem:\n    bootstrap_servers: x\n    foo: 1\nflows: []\n",
            "t.yaml:4:5: unknown key `foo` in clusters.onprem (expected one of: bootstrap_servers, tls, sasl, client, event_hubs, heartbeats, checkpoints, compression)",
        ),
        (
            "clusters:\n  a: {bootstrap_servers: 'x:1'}\n  b: {bootstrap_servers: 'y:1'}\nflows:\n  - source: a\n    target: b\n    topics: [ok, 'orders[']\n",
            "t.yaml:7:18: flows[0].topics[1]: `orders[` is not a valid regex: unclosed character class",
        ),
        (
            "clusters:\n  a: {bootstrap_servers: 'x:1'}\nflows:\n  - source: a\n    target: c\n    topics: [t]\n",
            "t.yaml:5:13: flows[0].target: unknown cluster `c`; the clusters are: a",
        ),
        (
            "clusters:\n  a: {bootstrap_servers: 'x:1'}\nflows:\n  - {source: a, target: a, topics: [t]}\n",
            "t.yaml:4:25: flows[0]: source and target are both `a`; a flow copies between two clusters",
        ),
        (
            &format!("{MIN}replication:\n  heartbeats_interval: 5 parsecs\n"),
            "t.yaml:7:24: replication.heartbeats_interval: `5 parsecs` is not a duration (unknown time unit \"parsecs\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)); write e.g. `500ms`, `5s`, `2m`",
        ),
        (
            "clusters:\n  a:\n    bootstrap_servers: 'x:1'\n    sasl: {username: u, password: p, password_file: f}\nflows: []\n",
            "t.yaml:4:38: clusters.a.sasl: give either `password` or `password_file`, not both",
        ),
        (
            "clusters:\n  a:\n    event_hubs: {connection_string: 'Endpoint=https://x/;SharedAccessKeyName=k;SharedAccessKey=FAKEKEYdoNotLeak0123456789abcdefABCDEF='}\nflows: []\n",
            "t.yaml:3:37: clusters.a.event_hubs.connection_string is not valid: Endpoint must start with `sb://`, e.g. `Endpoint=sb://<namespace>.servicebus.windows.net/` (found `https://`)",
        ),
        (
            "clusters:\n  a:\n    sasl: {username: u, password: p}\n    event_hubs: {connection_string: x}\nflows: []\n",
            "t.yaml:3:5: `sasl` cannot be combined with `event_hubs` in clusters.a: an Event Hubs namespace authenticates with its connection string (SASL PLAIN as $ConnectionString) or with Entra ID (`event_hubs.entra`); remove `sasl`",
        ),
        (
            "clusters:\n  a:\n    event_hubs:\nflows: []\n",
            "t.yaml:3:5: clusters.a.event_hubs: missing `connection_string` (or `connection_string_file`, or `entra` with `namespace` for Microsoft Entra ID); give exactly one",
        ),
        (
            "clusters:\n  a: {}\nflows: []\n",
            "t.yaml:2:3: missing key `bootstrap_servers` in clusters.a; write `bootstrap_servers: host:port`, or give `event_hubs:` for an Event Hubs namespace",
        ),
        (
            "clusters:\n  Bad: {bootstrap_servers: 'x:1'}\nflows: []\n",
            "t.yaml:2:3: cluster alias `Bad` is not valid: it must match [a-z][a-z0-9_-]* (a lower-case letter, then lower-case letters, digits, `_` or `-`)",
        ),
        (
            "clusters:\n  a: {bootstrap_servers: 'x:1'}\nflows: []\n",
            "t.yaml:3:1: `flows` is empty: add at least one `- source: A  target: B  topics: [...]`",
        ),
        (
            &format!("{MIN}replication: {{policy: mirror}}\n"),
            "t.yaml:6:23: replication.policy `mirror` is not known; use `default` or `identity`",
        ),
        (
            &format!("{MIN}replication: {{create_topics: maybe}}\n"),
            "t.yaml:6:30: replication.create_topics must be `true` or `false`",
        ),
        (
            "clusters:\n  a:\n    bootstrap_servers: 'x:1'\n    heartbeats: off\nflows: []\n",
            "t.yaml:4:17: clusters.a.heartbeats must be `true` or `false`",
        ),
        (
            "clusters:\n  a: {bootstrap_servers: 'x:1', checkpoints: 1}\nflows: []\n",
            "t.yaml:2:46: clusters.a.checkpoints must be `true` or `false`",
        ),
        (
            &format!("{MIN}metrics:\n  listen: localhost:9464\n"),
            "t.yaml:7:11: metrics.listen `localhost:9464` is not an IP address and port; write e.g. `127.0.0.1:9464`, `0.0.0.0:9464` or `[::1]:9464`",
        ),
        (
            "clusters:\n  a: {bootstrap_servers: 'x:1'}\n  b: {bootstrap_servers: 'y:1'}\nflows:\n  - {source: a, target: b}\n",
            "t.yaml:5:5: missing key `topics` in flows[0]; list the topic regexes to replicate, e.g. `topics: [\"orders\\\\..*\"]`",
        ),
        (
            "clusters:\n  a:\n    bootstrap_servers: 'x:1'\n    tls: {ca_file: /nonexistent/ca.pem}\nflows: []\n",
            "t.yaml:4:20: cannot read `/nonexistent/ca.pem` (from clusters.a.tls.ca_file): No such file or directory (os error 2)",
        ),
        (
            "clusters:\n  a:\n    bootstrap_servers: 'x:1'\n    sasl: {username: u, password_file: /nonexistent/pw}\nflows: []\n",
            "t.yaml:4:25: cannot read `/nonexistent/pw` (from clusters.a.sasl.password_file): No such file or directory (os error 2)",
        ),
        (
            "clusters:\n  a:\n    bootstrap_servers: x\n  a:\n    bootstrap_servers: y\n",
            "t.yaml:4:3: duplicate key `a` (`clusters.a` is already set above)",
        ),
        (
            "clusters:\n  a: {bootstrap_servers: 'x:1'\n",
            "t.yaml:3:1: YAML syntax error: while parsing a flow mapping, did not find expected ',' or '}'",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(err(text), *want, "for:\n{text}");
    }
}

#[test]
fn oversize_and_compression() {
    let t = ok(MIN);
    assert_eq!(t.flows[0].oversize, Oversize::Fail);
    assert_eq!(
        t.flows[0].dead_letter_topic,
        "hubmirror.dead-letter.b.internal"
    );
    assert_eq!(t.clusters["a"].compression, Compression::None);

    let t = ok(
        "clusters:\n  a: {bootstrap_servers: 'x:1', compression: lz4}\n  \
                b: {bootstrap_servers: 'y:1'}\nflows:\n  - {source: a, target: b, topics: [t], \
                oversize: dead_letter, dead_letter_topic: big.ones}\n  \
                - {source: b, target: a, topics: [t], oversize: Skip}\n",
    );
    assert_eq!(t.clusters["a"].compression, Compression::Lz4);
    assert_eq!(t.flows[0].oversize, Oversize::DeadLetter);
    assert_eq!(t.flows[0].dead_letter_topic, "big.ones");
    assert_eq!(t.flows[1].oversize, Oversize::Skip);
    assert_eq!(t.flows[0].on_data_loss, OnDataLoss::Fail);
    let t = ok(&MIN.replace("topics: [t]}", "topics: [t], on_data_loss: continue}"));
    assert_eq!(t.flows[0].on_data_loss, OnDataLoss::Continue);
    assert_eq!(
        err(&MIN.replace("topics: [t]}", "topics: [t], on_data_loss: skip}")),
        "t.yaml:5:55: flows[0].on_data_loss `skip` is not known; use `fail` or `continue`"
    );

    let eh = "clusters:\n  a: {bootstrap_servers: 'x:1'}\n  b:\n    event_hubs:\n      \
              connection_string: ${EVENTHUB_CONNECTION_STRING}\n    compression: COMP\n\
              flows:\n  - {source: a, target: b, topics: [t]}\n";
    let t = ok(&eh.replace("COMP", "gzip"));
    assert_eq!(t.clusters["b"].compression, Compression::Gzip);
    assert_eq!(
        err(&eh.replace("COMP", "lz4")),
        "t.yaml:6:18: clusters.b.compression `lz4`: Event Hubs accepts only `none` or `gzip` \
         (gzip on Premium and Dedicated tiers)"
    );
    assert_eq!(
        err(&MIN.replace("topics: [t]}", "topics: [t], oversize: drop}")),
        "t.yaml:5:51: flows[0].oversize `drop` is not known; use `fail`, `skip` or `dead_letter`"
    );
    assert_eq!(
        err(&MIN.replace("topics: [t]}", "topics: [t], dead_letter_topic: x}")),
        "t.yaml:5:60: flows[0].dead_letter_topic `x` is only used with `oversize: dead_letter`; \
         set that, or remove the key"
    );
    assert!(err(&MIN.replace(
        "topics: [t]}",
        "topics: [t], oversize: dead_letter, dead_letter_topic: 'a b'}"
    ))
    .contains("is not a valid topic name"));
}

#[test]
fn a_deployment_name_namespaces_every_flow_group() {
    let t = ok(MIN);
    assert_eq!(t.name, None);
    assert_eq!(t.flows[0].group, "hubmirror-a-b");
    let t = ok(&format!("name: prod-eu.1\n{MIN}"));
    assert_eq!(t.name.as_deref(), Some("prod-eu.1"));
    assert_eq!(t.flows[0].group, "hubmirror-prod-eu.1-a-b");
    assert_eq!(
        err(&format!("name: Prod EU\n{MIN}")),
        "t.yaml:1:7: name `Prod EU` is not a valid deployment name; use 1 to 64 characters of \
         lower-case letters, digits, `.`, `_` and `-`, starting with a letter or digit, e.g. \
         `prod` or `staging-eu`"
    );
    assert!(
        err(&format!("name: '{}'\n{MIN}", "x".repeat(65))).contains("not a valid deployment name")
    );
}

#[test]
fn start_from() {
    assert_eq!(ok(MIN).flows[0].start_from, StartFrom::Earliest);
    let with = |v: &str| MIN.replace("topics: [t]}", &format!("topics: [t], start_from: {v}}}"));
    assert_eq!(ok(&with("latest")).flows[0].start_from, StartFrom::Latest);
    assert_eq!(
        ok(&with("earliest")).flows[0].start_from,
        StartFrom::Earliest
    );
    let t = ok(&with("2026-03-01T01:00:00+01:00")).flows[0].start_from;
    assert_eq!(t.to_string(), "2026-03-01T00:00:00Z");
    // Quoted or not, the same time.
    assert_eq!(ok(&with("'2026-03-01T00:00:00Z'")).flows[0].start_from, t);
    assert_eq!(
        err(&with("now")),
        "t.yaml:5:53: flows[0].start_from `now` is not known; use `earliest` (the default), \
         `latest` or an RFC 3339 time such as `2026-03-01T00:00:00Z` or \
         `2026-03-01T01:00:00+01:00`"
    );
    assert!(err(&with("2026-03-01T00:00:00")).starts_with(
        "t.yaml:5:53: flows[0].start_from `2026-03-01T00:00:00` is not a valid RFC 3339 time \
         (no time zone: end it with `Z` or `±HH:MM`); use `earliest`"
    ));
}

#[test]
fn topic_configs_keys() {
    let t = ok(MIN);
    assert!(t.replication.sync_topic_configs);
    let excluded = |t: &Topology, name: &str| {
        t.replication
            .topic_configs_exclude
            .iter()
            .any(|r| r.is_match(name))
    };
    assert!(excluded(&t, "min.insync.replicas"));
    assert!(excluded(&t, "message.timestamp.type"));
    assert!(!excluded(&t, "min.insync.replicasX"));
    assert!(!excluded(&t, "retention.ms"));
    let t = ok(&format!(
        "{MIN}replication:\n  sync_topic_configs: false\n  topic_configs_exclude: ['segment\\..*']\n"
    ));
    assert!(!t.replication.sync_topic_configs);
    assert!(excluded(&t, "segment.ms") && excluded(&t, "unclean.leader.election.enable"));
    assert!(!excluded(&t, "retention.ms"));
    assert_eq!(
        err(&format!("{MIN}replication:\n  topic_configs_exclude: [ok, 'max[']\n")),
        "t.yaml:7:31: replication.topic_configs_exclude[1]: `max[` is not a valid regex: unclosed character class"
    );
}
