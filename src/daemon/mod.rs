//! The daemon behind `hubmirror run`, as a library entry: [`run`] takes a resolved topology
//! and the one shutdown token, runs every flow with its heartbeats and checkpoints until the
//! token is cancelled (then drains and commits) or something fatal happens (then stops
//! everything and says why).
//!
//! Order of work: what can fail locally (the store, the HTTP listener; secret and certificate
//! files were read when the topology was loaded) is done before any client is created, so a
//! busy port or a locked store never leaves a half-started replicator behind. Then every
//! client ([`clients`]) and task setup ([`tasks`]) — a bad client setting fails here, still
//! before any task runs — then the tasks, the HTTP server, and the supervision loop below.

mod clients;
mod history;
mod tasks;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::cluster::FatalClusterError;
use crate::entra::{EntraError, Tokens};
use crate::flow::FlowError;
use crate::metrics::Metrics;
use crate::naming::Naming;
use crate::server;
use crate::shutdown::CancellationToken;
use crate::status::Registry;
use crate::store::{Store, StoreError};
use crate::topology::Topology;

use clients::Clients;
use tasks::FlowTasks;

/// How long a stop may take before the daemon returns regardless (the contract gives the
/// whole process 10 s).
pub const STOP_DEADLINE: Duration = Duration::from_millis(9_500);

/// Why the daemon stopped with a failure. Each names the thing (cluster alias, flow, address)
/// and, where the user can act, the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A cluster error no retry fixes (bad credentials, untrusted certificate, ...).
    #[error(transparent)]
    Cluster(#[from] FatalClusterError),
    /// A flow failed and cannot go on.
    #[error("flow {flow}: {source}")]
    Flow {
        /// `source->target`.
        flow: String,
        /// Why.
        source: Box<FlowError>,
    },
    /// librdkafka refused to create a client from the cluster's settings.
    #[error("cluster '{alias}': cannot create a {role}: {source}")]
    Client {
        /// The cluster's alias.
        alias: String,
        /// Which client.
        role: &'static str,
        /// librdkafka's reason.
        source: KafkaError,
    },
    /// The offset-translation store cannot be opened.
    #[error("store.path: {0}")]
    Store(StoreError),
    /// No usable instance name.
    #[error(transparent)]
    Instance(#[from] crate::instance::InstanceError),
    /// No Entra ID token for a cluster: refused, or its authority unreachable.
    #[error(transparent)]
    Entra(#[from] EntraError),
    /// The HTTP listener cannot be bound.
    #[error("cannot listen on {addr} (metrics.listen): {source}; choose a free address")]
    Listen {
        /// `metrics.listen`.
        addr: std::net::SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

impl RunError {
    /// Wraps a client-creation error for cluster `alias`.
    fn client(alias: &str, role: &'static str) -> impl FnOnce(KafkaError) -> RunError {
        let alias = alias.to_string();
        move |source| RunError::Client {
            alias,
            role,
            source,
        }
    }

    fn flow(flow: String, source: FlowError) -> RunError {
        RunError::Flow {
            flow,
            source: Box::new(source),
        }
    }
}

/// Runs every flow of `t` until `shutdown` is cancelled (then drains in-flight records,
/// commits, and returns `Ok` within [`STOP_DEADLINE`]) or a fatal error (then cancels
/// `shutdown` itself, stops everything and returns the first error).
pub async fn run(
    t: Topology,
    instance: Option<String>,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    // Local first: nothing is asked of a cluster before these succeed.
    let store = Store::open(&t.store.path).map_err(RunError::Store)?;
    let instance = crate::instance::resolve(instance.as_deref(), &store)?;
    tracing::info!(instance = %instance, "instance name");
    history::warn_if_new_store_has_history(&t, store.created());
    let listener = server::bind(t.metrics.listen)
        .await
        .map_err(|source| RunError::Listen {
            addr: t.metrics.listen,
            source,
        })?;

    // Entra ID clusters: a first token before any client connects (meanwhile /healthz answers
    // and /readyz says what is awaited), then fresh ones.
    let starting = CancellationToken::new();
    let early = server::serve_while_starting(&listener, starting.clone()).map_err(|source| {
        RunError::Listen {
            addr: t.metrics.listen,
            source,
        }
    })?;
    let tokens = Tokens::first(&t, None, &shutdown).await;
    starting.cancel();
    let _ = early.await;
    let token_tasks = tokens?.keep_fresh(&shutdown);

    let (fatal_tx, fatal_rx) = mpsc::unbounded_channel();
    let shared = tasks::Shared {
        topology: &t,
        instance: &instance,
        naming: Naming::from_replication(&t.replication),
        metrics: Arc::new(Metrics::for_instance(&instance)),
        store: store.clone(),
        fatal: fatal_tx,
        shutdown: shutdown.clone(),
    };
    let mut clients = Clients::new(&t, shared.fatal.clone());
    let mut registry = Registry::new(&instance);
    // Every client is created (a bad setting fails here) before any task starts.
    let prepared = tasks::prepare(&shared, &mut clients, &mut registry)?;
    let running = prepared.spawn(&shared);
    let readable = tasks::readable(&shared);
    let server = server::serve(
        listener,
        shared.metrics.clone(),
        registry,
        (store, readable),
        shutdown.clone(),
    );
    // Only the clients hold the fatal channel from here on: it closes when they are gone.
    drop(shared);

    let (result, stopping) = supervise(running.flows, (fatal_rx, token_tasks), &shutdown).await;
    // The flows recorded their last batches: publish them, within what is left of the stop.
    running.flows_done.cancel();
    let mut publishers = running.segments;
    let last = Duration::from_millis(9_800)
        .saturating_sub(stopping.elapsed())
        .min(crate::segments::task::FINAL_ROUND);
    let published = tokio::time::timeout(last, async {
        while publishers.join_next().await.is_some() {}
    })
    .await;
    if published.is_err() {
        tracing::warn!("segments publishers did not stop within {last:?}");
    }
    let _ = server.await;
    clients.close_in_background();
    if result.is_ok() {
        tracing::info!("stopped");
    }
    result
}

/// Waits for the first of: `shutdown`, a fatal cluster error, a failed flow; then stops every
/// flow (each drains and commits) within [`STOP_DEADLINE`]. Returns the first failure, and
/// when stopping began.
async fn supervise(
    mut flows: FlowTasks,
    (mut fatal, mut tokens): (
        mpsc::UnboundedReceiver<FatalClusterError>,
        JoinSet<Result<(), EntraError>>,
    ),
    shutdown: &CancellationToken,
) -> (Result<(), RunError>, std::time::Instant) {
    let mut failure: Option<RunError> = None;
    loop {
        tokio::select! {
            Some(e) = fatal.recv() => {
                failure.get_or_insert(RunError::Cluster(e));
                break;
            }
            Some(Ok(Err(e))) = tokens.join_next() => {
                failure.get_or_insert(RunError::Entra(e));
                break;
            }
            joined = flows.join_next() => match joined {
                None => break,
                Some(Ok((_, Ok(())))) => {}
                Some(Ok((flow, Err(e)))) => {
                    failure.get_or_insert(RunError::flow(flow, e));
                    break;
                }
                Some(Err(e)) => {
                    failure.get_or_insert(RunError::flow("?".into(), FlowError::Task(e.to_string())));
                    break;
                }
            },
            _ = shutdown.cancelled() => break,
        }
    }
    shutdown.cancel();
    let stopping = std::time::Instant::now();

    let drained = tokio::time::timeout(STOP_DEADLINE, async {
        while let Some(joined) = flows.join_next().await {
            if let Ok((flow, Err(e))) = joined {
                match &failure {
                    None => failure = Some(RunError::flow(flow, e)),
                    Some(_) => tracing::warn!(flow, "while stopping: {e}"),
                }
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "flows did not stop within {STOP_DEADLINE:?}; exiting anyway (unacknowledged \
             records will be replicated again)"
        );
    }
    (failure.map_or(Ok(()), Err), stopping)
}
