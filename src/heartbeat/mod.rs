//! Heartbeats in MirrorMaker 2's format, so MM2 tooling and hubmirror read each other's.
//!
//! Every flow `S → T` writes one heartbeat per `heartbeats_interval` to the topic `heartbeats`
//! on S ([`emit`]). The flow replicates that topic like any other (`S.heartbeats` on T,
//! `T.S.heartbeats` one hop further…), so on any cluster the names of its heartbeats topics
//! say which clusters are upstream and how many hops away ([`upstream_clusters`]), and the
//! timestamps inside the copies say how far behind replication is ([`latest_heartbeats`]).
//!
//! Record layout (big-endian):
//! - key: `[source alias: int16 length + UTF-8][target alias: int16 length + UTF-8]`
//! - value: `[version int16 = 0][timestamp int64, ms since the epoch]`
//!
//! Layout: this file holds the format and the hop arithmetic; [`emit`] the emitter task;
//! [`read`] reading the newest heartbeats back from a cluster.

mod emit;
mod read;

use std::collections::BTreeMap;

use rdkafka::error::KafkaError;

pub use emit::{emit, EmitterClients, EmitterConfig};
pub use read::latest_heartbeats;

use crate::mm2::{no_trailing, put_string, take, take_string, FormatError};
use crate::naming::Naming;

/// The only value version MM2 has written so far.
const VERSION: i16 = 0;

/// Why heartbeats could not be encoded, decoded or read. Format errors never panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeartbeatError {
    /// The record does not follow MM2's format.
    #[error("heartbeat {0}")]
    Format(#[from] FormatError),
    /// A request to the cluster failed while reading heartbeats.
    #[error("{what}: {source}")]
    Kafka {
        /// What was being done, naming the topic.
        what: String,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// The end of the topic was not reached in time.
    #[error("reading '{topic}' did not reach its end within {waited:?}")]
    Timeout {
        /// The heartbeats topic.
        topic: String,
        /// The time allowed.
        waited: std::time::Duration,
    },
}

/// One heartbeat: flow `source → target` was alive at `timestamp_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// Alias of the cluster the heartbeat was written on (the flow's source).
    pub source: String,
    /// Alias of the flow's target.
    pub target: String,
    /// When it was written, ms since the Unix epoch.
    pub timestamp_ms: i64,
}

impl Heartbeat {
    /// The record key: `[source][target]`, each an int16 length and UTF-8 bytes.
    pub fn encode_key(&self) -> Result<Vec<u8>, HeartbeatError> {
        let mut out = Vec::with_capacity(4 + self.source.len() + self.target.len());
        put_string(&mut out, "source alias", &self.source)?;
        put_string(&mut out, "target alias", &self.target)?;
        Ok(out)
    }

    /// The record value: version 0 (int16) and the timestamp (int64).
    pub fn encode_value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(10);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out
    }

    /// Parses a heartbeat record. Anything malformed (short, bad length, not UTF-8, another
    /// version, extra bytes) is an error.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Heartbeat, HeartbeatError> {
        let mut k = key;
        let source = take_string(&mut k, "source alias")?;
        let target = take_string(&mut k, "target alias")?;
        no_trailing("key", k)?;
        let mut v = value;
        let version = i16::from_be_bytes(take(&mut v, "version")?);
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion(version).into());
        }
        let timestamp_ms = i64::from_be_bytes(take(&mut v, "timestamp")?);
        no_trailing("value", v)?;
        Ok(Heartbeat {
            source,
            target,
            timestamp_ms,
        })
    }
}

/// The heartbeat timestamp (ms) in a heartbeat record's value, if it is one.
pub fn decode_value(value: &[u8]) -> Option<i64> {
    let version = i16::from_be_bytes(value.get(0..2)?.try_into().ok()?);
    let ts = i64::from_be_bytes(value.get(2..10)?.try_into().ok()?);
    (version == 0).then_some(ts)
}

/// Upstream clusters of a cluster and their hop counts, read off the names of its topics
/// (MM2's `upstreamClusters` / `replicationHops`): a heartbeats topic's source chain lists the
/// clusters its records went through, nearest first, so an alias at 1-based position `n` is `n`
/// hops away (`b.a.heartbeats` → b: 1, a: 2). The minimum over all topics is kept. Topics that
/// are not heartbeats are ignored; so is `heartbeats` itself (the cluster's own).
pub fn upstream_clusters<'t>(
    naming: &Naming,
    topics: impl IntoIterator<Item = &'t str>,
) -> BTreeMap<String, u32> {
    let mut out: BTreeMap<String, u32> = BTreeMap::new();
    for topic in topics.into_iter().filter(|t| naming.is_heartbeats(t)) {
        for (hops, alias) in (1u32..).zip(naming.source_chain(topic)) {
            out.entry(alias)
                .and_modify(|h| *h = (*h).min(hops))
                .or_insert(hops);
        }
    }
    out
}

#[cfg(test)]
mod tests;
