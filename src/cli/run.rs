//! `hubmirror run`: build the clients, start every flow, and supervise them until a signal
//! (drain, commit, exit 0) or a fatal error (stop everything, exit 1 with one line saying why).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::opt::RunArgs;
use super::{EXIT_CONFIG, EXIT_FAILURE};
use crate::checkpoint;
use crate::cluster::clients;
use crate::cluster::{ClusterContext, FatalClusterError};
use crate::flow::{self, Connector, DeadLetter, FlowError, FlowSetup};
use crate::heartbeat;
use crate::metrics::Metrics;
use crate::naming::Naming;
use crate::server;
use crate::shutdown::{self, CancellationToken};
use crate::status::Registry;
use crate::store::Store;
use crate::topology::{self, Oversize, Topology};

/// How long a stop may take before the process exits regardless (the contract says 10 s).
const STOP_DEADLINE: Duration = Duration::from_millis(9_500);

/// Why `run` stopped with a failure.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Cluster(#[from] FatalClusterError),
    #[error("flow {flow}: {source}")]
    Flow {
        flow: String,
        source: Box<FlowError>,
    },
    #[error("cluster '{alias}': cannot create a {role}: {source}")]
    Client {
        alias: String,
        role: &'static str,
        source: KafkaError,
    },
    #[error("store.path: {0}")]
    Store(crate::store::StoreError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot listen on {addr} (metrics.listen): {source}; choose a free address")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Runs `hubmirror run` and returns its exit code.
pub fn execute(args: &RunArgs) -> ExitCode {
    let topology = match topology::load(&args.common.config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hubmirror: {}", RunError::Runtime(e));
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let result = runtime.block_on(supervise(topology));
    // Blocking metadata calls may still be waiting on a dead cluster: do not wait for them.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hubmirror: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Per cluster: one producer and one admin client, shared by every task writing to it (flows
/// into it, heartbeats on it).
#[derive(Clone)]
pub(crate) struct ClusterClients {
    pub producer: FutureProducer<ClusterContext>,
    pub admin: Arc<AdminClient<ClusterContext>>,
}

/// Creates clients lazily, once per cluster.
struct Clients<'t> {
    topology: &'t Topology,
    fatal: mpsc::UnboundedSender<FatalClusterError>,
    by_alias: HashMap<String, ClusterClients>,
}

impl Clients<'_> {
    fn get(&mut self, alias: &str) -> Result<ClusterClients, RunError> {
        if let Some(c) = self.by_alias.get(alias) {
            return Ok(c.clone());
        }
        let cluster = &self.topology.clusters[alias];
        let ctx = || clients::context(cluster, self.fatal.clone());
        let producer =
            clients::producer(cluster, ctx()).map_err(client_error(alias, "producer"))?;
        let admin = clients::admin(cluster, ctx()).map_err(client_error(alias, "admin client"))?;
        let c = ClusterClients {
            producer,
            admin: Arc::new(admin),
        };
        self.by_alias.insert(alias.to_string(), c.clone());
        Ok(c)
    }
}

async fn supervise(t: Topology) -> Result<(), RunError> {
    let shutdown = CancellationToken::new();
    tokio::spawn(shutdown::watch_signals(shutdown.clone()));
    let (fatal_tx, mut fatal_rx) = mpsc::unbounded_channel();
    let metrics = Arc::new(Metrics::new());
    let naming = Naming::new(t.replication.policy, &t.replication.separator);
    let mut registry = Registry::default();
    let store = Store::open(&t.store.path).map_err(RunError::Store)?;
    let mut clients = Clients {
        topology: &t,
        fatal: fatal_tx.clone(),
        by_alias: HashMap::new(),
    };

    let mut flows = JoinSet::new();
    for f in &t.flows {
        let target = clients.get(&f.target)?;
        let source = &t.clusters[&f.source];
        let dead_letter = match f.oversize {
            Oversize::DeadLetter => {
                let ctx = clients::context(source, fatal_tx.clone());
                let producer = clients::dead_letter_producer(source, ctx)
                    .map_err(client_error(&source.alias, "dead-letter producer"))?;
                Some(Arc::new(DeadLetter {
                    topic: f.dead_letter_topic.clone(),
                    source: f.source.clone(),
                    producer,
                    admin: clients.get(&f.source)?.admin,
                }))
            }
            _ => None,
        };
        let status = registry.add(&f.source, &f.target);
        if !f.groups.is_empty() {
            status.enable_checkpoints();
        }
        let setup = FlowSetup {
            flow: f.clone(),
            naming: naming.clone(),
            create_topics: t.replication.create_topics,
            heartbeats_to_target: t.clusters[&f.target].heartbeats,
            refresh_interval: t.replication.refresh_topics_interval,
            connector: Connector {
                source: source.clone(),
                target: t.clusters[&f.target].clone(),
                group: format!("hubmirror-{}-{}", f.source, f.target),
                fatal: fatal_tx.clone(),
            },
            target_admin: target.admin,
            dead_letter,
            metrics: metrics.clone(),
            status,
            store: store.clone(),
        };
        let name = f.name();
        let token = shutdown.clone();
        flows.spawn(async move { (name, flow::run(setup, token).await) });
    }

    // Heartbeat emitters (heartbeat.rs): one per flow whose source cluster allows heartbeats.
    // They stop on `shutdown`; dropping the set when `supervise` returns aborts any straggler.
    let mut emitters = JoinSet::new();
    if !t.replication.heartbeats_interval.is_zero() {
        for f in t.flows.iter().filter(|f| t.clusters[&f.source].heartbeats) {
            let source = clients.get(&f.source)?;
            let cfg = heartbeat::EmitterConfig {
                source: f.source.clone(),
                target: f.target.clone(),
                interval: t.replication.heartbeats_interval,
                create_topics: t.replication.create_topics,
            };
            let clients = heartbeat::EmitterClients {
                producer: source.producer,
                admin: source.admin,
            };
            emitters.spawn(heartbeat::emit(
                cfg,
                clients,
                metrics.clone(),
                shutdown.clone(),
            ));
        }
    }

    // Checkpoint tasks (checkpoint/task.rs): one per flow that selects groups.
    // Like the emitters, they stop on `shutdown`; a group call in flight is left to finish in
    // the background (the runtime is shut down without waiting for blocking work).
    let mut checkpointers = JoinSet::new();
    for f in t.flows.iter().filter(|f| !f.groups.is_empty()) {
        let target = clients.get(&f.target)?;
        let setup = checkpoint::task::CheckpointSetup {
            flow: f.clone(),
            naming: naming.clone(),
            interval: t.replication.checkpoints_interval,
            create_topics: t.replication.create_topics,
            write_to_target: t.clusters[&f.target].checkpoints,
            sync_group_offsets: t.replication.sync_group_offsets,
            source_config: crate::cluster::client_config(&t.clusters[&f.source]),
            target_config: crate::cluster::client_config(&t.clusters[&f.target]),
            producer: target.producer,
            admin: target.admin,
            store: store.clone(),
            reverse: t
                .flows
                .iter()
                .find(|r| r.source == f.target && r.target == f.source)
                .cloned(),
            metrics: metrics.clone(),
        };
        checkpointers.spawn(checkpoint::task::run(setup, shutdown.clone()));
    }

    let server = server::serve(
        t.metrics.listen,
        metrics.clone(),
        registry,
        store.clone(),
        shutdown.clone(),
    )
    .await
    .map_err(|source| RunError::Listen {
        addr: t.metrics.listen,
        source,
    })?;
    drop(fatal_tx);

    let mut failure: Option<RunError> = None;
    loop {
        tokio::select! {
            Some(fatal) = fatal_rx.recv() => {
                failure.get_or_insert(RunError::Cluster(fatal));
                shutdown.cancel();
                break;
            }
            joined = flows.join_next() => match joined {
                None => break,
                Some(Ok((_, Ok(())))) => {}
                Some(Ok((flow, Err(source)))) => {
                    failure.get_or_insert(RunError::Flow { flow, source: Box::new(source) });
                    shutdown.cancel();
                }
                Some(Err(e)) => {
                    failure.get_or_insert(RunError::Flow { flow: "?".into(), source: Box::new(FlowError::Task(e.to_string())) });
                    shutdown.cancel();
                }
            },
            _ = shutdown.cancelled() => break,
        }
    }

    // Stopping: let every flow drain and commit, within the deadline.
    let drained = tokio::time::timeout(STOP_DEADLINE, async {
        while let Some(joined) = flows.join_next().await {
            if let Ok((flow, Err(source))) = joined {
                if failure.is_none() {
                    failure = Some(RunError::Flow {
                        flow,
                        source: Box::new(source),
                    });
                } else {
                    tracing::warn!(flow, "while stopping: {source}");
                }
            }
        }
    })
    .await;
    let _ = server.await;
    // Destroying a producer waits on its brokers (for ever if one is frozen). Everything
    // acknowledged is committed by now: let the process exit without waiting for that.
    let Clients { by_alias, .. } = clients;
    std::thread::spawn(move || drop(by_alias));
    if drained.is_err() {
        tracing::warn!("flows did not stop within {STOP_DEADLINE:?}; exiting anyway (unacknowledged records will be replicated again)");
    }
    match failure {
        Some(e) => Err(e),
        None => {
            tracing::info!("stopped");
            Ok(())
        }
    }
}

fn client_error(alias: &str, role: &'static str) -> impl FnOnce(KafkaError) -> RunError {
    let alias = alias.to_string();
    move |source| RunError::Client {
        alias,
        role,
        source,
    }
}
