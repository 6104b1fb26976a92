//! What an import produces, before it is written out as YAML ([`super::emit`]): the topology
//! keys that could be carried over, and a note for every setting that could not.

/// Where a secret comes from in the imported topology; never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretRef {
    /// A file path (a mounted Kubernetes Secret key), for a `*_file` key.
    File(String),
    /// An environment variable, written as `${NAME}`.
    Env(String),
}

/// SASL credentials of a Kafka cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sasl {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    /// The user name.
    pub username: String,
    /// The password's source.
    pub password: SecretRef,
}

/// One cluster under `clusters:`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Cluster {
    /// The alias.
    pub alias: String,
    /// `bootstrap_servers` (absent: derived from an Event Hubs connection string).
    pub bootstrap: Option<String>,
    /// `Some(None)`: TLS with the system CAs; `Some(Some(path))`: with `ca_file`.
    pub tls: Option<Option<String>>,
    /// `sasl:`.
    pub sasl: Option<Sasl>,
    /// `event_hubs:` with this connection string source.
    pub event_hubs: Option<SecretRef>,
    /// `client:` settings (librdkafka names).
    pub client: Vec<(String, String)>,
    /// `heartbeats:` when not the default.
    pub heartbeats: Option<bool>,
    /// `checkpoints:` when not the default.
    pub checkpoints: Option<bool>,
    /// `compression:`.
    pub compression: Option<String>,
    /// Its consumer had `auto.offset.reset=latest`: flows from it start at the end.
    pub starts_latest: bool,
    /// Comments written above the cluster.
    pub notes: Vec<String>,
}

/// One entry of `flows:`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Flow {
    /// Source alias.
    pub source: String,
    /// Target alias.
    pub target: String,
    /// Topic regexes.
    pub topics: Vec<String>,
    /// Topic regexes left out.
    pub topics_exclude: Vec<String>,
    /// Group regexes checkpointed.
    pub groups: Vec<String>,
    /// Group regexes left out.
    pub groups_exclude: Vec<String>,
    /// `start_from` when not the default (`latest`, from the consumer's `auto.offset.reset`).
    pub start_from: Option<String>,
    /// Comments written above the flow.
    pub notes: Vec<String>,
}

/// `replication:`; every key optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Replication {
    /// `default` or `identity`.
    pub policy: Option<String>,
    /// The default policy's separator.
    pub separator: Option<String>,
    /// `refresh_topics_interval` (a duration string).
    pub refresh_topics_interval: Option<String>,
    /// `heartbeats_interval`.
    pub heartbeats_interval: Option<String>,
    /// `checkpoints_interval`.
    pub checkpoints_interval: Option<String>,
    /// `sync_group_offsets`.
    pub sync_group_offsets: Option<bool>,
    /// `sync_topic_configs` when off (`sync.topic.configs.enabled=false`).
    pub sync_topic_configs: Option<bool>,
    /// Comments written above `replication:`.
    pub notes: Vec<String>,
}

/// The whole imported topology.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Imported {
    /// What was read (`KafkaMirrorMaker 'name'`, `MirrorMaker 2 properties`), for the header.
    pub what: String,
    /// Notes on settings that are not about one cluster, flow or `replication`.
    pub notes: Vec<String>,
    /// Clusters in output order.
    pub clusters: Vec<Cluster>,
    /// Flows in output order.
    pub flows: Vec<Flow>,
    /// `replication:`.
    pub replication: Replication,
}

impl Imported {
    /// The cluster with `alias`.
    pub fn cluster_mut(&mut self, alias: &str) -> Option<&mut Cluster> {
        self.clusters.iter_mut().find(|c| c.alias == alias)
    }
}
