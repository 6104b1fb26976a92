//! Where a source partition the flow has never replicated starts under `start_from: latest` or
//! a time, and how that choice is recorded.
//!
//! - `latest`: the partition's end. ListOffsets(latest) is only a lower bound (tansu reports
//!   the last record batch's base offset + 1), so the end is read: see [`log_end`].
//! - a time: the first record whose timestamp is at or after it (ListOffsets by time), checked
//!   by reading that record — a broker that answers "offset 0" when no record is that recent
//!   (tansu) would otherwise start the partition at its beginning. When the answer does not
//!   hold, the partition is read forward from it to the first record that does, or to its end.
//!
//! The choice is committed at once for the flow's group, stamped ([`CommitStamp`]), before a
//! record is copied: an instance that takes the partition over (or this one after a restart)
//! resumes there instead of choosing again — a later "latest" would skip, silently, what was
//! produced in between.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::group::FlowConsumer;
use super::stamp::CommitStamp;
use super::FlowError;
use crate::cluster::clients;
use crate::cluster::context::ReaderContext;
use crate::cluster::metadata::log_end;
use crate::topology::{Cluster, StartFrom};

/// How long one request to the source may take, and reading may go without a record.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where `start_from` puts a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Choice {
    /// The first offset to copy.
    offset: i64,
    /// The partition's log start.
    log_start: i64,
    /// Why there, for the log line.
    why: String,
}

/// Starts partitions the flow never replicated, under `start_from: latest` or a time.
pub(super) struct Fresh<'a> {
    consumer: &'a FlowConsumer,
    stamp: &'a CommitStamp,
    start_from: StartFrom,
    source: &'a Cluster,
    /// A reader of the source, created when first needed.
    reader: Option<BaseConsumer<ReaderContext>>,
}

impl<'a> Fresh<'a> {
    /// A starter for one assignment of the flow's consumer.
    pub(super) fn new(
        consumer: &'a FlowConsumer,
        stamp: &'a CommitStamp,
        start_from: StartFrom,
        source: &'a Cluster,
    ) -> Self {
        Fresh {
            consumer,
            stamp,
            start_from,
            source,
            reader: None,
        }
    }

    /// Chooses where `topic`/`partition` starts (never past `bound`, an unstamped committed
    /// offset that was set aside) and commits it before anything is copied. Blocking.
    pub(super) fn start(
        &mut self,
        (topic, remote, p): (&str, &str, i32),
        bound: Option<i64>,
    ) -> Result<i64, FlowError> {
        let start_from = self.start_from;
        let source = |e| FlowError::Source {
            what: format!(
                "finding where '{topic}' partition {p} starts (start_from: {start_from})"
            ),
            source: e,
        };
        let reader = match &mut self.reader {
            Some(r) => r,
            None => self
                .reader
                .insert(clients::tail_reader(self.source).map_err(source)?),
        };
        let choice = choose(self.consumer, reader, (topic, p), start_from).map_err(source)?;
        let (at, why) = bounded(choice, bound);
        record(self.consumer, self.stamp, (topic, remote, p), at).map_err(|e| {
            FlowError::Source {
                what: format!("committing the start of '{topic}' partition {p} (offset {at})"),
                source: e,
            }
        })?;
        tracing::info!(
            source = %self.source.alias, topic, partition = p, remote,
            "'{topic}' partition {p} was never replicated to '{remote}': start_from {start_from}, \
             starting at offset {at}, {why}; committed, so the flow resumes there"
        );
        Ok(at)
    }
}

/// Where a partition starts given `start_from`'s `choice` and `bound`, an unstamped committed
/// offset that was set aside: the earlier of the two, not below the log start; and why.
fn bounded(choice: Choice, bound: Option<i64>) -> (i64, String) {
    match bound {
        Some(b) if b < choice.offset => (
            b.max(choice.log_start),
            format!(
                "its committed offset {b}, which carries no hubmirror stamp, comes before {} at \
                 offset {} (the earlier of the two: nothing is skipped)",
                choice.why, choice.offset
            ),
        ),
        _ => (choice.offset, choice.why),
    }
}

/// Where `topic`/`partition` starts under `start_from` (`latest` or a time; `earliest` is the
/// log start). `reader` reads the source (see [`crate::cluster::clients::tail_reader`]); it is
/// reassigned. Blocking.
fn choose(
    consumer: &FlowConsumer,
    reader: &BaseConsumer<ReaderContext>,
    (topic, partition): (&str, i32),
    start_from: StartFrom,
) -> Result<Choice, KafkaError> {
    let (log_start, reported_end) = consumer.fetch_watermarks(topic, partition, REQUEST_TIMEOUT)?;
    let end = |why: String| -> Result<Choice, KafkaError> {
        let offset = log_end(reader, topic, partition, reported_end, REQUEST_TIMEOUT)?;
        Ok(Choice {
            offset: offset.max(log_start),
            log_start,
            why,
        })
    };
    let t = match start_from {
        StartFrom::Earliest => {
            return Ok(Choice {
                offset: log_start,
                log_start,
                why: "the log start".into(),
            })
        }
        StartFrom::Latest => return end("the partition's end".into()),
        StartFrom::Time(t) => t,
    };
    let ms = StartFrom::time_ms(t);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(ms))?;
    let found = consumer.offsets_for_times(tpl, REQUEST_TIMEOUT)?;
    let reported = found
        .find_partition(topic, partition)
        .map(|e| e.offset())
        .and_then(|o| o.to_raw())
        .filter(|o| *o >= 0);
    let none = || format!("the partition's end: no record is from {start_from} or later");
    let Some(from) = reported else {
        return end(none());
    };
    match first_at_or_after(reader, (topic, partition), from.max(log_start), ms)? {
        Some(offset) => Ok(Choice {
            offset,
            log_start,
            why: format!("the first record from {start_from} or later"),
        }),
        None => end(none()),
    }
}

/// The first offset at or after `from` whose record's timestamp is `ms` or later; `None` when
/// the partition ends before one. Reads forward from `from`.
fn first_at_or_after(
    reader: &BaseConsumer<ReaderContext>,
    (topic, partition): (&str, i32),
    from: i64,
    ms: i64,
) -> Result<Option<i64>, KafkaError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(from))?;
    reader.assign(&tpl)?;
    // Reset by every record read: a long partition may take long, a silent one may not.
    let mut deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut first = true;
    loop {
        if Instant::now() >= deadline {
            return Err(KafkaError::MessageConsumption(
                RDKafkaErrorCode::OperationTimedOut,
            ));
        }
        match reader.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) if p == partition => return Ok(None),
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => return Err(e),
            Some(Ok(m)) => {
                if m.topic() != topic || m.partition() != partition || m.offset() < from {
                    continue;
                }
                deadline = Instant::now() + REQUEST_TIMEOUT;
                if m.timestamp().to_millis().is_some_and(|ts| ts >= ms) {
                    return Ok(Some(m.offset()));
                }
                if first {
                    tracing::debug!(
                        topic,
                        partition,
                        "the source answered offset {from} for a time its record is older \
                         than; reading forward to the first record that is not"
                    );
                    first = false;
                }
            }
        }
    }
}

/// Commits `offset` for `topic`/`partition` in the flow's group, stamped for `remote` on the
/// target: the record of where the partition started. Blocking.
fn record(
    consumer: &FlowConsumer,
    stamp: &CommitStamp,
    (topic, remote, partition): (&str, &str, i32),
    offset: i64,
) -> Result<(), KafkaError> {
    let mut tpl = TopicPartitionList::new();
    let mut e = tpl.add_partition(topic, partition);
    e.set_offset(Offset::Offset(offset))?;
    e.set_metadata(stamp.render(remote));
    consumer.commit(&tpl, CommitMode::Sync)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end_at(offset: i64) -> Choice {
        Choice {
            offset,
            log_start: 10,
            why: "the partition's end".into(),
        }
    }

    #[test]
    fn an_unstamped_offset_set_aside_bounds_the_choice() {
        // No bound, or one at or past the choice: the choice.
        assert_eq!(bounded(end_at(500), None).0, 500);
        assert_eq!(bounded(end_at(500), Some(500)).0, 500);
        assert_eq!(bounded(end_at(500), Some(900)).0, 500);
        // An earlier one (this flow's own choice on a broker that dropped its stamp): there.
        let (at, why) = bounded(end_at(500), Some(300));
        assert_eq!(at, 300);
        assert_eq!(
            why,
            "its committed offset 300, which carries no hubmirror stamp, comes before the \
             partition's end at offset 500 (the earlier of the two: nothing is skipped)"
        );
        // Never below the log start.
        assert_eq!(bounded(end_at(500), Some(3)).0, 10);
    }
}
