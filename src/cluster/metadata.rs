//! Looking a topic up without creating it, and finding a partition's real end.
//!
//! A Metadata request that names a topic may create it as a side effect: Apache Kafka does so
//! when the request allows it and the broker has `auto.create.topics.enable`, and some brokers
//! (the test broker among them) create it whatever the request says. Readers of hubmirror's
//! own topics (heartbeats, checkpoints) must see "missing" as missing, so they list every topic
//! and pick theirs out.

use std::time::{Duration, Instant};

use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Message, Offset, TopicPartitionList};

/// The partition ids of `topic`, or `None` when the cluster does not have it (or has it
/// without partitions). Lists all topics: never creates `topic`. Blocking.
pub fn partitions_of<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    timeout: Duration,
) -> Result<Option<Vec<i32>>, KafkaError> {
    let md = client.fetch_metadata(None, timeout)?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    match t.error().map(RDKafkaErrorCode::from) {
        None if t.partitions().is_empty() => Ok(None),
        None => Ok(Some(t.partitions().iter().map(|p| p.id()).collect())),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            Ok(None)
        }
        Some(code) => Err(KafkaError::MetadataFetch(code)),
    }
}

/// The end of `topic`/`partition` (the offset the next record will get), given the end a
/// ListOffsets(latest) request reported. The reported end is only trusted as a lower bound: a
/// broker may report less (tansu reports the last record batch's base offset + 1), so the
/// partition is read from just before it to the end-of-partition event, whose position comes
/// from the fetch responses' high watermark. `reader` must report end-of-partition
/// (`enable.partition.eof`, as [`super::context::end_reader`] sets); it is reassigned. Reads
/// at most what the fetch at the reported end brings while nothing new arrives. Blocking.
pub fn log_end<C: ConsumerContext>(
    reader: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
    reported: i64,
    timeout: Duration,
) -> Result<i64, KafkaError> {
    let mut end = reported;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset((reported - 1).max(0)))?;
    reader.assign(&tpl)?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(KafkaError::MessageConsumption(
                RDKafkaErrorCode::OperationTimedOut,
            ));
        }
        match reader.poll(left.min(Duration::from_millis(200))) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(end),
            Some(Err(e)) => return Err(e),
            Some(Ok(m)) => end = end.max(m.offset() + 1),
        }
    }
}
