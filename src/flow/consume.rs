//! The consume loop of a flow: reads records, builds each copy ([`super::copy`]) and hands it
//! to the target's producer, then passes a [`Pending`] to the ack task through a bounded
//! channel — when the target is slow, the channel fills and consumption waits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::Histogram;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::producer::FutureProducer;
use rdkafka::{Message, TopicPartitionList};
use tokio::sync::mpsc;

use super::acks::{Fate, Pending};
use super::dead_letter::DeadLetter;
use super::loss::{self, LossGuard};
use super::route::Route;
use super::topics::Assignment;
use super::{copy, DeliveryFailure, FlowError, OversizeRecord};
use crate::cluster::ClusterContext;
use crate::metrics::{Metrics, SkipReason};
use crate::shutdown::CancellationToken;
use crate::status::{now_ms, FlowStatus};
use crate::topology::Oversize;

/// The consume loop's state: owned by one task, so it needs no locks.
pub(super) struct ConsumeLoop {
    pub source: String,
    pub target: String,
    pub consumer: Arc<StreamConsumer<ClusterContext>>,
    pub producer: FutureProducer<ClusterContext>,
    pub metrics: Arc<Metrics>,
    pub status: Arc<FlowStatus>,
    /// What to do with records the target cannot take.
    pub oversize: Oversize,
    /// The dead-letter writer (with `oversize: dead_letter`).
    pub dead_letter: Option<Arc<DeadLetter>>,
    /// The target producer's `message.max.bytes`, for error messages.
    pub max_record_bytes: usize,
    /// Routes by source topic, with the route's `hubmirror_record_age_seconds` handle.
    pub routes: HashMap<String, (Arc<Route>, Histogram)>,
    /// The flow's `on_data_loss`, for "offset out of range" answers of the source.
    pub guard: Arc<LossGuard>,
    /// When a consume error was last logged, and how many were not logged since.
    pub quiet: (Option<Instant>, u64),
}

/// Consume errors are logged at most this often (all are counted).
const WARN_EVERY: Duration = Duration::from_secs(30);

impl ConsumeLoop {
    pub async fn run(
        mut self,
        mut assignments: mpsc::Receiver<Assignment>,
        pending: mpsc::Sender<Pending>,
        token: CancellationToken,
    ) -> Result<(), FlowError> {
        loop {
            tokio::select! {
                biased;
                _ = token.cancelled() => return Ok(()),
                Some(a) = assignments.recv() => self.assign(a)?,
                received = self.consumer.recv() => {
                    let msg = match received {
                        Ok(msg) => msg,
                        Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset)) => {
                            self.out_of_range().await?;
                            continue;
                        }
                        Err(e) => {
                            self.consume_error(e);
                            continue;
                        }
                    };
                    let Some((route, age)) = self.routes.get(msg.topic()) else {
                        continue;
                    };
                    let route = route.clone();
                    let timestamp_ms = msg.timestamp().to_millis().unwrap_or(-1);
                    if timestamp_ms > 0 {
                        age.observe((now_ms() - timestamp_ms).max(0) as f64 / 1000.0);
                    }
                    let fate = self.send(&msg, &route, &token).await?;
                    let heartbeat_ts = match (&fate, route.heartbeats) {
                        (Fate::Sent { .. }, true) => msg.payload().and_then(crate::heartbeat::decode_value),
                        _ => None,
                    };
                    let p = Pending { route, partition: msg.partition(), offset: msg.offset(), timestamp_ms, heartbeat_ts, fate };
                    drop(msg);
                    if pending.send(p).await.is_err() {
                        return Ok(()); // the ack task stopped; it reports why
                    }
                }
            }
        }
    }

    /// Hands the copy of `msg` to the producer, waiting while its queue is full.
    async fn send(
        &self,
        msg: &BorrowedMessage<'_>,
        route: &Route,
        token: &CancellationToken,
    ) -> Result<Fate, FlowError> {
        let Some(mut record) = copy::copy_of(msg, &self.source, &self.target, &route.remote_topic)
        else {
            return Ok(Fate::Skipped(SkipReason::Loop));
        };
        let bytes = msg.key().map_or(0, <[u8]>::len) + msg.payload().map_or(0, <[u8]>::len);
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    self.status.add_in_flight(1);
                    return Ok(Fate::Sent { delivery, bytes });
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    // The target is slower than the source: wait for room, not for ever if stopping.
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                        _ = token.cancelled() => return Err(FlowError::Task("stopped while the target queue was full".into())),
                    }
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {
                    return self.oversize(msg, route);
                }
                Err((e, _)) => {
                    return Err(FlowError::Delivery(Box::new(DeliveryFailure {
                        target: self.target.clone(),
                        topic: route.remote_topic.clone(),
                        partition: msg.partition(),
                        source_offset: msg.offset(),
                        source: e,
                    })))
                }
            }
        }
    }

    /// Applies the flow's `oversize` policy to a record the target's producer refused as too
    /// large.
    fn oversize(&self, msg: &BorrowedMessage<'_>, route: &Route) -> Result<Fate, FlowError> {
        let size = record_size(msg);
        let coordinates = format!(
            "topic '{}' partition {} offset {}",
            msg.topic(),
            msg.partition(),
            msg.offset()
        );
        match (self.oversize, &self.dead_letter) {
            (Oversize::Skip, _) => {
                tracing::warn!(source = %self.source, target = %self.target, "skipped an oversize record ({coordinates}, {size} bytes; oversize: skip)");
                Ok(Fate::Skipped(SkipReason::Oversize))
            }
            (Oversize::DeadLetter, Some(dl)) => {
                let delivery = dl.send(msg, &self.target, size)?;
                tracing::warn!(source = %self.source, target = %self.target, dead_letter = %dl.topic, "oversize record ({coordinates}, {size} bytes) written to the dead-letter topic");
                Ok(Fate::DeadLettered { delivery })
            }
            _ => Err(FlowError::Oversize(Box::new(OversizeRecord {
                from: self.source.clone(),
                target: self.target.clone(),
                topic: route.source_topic.to_string(),
                partition: msg.partition(),
                offset: msg.offset(),
                size,
                limit: self.max_record_bytes,
            }))),
        }
    }

    /// Starts consuming the partitions of an assignment.
    fn assign(&mut self, a: Assignment) -> Result<(), FlowError> {
        let topic = a.route.source_topic.clone();
        let mut tpl = TopicPartitionList::new();
        for (p, offset) in &a.start {
            tpl.add_partition_offset(&topic, *p, *offset)
                .map_err(|e| FlowError::Source {
                    what: format!("assigning '{topic}' partition {p}"),
                    source: e,
                })?;
        }
        self.consumer
            .incremental_assign(&tpl)
            .map_err(|e| FlowError::Source {
                what: format!("assigning '{topic}'"),
                source: e,
            })?;
        for (p, offset) in &a.start {
            let (from, next) = match offset {
                rdkafka::Offset::Offset(n) => (format!("at offset {n}"), *n),
                _ => ("from the beginning".to_string(), -1),
            };
            self.status.set_position(&topic, *p, next);
            tracing::info!(source = %self.source, target = %self.target, topic = &*topic, partition = p, remote = %a.route.remote_topic, "partition assigned, starting {from}");
        }
        let age = self
            .metrics
            .record_age
            .with_label_values(&[&self.source, &self.target, &*topic]);
        self.routes.insert(topic.to_string(), (a.route, age));
        Ok(())
    }

    /// The source answered "offset out of range" for some assigned partition (librdkafka does not
    /// say which): finds the partitions whose position lies outside their log and applies the
    /// flow's `on_data_loss` to them; when none can be identified, the run restarts (and the
    /// start positions are checked again).
    async fn out_of_range(&mut self) -> Result<(), FlowError> {
        self.consume_error(KafkaError::MessageConsumption(
            RDKafkaErrorCode::AutoOffsetReset,
        ));
        let consumer = self.consumer.clone();
        let status = self.status.clone();
        let outside = tokio::task::spawn_blocking(move || {
            loss::outside_the_log(&*consumer, |t, p| status.position(t, p))
        })
        .await
        .map_err(FlowError::join)?
        .map_err(|e| FlowError::Source {
            what: "locating the partition the source answered 'offset out of range' for".into(),
            source: e,
        })?;
        if outside.is_empty() {
            return Err(FlowError::Source {
                what: "a fetch was out of range, but every assigned partition's position lies \
                       inside its log; restarting the flow"
                    .into(),
                source: KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset),
            });
        }
        for o in outside {
            let at = if o.next < o.low {
                self.guard.check(&o.topic, o.partition, o.next, o.low)?
            } else {
                self.guard.truncated(&o)?
            };
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&o.topic, o.partition);
            let source = |e| FlowError::Source {
                what: format!(
                    "moving '{}' partition {} to offset {at}",
                    o.topic, o.partition
                ),
                source: e,
            };
            self.consumer.incremental_unassign(&tpl).map_err(source)?;
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&o.topic, o.partition, rdkafka::Offset::Offset(at))
                .map_err(source)?;
            self.consumer.incremental_assign(&tpl).map_err(source)?;
            self.status.set_position(&o.topic, o.partition, at);
        }
        Ok(())
    }

    /// Counts a consume error; logs it, at most once per [`WARN_EVERY`] (librdkafka reports
    /// one per poll while a broker is unreachable).
    fn consume_error(&mut self, e: KafkaError) {
        let now = Instant::now();
        if self.quiet.0.is_none_or(|at| now >= at + WARN_EVERY) {
            let more = std::mem::take(&mut self.quiet.1);
            let more = if more > 0 {
                format!(" ({more} more since the last warning)")
            } else {
                String::new()
            };
            tracing::warn!(source = %self.source, target = %self.target, "consume error (retrying): {e}{more}");
            self.quiet.0 = Some(now);
        } else {
            self.quiet.1 += 1;
        }
        self.metrics
            .errors
            .with_label_values(&[&self.source, &self.target, "consume"])
            .inc();
    }
}

/// Key, value and header bytes of a record: what librdkafka compares with `message.max.bytes`.
fn record_size(msg: &BorrowedMessage<'_>) -> usize {
    let headers = msg.headers().map_or(0, |h| {
        h.iter()
            .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
            .sum()
    });
    msg.key().map_or(0, <[u8]>::len) + msg.payload().map_or(0, <[u8]>::len) + headers
}
