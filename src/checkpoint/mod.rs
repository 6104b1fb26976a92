//! Checkpoints of consumer groups, in MirrorMaker 2's format, and the group operations they need.
//!
//! A checkpoint says: group G, at upstream offset U of a source partition, should resume at
//! downstream offset D of the same partition number of the remote topic. Flows write them to
//! `<source alias>.checkpoints.internal` on the target, so a failover still works when the
//! source site and its store are gone.
//!
//! Record layout (big-endian; strings are an int16 length and UTF-8 bytes, never null), as in
//! MM2's `Checkpoint.java`:
//! - key: `[group: string][topic: string — the downstream name][partition: int32]`
//! - value: `[version: int16 = 0][upstream offset: int64][downstream offset: int64][metadata: string]`
//!
//! Layout: this file holds the error type and shared metadata lookups; [`record`] the codec;
//! [`groups`] listing, selecting, describing groups and reading and committing their offsets;
//! [`read`] reading the latest checkpoints back from a checkpoints topic; [`task`] the
//! periodic task of a flow that emits checkpoints and syncs group offsets.
//!
//! Everything that talks to a cluster is blocking and bounded by a timeout: call it off the
//! async runtime (`tokio::task::spawn_blocking`). Each function takes the cluster's connection
//! settings (as `cluster::client_config` builds them) and adds what its role needs.

mod groups;
mod read;
mod record;
pub mod task;

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;

pub use groups::{
    commit_group_offsets, committed_offsets, describe_group, group_is_active, list_groups,
    select_groups, GroupDescription, OWN_GROUP_PREFIX,
};
pub use read::{read_checkpoints, read_latest, StoredCheckpoint};
pub use record::Checkpoint;

/// The suffix of checkpoints topics: flows from `S` write `S.checkpoints.internal`.
pub const CHECKPOINTS_TOPIC_SUFFIX: &str = ".checkpoints.internal";

/// The checkpoints topic for checkpoints of flows from `source` (`<source>.checkpoints.internal`).
pub fn checkpoints_topic(source: &str) -> String {
    format!("{source}{CHECKPOINTS_TOPIC_SUFFIX}")
}

/// Why a checkpoint could not be encoded or decoded, or a group operation failed. Format errors
/// never panic; cluster errors say what was being done, naming the group and topic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The record does not follow MM2's format.
    #[error("checkpoint {0}")]
    Format(#[from] crate::mm2::FormatError),
    /// An offset to commit that is not a real offset (below zero).
    #[error("cannot commit offset {offset} for group '{group}' on '{topic}' partition {partition}: offsets start at 0")]
    InvalidOffset {
        /// The group.
        group: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset given.
        offset: i64,
    },
    /// The group has active members, so its offsets were not changed.
    #[error("consumer group '{group}' has {members} active member(s) (state {state}); its offsets can only be moved while it has none")]
    GroupActive {
        /// The group.
        group: String,
        /// The coordinator's state of the group.
        state: String,
        /// How many members it has.
        members: usize,
    },
    /// A request to the cluster failed.
    #[error("{what}: {source}")]
    Kafka {
        /// What was being done, naming the group and topic.
        what: String,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// A helper thread could not be started.
    #[error("{what}: cannot start a thread: {source}")]
    Thread {
        /// What was being done, naming the group.
        what: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The cluster did not answer in time.
    #[error("{what}: no answer within {waited:?}")]
    Timeout {
        /// What was being done, naming the group and topic.
        what: String,
        /// The time allowed.
        waited: Duration,
    },
}

/// Wraps a librdkafka error with what was being done.
fn kafka(what: impl Into<String>) -> impl FnOnce(KafkaError) -> CheckpointError {
    let what = what.into();
    move |source| CheckpointError::Kafka { what, source }
}

/// The time left until `deadline` (zero once it passed).
fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The partition ids of `topic`, or `None` when the topic does not exist (all topics are
/// listed: asking for it by name could create it).
fn topic_partitions<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    timeout: Duration,
) -> Result<Option<Vec<i32>>, CheckpointError> {
    crate::cluster::metadata::partitions_of(consumer.client(), topic, timeout)
        .map_err(kafka(format!("reading the metadata of '{topic}'")))
}

#[cfg(test)]
mod tests;
