//! `topology.yaml` as written: serde structs with `deny_unknown_fields`, every scalar a string
//! (see [`super::locate`]). [`super::resolve`] turns them into the model, with defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTopology {
    /// The deployment's name (`[a-z0-9][a-z0-9._-]*`, at most 64 characters); optional. It
    /// namespaces the flows' consumer groups, so two deployments with the same aliases never
    /// share offsets.
    pub name: Option<String>,
    /// Clusters by alias (`[a-z][a-z0-9_-]*`); required, at least one.
    pub clusters: BTreeMap<String, RawCluster>,
    /// Replication directions; required, at least one.
    pub flows: Vec<RawFlow>,
    /// Naming and timing; every key optional.
    #[serde(default, deserialize_with = "null_as_default")]
    pub replication: RawReplication,
    /// Local state; every key optional.
    #[serde(default, deserialize_with = "null_as_default")]
    pub store: RawStore,
    /// The metrics listener; every key optional.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metrics: RawMetrics,
}

/// One cluster under `clusters:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    /// `host:port[,host:port...]`; required unless `event_hubs` is given (then it overrides
    /// the `<namespace host>:9093` derived from the connection string).
    pub bootstrap_servers: Option<String>,
    /// Present (even empty, `tls: {}` or `tls:`) → TLS on.
    #[serde(default, deserialize_with = "present")]
    pub tls: Option<RawTls>,
    /// SASL credentials; not with `event_hubs`.
    #[serde(default, deserialize_with = "present")]
    pub sasl: Option<RawSasl>,
    /// Raw librdkafka settings, applied last. Values may be strings, numbers or booleans.
    #[serde(default, deserialize_with = "null_as_default")]
    pub client: BTreeMap<String, Option<String>>,
    /// An Azure Event Hubs namespace: SASL_SSL + PLAIN with the connection string.
    #[serde(default, deserialize_with = "present")]
    pub event_hubs: Option<RawEventHubs>,
    /// Emit heartbeats on this cluster (topic `heartbeats`, for flows whose source it is);
    /// default `true`. `false` saves a topic (Event Hubs Standard allows 10 per namespace).
    pub heartbeats: Option<String>,
    /// Write `<source alias>.checkpoints.internal` on this cluster (for flows whose target it
    /// is); default `true`. `false` saves a topic per source.
    pub checkpoints: Option<String>,
    /// Compression of the batches hubmirror writes to this cluster: `none` (default), `gzip`,
    /// and for Kafka clusters also `snappy`, `lz4`, `zstd`.
    pub compression: Option<String>,
}

/// `tls:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    /// PEM bundle of CAs to trust; default: the system's. Relative to the topology file.
    pub ca_file: Option<String>,
}

/// `sasl:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSasl {
    /// `PLAIN` (default), `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: Option<String>,
    /// The SASL user name; required.
    pub username: Option<String>,
    /// The password itself (use `${VAR}`); exactly one of `password` / `password_file`.
    pub password: Option<String>,
    /// A file holding the password (one trailing newline is ignored).
    pub password_file: Option<String>,
}

/// `event_hubs:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEventHubs {
    /// `Endpoint=sb://<ns>.../;SharedAccessKeyName=...;SharedAccessKey=...`; exactly one of
    /// `connection_string` / `connection_string_file` / `entra`.
    pub connection_string: Option<String>,
    /// A file holding the connection string (trailing whitespace is ignored).
    pub connection_string_file: Option<String>,
    /// The namespace host (`myns.servicebus.windows.net`); required with `entra` (a connection
    /// string names its namespace itself).
    pub namespace: Option<String>,
    /// Microsoft Entra ID instead of a connection string.
    #[serde(default, deserialize_with = "present")]
    pub entra: Option<RawEntra>,
}

/// `event_hubs.entra`: exactly one credential (secret, workload identity, managed identity).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEntra {
    /// Directory (tenant) id or domain; from `AZURE_TENANT_ID` under workload identity.
    pub tenant_id: Option<String>,
    /// Application (client) id; from `AZURE_CLIENT_ID` under workload identity; for a managed
    /// identity, the user-assigned identity's client id (optional).
    pub client_id: Option<String>,
    /// The application's client secret (use `${VAR}`).
    pub client_secret: Option<String>,
    /// A file holding the client secret, read again for every token.
    pub client_secret_file: Option<String>,
    /// `true`: AKS workload identity (a federated token file exchanged for tokens).
    pub workload_identity: Option<String>,
    /// The federated token file; from `AZURE_FEDERATED_TOKEN_FILE` under workload identity.
    pub token_file: Option<String>,
    /// `true`: a managed identity.
    pub managed_identity: Option<String>,
    /// Base URL of the instance metadata service (default `http://169.254.169.254`).
    pub identity_endpoint: Option<String>,
    /// `https://login.microsoftonline.com` unless set (`AZURE_AUTHORITY_HOST` under workload
    /// identity).
    pub authority_host: Option<String>,
}

/// One entry of `flows:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFlow {
    /// Alias of the cluster to read from.
    pub source: Option<String>,
    /// Alias of the cluster to write to (not the source).
    pub target: Option<String>,
    /// Topic regexes, anchored (`^(?:re)$`); required, non-empty.
    pub topics: Option<Vec<String>>,
    /// Topic regexes to leave out, anchored; default none.
    #[serde(default, deserialize_with = "null_as_default")]
    pub topics_exclude: Vec<String>,
    /// Consumer-group regexes to checkpoint, anchored; default none.
    #[serde(default, deserialize_with = "null_as_default")]
    pub groups: Vec<String>,
    /// Consumer-group regexes to leave out, anchored; default none.
    #[serde(default, deserialize_with = "null_as_default")]
    pub groups_exclude: Vec<String>,
    /// What to do with a record too large for the target: `fail` (default), `skip`,
    /// `dead_letter`.
    pub oversize: Option<String>,
    /// Topic on the source cluster for `oversize: dead_letter`; default
    /// `hubmirror.dead-letter.<target>.internal`.
    pub dead_letter_topic: Option<String>,
    /// `fail` (default) or `continue` when the source deleted records not yet replicated.
    pub on_data_loss: Option<String>,
    /// Where partitions the flow never replicated start: `earliest` (default), `latest` or an
    /// RFC 3339 time.
    pub start_from: Option<String>,
}

/// `replication:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReplication {
    /// `default` (`<alias><separator><topic>`) or `identity`; default `default`.
    pub policy: Option<String>,
    /// Between alias and topic in remote names; default `.`.
    pub separator: Option<String>,
    /// Create missing remote topics; default `true`.
    pub create_topics: Option<String>,
    /// How often source topics are listed again; default `30s`.
    pub refresh_topics_interval: Option<String>,
    /// Heartbeat period; default `1s`; `0s` disables heartbeats.
    pub heartbeats_interval: Option<String>,
    /// Checkpoint period; default `5s`.
    pub checkpoints_interval: Option<String>,
    /// Write translated offsets of idle groups onto the target; default `false`.
    pub sync_group_offsets: Option<String>,
    /// Join the flows' groups with static membership (`group.instance.id` = the instance
    /// name); default `false`.
    pub static_membership: Option<String>,
    /// Copy the source topics' configs onto their remote topics (at creation and on every
    /// refresh); default `true`.
    pub sync_topic_configs: Option<String>,
    /// Config-name regexes never copied, anchored, on top of MirrorMaker 2's defaults.
    #[serde(default, deserialize_with = "null_as_default")]
    pub topic_configs_exclude: Vec<String>,
}

/// `store:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    /// Directory of the offset-translation store; default `./hubmirror-data`, relative to the
    /// topology file.
    pub path: Option<String>,
}

/// `metrics:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    /// `ip:port` to serve `/metrics`, `/healthz`, `/readyz` on; default `127.0.0.1:9464`.
    pub listen: Option<String>,
}

/// An empty value (`key:`) means the default.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A key that is present, even with an empty value, is `Some`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(Option::<T>::deserialize(d)?.unwrap_or_default()))
}
