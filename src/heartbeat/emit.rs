//! The heartbeat emitter of one flow `S → T`: every interval, one heartbeat `(S, T, now)` to
//! partition 0 of `heartbeats` on S. It never stops the run: a missing topic (created when
//! allowed) and failed deliveries are logged once per episode, counted, and retried.
//!
//! Once per flow, however many instances run: given the flow's status, an emitter emits only
//! while its instance owns partition 0 of `heartbeats` in the flow's group — the group
//! coordinator gives that partition to exactly one instance. Every instance still looks for the
//! topic and creates it when it is missing (none could own a partition of it otherwise).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use tokio::time::{Instant, MissedTickBehavior};

use super::Heartbeat;
use crate::cluster::ClusterContext;
use crate::metrics::Metrics;
use crate::naming::HEARTBEATS_TOPIC;
use crate::shutdown::CancellationToken;
use crate::status::{now_ms, FlowStatus};

/// How long one metadata or topic-creation request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a missing heartbeats topic is looked for again (at least every interval).
const TOPIC_RETRY: Duration = Duration::from_secs(10);

/// Heartbeats awaiting acknowledgement at most; beyond that a tick is skipped (a heartbeat
/// says "alive now": queueing stale ones behind a stuck cluster helps nobody).
const MAX_IN_FLIGHT: usize = 64;

/// What one emitter does.
#[derive(Debug, Clone)]
pub struct EmitterConfig {
    /// The flow's source alias: the heartbeats go to its cluster.
    pub source: String,
    /// The flow's target alias (in the key).
    pub target: String,
    /// Time between heartbeats; zero emits nothing.
    pub interval: Duration,
    /// Create `heartbeats` (1 partition) on the source when it is missing.
    pub create_topics: bool,
    /// Cancelled once the emitter first looked for the topic (created it, found it, or failed
    /// to): the flow copying heartbeats waits for that before its first topic listing, so that
    /// its group's first subscription has the topic (rather than a rebalance more right after).
    pub looked: CancellationToken,
}

/// The SOURCE cluster's shared clients.
#[derive(Clone)]
pub struct EmitterClients {
    /// Writes the heartbeats.
    pub producer: FutureProducer<ClusterContext>,
    /// Creates the heartbeats topic.
    pub admin: Arc<AdminClient<ClusterContext>>,
}

/// Emits heartbeats until `shutdown`; returns promptly then (heartbeats in flight are
/// abandoned: they carry no data). With `owner` (the flow's status), only while this instance
/// owns partition 0 of `heartbeats` in the flow's group; without, always. Problems are logged,
/// counted in `hubmirror_errors_total{kind="heartbeat_topic"|"heartbeat_delivery"}` and
/// retried.
pub async fn emit(
    cfg: EmitterConfig,
    clients: EmitterClients,
    owner: Option<Arc<FlowStatus>>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let _looked = cfg.looked.clone().drop_guard();
    if cfg.interval.is_zero() {
        return;
    }
    let beat = Heartbeat {
        source: cfg.source.clone(),
        target: cfg.target.clone(),
        timestamp_ms: 0,
    };
    let key = match beat.encode_key() {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(flow = %flow(&cfg), "cannot emit heartbeats: {e}");
            return;
        }
    };
    let mut e = Emitter {
        cfg,
        clients,
        metrics,
        key,
        topic_ready: false,
        next_topic_check: Instant::now(),
        topic_problem: None,
        delivery_failing: false,
        owner,
        owning: None,
    };
    tracing::info!(flow = %flow(&e.cfg), cluster = %e.cfg.source, topic = HEARTBEATS_TOPIC,
        "emitting heartbeats every {}", humantime::format_duration(e.cfg.interval));
    let mut in_flight: FuturesUnordered<DeliveryFuture> = FuturesUnordered::new();
    let mut ticker = tokio::time::interval(e.cfg.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            Some(outcome) = in_flight.next(), if !in_flight.is_empty() => e.delivered(outcome),
            _ = ticker.tick() => {
                if !e.topic_ready && Instant::now() >= e.next_topic_check {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = e.check_topic() => e.cfg.looked.cancel(),
                    }
                }
                if e.topic_ready && e.owns() {
                    e.send(&mut in_flight);
                }
            }
        }
    }
}

/// `source->target`, as flows name themselves in logs.
fn flow(cfg: &EmitterConfig) -> String {
    format!("{}->{}", cfg.source, cfg.target)
}

/// The emitter's state between ticks.
struct Emitter {
    cfg: EmitterConfig,
    clients: EmitterClients,
    metrics: Arc<Metrics>,
    /// The encoded key: the same for every heartbeat of this flow.
    key: Vec<u8>,
    /// `heartbeats` is known to exist on the source.
    topic_ready: bool,
    /// When to look for a missing topic again.
    next_topic_check: Instant,
    /// The topic problem last logged (one log line per episode).
    topic_problem: Option<String>,
    /// Deliveries are failing (one log line per episode).
    delivery_failing: bool,
    /// The flow's status, when only the owner of `heartbeats` partition 0 emits.
    owner: Option<Arc<FlowStatus>>,
    /// Whether this instance owned it at the last tick (`None` before the first).
    owning: Option<bool>,
}

impl Emitter {
    /// Whether this instance emits now; says so when that changes.
    fn owns(&mut self) -> bool {
        let Some(status) = &self.owner else {
            return true;
        };
        let now = status.owns(HEARTBEATS_TOPIC, 0);
        if self.owning != Some(now) {
            let verb = if now { "owns" } else { "does not own" };
            tracing::info!(flow = %flow(&self.cfg), cluster = %self.cfg.source,
                topic = HEARTBEATS_TOPIC,
                "this instance {verb} partition 0 of '{HEARTBEATS_TOPIC}' in the flow's group: \
                 {} the flow's heartbeats", if now { "emitting" } else { "another instance emits" });
            self.owning = Some(now);
        }
        now
    }

    /// Makes sure `heartbeats` exists on the source, creating it when allowed.
    async fn check_topic(&mut self) {
        match self.find_or_create_topic().await {
            Ok(()) => {
                self.topic_ready = true;
                if let Some(was) = self.topic_problem.take() {
                    tracing::info!(flow = %flow(&self.cfg), cluster = %self.cfg.source,
                        topic = HEARTBEATS_TOPIC, "heartbeats topic available again (was: {was})");
                }
            }
            Err(problem) => {
                self.next_topic_check = Instant::now() + TOPIC_RETRY.max(self.cfg.interval);
                if self.topic_problem.as_ref() != Some(&problem) {
                    tracing::error!(flow = %flow(&self.cfg), cluster = %self.cfg.source,
                        topic = HEARTBEATS_TOPIC, "{problem}; retrying every {}",
                        humantime::format_duration(TOPIC_RETRY.max(self.cfg.interval)));
                    self.count("heartbeat_topic");
                    self.topic_problem = Some(problem);
                }
            }
        }
    }

    /// `Err` is a sentence naming the topic and the cluster, and what to do.
    async fn find_or_create_topic(&self) -> Result<(), String> {
        let cluster = &self.cfg.source;
        let producer = self.clients.producer.clone();
        // All topics: asking for one by name could auto-create it with broker defaults.
        let md = tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(None, REQUEST_TIMEOUT)
        })
        .await
        .map_err(|e| format!("cannot look for the heartbeats topic on cluster '{cluster}': {e}"))?
        .map_err(|e| {
            format!("cannot list topics on cluster '{cluster}' to find '{HEARTBEATS_TOPIC}': {e}")
        })?;
        let exists = md.topics().iter().any(|t| {
            t.name() == HEARTBEATS_TOPIC && t.error().is_none() && !t.partitions().is_empty()
        });
        if exists {
            return Ok(());
        }
        let fix = format!(
            "create it with 1 partition, or turn heartbeats off on this cluster \
             (clusters.{cluster}.heartbeats: false)"
        );
        if !self.cfg.create_topics {
            return Err(format!(
                "heartbeats topic '{HEARTBEATS_TOPIC}' is missing on cluster '{cluster}' and \
                 replication.create_topics is false: {fix}"
            ));
        }
        let new = NewTopic::new(HEARTBEATS_TOPIC, 1, TopicReplication::Fixed(-1));
        let opts = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let cannot = |why: String| {
            format!(
                "cannot create heartbeats topic '{HEARTBEATS_TOPIC}' on cluster '{cluster}': \
                 {why}; {fix}"
            )
        };
        let results = self
            .clients
            .admin
            .create_topics([&new], &opts)
            .await
            .map_err(|e| cannot(e.to_string()))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(cannot(code.to_string())),
            }
        }
        tracing::info!(flow = %flow(&self.cfg), cluster = %cluster, topic = HEARTBEATS_TOPIC,
            partitions = 1, "created heartbeats topic");
        Ok(())
    }

    /// Hands one heartbeat stamped now to the producer.
    fn send(&mut self, in_flight: &mut FuturesUnordered<DeliveryFuture>) {
        if in_flight.len() >= MAX_IN_FLIGHT {
            self.failed(format!(
                "{MAX_IN_FLIGHT} heartbeats are still awaiting acknowledgement"
            ));
            return;
        }
        let now = now_ms();
        let value = Heartbeat {
            source: String::new(),
            target: String::new(),
            timestamp_ms: now,
        }
        .encode_value();
        let record = FutureRecord::to(HEARTBEATS_TOPIC)
            .partition(0)
            .key(&self.key)
            .payload(&value)
            .timestamp(now);
        match self.clients.producer.send_result(record) {
            Ok(delivery) => in_flight.push(delivery),
            Err((e, _)) => self.failed(e.to_string()),
        }
    }

    /// Handles one delivery report.
    fn delivered(&mut self, outcome: <DeliveryFuture as Future>::Output) {
        match outcome {
            Ok(Ok(_)) => {
                if self.delivery_failing {
                    self.delivery_failing = false;
                    tracing::info!(flow = %flow(&self.cfg), cluster = %self.cfg.source,
                        topic = HEARTBEATS_TOPIC, "heartbeats delivered again");
                }
            }
            Ok(Err((e, _))) => {
                if topic_vanished(&e) {
                    // Deleted under us: look for (or create) it again on the next tick.
                    self.topic_ready = false;
                    self.next_topic_check = Instant::now();
                }
                self.failed(e.to_string());
            }
            Err(_) => self.failed("the producer closed".to_string()),
        }
    }

    /// A heartbeat was not written: counted always, logged once per episode.
    fn failed(&mut self, reason: String) {
        self.count("heartbeat_delivery");
        if !self.delivery_failing {
            self.delivery_failing = true;
            tracing::error!(flow = %flow(&self.cfg), cluster = %self.cfg.source,
                topic = HEARTBEATS_TOPIC,
                "cannot write heartbeats to '{HEARTBEATS_TOPIC}' on cluster '{}': {reason}; \
                 retrying every {} (logged once until they succeed again)",
                self.cfg.source, humantime::format_duration(self.cfg.interval));
        }
    }

    fn count(&self, kind: &str) {
        self.metrics
            .errors
            .with_label_values(&[&self.cfg.source, &self.cfg.target, kind])
            .inc();
    }
}

/// Whether a delivery error means the topic is gone.
fn topic_vanished(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
    )
}
