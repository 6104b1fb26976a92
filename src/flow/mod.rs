//! One flow: records move one way, source → target.
//!
//! Any number of instances of a topology may run a flow: its source partitions are shared out
//! by the flow's consumer group on the source ([`group`]); each instance replicates the ones the
//! group coordinator gives it, and hands them over exactly when they move.
//!
//! Three tasks per flow run, joined by channels:
//! - discovery ([`topics`]) finds the source topics to replicate, makes sure their remote topics
//!   can take them, and hands their routes to the consume loop, which subscribes the group to
//!   them;
//! - the consume loop ([`consume`]) starts the partitions the group assigns (where each starts:
//!   [`start`]), reads records, builds each copy ([`copy`]) and hands it to the target's
//!   producer, then passes the records, in [`acks::Batch`]es, to the ack task through a bounded
//!   channel — when the target is slow, the channel fills and consumption waits;
//! - the ack task ([`acks`]) takes each record's delivery outcome from the run's delivery
//!   [`board`] in consumption order and commits source offsets only up to the last contiguous
//!   acknowledged record.
//!
//! A run that fails for a transient reason (the target throttled past its timeout, a request
//! timed out for good, a connection broke) ends after committing what was acknowledged; [`run`]
//! then starts the flow again with a new consumer and producer, after a backoff, from the
//! committed offsets. The flow's producer has `enable.gapless.guarantee`: after a batch failed
//! for good no later batch is written, so the restart resumes in order with nothing skipped.

pub mod acks;
mod board;
mod consume;
mod copy;
mod dead_letter;
mod error;
mod fresh;
mod group;
mod liveness;
mod loss;
mod oversize;
mod positions;
mod remote;
mod resume;
mod route;
pub mod stamp;
mod start;
pub mod topic_configs;
mod topics;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::consumer::Consumer;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use dead_letter::DeadLetter;
pub use error::{DataLoss, DeliveryFailure, FlowError, OversizeRecord};
pub use route::Route;
pub use topics::{Discovery, DiscoveryClients};

use crate::cluster::{clients, ClusterContext, FatalClusterError};
use crate::metrics::Metrics;
use crate::naming::Naming;
use crate::shutdown::CancellationToken;
use crate::status::{FlowState, FlowStatus};
use crate::store::Store;
use crate::topology::{Cluster, Flow};
use board::{Board, FlowProducer, FlowProducerContext};
use consume::membership::Membership;
use consume::ConsumeLoop;
use group::{FlowConsumer, GroupContext};
use loss::LossGuard;
use resume::TailReader;
use start::Starter;

/// First wait before a restart; doubled after each failed run, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run that lasted this long resets the backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Builds a flow's own clients, afresh for every run: the source consumer (its statistics go to
/// the flow's status) and the target producer.
pub struct Connector {
    /// The source cluster.
    pub source: Cluster,
    /// The target cluster.
    pub target: Cluster,
    /// The flow's consumer group on the source: its coordinator shares the partitions out
    /// among the instances running this topology.
    pub group: String,
    /// This instance's name: its client id in the group (and its `group.instance.id` with
    /// static membership).
    pub instance: String,
    /// `replication.static_membership`.
    pub static_membership: bool,
    /// Where clients report errors no restart fixes (authentication, untrusted certificate).
    pub fatal: mpsc::UnboundedSender<FatalClusterError>,
}

impl Connector {
    fn connect(&self, status: &FlowStatus) -> Result<RunClients, FlowError> {
        let err = |alias: &str, role| {
            let alias = alias.to_string();
            move |source| FlowError::Client {
                alias,
                role,
                source,
            }
        };
        let session = clients::session_timeout(&self.source);
        let ctx = GroupContext::new(
            clients::context(&self.source, self.fatal.clone())
                .with_stats(status.source_stats.clone()),
            session / 2,
        );
        let consumer = clients::flow_consumer(
            &self.source,
            &self.group,
            (&self.instance, self.static_membership),
            ctx,
        )
        .map_err(err(&self.source.alias, "consumer"))?;
        let board = Arc::new(Board::default());
        let ctx = FlowProducerContext {
            cluster: clients::context(&self.target, self.fatal.clone()).for_flow_producer(),
            board: board.clone(),
        };
        // Half the session timeout: see `clients::flow_producer`.
        let producer = clients::flow_producer(&self.target, ctx, session / 2)
            .map_err(err(&self.target.alias, "producer"))?;
        let _ = consumer.context().producer.set(producer.clone());
        let reader =
            clients::tail_reader(&self.target).map_err(err(&self.target.alias, "tail reader"))?;
        let reader = Arc::new(TailReader::new(reader));
        // Read from only at (re)starts: its idle connections still re-authenticate.
        crate::cluster::oauth::keep_fresh(&self.target.alias, &reader);
        Ok(RunClients {
            consumer: Arc::new(consumer),
            producer,
            board,
            reader,
        })
    }
}

/// The clients of one run of a flow.
struct RunClients {
    /// The source consumer.
    consumer: Arc<FlowConsumer>,
    /// The target producer.
    producer: FlowProducer,
    /// Where the producer's delivery reports land.
    board: Arc<Board>,
    /// Reads the target's partitions back before resuming.
    reader: Arc<TailReader>,
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
    /// When the flow copies heartbeats: cancelled once this instance's emitter looked for (or
    /// created) `heartbeats` on the source; the first listing waits for it (at most
    /// [`topics::HEARTBEATS_WAIT`]).
    pub heartbeats_looked: Option<CancellationToken>,
    /// Builds the flow's consumer and producer.
    pub connector: Connector,
    /// The target's admin client (topic creation), shared with other tasks.
    pub target_admin: Arc<AdminClient<ClusterContext>>,
    /// The dead-letter writer, when the flow's `oversize` is `dead_letter`.
    pub dead_letter: Option<Arc<DeadLetter>>,
    /// Topic config sync, when `replication.sync_topic_configs` is on.
    pub topic_configs: Option<Arc<topic_configs::ConfigSync>>,
    /// Shared metrics.
    pub metrics: Arc<Metrics>,
    /// This flow's live status (read by `/status` and `/readyz`).
    pub status: Arc<FlowStatus>,
    /// The offset-translation store.
    pub store: Store,
}

/// Runs the flow until `shutdown` is cancelled (then drains and commits), restarting it after
/// transient failures; returns the first failure no restart can fix.
pub async fn run(setup: FlowSetup, shutdown: CancellationToken) -> Result<(), FlowError> {
    let name = setup.flow.name();
    let labels = [setup.flow.source.as_str(), setup.flow.target.as_str()];
    if let Some(dl) = &setup.dead_letter {
        if setup.create_topics {
            if let Err(reason) = dl.ensure_topic().await {
                tracing::error!(flow = %name, "{reason}");
            }
        }
    }
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        let result = run_once(&setup, shutdown.clone()).await;
        let e = match result {
            Ok(()) => return Ok(()),
            Err(e) if !e.is_transient() => {
                setup.status.set_state(FlowState::Failed);
                return Err(e);
            }
            // Stopping anyway: what was acknowledged is committed; the rest is replayed on start.
            Err(e) if shutdown.is_cancelled() => {
                tracing::warn!(flow = %name, "while stopping: {e}");
                return Ok(());
            }
            Err(e) => e,
        };
        if started.elapsed() >= HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        let kind = e.kind();
        setup
            .metrics
            .errors
            .with_label_values(&[labels[0], labels[1], kind])
            .inc();
        setup.metrics.flow_restarts.with_label_values(&labels).inc();
        setup.status.set_recovering();
        setup.status.set_state(FlowState::Recovering);
        let what = match kind {
            "throttled" => "throttled by the target",
            "timeout" => "timed out",
            _ => "interrupted",
        };
        tracing::warn!(flow = %name, kind, "{what}: {e}; restarting the flow in {backoff:?} from the last acknowledged records");
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One run: fresh clients, discovery from scratch, consume until stopped or failed.
async fn run_once(setup: &FlowSetup, shutdown: CancellationToken) -> Result<(), FlowError> {
    let name = setup.flow.name();
    let token = shutdown.child_token();
    setup.status.begin_run();
    let RunClients {
        consumer,
        producer,
        board,
        reader,
    } = setup.connector.connect(&setup.status)?;
    let (source, target) = (setup.flow.source.clone(), setup.flow.target.clone());
    setup.status.set_state(FlowState::Starting);

    let stamp = Arc::new(stamp::for_target(&setup.connector.target, &producer, &token).await);
    let (pending_tx, pending_rx) = mpsc::channel(consume::BATCHES_IN_FLIGHT);
    let acks = {
        let ctx = acks::AckContext {
            consumer: consumer.clone(),
            source: source.clone(),
            target: target.clone(),
            status: setup.status.clone(),
            store: setup.store.clone(),
            stamp: stamp.clone(),
            board: board.clone(),
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

    let guard = Arc::new(LossGuard {
        source: source.clone(),
        target: target.clone(),
        policy: setup.flow.on_data_loss,
        metrics: setup.metrics.clone(),
    });
    let (routes_tx, routes_rx) = mpsc::channel(16);
    let starter = Starter {
        reader: reader.clone(),
        consumer: consumer.clone(),
        store: setup.store.clone(),
        guard: guard.clone(),
        stamp,
        start_from: setup.flow.start_from,
        source: setup.connector.source.clone(),
    };
    let discovery = Discovery::new(
        setup.flow.clone(),
        setup.naming.clone(),
        setup.create_topics,
        setup.heartbeats_to_target,
        DiscoveryClients {
            consumer: consumer.clone(),
            producer: producer.clone(),
            admin: setup.target_admin.clone(),
        },
        setup.metrics.clone(),
    );
    let discovery = match &setup.topic_configs {
        Some(sync) => discovery.with_config_sync(sync.clone()),
        None => discovery,
    };
    let looked = setup.heartbeats_looked.clone();
    let discovery = tokio::spawn(topics::discover(
        discovery,
        (setup.refresh_interval, looked),
        routes_tx,
        (setup.status.clone(), setup.store.clone()),
        token.clone(),
    ));

    tracing::info!(flow = %name, "flow started");
    let ctx = consumer.context();
    let loop_ctx = ConsumeLoop {
        source,
        target,
        consumer: consumer.clone(),
        producer: producer.clone(),
        group: Membership {
            events: ctx.events.clone(),
            liveness: ctx.liveness.clone(),
            starter: Arc::new(starter),
            starting: None,
            started_at: None,
            gone: Default::default(),
            checked: None,
            subscribed: Vec::new(),
            parked: None,
            paused: Vec::new(),
            waiting: Default::default(),
        },
        board,
        seq: 0,
        metrics: setup.metrics.clone(),
        status: setup.status.clone(),
        oversize: oversize::OversizePolicy {
            policy: setup.flow.oversize,
            dead_letter: setup.dead_letter.clone(),
            max_record_bytes: clients::max_record_bytes(&setup.connector.target),
        },
        routes: HashMap::new(),
        guard,
        source_cluster: setup.connector.source.clone(),
        quiet: (None, 0),
        open: None,
        scratch: Default::default(),
    };
    let (consumed, unapplied) = loop_ctx.run(routes_rx, pending_tx, token.clone()).await;
    setup.status.set_state(FlowState::Stopping);
    if consumed.is_err() {
        token.cancel();
    }
    discovery.abort();
    let discovered = match discovery.await {
        Ok(r) => r,
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => Err(FlowError::join(e)),
    };
    let acked = acks.await.map_err(FlowError::join);
    // Only now, with what was acknowledged committed, may the group have the partitions back.
    group::release(&consumer, unapplied);
    // The ack task reports the first failed delivery, which explains a consume-side stop too;
    // discovery stops the run only for what no restart fixes (data loss under `fail`).
    let result = match (consumed, acked.and_then(|r| r), discovered) {
        (_, Err(e), _) => Err(e),
        (_, Ok(()), Err(e)) => Err(e),
        (Err(e), Ok(()), Ok(())) => Err(e),
        (Ok(()), Ok(()), Ok(())) => Ok(()),
    };
    setup.status.set_state(if result.is_ok() {
        FlowState::Stopped
    } else {
        FlowState::Failed
    });
    // Closing clients waits on their brokers (for ever if one is frozen): not on this task,
    // and not for longer than `CLOSE_WITHIN` — but that long, so that the consumer leaves the
    // group (the next run's consumer, or another instance, then gets its partitions at once
    // instead of after the session timeout).
    let (closed_tx, closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        drop((consumer, producer, reader));
        let _ = closed_tx.send(());
    });
    if tokio::time::timeout(CLOSE_WITHIN, closed).await.is_err() {
        tracing::debug!(flow = %name, "clients still closing after {CLOSE_WITHIN:?}; not waiting");
    }
    tracing::info!(flow = %name, "flow stopped");
    result
}

/// How long a run's end waits for its clients to close (the consumer leaving its group).
const CLOSE_WITHIN: Duration = Duration::from_secs(2);
