//! Strimzi resources: the clusters' TLS and authentication (shared with
//! [`super::strimzi_mm2`]), and `KafkaMirrorMaker`.

use std::collections::{BTreeMap, BTreeSet};

use super::common::{self, alias_from_bootstrap, check_regexes, regex_list, shown};
use super::model::{Cluster, Flow, Imported, Sasl, SecretRef};
use super::yaml::Node;
use super::ImportError;

/// What the clusters' mapping needs: where Secrets are mounted, and the Secrets in the file.
pub(crate) struct Ctx {
    /// `Options::secrets_dir`.
    pub dir: String,
    /// The Secrets of the input file: name → keys (never values).
    pub secrets: BTreeMap<String, BTreeSet<String>>,
}

impl Ctx {
    /// The file a Secret's key is mounted as; a note when the file's copy of the Secret lacks it.
    fn secret_file(&self, secret: &str, key: &str, notes: &mut Vec<String>) -> SecretRef {
        if let Some(keys) = self.secrets.get(secret) {
            if !keys.contains(key) {
                let have: Vec<&str> = keys.iter().map(String::as_str).collect();
                notes.push(format!(
                    "check: the Secret {secret} in the input has no key {key} (it has: {}); \
                     the file below must hold it",
                    have.join(", ")
                ));
            }
        }
        SecretRef::File(format!("{}/{secret}/{key}", self.dir.trim_end_matches('/')))
    }
}

/// A Strimzi cluster: `bootstrapServers`, `tls`, `authentication`, and `config` into notes.
/// `handled` are further keys of `node` its caller reads itself.
pub(crate) fn cluster(
    ctx: &Ctx,
    node: &Node,
    alias: &str,
    handled: &[&str],
) -> Result<Cluster, ImportError> {
    let bootstrap = node.req_str(
        "bootstrapServers",
        "set it to the cluster's bootstrap address, host:port (e.g. my-cluster-kafka-bootstrap:9092)",
    )?;
    let mut c = Cluster {
        alias: alias.to_string(),
        bootstrap: Some(bootstrap.to_string()),
        ..Cluster::default()
    };
    if let Some(tls) = node.get("tls") {
        c.tls = Some(trusted_ca(ctx, &tls, &mut c.notes)?);
    }
    if let Some(auth) = node.get("authentication") {
        authentication(ctx, &auth, &mut c)?;
    }
    if let Some(config) = node.get("config") {
        for (key, n) in config.entries()? {
            client_setting(&mut c, &key, &n)?;
        }
    }
    for (key, n) in node.entries()? {
        let known = ["bootstrapServers", "tls", "authentication", "config"];
        if !known.contains(&key.as_str()) && !handled.contains(&key.as_str()) {
            c.notes.push(format!(
                "not carried over: {}: no hubmirror key for it",
                shown(&n.path, &n.shown())
            ));
        }
    }
    Ok(c)
}

/// `tls.trustedCertificates` → the CA file (the first certificate).
fn trusted_ca(
    ctx: &Ctx,
    tls: &Node,
    notes: &mut Vec<String>,
) -> Result<Option<String>, ImportError> {
    let Some(certs) = tls.get("trustedCertificates") else {
        return Ok(None);
    };
    let items = certs.items()?;
    let Some(first) = items.first() else {
        return Ok(None);
    };
    let secret = first.req_str("secretName", "name the Secret holding the CA certificate")?;
    let key = match first.opt_str("certificate")? {
        Some(k) => k,
        None => {
            let pattern = first.req_str(
                "certificate",
                "name the Secret's key holding the PEM CA certificate",
            )?;
            notes.push(format!(
                "check: {} is a pattern; ca_file names one key of it",
                first.path
            ));
            pattern
        }
    };
    if items.len() > 1 {
        notes.push(format!(
            "not carried over: {} CA certificates after the first: hubmirror takes one PEM bundle; \
             concatenate them into the ca_file",
            items.len() - 1
        ));
    }
    let SecretRef::File(path) = ctx.secret_file(secret, key, notes) else {
        return Ok(None);
    };
    Ok(Some(path))
}

/// `authentication:` → `sasl`, `event_hubs` (user `$ConnectionString`), client certificates,
/// or a note.
fn authentication(ctx: &Ctx, auth: &Node, c: &mut Cluster) -> Result<(), ImportError> {
    let kind = auth.req_str(
        "type",
        "set it to plain, scram-sha-256, scram-sha-512 or tls",
    )?;
    match kind {
        "plain" | "scram-sha-256" | "scram-sha-512" => {
            let username = auth.req_str("username", "set the SASL user name")?;
            let ps = auth.require("passwordSecret", "name the Secret with the password: {secretName: ..., password: <key>}")?;
            let secret = ps.req_str("secretName", "name the Secret holding the password")?;
            let key = ps.req_str("password", "name the Secret's key that holds the password")?;
            let password = ctx.secret_file(secret, key, &mut c.notes);
            if kind == "plain" && username == "$ConnectionString" {
                c.notes.push(format!(
                    "Azure Event Hubs: the user $ConnectionString makes the password (Secret {secret}, \
                     key {key}) the namespace's connection string"
                ));
                if c.bootstrap.as_deref().is_some_and(common::is_event_hubs_endpoint) {
                    c.bootstrap = None;
                }
                c.event_hubs = Some(password);
                c.tls = c.tls.take().filter(|ca| ca.is_some());
            } else {
                c.sasl = Some(Sasl {
                    mechanism: kind.to_ascii_uppercase(),
                    username: username.to_string(),
                    password,
                });
            }
        }
        "tls" => {
            let ck = auth.require("certificateAndKey", "name the Secret with the client certificate: {secretName, certificate, key}")?;
            let secret = ck.req_str("secretName", "name the Secret holding the client certificate")?;
            for (field, setting) in [("certificate", "ssl.certificate.location"), ("key", "ssl.key.location")] {
                let key = ck.req_str(field, "name the Secret's key (PEM)")?;
                if let SecretRef::File(path) = ctx.secret_file(secret, key, &mut c.notes) {
                    c.client.push((setting.to_string(), path));
                }
            }
            c.tls.get_or_insert(None);
        }
        other => c.notes.push(format!(
            "not carried over: {}.type={other}: hubmirror signs in to Kafka with PLAIN or SCRAM \
             (Event Hubs: a connection string or Entra ID, see the README); fill in `sasl:` yourself",
            auth.path
        )),
    }
    Ok(())
}

/// One Kafka client setting of a Strimzi `config:`: librdkafka's name where it is the same
/// meaning, else a note.
fn client_setting(c: &mut Cluster, key: &str, n: &Node) -> Result<(), ImportError> {
    let value = n.shown();
    match key {
        "ssl.endpoint.identification.algorithm" if value.is_empty() => {
            c.client.push((key.to_string(), "none".to_string()));
        }
        "compression.type" if ["none", "gzip", "snappy", "lz4", "zstd"].contains(&value.as_str()) => {
            c.compression = Some(value);
        }
        "auto.offset.reset" if value == "earliest" => {}
        "auto.offset.reset" if value == "latest" => c.starts_latest = true,
        k if k.ends_with("replication.factor") => c.notes.push(format!(
            "not carried over: {}: hubmirror keeps no Kafka Connect topics",
            shown(&n.path, &value)
        )),
        _ => c.notes.push(format!(
            "not carried over: {}: no hubmirror key; if librdkafka has this setting, put it under `client:`",
            shown(&n.path, &value)
        )),
    }
    Ok(())
}

/// Notes on the resource's deployment settings (`replicas`, `resources`, ...).
pub(crate) fn deployment_note(key: &str, n: &Node) -> String {
    let why = match key {
        "replicas" => {
            "run that many `hubmirror run` instances of the topology: they share the partitions"
        }
        "resources" | "jvmOptions" | "image" | "template" | "livenessProbe" | "readinessProbe"
        | "version" => "a setting of MirrorMaker's pods; hubmirror's are in deploy/k8s",
        "metricsConfig" => "hubmirror serves Prometheus metrics itself, on metrics.listen",
        "logging" => "hubmirror logs to stderr; RUST_LOG filters, --log-format json for collectors",
        "tracing" => "hubmirror has no tracing export",
        _ => "no hubmirror key for it",
    };
    format!("not carried over: {}: {why}", shown(&n.path, &n.shown()))
}

/// `KafkaMirrorMaker` (MirrorMaker 1): one flow consumer → producer, topic names kept.
pub(crate) fn kafka_mirror_maker(
    ctx: &Ctx,
    spec: &Node,
    name: &str,
) -> Result<Imported, ImportError> {
    let consumer = spec.require(
        "consumer",
        "add the source cluster: consumer: {bootstrapServers: ..., groupId: ...}",
    )?;
    let producer = spec.require(
        "producer",
        "add the target cluster: producer: {bootstrapServers: ...}",
    )?;
    let mut source = cluster(
        ctx,
        &consumer,
        "",
        &["groupId", "numStreams", "offsetCommitInterval"],
    )?;
    let mut target = cluster(ctx, &producer, "", &["abortOnSendFailure"])?;
    source.alias = alias_for(&source, &consumer, "source");
    target.alias = alias_for(&target, &producer, "target");
    if target.alias == source.alias {
        target.alias.push_str("-target");
    }
    if let Some(n) = consumer.get("groupId") {
        source.notes.push(format!(
            "not carried over: {}={}: the flow uses its own group, hubmirror-{}-{} on this cluster; \
             it starts at the beginning of each partition, so records MirrorMaker copied already are copied again",
            n.path, n.shown(), source.alias, target.alias
        ));
    }
    for key in ["numStreams", "offsetCommitInterval"] {
        if let Some(n) = consumer.get(key) {
            source.notes.push(format!("not carried over: {}: hubmirror consumes every partition it owns and commits after each acknowledged batch", shown(&n.path, &n.shown())));
        }
    }
    if let Some(n) = producer.get("abortOnSendFailure") {
        target.notes.push(format!("not carried over: {}: hubmirror retries a failed send and stops (exit 1) on a fatal one", shown(&n.path, &n.shown())));
    }
    for c in [&mut source, &mut target] {
        if c.event_hubs.is_some() {
            c.heartbeats = Some(false);
            c.notes.push(
                "heartbeats off: MirrorMaker had none, and no heartbeats topic uses up an event \
                 hub (Standard: 10 per namespace)"
                    .to_string(),
            );
        }
    }
    let include = spec
        .get("include")
        .or_else(|| spec.get("whitelist"))
        .ok_or_else(|| {
            spec.missing(
                "include",
                "list the topics to mirror as a regex, e.g. include: \"testeh\"",
            )
        })?;
    let topics = regex_list(include.str()?);
    check_regexes(&topics).map_err(|m| include.error(m))?;
    let mut t = Imported {
        what: format!("KafkaMirrorMaker {name}"),
        ..Imported::default()
    };
    t.flows.push(Flow {
        source: source.alias.clone(),
        target: target.alias.clone(),
        topics,
        start_from: source.starts_latest.then(|| "latest".to_string()),
        notes: vec![format!(
            "from {}: MirrorMaker keeps topic names (identity policy)",
            include.path
        )],
        ..Flow::default()
    });
    t.replication.policy = Some("identity".to_string());
    t.clusters = vec![source, target];
    for (key, n) in spec.entries()? {
        if !["consumer", "producer", "include", "whitelist"].contains(&key.as_str()) {
            t.notes.push(deployment_note(&key, &n));
        }
    }
    Ok(t)
}

/// An alias for a MirrorMaker 1 side: `eventhub`, the Strimzi cluster's name, or `fallback`.
fn alias_for(c: &Cluster, node: &Node, fallback: &str) -> String {
    if c.event_hubs.is_some() {
        return "eventhub".to_string();
    }
    node.opt_str("bootstrapServers")
        .ok()
        .flatten()
        .and_then(alias_from_bootstrap)
        .unwrap_or_else(|| fallback.to_string())
}
