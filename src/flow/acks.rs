//! The acknowledgement side of a flow. The consume loop sends one [`Pending`] per consumed
//! record, in consumption order, through a bounded channel (the bound is the flow's
//! back-pressure). This task awaits each delivery in that order, so the position it commits for
//! a partition is always the end of a contiguous run of acknowledged records: at-least-once,
//! nothing skipped, whatever stops the process.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::DeliveryFuture;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio::time::Instant;

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

/// One consumed record on its way to the target.
pub struct Pending {
    /// The record's route.
    pub route: Arc<Route>,
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
    /// Sent to the target; `bytes` of key + value.
    Sent {
        delivery: DeliveryFuture,
        bytes: usize,
    },
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
}

/// Awaits deliveries in order and commits contiguous positions until the consume loop closes
/// the channel (or the drain deadline passes after `shutdown`). A failed delivery cancels
/// `shutdown` (the consume loop stops), the rest in flight settles, and the first failure is
/// returned after committing what was acknowledged.
pub async fn run(
    mut rx: mpsc::Receiver<Pending>,
    ctx: AckContext,
    shutdown: CancellationToken,
) -> Result<(), FlowError> {
    let AckContext {
        consumer,
        source,
        target,
        status,
        store,
    } = ctx;
    let mut positions = Positions::new(&source, &target, store);
    let mut rate = Rate::new(&status);
    let mut next_commit = Instant::now() + COMMIT_INTERVAL;
    let mut drain_deadline: Option<Instant> = None;
    // After a failed delivery: the first error, and the partitions that must not move past it.
    // Deliveries of other partitions still settle and count (gap-less: nothing after a failed
    // record of a partition was written), so a restart replays only what was not written.
    let mut failed: Option<FlowError> = None;
    let mut failed_partitions: HashSet<(Arc<str>, i32)> = HashSet::new();
    let result = loop {
        let deadline = drain_deadline.unwrap_or(next_commit);
        let pending = tokio::select! {
            biased;
            p = rx.recv() => match p {
                Some(p) => p,
                None => break Ok(()),
            },
            _ = shutdown.cancelled(), if drain_deadline.is_none() => {
                drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
                continue;
            }
            _ = tokio::time::sleep_until(deadline) => {
                if drain_deadline.is_some() {
                    tracing::warn!(target = %target, "stop: in-flight records not acknowledged within {DRAIN_TIMEOUT:?}; they will be replicated again");
                    break Ok(());
                }
                if let Err(e) = positions.commit(&consumer, CommitMode::Async) {
                    break Err(e);
                }
                positions.publish(&status);
                rate.update(&status);
                next_commit = Instant::now() + COMMIT_INTERVAL;
                continue;
            }
        };
        let route = &pending.route;
        let acked = match pending.fate {
            Fate::Skipped(reason) => {
                route.skipped(reason).inc();
                Ok(None)
            }
            Fate::Sent { delivery, bytes } => {
                let Some(outcome) = settle(delivery, &mut drain_deadline, &shutdown).await else {
                    tracing::warn!(target = %target, "stop: in-flight records not acknowledged within {DRAIN_TIMEOUT:?}; they will be replicated again");
                    break Ok(());
                };
                status.add_in_flight(-1);
                match outcome {
                    Ok(Ok(delivery)) => {
                        route.replicated.inc();
                        route.bytes.inc_by(bytes as u64);
                        if pending.timestamp_ms > 0 {
                            let latency = (now_ms() - pending.timestamp_ms).max(0);
                            route.latency.observe(latency as f64 / 1000.0);
                        }
                        status.add_replicated(1);
                        if status.acked() {
                            tracing::info!(source = %source, target = %target, "recovered: the target acknowledges records again");
                        }
                        if let Some(ts) = pending.heartbeat_ts {
                            status.heartbeat_replicated(ts);
                        }
                        Ok(Some(delivery.offset))
                    }
                    Ok(Err((e, _))) => Err(failure(
                        &target,
                        &pending.route.remote_topic,
                        pending.partition,
                        pending.offset,
                        e,
                    )),
                    Err(_canceled) => Err(FlowError::ProducerGone),
                }
            }
            Fate::DeadLettered { delivery } => {
                let Some(outcome) = settle(delivery, &mut drain_deadline, &shutdown).await else {
                    tracing::warn!(target = %target, "stop: a dead-letter write was not acknowledged within {DRAIN_TIMEOUT:?}; it will be done again");
                    break Ok(());
                };
                match outcome {
                    Ok(Ok(_)) => {
                        route.skipped(SkipReason::Oversize).inc();
                        route.dead_lettered.inc();
                        Ok(None)
                    }
                    Ok(Err((e, _))) => Err(failure(
                        &source,
                        "the dead-letter topic",
                        pending.partition,
                        pending.offset,
                        e,
                    )),
                    Err(_canceled) => Err(FlowError::ProducerGone),
                }
            }
        };
        let key = (pending.route.source_topic.clone(), pending.partition);
        match acked {
            Ok(downstream) if !failed_partitions.contains(&key) => positions.ack(
                &pending.route,
                pending.partition,
                pending.offset,
                downstream,
            ),
            Ok(_) => {}
            Err(e) => {
                failed_partitions.insert(key);
                if failed.is_none() {
                    failed = Some(e);
                    // Stop consuming; what is in flight settles (fast: a failed producer
                    // fails its queue) and what was acknowledged is committed below.
                    shutdown.cancel();
                }
            }
        }
        if Instant::now() >= next_commit && drain_deadline.is_none() {
            if let Err(e) = positions.commit(&consumer, CommitMode::Async) {
                break Err(e);
            }
            positions.publish(&status);
            rate.update(&status);
            next_commit = Instant::now() + COMMIT_INTERVAL;
        }
    };
    // Whatever ended the loop, what was acknowledged is recorded and committed before returning.
    let committed = positions.commit(&consumer, CommitMode::Sync);
    positions.publish(&status);
    match failed {
        Some(e) => Err(e),
        None => result.and(committed),
    }
}

/// Waits for a delivery; once stopping, only until the drain deadline (`None` past it).
async fn settle(
    mut delivery: DeliveryFuture,
    drain_deadline: &mut Option<Instant>,
    shutdown: &CancellationToken,
) -> Option<<DeliveryFuture as std::future::Future>::Output> {
    loop {
        let deadline = match *drain_deadline {
            Some(d) => d,
            None => tokio::select! {
                o = &mut delivery => return Some(o),
                _ = shutdown.cancelled() => {
                    *drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
                    continue;
                }
            },
        };
        return tokio::time::timeout_at(deadline, &mut delivery).await.ok();
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
    next: HashMap<(Arc<str>, i32), i64>,
    events: HashMap<(Arc<str>, i32), Vec<Event>>,
    dirty: bool,
}

impl Positions {
    fn new(source: &str, target: &str, store: Store) -> Self {
        Positions {
            source: source.to_string(),
            target: target.to_string(),
            store,
            next: HashMap::new(),
            events: HashMap::new(),
            dirty: false,
        }
    }

    fn ack(&mut self, route: &Arc<Route>, partition: i32, offset: i64, downstream: Option<i64>) {
        let key = (route.source_topic.clone(), partition);
        let event = match downstream {
            Some(downstream) => Event::Replicated {
                upstream: offset,
                downstream,
            },
            None => Event::Skipped { upstream: offset },
        };
        self.events.entry(key.clone()).or_default().push(event);
        self.next.insert(key, offset + 1);
        self.dirty = true;
    }

    /// Tells the flow's status where each partition stands (for `hubmirror_lag_records`).
    fn publish(&self, status: &FlowStatus) {
        for ((topic, partition), next) in &self.next {
            status.set_position(topic, *partition, *next);
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
        for ((topic, partition), events) in self.events.iter_mut().filter(|(_, e)| !e.is_empty()) {
            let key = PartitionKey::new(&self.source, &self.target, topic, *partition);
            self.store.record(&key, events).map_err(FlowError::Store)?;
            events.clear();
        }
        self.store.flush().map_err(FlowError::Store)?;
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), next) in &self.next {
            if let Err(e) = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next)) {
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
