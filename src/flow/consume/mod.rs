//! The consume loop of a flow: reads records, builds each copy ([`super::copy`]) and hands it
//! to the target's producer, numbered for the delivery [`Board`], then passes the records to the
//! ack task in [`Batch`]es through a bounded channel — when the target is slow, the channel fills
//! and consumption waits.
//!
//! The hot path is batch-oriented: one long-lived message stream, every record that is already
//! fetched drained without waiting, one clock read and one channel send per batch, no
//! allocation per record beyond librdkafka's own. What the loop does about its source besides
//! reading records ("offset out of range" answers, consume errors) is in `source`; its part in
//! the group protocol (subscribing, starting assigned partitions, handing revoked ones over,
//! stopping when fenced) in `membership`.

pub(super) mod membership;
mod park;
mod source;
mod waiting;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use prometheus::local::LocalHistogram;
use prometheus::Histogram;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::BorrowedMessage;
use rdkafka::Message;
use tokio::sync::mpsc;

use super::acks::{Batch, Fate, Pending, Work};
use super::board::{Board, FlowProducer};
use super::copy::{self, Scratch};
use super::group::{FlowConsumer, GroupEvent};
use super::loss::LossGuard;
use super::oversize::OversizePolicy;
use super::route::Route;
use super::{DeliveryFailure, FlowError};
use crate::metrics::{Metrics, SkipReason};
use crate::shutdown::CancellationToken;
use crate::status::{now_ms, FlowStatus};
use crate::topology::Cluster;

/// Records per [`Batch`] at most.
pub const MAX_BATCH: usize = 1024;
/// Batches in the channel to the ack task at most: with [`MAX_BATCH`], about 50,000 records
/// consumed but not yet settled (the delivery board bounds those sent to the target too).
pub const BATCHES_IN_FLIGHT: usize = 48;
/// Records drained without waiting before the loop looks at stop requests and assignments.
const DRAIN_AT_MOST: usize = 4 * MAX_BATCH;
/// How often a parked loop looks whether the group coordinator answered again.
const PARKED_CHECK: Duration = Duration::from_millis(100);
/// How long the loop sleeps while the target's queue (or the board) is full.
const FULL_WAIT: Duration = Duration::from_millis(1);

/// The consume loop's state: owned by one task, so it needs no locks.
pub(super) struct ConsumeLoop {
    pub source: String,
    pub target: String,
    pub consumer: Arc<FlowConsumer>,
    pub producer: FlowProducer,
    /// The loop's group state.
    pub group: membership::Membership,
    /// Where the producer reports deliveries; bounds the records in flight.
    pub board: Arc<Board>,
    /// The number of the next record handed to the producer.
    pub seq: u64,
    pub metrics: Arc<Metrics>,
    pub status: Arc<FlowStatus>,
    /// What to do with records the target cannot take.
    pub oversize: OversizePolicy,
    /// Routes by source topic, with the route's `hubmirror_record_age_seconds` handle.
    pub routes: HashMap<String, (Arc<Route>, Histogram)>,
    /// The flow's `on_data_loss`, for "offset out of range" answers of the source.
    pub guard: Arc<LossGuard>,
    /// The source cluster: where a partition's real end is read when that answer comes.
    pub source_cluster: Cluster,
    /// When a consume error was last logged, and how many were not logged since.
    pub quiet: (Option<Instant>, u64),
    /// The batch being filled.
    pub open: Option<OpenBatch>,
    /// Reused buffers for the copies' headers.
    pub scratch: Scratch,
}

/// A batch being filled, with what it adds to the metrics when sent.
pub(super) struct OpenBatch {
    batch: Batch,
    /// `hubmirror_record_age_seconds` observations, flushed with the batch.
    age: LocalHistogram,
    /// When the batch was opened (ms since the epoch): the ages are measured against it.
    now_ms: i64,
    /// Records of the batch handed to the producer.
    sent: i64,
}

impl ConsumeLoop {
    pub async fn run(
        mut self,
        routes: mpsc::Receiver<Vec<Arc<Route>>>,
        pending: mpsc::Sender<Work>,
        token: CancellationToken,
    ) -> (Result<(), FlowError>, Vec<GroupEvent>) {
        let result = self.consume(routes, &pending, &token).await;
        // Whatever ended the loop, the records already handed to the producer go to the ack
        // task, which waits for their delivery (within its drain deadline) before committing.
        self.flush(&pending).await;
        (result, self.unapplied())
    }

    async fn consume(
        &mut self,
        mut routes: mpsc::Receiver<Vec<Arc<Route>>>,
        pending: &mpsc::Sender<Work>,
        token: &CancellationToken,
    ) -> Result<(), FlowError> {
        let consumer = self.consumer.clone();
        let events = self.group.events.clone();
        let mut stream = consumer.stream();
        loop {
            if events.pending() && self.group.starting.is_none() {
                self.apply_group_events(pending).await?;
            }
            if let Some(grown) = self.group.take_grown() {
                self.begin_start(grown);
            }
            if self.group.parked.is_some() {
                self.unpark(pending).await?;
            }
            let parked = self.group.parked.is_some();
            let first = tokio::select! {
                biased;
                _ = token.cancelled() => return Ok(()),
                Some(r) = routes.recv() => {
                    self.add_routes(r)?;
                    continue;
                }
                started = membership::started(&mut self.group.starting), if self.group.starting.is_some() => {
                    self.finish_start(started)?;
                    continue;
                }
                _ = events.arrived(), if self.group.starting.is_none() => continue,
                _ = tokio::time::sleep(PARKED_CHECK), if parked => continue,
                received = stream.next() => received,
            };
            // Everything already fetched goes through without waiting, then the batch is sent.
            let mut next = first;
            let mut drained = 0;
            while let Some(received) = next {
                match received {
                    Ok(msg) => {
                        if !self.record(&msg, pending, token).await? {
                            return Ok(()); // the ack task stopped; it reports why
                        }
                    }
                    Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset)) => {
                        if !self.flush(pending).await {
                            return Ok(());
                        }
                        self.out_of_range().await?;
                    }
                    Err(e) => self.consume_error(e),
                }
                drained += 1;
                if drained >= DRAIN_AT_MOST || self.group.parked.is_some() {
                    break;
                }
                next = stream.next().now_or_never().flatten();
            }
            if !self.flush(pending).await {
                return Ok(());
            }
        }
    }

    /// Copies one record (or decides not to) and adds it to the open batch. `false` when the
    /// ack task stopped.
    async fn record(
        &mut self,
        msg: &BorrowedMessage<'_>,
        pending: &mpsc::Sender<Work>,
        token: &CancellationToken,
    ) -> Result<bool, FlowError> {
        let topic = msg.topic();
        if self.group.is_gone(topic, msg.partition()) {
            return Ok(true); // handed over or lost: its new owner copies it
        }
        if !self.may_copy(msg, pending).await? {
            return Ok(true); // parked: read again once copying resumes
        }
        let same_route = self
            .open
            .as_ref()
            .is_some_and(|o| &*o.batch.route.source_topic == topic);
        if !same_route {
            if !self.flush(pending).await {
                return Ok(false);
            }
            let Some((route, age)) = self.routes.get(topic) else {
                return Ok(true);
            };
            self.open = Some(OpenBatch {
                batch: Batch {
                    route: route.clone(),
                    records: Vec::with_capacity(64),
                },
                age: age.local(),
                now_ms: now_ms(),
                sent: 0,
            });
        }
        let (route, timestamp_ms) = {
            let Some(open) = self.open.as_ref() else {
                return Ok(true);
            };
            let timestamp_ms = msg.timestamp().to_millis().unwrap_or(-1);
            if timestamp_ms > 0 {
                open.age
                    .observe((open.now_ms - timestamp_ms).max(0) as f64 / 1000.0);
            }
            (open.batch.route.clone(), timestamp_ms)
        };
        let fate = self.send(msg, topic, &route, pending, token).await?;
        let Some(fate) = fate else {
            return Ok(false);
        };
        let heartbeat_ts = match (&fate, route.heartbeats) {
            (Fate::Sent { .. }, true) => msg.payload().and_then(crate::heartbeat::decode_value),
            _ => None,
        };
        let Some(open) = self.open.as_mut() else {
            return Ok(true);
        };
        if matches!(fate, Fate::Sent { .. }) {
            open.sent += 1;
        }
        open.batch.records.push(Pending {
            partition: msg.partition(),
            offset: msg.offset(),
            timestamp_ms,
            heartbeat_ts,
            fate,
        });
        if open.batch.records.len() >= MAX_BATCH {
            return Ok(self.flush(pending).await);
        }
        Ok(true)
    }

    /// Sends the open batch to the ack task. `false` when the ack task stopped.
    async fn flush(&mut self, pending: &mpsc::Sender<Work>) -> bool {
        let Some(open) = self.open.take() else {
            return true;
        };
        open.age.flush();
        if open.batch.records.is_empty() {
            return true;
        }
        self.status.add_in_flight(open.sent);
        pending.send(Work::Records(open.batch)).await.is_ok()
    }

    /// Hands the copy of `msg` to the producer, waiting while its queue (or the delivery board)
    /// is full. `None` when the ack task stopped while waiting.
    async fn send(
        &mut self,
        msg: &BorrowedMessage<'_>,
        topic: &str,
        route: &Route,
        pending: &mpsc::Sender<Work>,
        token: &CancellationToken,
    ) -> Result<Option<Fate>, FlowError> {
        while !self.board.has_room(self.seq) {
            // The ack task frees room as it takes outcomes: hand it what is open, then wait.
            if !self.flush(pending).await {
                return Ok(None);
            }
            Self::wait_for_room(token).await?;
        }
        let seq = self.seq;
        let Some(mut record) = copy::copy_of(
            msg,
            topic,
            (&self.source, &self.target),
            &route.remote_topic,
            seq as usize,
            &mut self.scratch,
        ) else {
            return Ok(Some(Fate::Skipped(SkipReason::Loop)));
        };
        let bytes = msg.key().map_or(0, <[u8]>::len) + msg.payload().map_or(0, <[u8]>::len);
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.seq += 1;
                    return Ok(Some(Fate::Sent {
                        seq,
                        bytes: bytes as u32,
                    }));
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    // The target is slower than the source: wait for room, not for ever if stopping.
                    Self::wait_for_room(token).await?;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {
                    return self
                        .oversize
                        .apply(msg, route, (&self.source, &self.target))
                        .map(Some);
                }
                Err((e, _)) => {
                    return Err(FlowError::Delivery(Box::new(DeliveryFailure {
                        target: self.target.clone(),
                        topic: route.remote_topic.clone(),
                        partition: msg.partition(),
                        source_offset: msg.offset(),
                        source: e,
                        cause: None,
                    })))
                }
            }
        }
    }

    /// Waits a moment for the target to catch up; fails if the flow is stopping meanwhile.
    async fn wait_for_room(token: &CancellationToken) -> Result<(), FlowError> {
        tokio::select! {
            _ = tokio::time::sleep(FULL_WAIT) => Ok(()),
            _ = token.cancelled() => Err(FlowError::Task("stopped while the target queue was full".into())),
        }
    }
}
