//! The acknowledgement side of a flow. The consume loop sends its records in [`Batch`]es, in
//! consumption order, through a bounded channel (the bound is the flow's back-pressure). This
//! task takes each record's outcome from the delivery [`Board`] in that order, so the position it
//! commits for a partition is always the end of a contiguous run of acknowledged records:
//! at-least-once, nothing skipped, whatever stops the process. Metrics and status are updated
//! once per batch, not per record; what is acknowledged per partition, and its commit (store
//! first), is [`super::positions`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::CommitMode;
use rdkafka::producer::DeliveryFuture;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::board::Board;
use super::group::{FlowConsumer, Partitions};
use super::positions::Positions;
use super::route::Route;
use super::stamp::CommitStamp;
use super::{DeliveryFailure, FlowError};
use crate::metrics::SkipReason;
use crate::shutdown::CancellationToken;
use crate::status::{now_ms, FlowStatus};
use crate::store::Store;

/// How often acknowledged positions are committed to the source while running
/// (Event Hubs throttles commits to 4/s per partition).
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// How long a stop may wait for in-flight deliveries before committing what was acknowledged.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(7);

/// What the consume loop sends the ack task, in order.
pub enum Work {
    /// Records to settle.
    Records(Batch),
    /// Partitions to hand over once every record sent before is settled: record the store,
    /// commit synchronously, forget them; then answer on `done`.
    HandOver {
        /// The partitions revoked.
        partitions: Partitions,
        /// Where the outcome goes.
        done: oneshot::Sender<Result<(), FlowError>>,
    },
    /// Partitions that are no longer this instance's and must not be committed (lost, or
    /// fenced): forget them.
    Forget(Partitions),
}

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
    pub consumer: Arc<FlowConsumer>,
    /// Source cluster alias.
    pub source: String,
    /// Target cluster alias.
    pub target: String,
    /// The flow's live status.
    pub status: Arc<FlowStatus>,
    /// The offset-translation store: every acknowledged batch is recorded there before the
    /// source offsets that cover it are committed.
    pub store: Store,
    /// Names the target in the metadata of every commit.
    pub stamp: Arc<CommitStamp>,
    /// Where the target producer's delivery reports land.
    pub board: Arc<Board>,
}

/// Awaits deliveries in order and commits contiguous positions until the consume loop closes
/// the channel (or the drain deadline passes after `shutdown`). A failed delivery cancels
/// `shutdown` (the consume loop stops), the rest in flight settles, and the first failure is
/// returned after committing what was acknowledged.
pub async fn run(
    mut rx: mpsc::Receiver<Work>,
    ctx: AckContext,
    shutdown: CancellationToken,
) -> Result<(), FlowError> {
    let mut acks = Acks {
        positions: Positions::new(
            &ctx.source,
            &ctx.target,
            ctx.store.clone(),
            ctx.stamp.clone(),
        ),
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
            w = rx.recv() => match w {
                Some(Work::Records(batch)) => {
                    if acks.batch(batch).await == Flow::Stop {
                        break Ok(());
                    }
                }
                Some(Work::HandOver { partitions, done }) => {
                    let handed = acks.hand_over(&partitions);
                    let failed = handed.is_err();
                    let _ = done.send(handed);
                    if failed {
                        break Ok(());
                    }
                }
                Some(Work::Forget(partitions)) => acks.positions.forget(&partitions),
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
            if acks.ctx.status.idle_settled() {
                tracing::info!(source = %acks.ctx.source, target = %acks.ctx.target, "recovered: nothing was left to copy");
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
    /// Record timestamp → acknowledgement of the batch's newest record with a timestamp, ms.
    newest_latency_ms: Option<i64>,
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
                                tally.newest_latency_ms = Some(now - p.timestamp_ms);
                            }
                            if let Some(ts) = p.heartbeat_ts {
                                self.ctx.status.heartbeat_replicated(ts);
                            }
                            if downstream < 0 {
                                // Written, position unknown: nothing past it is recorded or
                                // committed; the next run finds the copy in the target's tail.
                                Err(FlowError::Unplaced {
                                    target: self.ctx.target.clone(),
                                    topic: route.remote_topic.to_string(),
                                    partition: p.partition,
                                    source_offset: p.offset,
                                })
                            } else {
                                Ok(Some(downstream))
                            }
                        }
                        Err(e) => Err(failure(
                            &self.ctx.target,
                            &route.remote_topic,
                            p.partition,
                            p.offset,
                            {
                                let cause = self.ctx.board.cause_of(&e);
                                (e, cause)
                            },
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
            if let Some(ms) = tally.newest_latency_ms {
                status.record_latency(ms);
            }
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
                (e, None),
            )),
            Err(_canceled) => Err(FlowError::ProducerGone),
        })
    }

    /// Hands `partitions` over (every record sent before them is settled by now, in order):
    /// unless a delivery of theirs failed, records and commits them synchronously.
    fn hand_over(&mut self, partitions: &[(String, i32)]) -> Result<(), FlowError> {
        if let Some(e) = &self.failed {
            // A failed delivery stops the run; the new owner resumes after the target's last
            // copy. Nothing past the failure may be committed.
            self.positions.forget(partitions);
            return Err(FlowError::Task(format!(
                "cannot hand partitions over after a failed delivery: {e}"
            )));
        }
        self.positions.hand_over(&self.ctx.consumer, partitions)?;
        self.positions.publish(&self.ctx.status);
        Ok(())
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
    (e, cause): (
        rdkafka::error::KafkaError,
        Option<rdkafka::error::KafkaError>,
    ),
) -> FlowError {
    FlowError::Delivery(Box::new(DeliveryFailure {
        target: cluster.to_string(),
        topic: topic.to_string(),
        partition,
        source_offset,
        source: e,
        cause,
    }))
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
