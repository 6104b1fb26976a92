//! Each input kind's mapping, end to end through [`super::import_text`]; the topologies that
//! come out are loaded with the topology's own parser.

use std::path::Path;

use super::{import_text, Options};

const SECRET: &str = "SECRETvalue0123456789";

fn options(dir: &str) -> Options {
    Options {
        secrets_dir: dir.to_string(),
    }
}

fn import(name: &str, text: &str) -> String {
    let out = import_text(Path::new(name), text, &options("/s")).expect("imports");
    assert!(!out.contains(SECRET), "a secret value leaked:\n{out}");
    out
}

fn error(name: &str, text: &str) -> String {
    let e = import_text(Path::new(name), text, &options("/s")).unwrap_err();
    let line = e.to_string();
    assert!(!line.contains('\n') && !line.contains(SECRET), "{line}");
    line
}

/// Loads `out` as a topology, `VAR`s set to `value`.
fn loads(out: &str, value: &str) -> crate::topology::Topology {
    let env = |_: &str| Some(value.to_string());
    crate::topology::parse_with_env(Path::new("/tmp/t.yaml"), out, &env)
        .unwrap_or_else(|e| panic!("{e}\n{out}"))
}

const KMM: &str = "apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaMirrorMaker
metadata: {name: m}
spec:
  replicas: 3
  consumer:
    bootstrapServers: my-cluster-kafka-bootstrap:9092
    groupId: g
  producer:
    bootstrapServers: ns.servicebus.windows.net:9093
    tls: {trustedCertificates: []}
    authentication:
      type: plain
      username: $ConnectionString
      passwordSecret: {secretName: eventhubssecret, password: eventhubspassword}
  whitelist: \"testeh,orders.*\"
";

#[test]
fn kafka_mirror_maker_becomes_one_identity_flow_into_event_hubs() {
    let out = import("kmm.yaml", KMM);
    for want in [
        "  my-cluster:\n    bootstrap_servers: \"my-cluster-kafka-bootstrap:9092\"\n",
        "  eventhub:\n    event_hubs:\n      connection_string_file: \"/s/eventhubssecret/eventhubspassword\"\n    heartbeats: false\n",
        "  - source: my-cluster\n    target: eventhub\n    topics: [\"testeh\", \"orders.*\"]\n",
        "replication:\n  policy: \"identity\"\n",
        "# not carried over: spec.replicas=3: run that many",
        "spec.consumer.groupId=g",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }
}

#[test]
fn strimzi_authentication_kinds() {
    let text = KMM
        .replace("type: plain", "type: scram-sha-512")
        .replace("$ConnectionString", "mirror")
        .replace("ns.servicebus.windows.net:9093", "backup-kafka-bootstrap:9093")
        .replace("trustedCertificates: []", "trustedCertificates: [{secretName: ca, certificate: ca.crt}, {secretName: ca2, certificate: ca.crt}]");
    let out = import("kmm.yaml", &text);
    assert!(out.contains("  backup:\n    bootstrap_servers: \"backup-kafka-bootstrap:9093\"\n    tls:\n      ca_file: \"/s/ca/ca.crt\"\n    sasl:\n      mechanism: \"SCRAM-SHA-512\"\n      username: \"mirror\"\n      password_file: \"/s/eventhubssecret/eventhubspassword\"\n"), "{out}");
    assert!(out.contains("1 CA certificates after the first"), "{out}");

    let tls = KMM.replace(
        "      type: plain\n      username: $ConnectionString\n      passwordSecret: {secretName: eventhubssecret, password: eventhubspassword}\n",
        "      type: tls\n      certificateAndKey: {secretName: user, certificate: user.crt, key: user.key}\n",
    );
    let out = import("kmm.yaml", &tls);
    assert!(out.contains("      ssl.certificate.location: \"/s/user/user.crt\"\n      ssl.key.location: \"/s/user/user.key\"\n"), "{out}");

    let oauth = KMM.replace("type: plain", "type: oauth");
    let out = import("kmm.yaml", &oauth);
    assert!(
        out.contains("spec.producer.authentication.type=oauth"),
        "{out}"
    );
}

#[test]
fn secrets_in_the_file_are_never_printed() {
    let text = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: eventhubssecret}}\nstringData:\n  other: \"{SECRET}\"\n---\n{KMM}---\nkind: ConfigMap\nmetadata: {{name: x}}\n"
    );
    let out = import("kmm.yaml", &text);
    assert!(
        out.contains(
            "the Secret eventhubssecret in the input has no key eventhubspassword (it has: other)"
        ),
        "{out}"
    );
}

const KMM2: &str = "apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaMirrorMaker2
metadata: {name: m2}
spec:
  connectCluster: B
  clusters:
    - {alias: A, bootstrapServers: \"a:9092\"}
    - {alias: B, bootstrapServers: \"b:9092\"}
  mirrors:
    - sourceCluster: A
      targetCluster: B
      topicsPattern: \"t1, t2.*\"
      sourceConnector:
        tasksMax: 2
        config:
          replication.policy.class: org.apache.kafka.connect.mirror.IdentityReplicationPolicy
          refresh.topics.interval.seconds: 20
      checkpointConnector:
        config: {emit.checkpoints.interval.seconds: 15}
";

#[test]
fn kafka_mirror_maker2_mirrors_become_flows() {
    let out = import("m2.yaml", KMM2);
    for want in [
        "alias A is written a",
        "  - source: a\n    target: b\n    topics: [\"t1\", \"t2.*\"]\n    topics_exclude: [\".*[\\\\-\\\\.]internal\", \".*\\\\.replica\", \"__.*\"]\n    groups: [\".*\"]\n",
        "  policy: \"identity\"\n  refresh_topics_interval: \"20s\"\n  checkpoints_interval: \"15s\"\n",
        "sourceConnector.tasksMax=2",
        "heartbeats off: no mirror from this cluster has a heartbeatConnector",
        "spec.connectCluster=B",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }
    let t = loads(&out, "x");
    assert_eq!(t.flows[0].topics.len(), 2);
    let no_checkpoints = KMM2.replace(
        "      checkpointConnector:\n        config: {emit.checkpoints.interval.seconds: 15}\n",
        "",
    );
    let out = import("m2.yaml", &no_checkpoints);
    assert!(!out.contains("groups:"), "{out}");
}

const PROPS: &str = "clusters = src, hub
src.bootstrap.servers = src:9092
src.security.protocol = SASL_SSL
src.sasl.mechanism = SCRAM-SHA-256
src.sasl.jaas.config = org.apache.kafka.common.security.scram.ScramLoginModule required username=\"mm2\" password=\"SECRETvalue0123456789\";
src.ssl.truststore.location = /certs/ca.pem
src.ssl.truststore.type = PEM
hub.bootstrap.servers = ns.servicebus.windows.net:9093
hub.security.protocol = SASL_SSL
hub.sasl.mechanism = PLAIN
hub.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required username=\"$ConnectionString\" password=\"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=SECRETvalue0123456789\";
src->hub.enabled = true
src->hub.topics = testeh
src->hub.emit.heartbeats.enabled = false
replication.policy.separator = _
emit.checkpoints.enabled = false
tasks.max = 3
";

#[test]
fn mm2_properties_map_security_and_flows() {
    let out = import("mm2.properties", PROPS);
    for want in [
        "  src:\n    bootstrap_servers: \"src:9092\"\n    tls:\n      ca_file: \"/certs/ca.pem\"\n    sasl:\n      mechanism: \"SCRAM-SHA-256\"\n      username: \"mm2\"\n      password: \"${SRC_SASL_PASSWORD}\"\n    heartbeats: false\n",
        "  hub:\n    event_hubs:\n      connection_string: \"${HUB_CONNECTION_STRING}\"\n",
        "    topics: [\"testeh\"]\n",
        "  separator: \"_\"\n",
        "# not carried over: tasks.max=3",
        "no consumer groups are checkpointed",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }
    let cs = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=a2V5";
    // validate wants the CA file to exist.
    let existing = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let t = loads(&out.replace("/certs/ca.pem", existing), cs);
    assert_eq!(t.flows[0].source, "src");
    let jks = PROPS.replace("src.ssl.truststore.type = PEM\n", "");
    let out = import("mm2.properties", &jks);
    assert!(
        out.contains("keytool -exportcert") && out.contains("    tls: {}\n"),
        "{out}"
    );
}

#[test]
fn bad_input_is_one_line_naming_the_field() {
    let cases: [(&str, String, &str); 8] = [
        ("k.yaml", KMM.replace("    bootstrapServers: ns.servicebus.windows.net:9093\n", ""), "k.yaml:9: spec.producer.bootstrapServers: missing; set it"),
        ("k.yaml", KMM.replace("  whitelist: \"testeh,orders.*\"\n", ""), "k.yaml:4: spec.include: missing"),
        ("k.yaml", KMM.replace("orders.*", "(?=x)"), "k.yaml:16: spec.whitelist: `(?=x)` is not a regex"),
        ("k.yaml", KMM.replace("KafkaMirrorMaker", "KafkaConnect"), "k.yaml: no mirror resource: found kind KafkaConnect; supported: a Strimzi"),
        ("k.yaml", "a: [b\n".to_string(), "k.yaml:"),
        ("m2.yaml", KMM2.replace("sourceCluster: A", "sourceCluster: C"), "m2.yaml:10: spec.mirrors[0].sourceCluster: `C` is not an alias of spec.clusters (aliases: A, B)"),
        ("p.properties", PROPS.replace("src->hub.enabled = true", "src->hub.enabled = yes"), "p.properties:12: src->hub.enabled: `yes` is not a boolean"),
        ("p.properties", PROPS.replace("src.bootstrap.servers = src:9092\n", ""), "p.properties:1: clusters: src.bootstrap.servers is missing"),
    ];
    for (name, text, want) in cases {
        let line = error(name, &text);
        assert!(line.starts_with(want), "{want:?}, got {line:?}");
    }
    let line = error("t.yaml", "clusters: {}\nflows: []\n");
    assert!(line.contains("already a hubmirror topology"), "{line}");
    let two = format!("{KMM}---\n{KMM}");
    assert!(error("k.yaml", &two).contains("a second mirror resource"));
}

#[test]
fn kafka_mirror_maker2_v1_layout_target_and_mirror_sources() {
    let text = "apiVersion: kafka.strimzi.io/v1
kind: KafkaMirrorMaker2
metadata: {name: m2}
spec:
  target: {alias: backup, bootstrapServers: \"b:9092\", groupId: mm2}
  mirrors:
    - source: {alias: dc1, bootstrapServers: \"a:9092\"}
      topicsPattern: orders
      checkpointConnector: {}
    - source: {alias: dc1, bootstrapServers: \"a:9092\"}
      topicsPattern: payments
";
    let out = import("v1.yaml", text);
    assert!(
        out.contains("  backup:\n    bootstrap_servers: \"b:9092\"\n"),
        "{out}"
    );
    assert!(
        out.contains("  dc1:\n    bootstrap_servers: \"a:9092\"\n"),
        "{out}"
    );
    let merged = "  - source: dc1\n    target: backup\n    topics: [\"orders\", \"payments\"]\n";
    assert!(out.contains(merged), "{out}");
    assert!(
        out.contains("spec.mirrors[1] has the same direction"),
        "{out}"
    );
    assert!(out.contains("spec.target.groupId=mm2"), "{out}");
    let t = loads(&out, "x");
    assert_eq!(t.flows.len(), 1);
    let none = text.replace(
        "  target: {alias: backup, bootstrapServers: \"b:9092\", groupId: mm2}\n",
        "",
    );
    assert!(
        error("v1.yaml", &none).starts_with("v1.yaml:4: spec.clusters: missing; list the clusters")
    );
}

#[test]
fn a_consumer_starting_at_latest_becomes_start_from_latest() {
    let kmm = KMM.replace(
        "    groupId: g\n",
        "    groupId: g\n    config: {auto.offset.reset: latest}\n",
    );
    let out = import("kmm.yaml", &kmm);
    assert!(
        out.contains("    topics: [\"testeh\", \"orders.*\"]\n    start_from: \"latest\"\n"),
        "{out}"
    );
    assert!(
        !out.contains("auto.offset.reset"),
        "carried over, no note: {out}"
    );
    // The default needs no key.
    assert!(!import("kmm.yaml", KMM).contains("start_from"));

    let props = format!("{PROPS}src->hub.consumer.auto.offset.reset = latest\n");
    let out = import("mm2.properties", &props);
    assert!(out.contains("    start_from: \"latest\"\n"), "{out}");
    let cs = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=a2V5";
    let existing = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let t = loads(&out.replace("/certs/ca.pem", existing), cs);
    assert_eq!(t.flows[0].start_from, crate::topology::StartFrom::Latest);
}

#[test]
fn topic_config_sync_turned_off_is_carried_over() {
    let props = format!("{PROPS}sync.topic.configs.enabled = false\n");
    let out = import("mm2.properties", &props);
    assert!(out.contains("  sync_topic_configs: false\n"), "{out}");
    let cs = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=a2V5";
    let existing = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let t = loads(&out.replace("/certs/ca.pem", existing), cs);
    assert!(!t.replication.sync_topic_configs);
    assert!(!import("mm2.properties", PROPS).contains("sync_topic_configs"));
}
