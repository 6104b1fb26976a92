//! Reading the newest heartbeats back from a cluster (for `hubmirror status`).
//!
//! Only the tail of each partition is read: from a little before the reported log end to the
//! real end. The reported end may be short — tansu (the test broker) answers ListOffsets(latest)
//! with the last batch's base offset + 1 — so the end is not taken from it: the reader goes
//! forward until librdkafka reports end-of-partition, which comes from the fetch responses'
//! high watermark.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;

use crate::cluster::context::end_reader;
use crate::cluster::metadata::partitions_of;
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::{Heartbeat, HeartbeatError};

/// Records read back from the reported end of each partition. Each flow writes one heartbeat
/// per interval, so this covers every live key many times over; a key whose newest heartbeat
/// is older than the last `TAIL` records of its partition (a removed flow) is not reported.
const TAIL: i64 = 1000;

/// The longest single wait for a record, so the deadline is checked often.
const POLL: Duration = Duration::from_millis(200);

/// The newest heartbeat (by timestamp) per (source, target) in `topic`, all partitions, sorted
/// by source then target. Empty when the topic does not exist. `consumer_config` connects to
/// the cluster (as `cluster::client_config` builds it); group, commit and EOF settings are
/// added here (no offsets are committed). Fails if the end is not reached within `timeout`.
/// Records that are not heartbeats are ignored. Blocking: call it off the async runtime.
pub fn latest_heartbeats(
    consumer_config: ClientConfig,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<Heartbeat>, HeartbeatError> {
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    let consumer = end_reader(consumer_config, "hubmirror-heartbeats-reader")
        .map_err(kafka("creating a consumer to read heartbeats".into()))?;

    // All topics are listed: asking for `topic` by name could create it.
    let partitions = partitions_of(consumer.client(), topic, left())
        .map_err(kafka(format!("reading the metadata of '{topic}'")))?
        .unwrap_or_default();
    if partitions.is_empty() {
        return Ok(Vec::new());
    }

    let mut tpl = TopicPartitionList::new();
    for &p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, left())
            .map_err(kafka(format!(
                "reading the offsets of '{topic}' partition {p}"
            )))?;
        let start = low.max(high - TAIL).max(0);
        tpl.add_partition_offset(topic, p, Offset::Offset(start))
            .map_err(kafka(format!("assigning '{topic}' partition {p}")))?;
    }
    consumer
        .assign(&tpl)
        .map_err(kafka(format!("assigning '{topic}'")))?;

    let mut open: BTreeSet<i32> = partitions.into_iter().collect();
    let mut newest: BTreeMap<(String, String), Heartbeat> = BTreeMap::new();
    while !open.is_empty() {
        if left().is_zero() {
            return Err(HeartbeatError::Timeout {
                topic: topic.to_string(),
                waited: timeout,
            });
        }
        match consumer.poll(left().min(POLL)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(e)) => return Err(kafka(format!("reading '{topic}'"))(e)),
            Some(Ok(m)) => {
                let (Some(key), Some(value)) = (m.key(), m.payload()) else {
                    continue;
                };
                let Ok(hb) = Heartbeat::decode(key, value) else {
                    continue;
                };
                let k = (hb.source.clone(), hb.target.clone());
                match newest.get(&k) {
                    Some(old) if old.timestamp_ms > hb.timestamp_ms => {}
                    _ => {
                        newest.insert(k, hb);
                    }
                }
            }
        }
    }
    Ok(newest.into_values().collect())
}

/// Wraps a librdkafka error with what was being done.
fn kafka(what: String) -> impl FnOnce(KafkaError) -> HeartbeatError {
    move |source| HeartbeatError::Kafka { what, source }
}
