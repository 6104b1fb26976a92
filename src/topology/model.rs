//! The resolved topology: what `topology.yaml` says once variables, secret files and
//! defaults are applied. Produced by [`super::load`]; consumed read-only by everything else.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

pub use super::start_from::StartFrom;
use super::Secret;

/// The whole `topology.yaml`, resolved.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The file it was read from (for messages).
    pub file: PathBuf,
    /// The deployment's name (`name:`), if given; it is part of every flow's [`Flow::group`].
    pub name: Option<String>,
    /// Clusters by alias, in alias order.
    pub clusters: BTreeMap<String, Cluster>,
    /// Flows in file order; each is one direction.
    pub flows: Vec<Flow>,
    /// How topics are named and refreshed on the far side.
    pub replication: Replication,
    /// Where local state lives.
    pub store: Store,
    /// The metrics listener.
    pub metrics: Metrics,
}

/// One Kafka cluster or Event Hubs namespace.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// `[a-z][a-z0-9_-]*`, unique.
    pub alias: String,
    /// `host:port[,host:port...]`; for Event Hubs derived from the connection string unless given.
    pub bootstrap_servers: String,
    /// TLS on when present.
    pub tls: Option<Tls>,
    /// SASL credentials (plain Kafka clusters, or derived for Event Hubs).
    pub sasl: Option<Sasl>,
    /// Set when the cluster is an Event Hubs namespace.
    pub event_hubs: Option<EventHubs>,
    /// Raw librdkafka settings, applied last.
    pub client: BTreeMap<String, String>,
    /// Whether flows from this cluster emit heartbeats on it (topic `heartbeats`); default true.
    /// Off saves a topic (Event Hubs Standard allows 10 event hubs per namespace).
    pub heartbeats: bool,
    /// Whether flows into this cluster write their checkpoints on it
    /// (`<source alias>.checkpoints.internal`); default true. Off saves a topic per source.
    pub checkpoints: bool,
    /// Compression of the batches hubmirror writes to this cluster (`compression.type`).
    pub compression: Compression,
}

/// Compression codec of the batches written to a cluster. Records are re-encoded whatever
/// codec the source used; Event Hubs takes only `none` and `gzip`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// No compression (the default).
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The librdkafka `compression.type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// What a flow does with a record larger than the target accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Oversize {
    /// Stop the flow with an error naming topic, partition, offset and size (the default).
    #[default]
    Fail,
    /// Skip the record (counted in `hubmirror_records_skipped_total{reason="oversize"}`).
    Skip,
    /// Write the record to the flow's dead-letter topic on the source cluster, then go on.
    DeadLetter,
}

/// What a flow does when the source deleted records it had not replicated yet (retention
/// outran the mirror: the position to resume from is below the partition's log start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnDataLoss {
    /// Stop with an error naming the partition and the number of records lost (the default).
    #[default]
    Fail,
    /// Log the loss, count it in `hubmirror_records_lost_total`, resume at the log start.
    Continue,
}

/// TLS settings of a cluster.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// PEM bundle of CAs to trust instead of the system store.
    pub ca_file: Option<PathBuf>,
}

/// SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    /// The librdkafka `sasl.mechanism` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials; the password never prints.
#[derive(Debug, Clone)]
pub struct Sasl {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: Secret,
}

/// An Event Hubs namespace: its Kafka endpoint and how hubmirror signs in.
#[derive(Debug, Clone)]
pub struct EventHubs {
    /// Namespace host, e.g. `myns.servicebus.windows.net`.
    pub namespace_host: String,
    /// The Kafka endpoint's port: 9093, or the port written in `Endpoint` (emulators).
    pub kafka_port: u16,
    /// A shared-access-key connection string, or Microsoft Entra ID.
    pub auth: EventHubsAuth,
}

/// How hubmirror authenticates to an Event Hubs namespace.
#[derive(Debug, Clone)]
pub enum EventHubsAuth {
    /// SASL PLAIN as `$ConnectionString` with a shared-access-key connection string.
    ConnectionString(SharedAccessKey),
    /// SASL OAUTHBEARER with Microsoft Entra ID access tokens.
    Entra(super::entra::Entra),
}

/// A shared-access-key connection string and what is read off it.
#[derive(Debug, Clone)]
pub struct SharedAccessKey {
    /// `SharedAccessKeyName` (not secret).
    pub key_name: String,
    /// `EntityPath`, when the string is scoped to one event hub.
    pub entity_path: Option<String>,
    /// The whole connection string: the SASL password.
    pub connection_string: Secret,
}

impl EventHubs {
    /// The connection string, when the namespace is reached with one.
    pub fn shared_access_key(&self) -> Option<&SharedAccessKey> {
        match &self.auth {
            EventHubsAuth::ConnectionString(k) => Some(k),
            EventHubsAuth::Entra(_) => None,
        }
    }

    /// The Entra ID settings, when the namespace is reached with tokens.
    pub fn entra(&self) -> Option<&super::entra::Entra> {
        match &self.auth {
            EventHubsAuth::Entra(e) => Some(e),
            EventHubsAuth::ConnectionString(_) => None,
        }
    }
}

/// One direction of replication.
#[derive(Debug, Clone)]
pub struct Flow {
    pub source: String,
    pub target: String,
    /// The source consumer group the flow commits its progress in:
    /// `hubmirror-<source>-<target>`, or `hubmirror-<name>-<source>-<target>` with `name:`.
    pub group: String,
    /// Anchored topic regexes (at least one).
    pub topics: Vec<Regex>,
    pub topics_exclude: Vec<Regex>,
    /// Anchored group regexes (default none).
    pub groups: Vec<Regex>,
    pub groups_exclude: Vec<Regex>,
    /// What to do with a record larger than the target accepts.
    pub oversize: Oversize,
    /// The dead-letter topic on the source cluster (used with [`Oversize::DeadLetter`]).
    pub dead_letter_topic: String,
    /// What to do when records were deleted from the source before they were replicated.
    pub on_data_loss: OnDataLoss,
    /// Where partitions the flow has never replicated start.
    pub start_from: StartFrom,
}

impl Flow {
    /// `source->target`, for logs and metrics.
    pub fn name(&self) -> String {
        format!("{}->{}", self.source, self.target)
    }

    /// Whether a source topic is selected by this flow's include/exclude regexes.
    pub fn selects_topic(&self, topic: &str) -> bool {
        self.topics.iter().any(|r| r.is_match(topic))
            && !self.topics_exclude.iter().any(|r| r.is_match(topic))
    }
}

/// Remote naming policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// `<source alias><separator><topic>` (MM2's DefaultReplicationPolicy).
    Default,
    /// Same name on both sides.
    Identity,
}

/// The `replication:` section.
#[derive(Debug, Clone)]
pub struct Replication {
    pub policy: Policy,
    pub separator: String,
    pub create_topics: bool,
    pub refresh_topics_interval: Duration,
    pub heartbeats_interval: Duration,
    pub checkpoints_interval: Duration,
    pub sync_group_offsets: bool,
    /// Flow consumers join their groups as static members (`group.instance.id` = instance
    /// name): a restart within the session timeout gets the same partitions back, and a stopped
    /// instance's partitions wait that long before moving.
    pub static_membership: bool,
    /// Copy source topic configs onto remote topics (`sync_topic_configs`).
    pub sync_topic_configs: bool,
    /// Config names never copied: MirrorMaker 2's default exclusions, then the anchored
    /// regexes of `topic_configs_exclude`.
    pub topic_configs_exclude: Vec<Regex>,
}

/// Topic configs MirrorMaker 2 never copies (its default `config.properties.exclude`); always
/// excluded, whatever `topic_configs_exclude` adds.
pub const DEFAULT_TOPIC_CONFIGS_EXCLUDE: [&str; 6] = [
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
    "message.timestamp.difference.max.ms",
    "message.timestamp.type",
    "unclean.leader.election.enable",
    "min.insync.replicas",
];

/// The `store:` section.
#[derive(Debug, Clone)]
pub struct Store {
    pub path: PathBuf,
}

/// The `metrics:` section.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub listen: SocketAddr,
}
