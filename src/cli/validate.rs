//! `hubmirror validate`: load the topology offline and print what it means — clusters, flows and
//! the remote name each topic pattern gets — or the first error as `file:line:col: message`.
//! Never prints a secret.

use std::fmt::Write as _;
use std::process::ExitCode;

use regex::Regex;

use crate::cli::opt::ValidateArgs;
use crate::cluster::security_protocol;
use crate::naming::Naming;
use crate::topology::{
    self, Cluster, Flow, Policy, StartFrom, Topology, DEFAULT_TOPIC_CONFIGS_EXCLUDE,
};
use crate::topology::{entra, event_hubs};

/// Runs `validate`: exit 0 and the summary on stdout, or exit 2 and the error on stderr.
pub fn execute(args: &ValidateArgs) -> ExitCode {
    match topology::load(&args.common.config) {
        Ok(t) => {
            print!("{}", render(&t));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(crate::cli::EXIT_CONFIG)
        }
    }
}

/// The human summary of a valid topology.
pub fn render(t: &Topology) -> String {
    let naming = Naming::from_replication(&t.replication);
    let mut out = String::new();
    let _ = writeln!(out, "{}: OK", t.file.display());
    let _ = writeln!(out, "\nclusters:");
    for c in t.clusters.values() {
        cluster(&mut out, c);
    }
    let _ = writeln!(out, "\nflows:");
    for f in &t.flows {
        flow(&mut out, f, t, &naming);
    }
    let r = &t.replication;
    let _ = writeln!(out, "\nreplication:");
    let policy = match r.policy {
        Policy::Default => "default (<source alias><separator><topic>)",
        Policy::Identity => "identity (same name on both sides; heartbeats still renamed)",
    };
    let _ = writeln!(out, "  policy: {policy}");
    let _ = writeln!(out, "  separator: {:?}", r.separator);
    let _ = writeln!(out, "  create_topics: {}", r.create_topics);
    let _ = writeln!(
        out,
        "  refresh_topics_interval: {}",
        humantime::format_duration(r.refresh_topics_interval)
    );
    let hb = if r.heartbeats_interval.is_zero() {
        "off".to_string()
    } else {
        humantime::format_duration(r.heartbeats_interval).to_string()
    };
    let _ = writeln!(out, "  heartbeats_interval: {hb}");
    let _ = writeln!(
        out,
        "  checkpoints_interval: {}",
        humantime::format_duration(r.checkpoints_interval)
    );
    let _ = writeln!(out, "  sync_group_offsets: {}", r.sync_group_offsets);
    let _ = writeln!(out, "  static_membership: {}", r.static_membership);
    let _ = writeln!(out, "  sync_topic_configs: {}", r.sync_topic_configs);
    if r.sync_topic_configs {
        // The first ones are MirrorMaker 2's defaults, always there.
        let extra: Vec<&str> = r.topic_configs_exclude[DEFAULT_TOPIC_CONFIGS_EXCLUDE.len()..]
            .iter()
            .map(|re| re.as_str())
            .collect();
        let _ = writeln!(
            out,
            "  topic_configs_exclude: MirrorMaker 2's defaults{}",
            if extra.is_empty() {
                String::new()
            } else {
                format!(", {}", extra.join(", "))
            }
        );
    }
    let _ = writeln!(out, "\nstore:\n  path: {}", t.store.path.display());
    let _ = writeln!(out, "\nmetrics:\n  listen: {}", t.metrics.listen);
    out
}

fn cluster(out: &mut String, c: &Cluster) {
    let _ = writeln!(out, "  {}:", c.alias);
    let _ = writeln!(out, "    bootstrap: {}", c.bootstrap_servers);
    let tls = match &c.tls {
        None => "off".to_string(),
        Some(t) => match &t.ca_file {
            Some(ca) => format!("on (CA file {})", ca.display()),
            None => "on (system CAs)".to_string(),
        },
    };
    let _ = writeln!(out, "    tls: {tls}");
    let auth = match (&c.event_hubs, &c.sasl) {
        (Some(eh), _) => match (eh.shared_access_key(), eh.entra()) {
            (Some(k), _) => {
                let mut s = format!(
                    "SASL PLAIN as {} (Event Hubs namespace {}, key name {}",
                    event_hubs::SASL_USERNAME,
                    eh.namespace_host,
                    k.key_name
                );
                if let Some(hub) = &k.entity_path {
                    let _ = write!(s, ", entity path {hub}");
                }
                s.push(')');
                s
            }
            (None, Some(e)) => entra_line(&eh.namespace_host, e),
            (None, None) => String::new(),
        },
        (None, Some(sasl)) => format!("SASL {} as {}", sasl.mechanism.as_str(), sasl.username),
        (None, None) => "none".to_string(),
    };
    let _ = writeln!(out, "    auth: {auth}");
    let _ = writeln!(out, "    security.protocol: {}", security_protocol(c));
    let on_off = |on: bool| if on { "on" } else { "off" };
    let _ = writeln!(out, "    heartbeats: {}", on_off(c.heartbeats));
    let _ = writeln!(out, "    checkpoints: {}", on_off(c.checkpoints));
    if !c.client.is_empty() {
        let keys: Vec<&str> = c.client.keys().map(String::as_str).collect();
        // Keys only: a raw setting may hold a secret (ssl.key.password, ...).
        let _ = writeln!(out, "    client settings: {}", keys.join(", "));
    }
}

fn flow(out: &mut String, f: &Flow, t: &Topology, naming: &Naming) {
    let _ = writeln!(out, "  {} → {}:", f.source, f.target);
    let _ = writeln!(out, "    topics:");
    for re in &f.topics {
        let p = pattern(re);
        let _ = writeln!(out, "      {p} → {}", remote_of(&p, f, naming));
    }
    let hb = crate::naming::HEARTBEATS_TOPIC;
    let emits = t.clusters.get(&f.source).is_some_and(|c| c.heartbeats);
    let takes = t.clusters.get(&f.target).is_some_and(|c| c.heartbeats);
    if emits && naming.flow_copies(f, hb, takes) {
        let _ = writeln!(out, "      {hb} → {}", naming.remote_topic(&f.source, hb));
    } else if emits && !takes && !t.replication.heartbeats_interval.is_zero() {
        let _ = writeln!(
            out,
            "      {hb}: not copied (clusters.{}.heartbeats is false)",
            f.target
        );
    }
    list(out, "topics_exclude", &f.topics_exclude);
    let start = match f.start_from {
        StartFrom::Earliest => {
            "earliest (partitions never replicated start at their beginning)".into()
        }
        StartFrom::Latest => "latest (partitions never replicated start at their end)".into(),
        t @ StartFrom::Time(_) => {
            format!("{t} (partitions never replicated start at their first record from then)")
        }
    };
    let _ = writeln!(out, "    start_from: {start}");
    if f.groups.is_empty() {
        let _ = writeln!(out, "    groups: (none: no checkpoints)");
    } else {
        list(out, "groups", &f.groups);
        list(out, "groups_exclude", &f.groups_exclude);
        if t.clusters.get(&f.target).is_some_and(|c| c.checkpoints) {
            let _ = writeln!(
                out,
                "    checkpoints: {} on {}",
                naming.checkpoints_topic(&f.source),
                f.target
            );
        } else {
            let _ = writeln!(
                out,
                "    checkpoints: off (clusters.{}.checkpoints is false)",
                f.target
            );
        }
    }
}

fn list(out: &mut String, name: &str, res: &[Regex]) {
    if res.is_empty() {
        return;
    }
    let items: Vec<String> = res.iter().map(pattern).collect();
    let _ = writeln!(out, "    {name}: {}", items.join(", "));
}

/// The pattern as written: the model holds it anchored as `^(?:p)$`.
fn pattern(re: &Regex) -> String {
    let s = re.as_str();
    s.strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .unwrap_or(s)
        .to_string()
}

/// The topic a pattern names when it is (nearly) literal: only topic-name characters, with `.`
/// or `\.` read as a dot (`orders.eu`, `orders\.eu`). `None` for real regexes.
fn literal_topic(p: &str) -> Option<String> {
    let t = p.replace("\\.", ".");
    let topic_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    (!t.is_empty() && t.chars().all(topic_chars)).then_some(t)
}

/// The remote name of a literal pattern, or the `<match>` form of a regex; plus any skip note.
fn remote_of(p: &str, f: &Flow, naming: &Naming) -> String {
    if let Some(topic) = literal_topic(p) {
        let remote = naming.remote_topic(&f.source, &topic);
        match naming.flow_skips_topic(&topic, &f.target) {
            Some(reason) => format!("{remote} (skipped: {reason})"),
            None => remote,
        }
    } else {
        match naming.policy() {
            Policy::Default => format!("{}{}<match>", f.source, naming.separator()),
            Policy::Identity => "<match> (same name)".to_string(),
        }
    }
}

/// The `auth:` line of an Entra ID namespace: the mode, who, and where tokens come from (never
/// a secret).
fn entra_line(host: &str, e: &entra::Entra) -> String {
    use entra::{EntraCredential, IdentityEndpoint, SecretSource};
    let who = match &e.credential {
        EntraCredential::ClientSecret {
            tenant_id,
            client_id,
            secret,
        } => format!(
            "application {client_id} in tenant {tenant_id}, secret {}",
            match secret {
                SecretSource::Value(_) => "given inline".to_string(),
                SecretSource::File(f) => format!("from {}", f.display()),
            }
        ),
        EntraCredential::WorkloadIdentity {
            tenant_id,
            client_id,
            token_file,
        } => format!(
            "application {client_id} in tenant {tenant_id}, federated token from {}",
            token_file.display()
        ),
        EntraCredential::ManagedIdentity {
            client_id,
            endpoint,
        } => format!(
            "{} from {}",
            client_id
                .as_deref()
                .map_or("the system-assigned identity".to_string(), |c| format!(
                    "user-assigned identity {c}"
                )),
            match endpoint {
                IdentityEndpoint::Imds(url) => format!("the instance metadata service at {url}"),
                IdentityEndpoint::AppService { endpoint, .. } => {
                    format!("IDENTITY_ENDPOINT {endpoint}")
                }
            }
        ),
    };
    let authority = match &e.credential {
        EntraCredential::ManagedIdentity { .. } => String::new(),
        _ => format!(", authority {}", e.authority_host),
    };
    format!(
        "SASL OAUTHBEARER, Entra ID {} (Event Hubs namespace {host}: {who}{authority}; scope \
         https://{host}/.default)",
        e.credential.mode()
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn renders_names_and_no_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "hunter2-secret\n").expect("write");
        let text = format!(
            r#"
clusters:
  onprem:
    bootstrap_servers: localhost:9092
    sasl: {{mechanism: SCRAM-SHA-256, username: app, password_file: {}}}
    client: {{ssl.key.password: x-secret-x}}
  eventhub:
    event_hubs:
      connection_string: "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=TOPSECRETKEY="
flows:
  - source: onprem
    target: eventhub
    topics: ["testeh", "orders\\..*", "eventhub.back", "__consumer_offsets"]
    groups: [".*"]
  - source: eventhub
    target: onprem
    topics: ["testeh"]
"#,
            pw.display()
        );
        let t = topology::parse(&dir.path().join("t.yaml"), &text).expect("valid");
        let s = render(&t);
        for want in [
            "testeh → onprem.testeh",
            "orders\\..* → onprem.<match>",
            "testeh → eventhub.testeh",
            "eventhub.back → onprem.eventhub.back (skipped: already replicated from eventhub",
            "__consumer_offsets → onprem.__consumer_offsets (skipped: internal topic)",
            "heartbeats → onprem.heartbeats\n",
            "auth: SASL PLAIN as $ConnectionString (Event Hubs namespace ns.servicebus.windows.net, key name Root)",
            "auth: SASL SCRAM-SHA-256 as app",
            "bootstrap: ns.servicebus.windows.net:9093",
            "tls: on (system CAs)",
            "tls: off",
            "checkpoints: onprem.checkpoints.internal on eventhub",
            "client settings: ssl.key.password",
            "listen: 127.0.0.1:9464",
            "    heartbeats: on\n    checkpoints: on\n",
        ] {
            assert!(s.contains(want), "missing {want:?} in:\n{s}");
        }
        for secret in ["TOPSECRETKEY", "hunter2", "x-secret-x", "Endpoint="] {
            assert!(!s.contains(secret), "{secret} leaked:\n{s}");
        }
        assert!(s.starts_with(&format!("{}: OK", dir.path().join("t.yaml").display())));
    }

    #[test]
    fn identity_policy_keeps_names() {
        let text = "clusters:\n  a: {bootstrap_servers: 'x:1'}\n  b: {bootstrap_servers: 'y:1'}\n\
                    flows:\n  - {source: a, target: b, topics: [t, 'u.*']}\n\
                    replication: {policy: identity, heartbeats_interval: 0s}\n";
        let t = topology::parse(Path::new("t.yaml"), text).expect("valid");
        let s = render(&t);
        assert!(s.contains("t → t\n"), "{s}");
        assert!(s.contains("u.* → <match> (same name)"), "{s}");
        assert_eq!(literal_topic("orders\\.eu").as_deref(), Some("orders.eu"));
        assert_eq!(literal_topic("orders.eu").as_deref(), Some("orders.eu"));
        assert_eq!(literal_topic("orders\\..*"), None);
        assert_eq!(literal_topic("a|b"), None);
        assert!(s.contains("heartbeats_interval: off"), "{s}");
        assert!(!s.contains("heartbeats → "), "{s}");
        assert!(
            s.contains(
                "    start_from: earliest (partitions never replicated start at their beginning)\n"
            ),
            "{s}"
        );
        let t = topology::parse(
            Path::new("t.yaml"),
            &text.replace(
                "'u.*']}",
                "'u.*'], start_from: '2026-03-01T01:00:00+01:00'}",
            ),
        )
        .expect("valid");
        let s = render(&t);
        assert!(s.contains("    start_from: 2026-03-01T00:00:00Z (partitions never replicated start at their first record from then)\n"), "{s}");
    }

    #[test]
    fn cluster_switches() {
        let text = "clusters:\n  a: {bootstrap_servers: 'x:1', heartbeats: false}\n  \
                    b: {bootstrap_servers: 'y:1', checkpoints: false}\n\
                    flows:\n  - {source: a, target: b, topics: [t], groups: [g]}\n\
                    \x20 - {source: b, target: a, topics: [t], groups: [g]}\n";
        let t = topology::parse(Path::new("t.yaml"), text).expect("valid");
        let s = render(&t);
        for want in [
            "  a:\n    bootstrap: x:1\n    tls: off\n    auth: none\n    security.protocol: PLAINTEXT\n    heartbeats: off\n    checkpoints: on\n",
            "    heartbeats: on\n    checkpoints: off\n",
            "heartbeats: not copied (clusters.a.heartbeats is false)\n",
            "checkpoints: off (clusters.b.checkpoints is false)",
            "checkpoints: b.checkpoints.internal on a",
        ] {
            assert!(s.contains(want), "missing {want:?} in:\n{s}");
        }
        // a emits none; b's are not copied into a, which takes none (as `run` and `topics`).
        assert!(!s.contains("heartbeats → a.heartbeats"), "{s}");
        assert!(!s.contains("heartbeats → b.heartbeats"), "{s}");
    }
}
