//! `hubmirror validate` as users run it: the real binary on files in a temporary directory.
//! Broken files exit 2 with `file:line:col: message` on stderr; a good one prints the naming and
//! never a secret.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A recognisable fake shared access key: must never appear in any output.
const FAKE_KEY: &str = "FAKEsharedACCESSkey0123456789QWERTYzxcv=";

fn connection_string() -> String {
    format!(
        "Endpoint=sb://hubmirror-test.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={FAKE_KEY}"
    )
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `hubmirror validate -c <file>` with `vars` set (and the test variables otherwise unset).
fn validate(file: &Path, vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hubmirror"));
    cmd.arg("validate").arg("-c").arg(file);
    cmd.env_remove("HM_TEST_MISSING")
        .env_remove("RUST_LOG")
        .env_remove("DEMO_DIR");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run hubmirror");
    let o = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !o.stdout.contains(FAKE_KEY) && !o.stderr.contains(FAKE_KEY),
        "the shared access key leaked:\n{}\n{}",
        o.stdout,
        o.stderr
    );
    o
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write file");
    p
}

/// Asserts exit 2 and stderr `<file>:<line>:<col>: ...` containing every `needle`.
fn assert_config_error(file: &Path, out: &Output, line: usize, col: usize, needles: &[&str]) {
    let prefix = format!("{}:{line}:{col}: ", file.display());
    assert_eq!(out.code, 2, "exit code; stderr:\n{}", out.stderr);
    assert!(
        out.stderr.starts_with(&prefix),
        "stderr should start with {prefix:?}:\n{}",
        out.stderr
    );
    for n in needles {
        assert!(
            out.stderr.contains(n),
            "stderr lacks {n:?}:\n{}",
            out.stderr
        );
    }
    assert!(out.stdout.is_empty(), "stdout: {}", out.stdout);
}

const TWO_CLUSTERS: &str = "clusters:
  onprem:
    bootstrap_servers: localhost:9092
  other:
    bootstrap_servers: localhost:9093
";

#[test]
fn broken_files_exit_2_with_positions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let flow = "flows:\n  - source: onprem\n    target: other\n    topics: [t]\n";
    let cases: Vec<(&str, String, usize, usize, Vec<&str>)> = vec![
        (
            "missing-var.yaml",
            "clusters:\n  eventhub:\n    event_hubs:\n      connection_string: ${HM_TEST_MISSING}\n"
                .to_string(),
            4,
            26,
            vec![
                "environment variable HM_TEST_MISSING is not set",
                "clusters.eventhub.event_hubs.connection_string",
            ],
        ),
        (
            "unknown-top.yaml",
            format!("{TWO_CLUSTERS}{flow}replicaton:\n  policy: default\n"),
            10,
            1,
            vec!["unknown key `replicaton` at the top level", "replication"],
        ),
        (
            "unknown-nested.yaml",
            format!("{TWO_CLUSTERS}    sasl_mechanism: PLAIN\n{flow}"),
            6,
            5,
            vec![
                "unknown key `sasl_mechanism` in clusters.other",
                "bootstrap_servers, tls, sasl, client, event_hubs",
            ],
        ),
        (
            "bad-regex.yaml",
            format!("{TWO_CLUSTERS}flows:\n  - source: onprem\n    target: other\n    topics:\n      - ok\n      - \"orders(\"\n"),
            11,
            9,
            vec!["flows[0].topics[1]", "`orders(` is not a valid regex", "unclosed group"],
        ),
        (
            "unknown-alias.yaml",
            format!("{TWO_CLUSTERS}flows:\n  - source: onprme\n    target: other\n    topics: [t]\n"),
            7,
            13,
            vec!["flows[0].source: unknown cluster `onprme`", "onprem, other"],
        ),
        (
            "bad-connection-string.yaml",
            format!(
                "clusters:\n  eh:\n    event_hubs:\n      connection_string: \"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey={FAKE_KEY}\"\nflows: []\n"
            ),
            4,
            26,
            vec!["clusters.eh.event_hubs.connection_string", "SharedAccessKeyName"],
        ),
        (
            "bad-duration.yaml",
            format!("{TWO_CLUSTERS}{flow}replication:\n  checkpoints_interval: soon\n"),
            11,
            25,
            vec!["replication.checkpoints_interval", "`soon` is not a duration", "5s"],
        ),
        (
            "missing-password-file.yaml",
            "clusters:\n  onprem:\n    bootstrap_servers: localhost:9092\n    sasl:\n      mechanism: PLAIN\n      username: app\n      password_file: no-such-dir/pw\nflows: []\n"
                .to_string(),
            7,
            7,
            vec!["clusters.onprem.sasl.password_file", "no-such-dir/pw", "No such file"],
        ),
        (
            "yaml-syntax.yaml",
            "clusters:\n  onprem: [\n".to_string(),
            3,
            1,
            vec!["YAML syntax error"],
        ),
        (
            "wrong-type.yaml",
            format!("{TWO_CLUSTERS}flows:\n  - source: onprem\n    target: other\n    topics: t\n"),
            9,
            13,
            vec!["`flows[0].topics` must be a list"],
        ),
    ];
    for (name, text, line, col, needles) in cases {
        let file = write(d, name, &text);
        let out = validate(&file, &[]);
        assert_config_error(&file, &out, line, col, &needles);
    }
}

#[test]
fn missing_file_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("absent.yaml");
    let out = validate(&file, &[]);
    assert_config_error(&file, &out, 1, 1, &["cannot read the topology file"]);
}

#[test]
fn good_file_prints_naming_and_no_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(
        d,
        "eh-connection-string",
        &format!("{}\n", connection_string()),
    );
    write(d, "pw", "onprem-password-secret\n");
    let text = "clusters:
  onprem:
    bootstrap_servers: localhost:9092
    sasl:
      mechanism: SCRAM-SHA-256
      username: app
      password_file: pw
  eventhub:
    event_hubs:
      connection_string: ${HM_TEST_CS}
  eventhub2:
    event_hubs:
      connection_string_file: eh-connection-string
flows:
  - source: onprem
    target: eventhub
    topics: [\"testeh\", \"orders\\\\..*\"]
    groups: [\".*\"]
  - source: eventhub
    target: onprem
    topics: [\"testeh\"]
  - source: onprem
    target: eventhub2
    topics: [\"testeh\"]
";
    let file = write(d, "topology.yaml", text);
    let cs = connection_string();
    let out = validate(&file, &[("HM_TEST_CS", &cs)]);
    assert_eq!(out.code, 0, "stderr:\n{}", out.stderr);
    for want in [
        "testeh → onprem.testeh",
        "orders\\..* → onprem.<match>",
        "testeh → eventhub.testeh",
        "heartbeats → onprem.heartbeats",
        "SASL PLAIN as $ConnectionString (Event Hubs namespace hubmirror-test.servicebus.windows.net, key name RootManageSharedAccessKey)",
        "bootstrap: hubmirror-test.servicebus.windows.net:9093",
        "SASL SCRAM-SHA-256 as app",
    ] {
        assert!(out.stdout.contains(want), "stdout lacks {want:?}:\n{}", out.stdout);
    }
    for secret in ["onprem-password-secret", "Endpoint=sb://"] {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "{secret} leaked"
        );
    }
}

#[test]
fn repository_topology_is_valid() {
    let repo_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("topology.yaml");
    let Ok(text) = std::fs::read_to_string(&repo_file) else {
        eprintln!("skipped: {} does not exist", repo_file.display());
        return;
    };
    // Validate a copy, so that the CA files it names relative to itself (made by the demo
    // script) can be stand-ins here.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "topology.yaml", &text);
    let ca = regex::Regex::new(r"(?m)^\s*ca_file:\s*([^\s#]+)").expect("regex");
    // `${VAR:-default}` (the demo's directory) as validate resolves it with VAR unset.
    let fallback = regex::Regex::new(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}").expect("regex");
    for m in ca.captures_iter(&text) {
        let rel = fallback.replace_all(m[1].trim_matches(|c| c == '"' || c == '\''), "$1");
        let rel = rel.as_ref();
        if Path::new(rel).is_relative() {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, "stand-in").expect("write CA");
        }
    }
    let cs = connection_string();
    let out = validate(&file, &[("EVENTHUB_CONNECTION_STRING", &cs)]);
    assert_eq!(out.code, 0, "{}: {}", repo_file.display(), out.stderr);
    assert!(out.stdout.contains("flows:"), "{}", out.stdout);
}

#[test]
fn entra_namespaces_print_their_mode_and_never_the_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = "ENTRAclientSECRETvalue0123456789";
    let text =         "clusters:\n  onprem: {bootstrap_servers: 'localhost:9092'}\n  eh:\n    event_hubs:\n      \
         namespace: myns.servicebus.windows.net\n      entra:\n        \
         tenant_id: 00000000-0000-0000-0000-000000000000\n        \
         client_id: 11111111-1111-1111-1111-111111111111\n        client_secret: ${HM_ENTRA_SECRET}\n  \
         mi:\n    event_hubs:\n      namespace: other.servicebus.windows.net\n      \
         entra: {managed_identity: true}\n\
         flows:\n  - {source: onprem, target: eh, topics: [orders]}\n  \
         - {source: mi, target: onprem, topics: [events]}\n";
    let file = write(dir.path(), "topology.yaml", text);
    let out = validate(&file, &[("HM_ENTRA_SECRET", secret)]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("SASL OAUTHBEARER, Entra ID client secret")
            && out
                .stdout
                .contains("application 11111111-1111-1111-1111-111111111111")
            && out
                .stdout
                .contains("scope https://myns.servicebus.windows.net/.default"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Entra ID managed identity")
            && out.stdout.contains("the system-assigned identity"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains(secret) && !out.stderr.contains(secret),
        "validate prints the client secret:\n{}{}",
        out.stdout,
        out.stderr
    );
}
