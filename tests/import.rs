//! `hubmirror import` as users run it: the real binary on each input kind (the examples in
//! examples/import/), its output checked by the real `hubmirror validate`; malformed input as
//! one line naming the field; and the seed scenario's `KafkaMirrorMaker`, pointed at a real
//! tansu and the Event Hubs emulator, imported and run: every record reaches `testeh` once.

use hubmirror_test_support as support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::emulator::EventHubsEmulator;
use support::hubmirror::{run_to_end, Running, Workdir};
use support::kafka;
use support::tansu::Tansu;

/// A recognisable fake secret: must never appear in any output.
const FAKE_KEY: &str = "FAKEimportKEY0123456789abcdefghijklmnopq=";

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/import")
        .join(name)
}

fn connection_string() -> String {
    format!("Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={FAKE_KEY}")
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn hubmirror(args: &[&str], env: &[(&str, &str)]) -> Out {
    let out = run_to_end(args, env);
    let o = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for secret in [FAKE_KEY, "replace-me"] {
        assert!(
            !o.stdout.contains(secret) && !o.stderr.contains(secret),
            "a secret leaked:\n{}\n{}",
            o.stdout,
            o.stderr
        );
    }
    o
}

/// Imports `input` with Secrets under `secrets`, writes the topology into `work`, validates it
/// with `env`; returns the topology text and validate's output.
fn import_and_validate(work: &Workdir, input: &Path, env: &[(&str, &str)]) -> (String, String) {
    let secrets = work.path().join("secrets");
    let input = input.to_string_lossy();
    let secrets_dir = secrets.to_string_lossy();
    let out = hubmirror(&["import", "--secrets-dir", &secrets_dir, &input], &[]);
    assert_eq!(out.code, 0, "import failed: {}", out.stderr);
    let topology = work.topology(&out.stdout);
    let check = hubmirror(&["validate", "-c", &topology.to_string_lossy()], env);
    assert_eq!(
        check.code, 0,
        "validate refused:\n{}\n{}",
        check.stderr, out.stdout
    );
    (out.stdout, check.stdout)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

#[test]
fn strimzi_kafka_mirror_maker_imports_and_validates() {
    let work = Workdir::new();
    let secret = work
        .path()
        .join("secrets/eventhubssecret/eventhubspassword");
    write(&secret, &connection_string());
    let (topology, summary) = import_and_validate(&work, &example("kafka-mirror-maker.yaml"), &[]);
    assert!(
        topology.contains(&format!("connection_string_file: \"{}\"", secret.display())),
        "{topology}"
    );
    assert!(
        topology.contains("# not carried over: spec.replicas=1"),
        "{topology}"
    );
    assert!(summary.contains("my-cluster → eventhub"), "{summary}");
    assert!(summary.contains("testeh → testeh"), "{summary}");
    assert!(
        summary.contains("bootstrap: example.servicebus.windows.net:9093"),
        "{summary}"
    );
}

#[test]
fn strimzi_kafka_mirror_maker2_with_its_secrets_imports_and_validates() {
    let work = Workdir::new();
    write(&work.path().join("secrets/backup-user/password"), "pw\n");
    // validate checks that the CA file exists; `run` would read the PEM.
    write(
        &work.path().join("secrets/backup-cluster-ca-cert/ca.crt"),
        "-----BEGIN CERTIFICATE-----\n",
    );
    let (topology, summary) = import_and_validate(&work, &example("kafka-mirror-maker2.yaml"), &[]);
    assert!(topology.contains("password_file:"), "{topology}");
    assert!(
        topology.contains("sourceConnector.tasksMax=4"),
        "{topology}"
    );
    assert!(
        summary.contains("auth: SASL SCRAM-SHA-512 as backup-user"),
        "{summary}"
    );
    assert!(summary.contains("payments → dc1.payments"), "{summary}");
    assert!(summary.contains("checkpoints_interval: 10s"), "{summary}");
}

#[test]
fn mm2_properties_import_and_validate() {
    let work = Workdir::new();
    let cs = connection_string();
    let env = [("EVENTHUB_CONNECTION_STRING", cs.as_str())];
    let (topology, summary) =
        import_and_validate(&work, &example("connect-mirror-maker.properties"), &env);
    assert!(
        topology.contains("connection_string: \"${EVENTHUB_CONNECTION_STRING}\""),
        "{topology}"
    );
    assert!(
        topology.contains("# not carried over: tasks.max=4"),
        "{topology}"
    );
    assert!(summary.contains("policy: identity"), "{summary}");
    assert!(summary.contains("groups: billing-.*"), "{summary}");
}

#[test]
fn malformed_input_is_one_line_naming_the_field() {
    let work = Workdir::new();
    let seed = std::fs::read_to_string(example("kafka-mirror-maker.yaml")).expect("seed");
    let props = std::fs::read_to_string(example("connect-mirror-maker.properties")).expect("props");
    let cases = [
        ("a.yaml", seed.replace("    bootstrapServers: my-namespace.servicebus.windows.net:9093\n", ""), "spec.producer.bootstrapServers: missing; set it to"),
        ("b.yaml", seed.replace("      type: plain\n", ""), "spec.producer.authentication.type: missing"),
        ("c.yaml", seed.replace("kind: KafkaMirrorMaker", "kind: KafkaBridge"), "no mirror resource: found kind KafkaBridge; supported: a Strimzi KafkaMirrorMaker or KafkaMirrorMaker2"),
        ("d.properties", props.replace("onprem->eventhub.enabled = true", "onprem->eventhub.enabled = on"), ":16: onprem->eventhub.enabled: `on` is not a boolean; write `true` or `false`"),
        ("e.properties", props.replace("clusters = onprem, eventhub", "clusters = onprem, eventhub, dr"), ": clusters: dr.bootstrap.servers is missing"),
    ];
    for (name, text, want) in cases {
        let file = work.path().join(name);
        write(&file, &text);
        let out = hubmirror(&["import", &file.to_string_lossy()], &[]);
        assert_eq!(out.code, 2, "{name}: {}", out.stderr);
        assert!(
            out.stdout.is_empty(),
            "{name}: nothing on stdout: {}",
            out.stdout
        );
        assert_eq!(
            out.stderr.lines().count(),
            1,
            "{name}: one line: {}",
            out.stderr
        );
        assert!(
            out.stderr
                .starts_with(&format!("hubmirror: {}", file.display())),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(want),
            "{name}: {want:?} in {}",
            out.stderr
        );
    }
    let out = hubmirror(&["import", "/nonexistent/mm.yaml"], &[]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("/nonexistent/mm.yaml: cannot read"),
        "{}",
        out.stderr
    );
}

const RECORDS: usize = 2_000;
const PARTITIONS: i32 = 3;

/// The seed's `KafkaMirrorMaker` with its bootstrap servers on tansu and the emulator (whose CA
/// comes from a Secret `emulator-ca`) → import → validate → run: `testeh` on the emulator gets
/// each on-prem record exactly once, under the same name.
#[test]
fn seed_kafka_mirror_maker_round_trip_through_the_emulator() {
    let onprem = Tansu::start();
    let eh = EventHubsEmulator::start();
    let src = kafka::plain(&onprem.listener());
    kafka::create_topic(&src, "testeh", PARTITIONS);
    kafka::produce_test_records(&src, "testeh", PARTITIONS, 0..RECORDS, 1_700_000_000_000);

    let work = Workdir::new();
    let secrets = work.path().join("secrets");
    write(
        &secrets.join("eventhubssecret/eventhubspassword"),
        &eh.connection_string(),
    );
    let ca = std::fs::read_to_string(eh.ca_file()).expect("emulator CA");
    write(&secrets.join("emulator-ca/ca.crt"), &ca);
    let seed = std::fs::read_to_string(example("kafka-mirror-maker.yaml"))
        .expect("seed")
        .replace("my-cluster-kafka-bootstrap:9092", &onprem.listener())
        .replace("my-namespace.servicebus.windows.net:9093", &eh.bootstrap())
        .replace(
            "trustedCertificates: []",
            "trustedCertificates: [{secretName: emulator-ca, certificate: ca.crt}]",
        );
    let input = work.path().join("mirror-maker.yaml");
    write(&input, &seed);
    let (topology, summary) = import_and_validate(&work, &input, &[]);
    assert!(!topology.contains(&eh.connection_string()), "{topology}");
    assert!(summary.contains("source → eventhub"), "{summary}");
    assert!(summary.contains("testeh → testeh"), "{summary}");

    let mut run = Running::start(&work.path().join("topology.yaml"), &[]);
    let copies = kafka::read_all(
        &eh.client_config(),
        "testeh",
        RECORDS,
        Duration::from_secs(120),
    );
    let counts = kafka::count_by_key(&copies);
    let once = (0..RECORDS).all(|i| counts.get(format!("k{i}").as_bytes()) == Some(&1));
    assert!(
        once && copies.len() == RECORDS,
        "{} copies, {} keys, each once: {once}",
        copies.len(),
        counts.len()
    );
    assert!(copies
        .iter()
        .all(|r| r.header("hubmirror.origin").as_deref() == Some("source")));
    run.stop_cleanly();
}
