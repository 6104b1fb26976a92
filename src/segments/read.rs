//! Reading a segments topic into a store: continuously in the daemon ([`follow`]), or once to
//! its end before a command answers ([`catch_up`]). Both start where the store last stopped
//! reading ([`Store::read_position`]), or at the beginning; merging is idempotent, so reading
//! a record twice is harmless.
//!
//! The end of a partition is where librdkafka reports end-of-partition, from the fetch
//! responses' high watermark (tansu's ListOffsets(latest) is not trusted).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::{kafka, Publication, SegmentsError};
use crate::cluster::context::{end_reader, ReaderContext};
use crate::cluster::metadata::partitions_of;
use crate::metrics::Metrics;
use crate::naming::{segments_topic, Naming};
use crate::shutdown::CancellationToken;
use crate::store::{Store, StoreError};

/// The longest single wait for a record, so deadlines and the stop token are checked often.
const POLL: Duration = Duration::from_millis(200);

/// How often the follower looks for a segments topic that does not exist yet.
const TOPIC_RETRY: Duration = Duration::from_secs(10);

/// The consumer group named in the readers' settings (nothing is committed, nothing joins).
const READER_GROUP: &str = "hubmirror-segments-reader";

/// What reading a segments topic did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CaughtUp {
    /// Records read.
    pub records: usize,
    /// Publications merged into the store.
    pub merged: usize,
    /// Records left out: not segments records, for another flow, for a remote topic of
    /// another name (an earlier naming policy), or with segments the store refused.
    pub skipped: usize,
    /// Runs of offsets two publications mapped to different copies (see `Store::merge`).
    pub conflicts: usize,
}

/// A segments topic to read on demand ([`catch_up`]): the cluster it is on and what merges it.
#[derive(Clone)]
pub struct Readable {
    /// Connection settings of the flow's target (`cluster::client_config`).
    pub config: ClientConfig,
    /// Merges the flow's publications into the store.
    pub merger: Merger,
}

/// Merges the publications of one flow's segments topic into a store.
#[derive(Clone)]
pub struct Merger {
    source: String,
    target: String,
    naming: Naming,
    store: Store,
    topic: String,
    metrics: Option<Arc<Metrics>>,
}

impl Merger {
    /// Merges what the flow `source → target` published into `store`; `metrics` counts
    /// merges and conflicts (the daemon's), `None` for a command.
    pub fn new(
        source: &str,
        target: &str,
        naming: Naming,
        store: Store,
        metrics: Option<Arc<Metrics>>,
    ) -> Merger {
        Merger {
            source: source.to_string(),
            target: target.to_string(),
            naming,
            store,
            topic: segments_topic(source),
            metrics,
        }
    }

    /// The segments topic (on the flow's target).
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The flow's source and target aliases.
    pub fn flow(&self) -> (&str, &str) {
        (&self.source, &self.target)
    }

    /// Takes in one record of the topic: merges it if it is a publication of this flow, and
    /// remembers that the partition was read past it. Fails only when the store does.
    fn take(
        &self,
        partition: i32,
        offset: i64,
        record: (Option<&[u8]>, Option<&[u8]>),
        tally: &mut CaughtUp,
    ) -> Result<(), SegmentsError> {
        tally.records += 1;
        if let Some(p) = self.usable(record, tally) {
            match self.store.merge(&p.key, &p.set) {
                Ok(merged) => {
                    tally.merged += 1;
                    self.count(|m| &m.segments_merged, 1);
                    for c in &merged.conflicts {
                        tally.conflicts += 1;
                        self.count(|m| &m.segment_conflicts, 1);
                        tracing::warn!(partition = %p.key, instance = %p.instance,
                            "segments conflict: source offsets {}..{} were copied to {} and to \
                             {}; keeping the newest publication's ({})",
                            c.upstream, c.upstream + c.len, c.dropped, c.kept, c.kept);
                    }
                }
                Err(e @ StoreError::InvalidSegments { .. }) => {
                    tally.skipped += 1;
                    tracing::warn!(topic = %self.topic, partition, offset, "skipped: {e}");
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.store
            .set_read_position(&self.target, &self.topic, partition, offset + 1)?;
        Ok(())
    }

    /// The record as a publication of this flow, if it is one.
    fn usable(
        &self,
        (key, value): (Option<&[u8]>, Option<&[u8]>),
        tally: &mut CaughtUp,
    ) -> Option<Publication> {
        let p = key
            .zip(value)
            .and_then(|(k, v)| Publication::decode(k, v).ok());
        let ours = p.filter(|p| {
            p.key.source == self.source
                && p.key.target == self.target
                && p.remote_topic == self.naming.remote_topic(&self.source, &p.key.topic)
        });
        if ours.is_none() {
            tally.skipped += 1;
        }
        ours
    }

    fn count(&self, metric: impl Fn(&Metrics) -> &prometheus::IntCounterVec, n: u64) {
        if let Some(m) = &self.metrics {
            metric(m)
                .with_label_values(&[self.source.as_str(), self.target.as_str()])
                .inc_by(n);
        }
    }

    /// Assigns every partition of the topic at the store's read position (or its beginning).
    fn assign(
        &self,
        consumer: &BaseConsumer<ReaderContext>,
        partitions: &[i32],
    ) -> Result<(), SegmentsError> {
        let what = || format!("reading '{}' on cluster '{}'", self.topic, self.target);
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            let at = self.store.read_position(&self.target, &self.topic, p)?;
            let offset = at.map_or(Offset::Beginning, Offset::Offset);
            tpl.add_partition_offset(&self.topic, p, offset)
                .map_err(kafka(what()))?;
        }
        consumer.assign(&tpl).map_err(kafka(what()))
    }
}

/// Reads the segments topic `merger` reads, on the cluster `config` connects to (the flow's
/// target), from the store's read positions to the end of every partition, merging each
/// publication. Nothing when the topic does not exist. Fails if the ends are not reached
/// within `timeout`. Blocking: call it off the async runtime.
pub fn catch_up(
    config: ClientConfig,
    merger: &Merger,
    timeout: Duration,
) -> Result<CaughtUp, SegmentsError> {
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    let what = || format!("reading '{}' on cluster '{}'", merger.topic, merger.target);
    let consumer = end_reader(config, READER_GROUP).map_err(kafka(what()))?;
    let Some(partitions) =
        partitions_of(consumer.client(), &merger.topic, left()).map_err(kafka(what()))?
    else {
        return Ok(CaughtUp::default());
    };
    merger.assign(&consumer, &partitions)?;
    let mut open: BTreeSet<i32> = partitions.into_iter().collect();
    let mut tally = CaughtUp::default();
    while !open.is_empty() {
        if left().is_zero() {
            return Err(SegmentsError::Timeout {
                what: format!("{} to the end of every partition", what()),
                waited: timeout,
            });
        }
        match consumer.poll(left().min(POLL)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(e)) => return Err(kafka(what())(e)),
            Some(Ok(m)) => merger.take(
                m.partition(),
                m.offset(),
                (m.key(), m.payload()),
                &mut tally,
            )?,
        }
    }
    if tally.skipped > 0 {
        tracing::warn!(topic = %merger.topic, skipped = tally.skipped,
            "skipped records that are not segments of flow {} -> {}", merger.source, merger.target);
    }
    Ok(tally)
}

/// The daemon's follower: reads the segments topic `merger` reads, on the cluster `config`
/// connects to, and merges every publication as it arrives, until `stop`. Waits for the topic
/// when it does not exist yet. Problems are logged once per episode, counted in
/// `hubmirror_errors_total{kind="segments_read"}` and retried. Blocking: run it on a thread of
/// its own (`tokio::task::spawn_blocking`); returns within moments of `stop`.
pub fn follow(config: ClientConfig, merger: Merger, stop: CancellationToken) {
    let consumer = match end_reader(config, READER_GROUP) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(topic = %merger.topic, cluster = %merger.target,
                "cannot read segments: {e}; this instance translates only what it replicated");
            return;
        }
    };
    let mut f = Follower {
        merger,
        failing: None,
        tally: CaughtUp::default(),
        caught_up: false,
    };
    let mut assigned = false;
    let mut next_check = Instant::now();
    while !stop.is_cancelled() {
        if !assigned {
            if Instant::now() < next_check {
                std::thread::sleep(POLL);
                continue;
            }
            next_check = Instant::now() + TOPIC_RETRY;
            let topic = f.merger.topic.clone();
            match partitions_of(consumer.client(), &topic, POLL * 25) {
                Ok(Some(partitions)) => match f.merger.assign(&consumer, &partitions) {
                    Ok(()) => assigned = true,
                    Err(e) => f.failed(e.to_string()),
                },
                Ok(None) => tracing::debug!(topic, "no segments topic yet"),
                Err(e) => f.failed(format!("cannot list topics: {e}")),
            }
            continue;
        }
        match consumer.poll(POLL) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => f.at_end(),
            Some(Err(e)) => {
                if matches!(
                    e.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic
                    )
                ) {
                    assigned = false;
                }
                f.failed(e.to_string());
            }
            Some(Ok(m)) => {
                let mut tally = f.tally;
                match f.merger.take(
                    m.partition(),
                    m.offset(),
                    (m.key(), m.payload()),
                    &mut tally,
                ) {
                    Ok(()) => {
                        f.tally = tally;
                        f.working();
                    }
                    Err(e) => f.failed(e.to_string()),
                }
            }
        }
    }
}

/// The follower's state between records.
struct Follower {
    merger: Merger,
    /// The problem logged, while it lasts.
    failing: Option<String>,
    /// Everything read since the start.
    tally: CaughtUp,
    /// The end was reached once (logged once).
    caught_up: bool,
}

impl Follower {
    fn failed(&mut self, why: String) {
        if let Some(m) = &self.merger.metrics {
            let (s, t) = (&self.merger.source, &self.merger.target);
            m.errors
                .with_label_values(&[s.as_str(), t.as_str(), "segments_read"])
                .inc();
        }
        if self.failing.is_none() {
            tracing::error!(topic = %self.merger.topic, cluster = %self.merger.target,
                "cannot read segments: {why}; retrying (logged once until it works again)");
            self.failing = Some(why);
        }
    }

    fn working(&mut self) {
        if let Some(was) = self.failing.take() {
            tracing::info!(topic = %self.merger.topic, cluster = %self.merger.target,
                "reading segments again (was: {was})");
        }
    }

    fn at_end(&mut self) {
        self.working();
        if !self.caught_up {
            self.caught_up = true;
            let t = self.tally;
            tracing::info!(topic = %self.merger.topic, cluster = %self.merger.target,
                records = t.records, merged = t.merged, skipped = t.skipped,
                conflicts = t.conflicts, "read the segments other instances published");
        }
    }
}
