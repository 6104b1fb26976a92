//! Writes an [`Imported`] topology as `topology.yaml` text: every value quoted (a JSON string is
//! a valid YAML double-quoted scalar), every note a `#` comment above what it is about.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::model::{Cluster, Flow, Imported, Replication, SecretRef};

/// Width comments are wrapped at.
const WIDTH: usize = 98;

/// The YAML text of `t`, read from `file`.
pub(crate) fn emit(t: &Imported, file: &str) -> String {
    let mut out = String::new();
    comment(
        &mut out,
        "",
        &format!(
            "topology.yaml imported by `hubmirror import` from {file} ({}). Check it with \
             `hubmirror validate -c <this file>`. Comments starting with \"not carried over\" \
             name every setting this file does not express, and why.",
            t.what
        ),
    );
    for line in secret_summary(t) {
        comment(&mut out, "", &line);
    }
    for n in &t.notes {
        comment(&mut out, "", n);
    }
    out.push_str("clusters:\n");
    for c in &t.clusters {
        cluster(&mut out, c);
    }
    out.push_str("\nflows:\n");
    for f in &t.flows {
        flow(&mut out, f);
    }
    replication(&mut out, &t.replication);
    out
}

/// `s` as a YAML scalar, a literal `${` escaped as `$${` (the topology expands `${VAR}`).
fn q(s: &str) -> String {
    quoted(&s.replace("${", "$${"))
}

/// `s` as a YAML scalar, as it is.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// `items` as a YAML flow sequence.
fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// Appends `text` as `# ` comment lines at `indent`, wrapped.
fn comment(out: &mut String, indent: &str, text: &str) {
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && indent.len() + 2 + line.len() + 1 + word.len() > WIDTH {
            let _ = writeln!(out, "{indent}# {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    let _ = writeln!(out, "{indent}# {line}");
}

fn secret_value(r: &SecretRef) -> String {
    match r {
        SecretRef::File(p) => q(p),
        SecretRef::Env(v) => quoted(&format!("${{{v}}}")),
    }
}

/// One comment per secret source: the files to mount, the variables to set.
fn secret_summary(t: &Imported) -> Vec<String> {
    let mut files = BTreeSet::new();
    let mut vars = BTreeSet::new();
    for c in &t.clusters {
        let refs = c
            .sasl
            .iter()
            .map(|s| &s.password)
            .chain(c.event_hubs.iter());
        for r in refs {
            match r {
                SecretRef::File(p) => files.insert(p.clone()),
                SecretRef::Env(v) => vars.insert(v.clone()),
            };
        }
        files.extend(c.tls.iter().flatten().cloned());
        let locations = c.client.iter().filter(|(k, _)| k.ends_with(".location"));
        files.extend(locations.map(|(_, v)| v.clone()));
    }
    let mut lines = Vec::new();
    if !files.is_empty() {
        lines.push(format!(
            "Secrets and certificates are read from files, never copied here: {} (mount each \
             Kubernetes Secret at <secrets dir>/<secret name>/; `hubmirror import \
             --secrets-dir` sets the directory).",
            files.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if !vars.is_empty() {
        lines.push(format!(
            "Secrets come from environment variables, never copied here: set {} before \
             `hubmirror validate` or `run`.",
            vars.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    lines
}

fn cluster(out: &mut String, c: &Cluster) {
    for n in &c.notes {
        comment(out, "  ", n);
    }
    let _ = writeln!(out, "  {}:", c.alias);
    if let Some(b) = &c.bootstrap {
        let _ = writeln!(out, "    bootstrap_servers: {}", q(b));
    }
    if let Some(eh) = &c.event_hubs {
        let key = match eh {
            SecretRef::File(_) => "connection_string_file",
            SecretRef::Env(_) => "connection_string",
        };
        let _ = writeln!(out, "    event_hubs:\n      {key}: {}", secret_value(eh));
    }
    match &c.tls {
        Some(Some(ca)) => {
            let _ = writeln!(out, "    tls:\n      ca_file: {}", q(ca));
        }
        Some(None) => out.push_str("    tls: {}\n"),
        None => {}
    }
    if let Some(s) = &c.sasl {
        let key = match s.password {
            SecretRef::File(_) => "password_file",
            SecretRef::Env(_) => "password",
        };
        let _ = writeln!(
            out,
            "    sasl:\n      mechanism: {}\n      username: {}\n      {key}: {}",
            q(&s.mechanism),
            q(&s.username),
            secret_value(&s.password)
        );
    }
    if !c.client.is_empty() {
        out.push_str("    client:\n");
        for (k, v) in &c.client {
            let _ = writeln!(out, "      {k}: {}", q(v));
        }
    }
    for (key, v) in [("heartbeats", c.heartbeats), ("checkpoints", c.checkpoints)] {
        if let Some(v) = v {
            let _ = writeln!(out, "    {key}: {v}");
        }
    }
    if let Some(z) = &c.compression {
        let _ = writeln!(out, "    compression: {}", q(z));
    }
}

fn flow(out: &mut String, f: &Flow) {
    for n in &f.notes {
        comment(out, "  ", n);
    }
    let _ = writeln!(out, "  - source: {}\n    target: {}", f.source, f.target);
    let _ = writeln!(out, "    topics: {}", list(&f.topics));
    for (key, v) in [
        ("topics_exclude", &f.topics_exclude),
        ("groups", &f.groups),
        ("groups_exclude", &f.groups_exclude),
    ] {
        if !v.is_empty() {
            let _ = writeln!(out, "    {key}: {}", list(v));
        }
    }
    if let Some(s) = &f.start_from {
        let _ = writeln!(out, "    start_from: {}", q(s));
    }
}

fn replication(out: &mut String, r: &Replication) {
    let mut body = String::new();
    let strings = [
        ("policy", &r.policy),
        ("separator", &r.separator),
        ("refresh_topics_interval", &r.refresh_topics_interval),
        ("heartbeats_interval", &r.heartbeats_interval),
        ("checkpoints_interval", &r.checkpoints_interval),
    ];
    for (key, v) in strings {
        if let Some(v) = v {
            let _ = writeln!(body, "  {key}: {}", q(v));
        }
    }
    if let Some(v) = r.sync_topic_configs {
        let _ = writeln!(body, "  sync_topic_configs: {v}");
    }
    if let Some(v) = r.sync_group_offsets {
        let _ = writeln!(body, "  sync_group_offsets: {v}");
    }
    if body.is_empty() && r.notes.is_empty() {
        return;
    }
    out.push('\n');
    for n in &r.notes {
        comment(out, "", n);
    }
    if body.is_empty() {
        return;
    }
    out.push_str("replication:\n");
    out.push_str(&body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::model::Sasl;

    #[test]
    fn emits_references_never_values_and_wraps_notes() {
        let t = Imported {
            what: "test".into(),
            clusters: vec![
                Cluster {
                    alias: "a".into(),
                    bootstrap: Some("a:9092".into()),
                    tls: Some(None),
                    sasl: Some(Sasl {
                        mechanism: "SCRAM-SHA-512".into(),
                        username: "u${x}".into(),
                        password: SecretRef::Env("A_PASSWORD".into()),
                    }),
                    notes: vec!["x ".repeat(80)],
                    ..Cluster::default()
                },
                Cluster {
                    alias: "eh".into(),
                    event_hubs: Some(SecretRef::File("/s/eh/k".into())),
                    heartbeats: Some(false),
                    ..Cluster::default()
                },
            ],
            flows: vec![Flow {
                source: "a".into(),
                target: "eh".into(),
                topics: vec!["orders\\..*".into()],
                ..Flow::default()
            }],
            ..Imported::default()
        };
        let y = emit(&t, "in.yaml");
        assert!(y.contains("      password: \"${A_PASSWORD}\"\n"), "{y}");
        assert!(y.contains("      username: \"u$${x}\"\n"), "{y}");
        assert!(
            y.contains("      connection_string_file: \"/s/eh/k\"\n"),
            "{y}"
        );
        assert!(y.contains("    topics: [\"orders\\\\..*\"]\n"), "{y}");
        assert!(y.contains("    tls: {}\n"), "{y}");
        assert!(y.contains("set A_PASSWORD"), "{y}");
        assert!(y.lines().all(|l| l.len() <= WIDTH + 2), "{y}");
        assert!(!y.contains("replication:"), "{y}");
    }
}
