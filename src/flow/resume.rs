//! Crash-consistent resume: where a source partition's copy really stands on the target.
//!
//! The flow commits source offsets only after the target acknowledged, so after a crash the
//! committed offset can lag behind what the target holds. Before a partition is consumed, the
//! tail of its target partition is read back and the highest source offset already copied there
//! (from the `hubmirror.source` header of the flow's own copies) is found; the flow resumes after
//! it, or at the committed offset when that is further (records skipped by the loop rule or
//! `oversize: skip` are committed but never written). The copies found past the committed
//! offset are recorded in the offset-translation store, as if their acknowledgements had arrived.
//!
//! The target's tail is read backwards in growing windows until a copy below the committed
//! offset shows up, the partition's start is reached, or [`SCAN_LIMIT`] records were read.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::cluster::context::ReaderContext;
use crate::headers;
use crate::store::Event;

/// Records read back at most per target partition when looking for the flow's last copy.
pub const SCAN_LIMIT: i64 = 100_000;
/// The first window read back from the end; each further one is four times larger.
const FIRST_WINDOW: i64 = 500;
/// How long reading one window may take.
const WINDOW_TIMEOUT: Duration = Duration::from_secs(30);

/// The flow's copies of one source partition found in the tail of its target partition.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TailCopies {
    /// `(upstream, downstream)` pairs, in target order.
    pub copies: Vec<(i64, i64)>,
    /// Target records read.
    pub scanned: i64,
}

impl TailCopies {
    /// The highest source offset already copied, if any.
    pub fn last_upstream(&self) -> Option<i64> {
        self.copies.iter().map(|&(u, _)| u).max()
    }

    /// Store events for the copies at source offsets `from` and above, in upstream order
    /// (the newest copy of an offset written twice wins).
    pub fn events_from(&self, from: i64) -> Vec<Event> {
        let mut copies: Vec<(i64, i64)> = self
            .copies
            .iter()
            .copied()
            .filter(|&(u, _)| u >= from)
            .collect();
        copies.sort_by_key(|&(u, d)| (u, std::cmp::Reverse(d)));
        copies.dedup_by_key(|&mut (u, _)| u);
        copies
            .into_iter()
            .map(|(upstream, downstream)| Event::Replicated {
                upstream,
                downstream,
            })
            .collect()
    }
}

/// The source offset in a `hubmirror.source` value, when the value names the partition of
/// `prefix`; anything else (another partition, another writer, a malformed value) is `None`.
pub fn upstream_offset(value: &[u8], prefix: &str) -> Option<i64> {
    let rest = value.strip_prefix(prefix.as_bytes())?;
    if rest.is_empty() || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(rest).ok()?.parse().ok()
}

/// Reads target partitions back from their end (a consumer that commits nothing).
pub struct TailReader {
    consumer: BaseConsumer<ReaderContext>,
}

impl crate::cluster::oauth::Native for TailReader {
    fn native(&self) -> &rdkafka::client::NativeClient {
        self.consumer.native()
    }
}

impl TailReader {
    /// A reader over `consumer` (see [`crate::cluster::clients::tail_reader`]).
    pub fn new(consumer: BaseConsumer<ReaderContext>) -> Self {
        TailReader { consumer }
    }

    /// The copies of the source partition named by `prefix` in the tail of `topic`/`partition`
    /// on the target. `committed`: the flow's committed offset for it, if any — reading back
    /// stops once a copy below it was found. Blocking.
    pub fn scan(
        &self,
        topic: &str,
        partition: i32,
        prefix: &str,
        committed: Option<i64>,
    ) -> Result<TailCopies, KafkaError> {
        let (low, high) = match self
            .consumer
            .fetch_watermarks(topic, partition, WINDOW_TIMEOUT)
        {
            // A partition added since this long-lived client last looked (the remote topic
            // grew): its metadata is read again, once.
            Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownPartition) => {
                self.consumer.fetch_metadata(Some(topic), WINDOW_TIMEOUT)?;
                self.consumer
                    .fetch_watermarks(topic, partition, WINDOW_TIMEOUT)?
            }
            other => other?,
        };
        let mut found = TailCopies::default();
        if high <= low {
            return Ok(found);
        }
        let floor = low.max(high - SCAN_LIMIT);
        let mut window = FIRST_WINDOW;
        let mut start = (high - window).max(floor);
        // Where the previous window's first record was: the next window reads up to it. (A
        // broker may answer a fetch inside a batch from the next batch on, so the records
        // between a window's start and its first record are read by the next window.)
        let mut upper: Option<i64> = None;
        loop {
            let mut w = self.read((topic, partition, high), prefix, start, upper)?;
            found.scanned += w.scanned;
            w.copies.append(&mut found.copies);
            found.copies = w.copies;
            upper = w.first.or(upper);
            let lowest = found.copies.iter().map(|&(u, _)| u).min();
            let done = match (lowest, committed) {
                (Some(u), Some(c)) => u < c,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if done || start <= floor {
                return Ok(found);
            }
            window *= 4;
            start = (start - window).max(floor);
        }
    }

    /// Reads `topic`/`partition` from `start` until `upper` (or the partition's end, `high` when
    /// the scan began): the matching copies, the offset of the first record read, and how many
    /// records were read.
    fn read(
        &self,
        (topic, partition, high): (&str, i32, i64),
        prefix: &str,
        start: i64,
        upper: Option<i64>,
    ) -> Result<Window, KafkaError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(start))?;
        self.consumer.assign(&tpl)?;
        let deadline = Instant::now() + WINDOW_TIMEOUT;
        let mut w = Window::default();
        // Other writers may go on producing, so the end-of-partition event might never come:
        // once the record at `high - 1` (the end when the scan began, or on tansu the first
        // record of the last batch then) was read, what the same fetch brought is read and the
        // window ends.
        let mut draining = false;
        loop {
            if Instant::now() >= deadline {
                return Err(KafkaError::MessageConsumption(
                    RDKafkaErrorCode::OperationTimedOut,
                ));
            }
            let wait = if draining {
                Duration::ZERO
            } else {
                Duration::from_millis(200)
            };
            let msg = match self.consumer.poll(wait) {
                None if draining => break,
                None => continue,
                Some(Err(KafkaError::PartitionEOF(p))) if p == partition => break,
                Some(Err(KafkaError::PartitionEOF(_))) => continue,
                // The client's connections, not this read: librdkafka reconnects by itself
                // (these may also be left over from before the cluster came back), and the
                // deadline bounds the wait.
                Some(Err(KafkaError::MessageConsumption(
                    RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown,
                ))) => continue,
                Some(Err(e)) => return Err(e),
                Some(Ok(msg)) => msg,
            };
            if msg.partition() != partition || msg.topic() != topic || msg.offset() < start {
                continue;
            }
            if upper.is_some_and(|u| msg.offset() >= u) {
                break;
            }
            w.first.get_or_insert(msg.offset());
            w.scanned += 1;
            let upstream = msg.headers().and_then(|h| {
                h.iter()
                    .find(|h| h.key == headers::SOURCE)
                    .and_then(|h| upstream_offset(h.value?, prefix))
            });
            if let Some(u) = upstream {
                w.copies.push((u, msg.offset()));
            }
            draining |= msg.offset() + 1 >= high;
        }
        self.consumer.unassign()?;
        Ok(w)
    }
}

/// What one window of a target partition held.
#[derive(Default)]
struct Window {
    /// The flow's copies, `(upstream, downstream)`, in target order.
    copies: Vec<(i64, i64)>,
    /// The offset of the first record read.
    first: Option<i64>,
    /// Records read.
    scanned: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_the_partitions_own_source_values() {
        let prefix = headers::source_prefix("onprem", "orders", 3);
        assert_eq!(prefix, "onprem/orders/3/");
        assert!(headers::source_value("onprem", "orders", 3, 41).starts_with(&prefix));
        assert_eq!(upstream_offset(b"onprem/orders/3/41", &prefix), Some(41));
        assert_eq!(upstream_offset(b"onprem/orders/31/41", &prefix), None);
        assert_eq!(upstream_offset(b"onprem/orders/3/", &prefix), None);
        assert_eq!(upstream_offset(b"onprem/orders/3/-1", &prefix), None);
        assert_eq!(upstream_offset(b"onprem/orders/3/4x", &prefix), None);
        assert_eq!(upstream_offset(b"other/orders/3/41", &prefix), None);
        assert_eq!(upstream_offset(&[0xff, 0xfe], &prefix), None);
        assert_eq!(
            upstream_offset(b"onprem/orders/3/99999999999999999999999", &prefix),
            None
        );
    }

    #[test]
    fn events_keep_the_newest_copy_above_the_committed_offset() {
        let tail = TailCopies {
            copies: vec![(7, 100), (8, 101), (9, 102), (8, 103), (9, 104), (11, 105)],
            scanned: 8,
        };
        assert_eq!(tail.last_upstream(), Some(11));
        let events = tail.events_from(8);
        assert_eq!(
            events,
            vec![
                Event::Replicated {
                    upstream: 8,
                    downstream: 103
                },
                Event::Replicated {
                    upstream: 9,
                    downstream: 104
                },
                Event::Replicated {
                    upstream: 11,
                    downstream: 105
                },
            ]
        );
        assert_eq!(TailCopies::default().last_upstream(), None);
    }
}
