//! One flow: records move one way, source → target.
//!
//! Three tasks per flow, joined by channels:
//! - discovery ([`topics`]) finds the source topics to replicate, makes sure their remote topics
//!   can take them, and hands new partitions (with their start offsets) to the consume loop;
//! - the consume loop (here) reads records, builds each copy ([`copy`]) and hands it to the
//!   target's producer, then passes a [`acks::Pending`] to the ack task through a bounded
//!   channel — when the target is slow, the channel fills and consumption waits;
//! - the ack task ([`acks`]) awaits deliveries in order and commits source offsets only up to
//!   the last contiguous acknowledged record.

pub mod acks;
mod copy;
mod route;
mod topics;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;
use rdkafka::{Message, TopicPartitionList};
use tokio::sync::mpsc;

pub use route::Route;
pub use topics::{Assignment, Discovery, DiscoveryClients};

use crate::cluster::ClusterContext;
use crate::metrics::Metrics;
use crate::naming::Naming;
use crate::shutdown::CancellationToken;
use crate::status::{FlowState, FlowStatus};
use crate::store::Store;
use crate::topology::Flow;
use acks::{Fate, Pending};

/// Records consumed but not yet acknowledged by the target, at most, per flow.
const IN_FLIGHT: usize = 50_000;

/// An error that stops a flow. Each names the cluster, topic and what to do where it can.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// A request to the source cluster failed.
    #[error("source cluster: {what}: {source}")]
    Source { what: String, source: KafkaError },
    /// A request to the target cluster failed.
    #[error("target cluster: {what}: {source}")]
    Target { what: String, source: KafkaError },
    /// The target refused a record for good (librdkafka already retried what can be retried).
    #[error(transparent)]
    Delivery(Box<DeliveryFailure>),
    /// The producer was dropped while records were in flight.
    #[error("the target producer closed with records in flight")]
    ProducerGone,
    /// The offset-translation store failed: replicating on without recording would break
    /// failover, so the flow stops.
    #[error("offset-translation store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// A background task panicked or was cancelled.
    #[error("internal task failed: {0}")]
    Task(String),
}

/// A record the target did not take.
#[derive(Debug, thiserror::Error)]
#[error("writing to topic '{topic}' partition {partition} on cluster '{target}' failed (source offset {source_offset}): {source}")]
pub struct DeliveryFailure {
    /// Target cluster alias.
    pub target: String,
    /// Remote topic.
    pub topic: String,
    /// Partition (same number on both sides).
    pub partition: i32,
    /// Offset of the record on the source.
    pub source_offset: i64,
    /// librdkafka's error.
    pub source: KafkaError,
}

impl FlowError {
    fn join(e: tokio::task::JoinError) -> Self {
        FlowError::Task(e.to_string())
    }
}

/// Everything a flow needs to run.
pub struct FlowSetup {
    /// The flow, from the topology.
    pub flow: Flow,
    /// Remote naming.
    pub naming: Naming,
    /// Whether missing remote topics are created.
    pub create_topics: bool,
    /// Whether heartbeats topics are copied (the target's `heartbeats` switch).
    pub heartbeats_to_target: bool,
    /// How often source topics are listed again.
    pub refresh_interval: Duration,
    /// The source consumer, the target producer and admin client.
    pub clients: DiscoveryClients,
    /// Shared metrics.
    pub metrics: Arc<Metrics>,
    /// This flow's live status (read by `/status` and `/readyz`).
    pub status: Arc<FlowStatus>,
    /// The offset-translation store.
    pub store: Store,
}

/// Runs the flow until `shutdown` is cancelled (then drains and commits) or it fails.
pub async fn run(setup: FlowSetup, shutdown: CancellationToken) -> Result<(), FlowError> {
    let name = setup.flow.name();
    let token = shutdown.child_token();
    let consumer = setup.clients.consumer.clone();
    let producer = setup.clients.producer.clone();
    let (source, target) = (setup.flow.source.clone(), setup.flow.target.clone());

    let (pending_tx, pending_rx) = mpsc::channel(IN_FLIGHT);
    let acks = {
        let ctx = acks::AckContext {
            consumer: consumer.clone(),
            source: source.clone(),
            target: target.clone(),
            status: setup.status.clone(),
            store: setup.store.clone(),
        };
        let token = token.clone();
        tokio::spawn(async move {
            let result = acks::run(pending_rx, ctx, token.clone()).await;
            if result.is_err() {
                token.cancel();
            }
            result
        })
    };

    let (assign_tx, assign_rx) = mpsc::channel(16);
    let discovery = Discovery::new(
        setup.flow,
        setup.naming,
        setup.create_topics,
        setup.heartbeats_to_target,
        setup.clients,
        setup.metrics.clone(),
    );
    let discovery = tokio::spawn(discover(
        discovery,
        setup.refresh_interval,
        assign_tx,
        (setup.status.clone(), setup.store.clone()),
        token.clone(),
    ));

    tracing::info!(flow = %name, "flow started");
    let loop_ctx = ConsumeLoop {
        source,
        target,
        consumer,
        producer,
        metrics: setup.metrics,
        status: setup.status.clone(),
        routes: HashMap::new(),
    };
    let consumed = loop_ctx.run(assign_rx, pending_tx, token.clone()).await;
    setup.status.set_state(FlowState::Stopping);
    if consumed.is_err() {
        token.cancel();
    }
    discovery.abort();
    let acked = acks.await.map_err(FlowError::join);
    let result = consumed.and(acked.and_then(|r| r));
    setup.status.set_state(if result.is_ok() {
        FlowState::Stopped
    } else {
        FlowState::Failed
    });
    tracing::info!(flow = %name, "flow stopped");
    result
}

/// Lists topics every `interval` (sooner after a failure), forwards new partitions, and prunes
/// the store below the source's log start.
async fn discover(
    mut discovery: Discovery,
    interval: Duration,
    tx: mpsc::Sender<Assignment>,
    (status, store): (Arc<FlowStatus>, Store),
    token: CancellationToken,
) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let wait = match discovery.refresh().await {
            Ok(assignments) => {
                for a in assignments {
                    if tx.send(a).await.is_err() {
                        return;
                    }
                }
                backoff = Duration::from_millis(500);
                if status.state() == FlowState::Starting {
                    status.set_state(FlowState::Running);
                }
                match discovery.prune(&store).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::debug!("pruned {n} store segments below the source's log start")
                    }
                    Err(e) => tracing::debug!("pruning the store skipped this round: {e}"),
                }
                interval
            }
            Err(e) => {
                tracing::warn!("topic discovery failed, retrying in {backoff:?}: {e}");
                let wait = backoff;
                backoff = (backoff * 2).min(interval);
                wait
            }
        };
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// The consume loop's state: owned by one task, so it needs no locks.
struct ConsumeLoop {
    source: String,
    target: String,
    consumer: Arc<StreamConsumer<ClusterContext>>,
    producer: FutureProducer<ClusterContext>,
    metrics: Arc<Metrics>,
    status: Arc<FlowStatus>,
    /// Routes by source topic.
    routes: HashMap<String, Arc<Route>>,
}

impl ConsumeLoop {
    async fn run(
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
                        Err(e) => {
                            self.consume_error(e);
                            continue;
                        }
                    };
                    let Some(route) = self.routes.get(msg.topic()).cloned() else {
                        continue;
                    };
                    let fate = self.send(&msg, &route, &token).await?;
                    let heartbeat_ts = match (&fate, route.heartbeats) {
                        (Fate::Sent { .. }, true) => msg.payload().and_then(crate::heartbeat::decode_value),
                        _ => None,
                    };
                    let p = Pending { route, partition: msg.partition(), offset: msg.offset(), heartbeat_ts, fate };
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
        msg: &rdkafka::message::BorrowedMessage<'_>,
        route: &Route,
        token: &CancellationToken,
    ) -> Result<Fate, FlowError> {
        let Some(mut record) = copy::copy_of(msg, &self.source, &self.target, &route.remote_topic)
        else {
            return Ok(Fate::Skipped);
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
            let from = match offset {
                rdkafka::Offset::Offset(n) => format!("at committed offset {n}"),
                _ => "from the beginning (no committed offset)".to_string(),
            };
            tracing::info!(source = %self.source, target = %self.target, topic = &*topic, partition = p, remote = %a.route.remote_topic, "partition assigned, starting {from}");
        }
        self.routes.insert(topic.to_string(), a.route);
        Ok(())
    }

    fn consume_error(&self, e: KafkaError) {
        tracing::warn!(source = %self.source, target = %self.target, "consume error (retrying): {e}");
        self.metrics
            .errors
            .with_label_values(&[&self.source, &self.target, "consume"])
            .inc();
    }
}
