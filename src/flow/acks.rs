//! The acknowledgement side of a flow. The consume loop sends one [`Pending`] per consumed
//! record, in consumption order, through a bounded channel (the bound is the flow's
//! back-pressure). This task awaits each delivery in that order, so the position it commits for
//! a partition is always the end of a contiguous run of acknowledged records: at-least-once,
//! nothing skipped, whatever stops the process.

use std::collections::HashMap;
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
use crate::shutdown::CancellationToken;
use crate::status::FlowStatus;

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
    /// Deliberately not written (loop rule); done as soon as it is reached.
    Skipped,
}

/// Awaits deliveries in order and commits contiguous positions until the consume loop closes
/// the channel (or a delivery fails, or the drain deadline passes after `shutdown`).
pub async fn run(
    mut rx: mpsc::Receiver<Pending>,
    consumer: Arc<StreamConsumer<ClusterContext>>,
    target: String,
    status: Arc<FlowStatus>,
    shutdown: CancellationToken,
) -> Result<(), FlowError> {
    let mut positions = Positions::default();
    let mut rate = Rate::new(&status);
    let mut next_commit = Instant::now() + COMMIT_INTERVAL;
    let mut drain_deadline: Option<Instant> = None;
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
                positions.commit(&consumer, CommitMode::Async);
                rate.update(&status);
                next_commit = Instant::now() + COMMIT_INTERVAL;
                continue;
            }
        };
        let acked = match pending.fate {
            Fate::Skipped => {
                pending.route.skipped_loop.inc();
                Ok(())
            }
            Fate::Sent { delivery, bytes } => {
                let mut delivery = delivery;
                // Wait for the acknowledgement; once stopping, only until the drain deadline.
                let outcome = loop {
                    let deadline = match drain_deadline {
                        Some(d) => d,
                        None => tokio::select! {
                            o = &mut delivery => break Some(o),
                            _ = shutdown.cancelled() => {
                                drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
                                continue;
                            }
                        },
                    };
                    break tokio::time::timeout_at(deadline, &mut delivery).await.ok();
                };
                let Some(outcome) = outcome else {
                    tracing::warn!(target = %target, "stop: in-flight records not acknowledged within {DRAIN_TIMEOUT:?}; they will be replicated again");
                    break Ok(());
                };
                status.add_in_flight(-1);
                match outcome {
                    Ok(Ok(_)) => {
                        pending.route.replicated.inc();
                        pending.route.bytes.inc_by(bytes as u64);
                        status.add_replicated(1);
                        if let Some(ts) = pending.heartbeat_ts {
                            status.heartbeat_replicated(ts);
                        }
                        Ok(())
                    }
                    Ok(Err((e, _))) => Err(FlowError::Delivery(Box::new(DeliveryFailure {
                        target: target.clone(),
                        topic: pending.route.remote_topic.clone(),
                        partition: pending.partition,
                        source_offset: pending.offset,
                        source: e,
                    }))),
                    Err(_canceled) => Err(FlowError::ProducerGone),
                }
            }
        };
        match acked {
            Ok(()) => positions.ack(&pending.route, pending.partition, pending.offset),
            Err(e) => break Err(e),
        }
        if Instant::now() >= next_commit && drain_deadline.is_none() {
            positions.commit(&consumer, CommitMode::Async);
            rate.update(&status);
            next_commit = Instant::now() + COMMIT_INTERVAL;
        }
    };
    // Whatever ended the loop, what was acknowledged is committed before returning.
    positions.commit(&consumer, CommitMode::Sync);
    result
}

/// Next offset to commit per source (topic, partition), and whether it changed since the last
/// commit.
#[derive(Default)]
struct Positions {
    next: HashMap<(Arc<str>, i32), i64>,
    dirty: bool,
}

impl Positions {
    fn ack(&mut self, route: &Arc<Route>, partition: i32, offset: i64) {
        self.next
            .insert((route.source_topic.clone(), partition), offset + 1);
        self.dirty = true;
    }

    fn commit(&mut self, consumer: &StreamConsumer<ClusterContext>, mode: CommitMode) {
        if !self.dirty {
            return;
        }
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
