//! Everything about talking to one cluster: its librdkafka settings ([`client_config`]),
//! per-role clients ([`clients`]), the client context that routes librdkafka's logs
//! ([`context`]), topic lookups that never create a topic ([`metadata`]), the members of a
//! consumer group and the partitions each owns ([`group`]), and consumer statistics ([`stats`]). The cluster's model, its secrets and Event Hubs connection strings
//! are the topology's (`crate::topology`).

pub mod alter_configs;
pub mod clients;
pub mod context;
pub mod diagnose;
pub mod group;
pub mod metadata;
pub mod oauth;
mod reader;
mod redact;
pub mod stats;

use rdkafka::ClientConfig;

pub use context::{ClusterContext, FatalClusterError};
pub use diagnose::{Cause, ConnectionProblem};
pub use stats::ConsumerStats;

use crate::topology::{event_hubs, Cluster};

/// Settings every client of an Event Hubs namespace gets (before the cluster's `client:` map),
/// from Microsoft's recommendations for the Kafka endpoint.
const EVENT_HUBS_DEFAULTS: &[(&str, &str)] = &[
    // librdkafka's 30 s default is fine elsewhere; the service may hold a throttled request long.
    ("request.timeout.ms", "60000"),
    // Azure drops idle TCP connections at 240 s: refresh and close well before that.
    ("metadata.max.age.ms", "180000"),
    ("connections.max.idle.ms", "180000"),
    // Requests over 1,046,528 bytes make the service close the connection.
    ("message.max.bytes", "1000000"),
    ("socket.keepalive.enable", "true"),
];

/// Consumer-only settings for Event Hubs namespaces (`session.timeout.ms=30000`); the caller
/// applies them to consumers before the cluster's `client:` map.
pub fn event_hubs_consumer_defaults() -> &'static [(&'static str, &'static str)] {
    &[("session.timeout.ms", "30000")]
}

/// `security.protocol` for a cluster: TLS from `tls` (always on for Event Hubs), SASL from
/// `sasl` (always present for Event Hubs).
pub fn security_protocol(cluster: &Cluster) -> &'static str {
    let tls = cluster.tls.is_some() || cluster.event_hubs.is_some();
    // An Event Hubs namespace always authenticates: PLAIN or OAUTHBEARER.
    let sasl = cluster.sasl.is_some() || cluster.event_hubs.is_some();
    match (tls, sasl) {
        (false, false) => "PLAINTEXT",
        (true, false) => "SSL",
        (false, true) => "SASL_PLAINTEXT",
        (true, true) => "SASL_SSL",
    }
}

/// The librdkafka settings shared by every client of `cluster`: bootstrap, security, SASL, CA,
/// the Event Hubs defaults, then the raw `client:` map, applied last so it can override anything.
pub fn client_config(cluster: &Cluster) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &cluster.bootstrap_servers);
    cfg.set("security.protocol", security_protocol(cluster));
    if let Some(sasl) = &cluster.sasl {
        cfg.set("sasl.mechanism", sasl.mechanism.as_str());
        cfg.set("sasl.username", &sasl.username);
        cfg.set("sasl.password", sasl.password.expose());
    } else if let Some(k) = cluster
        .event_hubs
        .as_ref()
        .and_then(|e| e.shared_access_key())
    {
        cfg.set("sasl.mechanism", "PLAIN");
        cfg.set("sasl.username", event_hubs::SASL_USERNAME);
        cfg.set("sasl.password", k.connection_string.expose());
    } else if cluster
        .event_hubs
        .as_ref()
        .is_some_and(|e| e.entra().is_some())
    {
        // Tokens come from the cluster's token source (crate::entra) through the client
        // context; the config names the cell to read (see `oauth`).
        cfg.set("sasl.mechanism", "OAUTHBEARER");
        cfg.set(
            "sasl.oauthbearer.config",
            crate::entra::config_key(&cluster.alias),
        );
    }
    if let Some(ca) = cluster.tls.as_ref().and_then(|t| t.ca_file.as_ref()) {
        cfg.set("ssl.ca.location", ca.to_string_lossy());
    }
    // librdkafka backs off reconnects up to 10 s; after a network cut or a broker restart a
    // replicator should be back within about a second of the cluster.
    cfg.set("reconnect.backoff.max.ms", "1000");
    // A TLS client on a plaintext port waits in the handshake until this (librdkafka: 30 s)
    // before anyone hears of it; a healthy connection is set up in well under a second.
    cfg.set("socket.connection.setup.timeout.ms", "10000");
    if cluster.event_hubs.is_some() {
        for (k, v) in EVENT_HUBS_DEFAULTS {
            cfg.set(*k, *v);
        }
    }
    for (k, v) in &cluster.client {
        cfg.set(k, v);
    }
    cfg
}

/// A one-line description safe for logs: alias, bootstrap, protocol, mechanism and user name
/// (never a password or connection string).
pub fn describe(cluster: &Cluster) -> String {
    let mut s = format!(
        "{}: {} ({})",
        cluster.alias,
        cluster.bootstrap_servers,
        security_protocol(cluster)
    );
    if let Some(sasl) = &cluster.sasl {
        s.push_str(&format!(
            ", {} as {}",
            sasl.mechanism.as_str(),
            sasl.username
        ));
    }
    if let Some(eh) = &cluster.event_hubs {
        s.push_str(&format!(", Event Hubs namespace {}", eh.namespace_host));
        if let Some(k) = eh.shared_access_key() {
            s.push_str(&format!(", key name {}", k.key_name));
            if let Some(hub) = &k.entity_path {
                s.push_str(&format!(", entity path {hub}"));
            }
        }
        if let Some(e) = eh.entra() {
            s.push_str(&format!(", Entra ID ({})", e.credential.mode()));
        }
    }
    s
}

/// librdkafka settings only a producer reads. A cluster's `client:` map may set them (e.g.
/// `batch.num.messages` for the target producer), and the Event Hubs defaults include
/// `request.timeout.ms`; consumers drop them ([`drop_producer_settings`]) instead of warning
/// about each one.
const PRODUCER_ONLY: &[&str] = &[
    "acks",
    "batch.num.messages",
    "batch.size",
    "compression.codec",
    "compression.level",
    "compression.type",
    "delivery.timeout.ms",
    "enable.gapless.guarantee",
    "enable.idempotence",
    "linger.ms",
    "message.send.max.retries",
    "message.timeout.ms",
    "partitioner",
    "queue.buffering.backpressure.threshold",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.messages",
    "queue.buffering.max.ms",
    "queuing.strategy",
    "request.required.acks",
    "request.timeout.ms",
    "retries",
    "sticky.partitioning.linger.ms",
    "transaction.timeout.ms",
    "transactional.id",
];

/// Removes the settings only a producer reads from a consumer's `cfg`.
pub fn drop_producer_settings(cfg: &mut ClientConfig) {
    for key in PRODUCER_ONLY {
        cfg.remove(key);
    }
}

/// The secret strings of a cluster (password, connection string, its shared access key), for
/// redacting anything librdkafka says before it is logged (see [`context::ClusterContext`]).
pub fn secrets(cluster: &Cluster) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(sasl) = &cluster.sasl {
        out.push(sasl.password.expose().to_string());
    }
    if let Some(k) = cluster
        .event_hubs
        .as_ref()
        .and_then(|e| e.shared_access_key())
    {
        let cs = k.connection_string.expose();
        out.push(cs.to_string());
        if let Some(key) = event_hubs::shared_access_key(cs) {
            out.push(key.to_string());
        }
    }
    if let Some(e) = cluster.event_hubs.as_ref().and_then(|e| e.entra()) {
        use crate::topology::entra::{EntraCredential, IdentityEndpoint, SecretSource};
        match &e.credential {
            EntraCredential::ClientSecret { secret, .. } => match secret {
                SecretSource::Value(v) => out.push(v.expose().to_string()),
                SecretSource::File(f) => {
                    if let Ok(v) = std::fs::read_to_string(f) {
                        out.push(v.trim().to_string());
                    }
                }
            },
            EntraCredential::ManagedIdentity {
                endpoint: IdentityEndpoint::AppService { header, .. },
                ..
            } => out.push(header.expose().to_string()),
            _ => {}
        }
    }
    for (k, v) in &cluster.client {
        if k.contains("password") || k.contains("secret") || k.ends_with(".key.pem") {
            out.push(v.clone());
        }
    }
    out.retain(|s| !s.is_empty());
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::topology::{Sasl, SaslMechanism, Secret, Tls};

    const CS: &str =
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=K3Y=";

    fn plain() -> Cluster {
        Cluster {
            alias: "onprem".into(),
            bootstrap_servers: "localhost:9092".into(),
            tls: None,
            sasl: None,
            event_hubs: None,
            client: BTreeMap::new(),
            heartbeats: true,
            checkpoints: true,
            compression: Default::default(),
        }
    }

    fn event_hub() -> Cluster {
        let eh = event_hubs::parse_connection_string(CS).expect("valid");
        Cluster {
            alias: "eventhub".into(),
            bootstrap_servers: event_hubs::bootstrap(&eh),
            tls: Some(Tls::default()),
            sasl: Some(Sasl {
                mechanism: SaslMechanism::Plain,
                username: event_hubs::SASL_USERNAME.into(),
                password: eh
                    .shared_access_key()
                    .expect("a connection string")
                    .connection_string
                    .clone(),
            }),
            event_hubs: Some(eh),
            client: BTreeMap::from([("request.timeout.ms".into(), "90000".into())]),
            heartbeats: true,
            checkpoints: true,
            compression: Default::default(),
        }
    }

    fn get(cfg: &ClientConfig, k: &str) -> Option<String> {
        cfg.get(k).map(str::to_string)
    }

    #[test]
    fn flow_session_timeout_is_the_users_else_event_hubs_else_ten_seconds() {
        use std::time::Duration;
        assert_eq!(clients::session_timeout(&plain()), Duration::from_secs(10));
        assert_eq!(
            clients::session_timeout(&event_hub()),
            Duration::from_secs(30)
        );
        let mut c = event_hub();
        c.client
            .insert("session.timeout.ms".into(), " 12000 ".into());
        assert_eq!(clients::session_timeout(&c), Duration::from_secs(12));
    }

    #[test]
    fn protocol_follows_tls_and_sasl() {
        let mut c = plain();
        assert_eq!(security_protocol(&c), "PLAINTEXT");
        c.tls = Some(Tls {
            ca_file: Some(PathBuf::from("/ca.pem")),
        });
        assert_eq!(security_protocol(&c), "SSL");
        assert_eq!(
            get(&client_config(&c), "ssl.ca.location").as_deref(),
            Some("/ca.pem")
        );
        c.sasl = Some(Sasl {
            mechanism: SaslMechanism::ScramSha512,
            username: "app".into(),
            password: Secret::new("pw"),
        });
        assert_eq!(security_protocol(&c), "SASL_SSL");
        c.tls = None;
        let cfg = client_config(&c);
        assert_eq!(
            get(&cfg, "security.protocol").as_deref(),
            Some("SASL_PLAINTEXT")
        );
        assert_eq!(
            get(&cfg, "sasl.mechanism").as_deref(),
            Some("SCRAM-SHA-512")
        );
        assert_eq!(get(&cfg, "sasl.username").as_deref(), Some("app"));
        assert_eq!(get(&cfg, "sasl.password").as_deref(), Some("pw"));
        assert_eq!(
            get(&cfg, "request.timeout.ms"),
            None,
            "no Event Hubs defaults"
        );
    }

    #[test]
    fn event_hubs_defaults_then_client_map() {
        let cfg = client_config(&event_hub());
        assert_eq!(
            get(&cfg, "bootstrap.servers").as_deref(),
            Some("ns.servicebus.windows.net:9093")
        );
        assert_eq!(get(&cfg, "security.protocol").as_deref(), Some("SASL_SSL"));
        assert_eq!(get(&cfg, "sasl.mechanism").as_deref(), Some("PLAIN"));
        assert_eq!(
            get(&cfg, "sasl.username").as_deref(),
            Some("$ConnectionString")
        );
        assert_eq!(get(&cfg, "sasl.password").as_deref(), Some(CS));
        assert_eq!(get(&cfg, "metadata.max.age.ms").as_deref(), Some("180000"));
        assert_eq!(get(&cfg, "message.max.bytes").as_deref(), Some("1000000"));
        assert_eq!(
            get(&cfg, "socket.keepalive.enable").as_deref(),
            Some("true")
        );
        // The client: map wins.
        assert_eq!(get(&cfg, "request.timeout.ms").as_deref(), Some("90000"));
        assert_eq!(get(&cfg, "session.timeout.ms"), None, "consumer-only");
        assert_eq!(
            event_hubs_consumer_defaults(),
            &[("session.timeout.ms", "30000")]
        );
    }

    #[test]
    fn describe_never_shows_secrets() {
        let d = describe(&event_hub());
        assert!(!d.contains("K3Y"), "{d}");
        assert!(
            d.contains("eventhub: ns.servicebus.windows.net:9093 (SASL_SSL)"),
            "{d}"
        );
        assert!(d.contains("PLAIN as $ConnectionString"), "{d}");
        assert!(d.contains("key name Root"), "{d}");
        assert_eq!(describe(&plain()), "onprem: localhost:9092 (PLAINTEXT)");
    }

    #[test]
    fn a_tls_client_on_a_plaintext_port_is_never_told_to_drop_tls_on_event_hubs() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let text = "ssl://127.0.0.1:9092/bootstrap: SSL handshake failed: error:0A00010B:SSL \
                    routines::wrong version number (after 2ms in state SSL_HANDSHAKE)";
        let line = |c: &Cluster| {
            let p = clients::context(c, tx.clone()).recognise(text);
            p.expect("recognised").to_string()
        };
        let mut kafka = plain();
        kafka.tls = Some(Tls::default());
        let kafka = line(&kafka);
        assert!(kafka.contains("or remove clusters.onprem.tls"), "{kafka}");
        // TLS is always on for an Event Hubs namespace: only its endpoint can be wrong.
        let eh = line(&event_hub());
        assert!(
            eh.starts_with(
                "cluster 'eventhub' (127.0.0.1:9092): TLS is configured but the port does not \
                 speak TLS; point clusters.eventhub.bootstrap_servers at the namespace's Kafka \
                 endpoint (port 9093)"
            ),
            "{eh}"
        );
        assert!(!eh.contains("remove"), "{eh}");
    }

    #[test]
    fn secrets_lists_password_string_and_key() {
        let s = secrets(&event_hub());
        assert!(s.contains(&CS.to_string()));
        assert!(s.contains(&"K3Y=".to_string()));
        assert!(secrets(&plain()).is_empty());
    }
}
