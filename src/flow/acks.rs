//! The acknowledgement side of a flow. The consume loop sends its records in [`Batch`]es, in
//! consumption order, through a bounded channel (the bound is the flow's back-pressure). This
//! task takes each record's outcome from the delivery [`Board`] in that order, so the position it
//! commits for a partition is always the end of a contiguous run of acknowledged records:
//! at-least-once, nothing skipped, whatever stops the process. Metrics, status and store events
//! are updated once per batch, not per record.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::DeliveryFuture;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::board::Board;
use super::route::Route;
use super::{DeliveryFailure, FlowError};
use crate::cluster::ClusterContext;
use crate::metrics::SkipReason;
use crate::shutdown::CancellationToken;
use crate::status::{now_ms, FlowStatus};
use crate::store::{Event, PartitionKey, Store};

/// How often acknowledged positions are committed to the source while running
/// (Event Hubs throttles commits to 4/s per partition).
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// How long a stop may wait for in-flight deliveries before committing what was acknowledged.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(7);

/// Consumed records of one route, in consumption order.
pub struct Batch {
    /// The records' route.
    pub route: Arc<Route>,
    /// The records.
    pub records: Vec<Pending>,
}

/// One consumed record on its way to the target.
pub struct Pending {
    /// Its source partition.
    pub partition: i32,
    /// Its source offset.
    pub offset: i64,
    /// Its timestamp (ms since the epoch; -1 when it has none).
    pub timestamp_ms: i64,
    /// The timestamp inside it, when it is a heartbeat.
    pub heartbeat_ts: Option<i64>,
    /// What happened to it.
    pub fate: Fate,
}

/// What became of a consumed record.
pub enum Fate {
    /// Handed to the target's producer as record number `seq` of the [`Board`]; `bytes` of key +
    /// value.
    Sent { seq: u64, bytes: u32 },
    /// Deliberately not written (loop rule, or oversize with `skip`); done when reached.
    Skipped(SkipReason),
    /// Too large for the target: written to the dead-letter topic on the source instead.
    DeadLettered { delivery: DeliveryFuture },
}

/// What the ack task works with.
pub struct AckContext {
    /// The flow's source consumer (offsets are committed through it).
    pub consumer: Arc<StreamConsumer<ClusterContext>>,
    /// Source cluster alias.
    pub source: String,
    /// Target cluster alias.
    pub target: String,
    /// The flow's live status.
    pub status: Arc<FlowStatus>,
    /// The offset-translation store: every acknowledged batch is recorded there before the
    /// source offsets that cover it are committed.
    pub store: Store,
    /// Where the target producer's delivery reports land.
    pub board: Arc<Board>,
}

/// Awaits deliveries in order and commits contiguous positions until the consume loop closes
/// the channel (or the drain deadline passes after `shutdown`). A failed delivery cancels
/// `shutdown` (the consume loop stops), the rest in flight settles, and the first failure is
/// returned after committing what was acknowledged.
pub async fn run(
    mut rx: mpsc::Receiver<Batch>,
    ctx: AckContext,
    shutdown: CancellationToken,
) -> Result<(), FlowError> {
    let mut acks = Acks {
        positions: Positions::new(&ctx.source, &ctx.target, ctx.store.clone()),
        rate: Rate::new(&ctx.status),
        drain_deadline: None,
        failed: None,
        failed_partitions: HashSet::new(),
        shutdown,
        ctx,
    };
    let mut next_commit = Instant::now() + COMMIT_INTERVAL;
    let result = loop {
        let deadline = acks.drain_deadline.unwrap_or(next_commit);
        tokio::select! {
            biased;
            b = rx.recv() => match b {
                Some(batch) => {
                    if acks.batch(batch).await == Flow::Stop {
                        break Ok(());
                    }
                }
                None => break Ok(()),
            },
            _ = acks.shutdown.cancelled(), if acks.drain_deadline.is_none() => {
                acks.drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
                continue;
            }
            _ = tokio::time::sleep_until(deadline) => {
                if acks.drain_deadline.is_some() {
                    tracing::warn!(target = %acks.ctx.target, "stop: in-flight records not acknowledged within {DRAIN_TIMEOUT:?}; they will be replicated again");
                    break Ok(());
                }
            }
        }
        if Instant::now() >= next_commit && acks.drain_deadline.is_none() {
            if let Err(e) = acks.commit(CommitMode::Async) {
                break Err(e);
            }
            next_commit = Instant::now() + COMMIT_INTERVAL;
        }
    };
    // Whatever ended the loop, what was acknowledged is recorded and committed before returning.
    let committed = acks.commit(CommitMode::Sync);
    match acks.failed {
        Some(e) => Err(e),
        None => result.and(committed),
    }
}

/// Whether the ack task goes on.
#[derive(PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

/// The ack task's state.
struct Acks {
    ctx: AckContext,
    positions: Positions,
    rate: Rate,
    shutdown: CancellationToken,
    /// Set once stopping: in-flight deliveries are awaited until then, no longer.
    drain_deadline: Option<Instant>,
    /// After a failed delivery: the first error, and the partitions that must not move past it.
    /// Deliveries of other partitions still settle and count (gap-less: nothing after a failed
    /// record of a partition was written), so a restart replays only what was not written.
    failed: Option<FlowError>,
    failed_partitions: HashSet<(Arc<str>, i32)>,
}

/// What one batch adds to the metrics and status, applied once at its end.
#[derive(Default)]
struct Tally {
    replicated: u64,
    bytes: u64,
    settled: i64,
}

impl Acks {
    /// Settles a batch's records in order. `Stop` when the drain deadline passed while waiting.
    async fn batch(&mut self, batch: Batch) -> Flow {
        let Batch { route, records } = batch;
        let mut tally = Tally::default();
        let latency = route.latency.local();
        let mut now = now_ms();
        let mut flow = Flow::Go;
        for p in records {
            let acked = match p.fate {
                Fate::Skipped(reason) => {
                    route.skipped(reason).inc();
                    Ok(None)
                }
                Fate::Sent { seq, bytes } => {
                    let outcome = match self.ctx.board.take(seq) {
                        Some(outcome) => outcome,
                        None => {
                            self.ctx.board.release(seq);
                            let Some(outcome) = self.settle(seq).await else {
                                tracing::warn!(target = %self.ctx.target, "stop: in-flight records not acknowledged within {DRAIN_TIMEOUT:?}; they will be replicated again");
                                flow = Flow::Stop;
                                break;
                            };
                            now = now_ms();
                            outcome
                        }
                    };
                    self.ctx.board.release(seq + 1);
                    tally.settled += 1;
                    match outcome {
                        Ok(downstream) => {
                            tally.replicated += 1;
                            tally.bytes += u64::from(bytes);
                            if p.timestamp_ms > 0 {
                                latency.observe((now - p.timestamp_ms).max(0) as f64 / 1000.0);
                            }
                            if let Some(ts) = p.heartbeat_ts {
                                self.ctx.status.heartbeat_replicated(ts);
                            }
                            Ok(Some(downstream))
                        }
                        Err(e) => Err(failure(
                            &self.ctx.target,
                            &route.remote_topic,
                            p.partition,
                            p.offset,
                            e,
                        )),
                    }
                }
                Fate::DeadLettered { delivery } => {
                    let Some(outcome) = self.dead_letter(delivery, (p.partition, p.offset)).await
                    else {
                        tracing::warn!(target = %self.ctx.target, "stop: a dead-letter write was not acknowledged within {DRAIN_TIMEOUT:?}; it will be done again");
                        flow = Flow::Stop;
                        break;
                    };
                    if outcome.is_ok() {
                        route.skipped(SkipReason::Oversize).inc();
                        route.dead_lettered.inc();
                    }
                    outcome.map(|()| None)
                }
            };
            match acked {
                Ok(downstream) => {
                    if self.failed_partitions.is_empty()
                        || !self
                            .failed_partitions
                            .contains(&(route.source_topic.clone(), p.partition))
                    {
                        self.positions
                            .ack(&route, p.partition, p.offset, downstream);
                    }
                }
                Err(e) => {
                    self.failed_partitions
                        .insert((route.source_topic.clone(), p.partition));
                    if self.failed.is_none() {
                        self.failed = Some(e);
                        // Stop consuming; what is in flight settles (fast: a failed producer
                        // fails its queue) and what was acknowledged is committed at the end.
                        self.shutdown.cancel();
                    }
                }
            }
        }
        latency.flush();
        let status = &self.ctx.status;
        status.add_in_flight(-tally.settled);
        if tally.replicated > 0 {
            route.replicated.inc_by(tally.replicated);
            route.bytes.inc_by(tally.bytes);
            status.add_replicated(tally.replicated);
            if status.acked() {
                tracing::info!(source = %self.ctx.source, target = %self.ctx.target, "recovered: the target acknowledges records again");
            }
        }
        flow
    }

    /// Waits for record `seq`'s outcome; once stopping, only until the drain deadline (`None`
    /// past it).
    async fn settle(&mut self, seq: u64) -> Option<Result<i64, rdkafka::error::KafkaError>> {
        let board = self.ctx.board.clone();
        loop {
            let deadline = match self.drain_deadline {
                Some(d) => d,
                None => tokio::select! {
                    o = board.settled(seq) => return Some(o),
                    _ = self.shutdown.cancelled() => {
                        self.drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
                        continue;
                    }
                },
            };
            return tokio::time::timeout_at(deadline, board.settled(seq))
                .await
                .ok();
        }
    }

    /// Waits for a dead-letter write, within the drain deadline once stopping.
    async fn dead_letter(
        &mut self,
        mut delivery: DeliveryFuture,
        (partition, offset): (i32, i64),
    ) -> Option<Result<(), FlowError>> {
        let outcome = loop {
            let deadline = match self.drain_deadline {
                Some(d) => d,
                None => tokio::select! {
                    o = &mut delivery => break Some(o),
                    _ = self.shutdown.cancelled() => {
                        self.drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
                        continue;
                    }
                },
            };
            break tokio::time::timeout_at(deadline, &mut delivery).await.ok();
        }?;
        Some(match outcome {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(failure(
                &self.ctx.source,
                "the dead-letter topic",
                partition,
                offset,
                e,
            )),
            Err(_canceled) => Err(FlowError::ProducerGone),
        })
    }

    /// Records and commits what was acknowledged, and publishes positions and rate.
    fn commit(&mut self, mode: CommitMode) -> Result<(), FlowError> {
        let committed = self.positions.commit(&self.ctx.consumer, mode);
        self.positions.publish(&self.ctx.status);
        self.rate.update(&self.ctx.status);
        committed
    }
}

fn failure(
    cluster: &str,
    topic: &str,
    partition: i32,
    source_offset: i64,
    e: rdkafka::error::KafkaError,
) -> FlowError {
    FlowError::Delivery(Box::new(DeliveryFailure {
        target: cluster.to_string(),
        topic: topic.to_string(),
        partition,
        source_offset,
        source: e,
    }))
}

/// Per source (topic, partition): the next offset to commit and what the store has not been
/// told yet. Commits always record in the store first: a committed source offset is never
/// ahead of the translations that cover it.
struct Positions {
    source: String,
    target: String,
    store: Store,
    /// Index into `positions` by (source topic, partition).
    index: HashMap<(Arc<str>, i32), usize>,
    positions: Vec<((Arc<str>, i32), Position)>,
    /// The partition acknowledged last (consecutive records mostly share it): skips the lookup.
    last: Option<(Arc<str>, i32, usize)>,
    dirty: bool,
}

/// One partition's acknowledged position and its events not yet in the store.
#[derive(Default)]
struct Position {
    next: i64,
    events: Vec<Event>,
}

impl Positions {
    fn new(source: &str, target: &str, store: Store) -> Self {
        Positions {
            source: source.to_string(),
            target: target.to_string(),
            store,
            index: HashMap::new(),
            positions: Vec::new(),
            last: None,
            dirty: false,
        }
    }

    fn ack(&mut self, route: &Arc<Route>, partition: i32, offset: i64, downstream: Option<i64>) {
        let event = match downstream {
            Some(downstream) => Event::Replicated {
                upstream: offset,
                downstream,
            },
            None => Event::Skipped { upstream: offset },
        };
        let i = match &self.last {
            Some((topic, p, i)) if *p == partition && Arc::ptr_eq(topic, &route.source_topic) => *i,
            _ => {
                let key = (route.source_topic.clone(), partition);
                let next = self.positions.len();
                let i = *self.index.entry(key.clone()).or_insert(next);
                if i == next {
                    self.positions.push((key, Position::default()));
                }
                self.last = Some((route.source_topic.clone(), partition, i));
                i
            }
        };
        let position = &mut self.positions[i].1;
        position.events.push(event);
        position.next = offset + 1;
        self.dirty = true;
    }

    /// Tells the flow's status where each partition stands (for `hubmirror_lag_records`).
    fn publish(&self, status: &FlowStatus) {
        for ((topic, partition), position) in &self.positions {
            status.set_position(topic, *partition, position.next);
        }
    }

    fn commit(
        &mut self,
        consumer: &StreamConsumer<ClusterContext>,
        mode: CommitMode,
    ) -> Result<(), FlowError> {
        if !self.dirty {
            return Ok(());
        }
        for ((topic, partition), position) in &mut self.positions {
            if position.events.is_empty() {
                continue;
            }
            let key = PartitionKey::new(&self.source, &self.target, topic, *partition);
            self.store
                .record(&key, &position.events)
                .map_err(FlowError::Store)?;
            position.events.clear();
        }
        self.store.flush().map_err(FlowError::Store)?;
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), position) in &self.positions {
            let next = position.next;
            if let Err(e) = tpl.add_partition_offset(topic, *partition, Offset::Offset(next)) {
                tracing::warn!(
                    topic = &**topic,
                    partition,
                    "cannot commit offset {next}: {e}"
                );
            }
        }
        match consumer.commit(&tpl, mode) {
            Ok(()) => self.dirty = false,
            Err(e) => tracing::warn!("committing source offsets failed (will retry): {e}"),
        }
        Ok(())
    }
}

/// Records/s between two updates, written to the flow's status.
struct Rate {
    at: Instant,
    count: u64,
}

impl Rate {
    fn new(status: &FlowStatus) -> Self {
        Rate {
            at: Instant::now(),
            count: status.replicated(),
        }
    }

    fn update(&mut self, status: &FlowStatus) {
        let (now, count) = (Instant::now(), status.replicated());
        let secs = now.duration_since(self.at).as_secs_f64();
        if secs > 0.0 {
            status.set_rate((count - self.count) as f64 / secs);
        }
        (self.at, self.count) = (now, count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn positions_follow_each_partition_whatever_the_interleaving() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let metrics = Metrics::new();
        let a = Arc::new(Route::new(&metrics, "s", "t", "a", "s.a", 2, false));
        let b = Arc::new(Route::new(&metrics, "s", "t", "b", "s.b", 2, false));
        let mut p = Positions::new("s", "t", store);
        // Runs of one partition (the fast path) broken by others, topics sharing partition numbers.
        p.ack(&a, 0, 10, Some(100));
        p.ack(&a, 0, 11, Some(101));
        p.ack(&a, 1, 5, None);
        p.ack(&b, 0, 7, Some(3));
        p.ack(&a, 0, 12, Some(102));
        p.ack(&b, 0, 8, Some(4));
        let got: Vec<_> = p
            .positions
            .iter()
            .map(|((t, part), pos)| (t.to_string(), *part, pos.next, pos.events.len()))
            .collect();
        assert_eq!(
            got,
            [
                ("a".to_string(), 0, 13, 3),
                ("a".to_string(), 1, 6, 1),
                ("b".to_string(), 0, 9, 2)
            ]
        );
        assert!(matches!(
            p.positions[0].1.events[2],
            Event::Replicated {
                upstream: 12,
                downstream: 102
            }
        ));
        assert!(matches!(
            p.positions[1].1.events[0],
            Event::Skipped { upstream: 5 }
        ));
    }
}
