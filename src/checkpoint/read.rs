//! Reading checkpoints back from a `<source>.checkpoints.internal` topic: every partition from
//! its beginning to its end, keeping the latest checkpoint per (group, topic, partition).
//!
//! The end of each partition is where librdkafka reports end-of-partition
//! (`enable.partition.eof`), which comes from the fetch responses' high watermark; ListOffsets
//! is not used to find it, because tansu (the test broker) answers ListOffsets(latest) with the
//! last batch's base offset + 1 instead of the log end.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;

use crate::cluster::context::end_reader;
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::{kafka, left, topic_partitions, Checkpoint, CheckpointError};

/// The longest single wait for a record, so the deadline is checked often.
const POLL: Duration = Duration::from_millis(200);

/// A checkpoint as read from a checkpoints topic, with where and when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The record's timestamp (ms since the Unix epoch), when it has one: when the checkpoint
    /// was written, for its age.
    pub timestamp_ms: Option<i64>,
    /// The checkpoints topic's partition that holds the record.
    pub record_partition: i32,
    /// The record's offset in that partition.
    pub record_offset: i64,
}

/// The latest checkpoint per (group, topic, partition) in the checkpoints topic `topic`, sorted
/// by group, topic and partition; empty when the topic does not exist. See [`read_latest`].
/// Blocking: call it off the async runtime.
pub fn read_checkpoints(
    config: ClientConfig,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<Checkpoint>, CheckpointError> {
    Ok(read_latest(config, topic, timeout)?
        .into_iter()
        .map(|s| s.checkpoint)
        .collect())
}

/// The latest checkpoint record per (group, topic, partition) in the checkpoints topic `topic`,
/// read from the beginning of every partition to its end; sorted by group, topic and partition;
/// empty when the topic does not exist. Within a partition a later record wins; should one key
/// appear in several partitions, the newer record timestamp wins. Records that are not
/// checkpoints (no key or value, malformed, another version) are skipped and counted in one
/// warning. `config` connects to the cluster; reader settings are added here and no offsets
/// are committed. Fails if the ends are not reached within `timeout`.
/// Blocking: call it off the async runtime.
pub fn read_latest(
    config: ClientConfig,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<StoredCheckpoint>, CheckpointError> {
    let deadline = Instant::now() + timeout;
    let what = || format!("reading checkpoints from '{topic}'");
    let consumer = end_reader(config, "hubmirror-checkpoints-reader").map_err(kafka(what()))?;
    let Some(partitions) = topic_partitions(&consumer, topic, left(deadline))? else {
        return Ok(Vec::new());
    };

    let mut tpl = TopicPartitionList::new();
    for &p in &partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .map_err(kafka(format!("{} (partition {p})", what())))?;
    }
    consumer.assign(&tpl).map_err(kafka(what()))?;

    let mut open: BTreeSet<i32> = partitions.into_iter().collect();
    let mut latest: BTreeMap<(String, String, i32), StoredCheckpoint> = BTreeMap::new();
    let mut skipped = 0usize;
    while !open.is_empty() {
        if left(deadline).is_zero() {
            return Err(CheckpointError::Timeout {
                what: format!("{} to the end of every partition", what()),
                waited: timeout,
            });
        }
        let m = match consumer.poll(left(deadline).min(POLL)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
                continue;
            }
            Some(Err(e)) => return Err(kafka(what())(e)),
            Some(Ok(m)) => m,
        };
        let (Some(key), Some(value)) = (m.key(), m.payload()) else {
            skipped += 1;
            continue;
        };
        let Ok(checkpoint) = Checkpoint::decode(key, value) else {
            skipped += 1;
            continue;
        };
        let read = StoredCheckpoint {
            checkpoint,
            timestamp_ms: m.timestamp().to_millis(),
            record_partition: m.partition(),
            record_offset: m.offset(),
        };
        let k = (
            read.checkpoint.group.clone(),
            read.checkpoint.topic.clone(),
            read.checkpoint.partition,
        );
        match latest.get(&k) {
            Some(old) if !supersedes(&read, old) => {}
            _ => {
                latest.insert(k, read);
            }
        }
    }
    if skipped > 0 {
        tracing::warn!(topic, skipped, "skipped records that are not checkpoints");
    }
    Ok(latest.into_values().collect())
}

/// Whether `new` replaces `old` for the same key: a later record of the same partition always
/// does; across partitions, a newer timestamp (or any timestamp over none) does.
pub(super) fn supersedes(new: &StoredCheckpoint, old: &StoredCheckpoint) -> bool {
    if new.record_partition == old.record_partition {
        new.record_offset > old.record_offset
    } else {
        new.timestamp_ms > old.timestamp_ms
    }
}
