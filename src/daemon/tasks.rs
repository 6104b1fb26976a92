//! What the daemon runs, per flow: the flow itself, its source's heartbeat emitter, and its
//! checkpoint task when it selects consumer groups. Everything is prepared first — every
//! client created, which is where a bad setting fails — and only then spawned ([`Prepared`]),
//! so a run that cannot start fails before any task talks to a cluster. Each task gets the one
//! shutdown token and stops on it.

use std::sync::Arc;

use tokio::task::JoinSet;

use super::clients::Clients;
use super::RunError;
use crate::checkpoint;
use crate::cluster::{self, clients, FatalClusterError};
use crate::flow::{self, Connector, DeadLetter, FlowError, FlowSetup};
use crate::heartbeat;
use crate::metrics::Metrics;
use crate::naming::Naming;
use crate::shutdown::CancellationToken;
use crate::status::Registry;
use crate::store::Store;
use crate::topology::{Flow, Oversize, Topology};

/// What every task gets.
pub(super) struct Shared<'a> {
    pub topology: &'a Topology,
    /// This instance's name (static group membership).
    pub instance: &'a str,
    pub naming: Naming,
    pub metrics: Arc<Metrics>,
    pub store: Store,
    pub fatal: tokio::sync::mpsc::UnboundedSender<FatalClusterError>,
    pub shutdown: CancellationToken,
}

/// A flow's task: its name, and how it ended.
pub(super) type FlowTasks = JoinSet<(String, Result<(), FlowError>)>;

/// Every task of a run, ready to spawn: nothing in here has talked to a cluster yet.
pub(super) struct Prepared {
    flows: Vec<FlowSetup>,
    emitters: Vec<(heartbeat::EmitterConfig, heartbeat::EmitterClients)>,
    checkpointers: Vec<checkpoint::task::CheckpointSetup>,
}

/// The running tasks. Emitters and checkpointers stop on the shutdown token; dropping their
/// sets aborts any straggler.
pub(super) struct Running {
    pub flows: FlowTasks,
    pub _emitters: JoinSet<()>,
    pub _checkpointers: JoinSet<()>,
}

/// Creates every client and prepares every task; a flow gets a status handle in `registry`.
pub(super) fn prepare(
    s: &Shared<'_>,
    clients: &mut Clients<'_>,
    registry: &mut Registry,
) -> Result<Prepared, RunError> {
    Ok(Prepared {
        flows: flows(s, clients, registry)?,
        emitters: heartbeats(s, clients)?,
        checkpointers: checkpoints(s, clients)?,
    })
}

impl Prepared {
    /// Spawns everything prepared, each task with `shutdown`.
    pub(super) fn spawn(self, s: &Shared<'_>) -> Running {
        let mut flows = JoinSet::new();
        for setup in self.flows {
            let name = setup.flow.name();
            let token = s.shutdown.clone();
            flows.spawn(async move { (name, flow::run(setup, token).await) });
        }
        let mut emitters = JoinSet::new();
        for (cfg, c) in self.emitters {
            emitters.spawn(heartbeat::emit(
                cfg,
                c,
                s.metrics.clone(),
                s.shutdown.clone(),
            ));
        }
        let mut checkpointers = JoinSet::new();
        for setup in self.checkpointers {
            checkpointers.spawn(checkpoint::task::run(setup, s.shutdown.clone()));
        }
        Running {
            flows,
            _emitters: emitters,
            _checkpointers: checkpointers,
        }
    }
}

/// Every flow's setup.
fn flows(
    s: &Shared<'_>,
    clients: &mut Clients<'_>,
    registry: &mut Registry,
) -> Result<Vec<FlowSetup>, RunError> {
    let t = s.topology;
    let mut flows = Vec::new();
    for f in &t.flows {
        let target = clients.get(&f.target)?;
        let source = &t.clusters[&f.source];
        let dead_letter = match f.oversize {
            Oversize::DeadLetter => {
                let ctx = clients::context(source, s.fatal.clone());
                let producer = clients::dead_letter_producer(source, ctx)
                    .map_err(RunError::client(&source.alias, "dead-letter producer"))?;
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
            naming: s.naming.clone(),
            create_topics: t.replication.create_topics,
            heartbeats_to_target: t.clusters[&f.target].heartbeats,
            refresh_interval: t.replication.refresh_topics_interval,
            connector: Connector {
                source: source.clone(),
                target: t.clusters[&f.target].clone(),
                group: f.group.clone(),
                instance: s.instance.to_string(),
                static_membership: t.replication.static_membership,
                fatal: s.fatal.clone(),
            },
            target_admin: target.admin,
            dead_letter,
            metrics: s.metrics.clone(),
            status,
            store: s.store.clone(),
        };
        flows.push(setup);
    }
    Ok(flows)
}

/// A heartbeat emitter per flow whose source cluster allows heartbeats (none when
/// `heartbeats_interval` is 0).
fn heartbeats(
    s: &Shared<'_>,
    clients: &mut Clients<'_>,
) -> Result<Vec<(heartbeat::EmitterConfig, heartbeat::EmitterClients)>, RunError> {
    let t = s.topology;
    let mut emitters = Vec::new();
    if t.replication.heartbeats_interval.is_zero() {
        return Ok(emitters);
    }
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
        emitters.push((cfg, clients));
    }
    Ok(emitters)
}

/// A checkpoint task per flow that selects consumer groups. A group call in flight at
/// shutdown is left to finish in the background.
fn checkpoints(
    s: &Shared<'_>,
    clients: &mut Clients<'_>,
) -> Result<Vec<checkpoint::task::CheckpointSetup>, RunError> {
    let t = s.topology;
    let mut tasks = Vec::new();
    for f in t.flows.iter().filter(|f| !f.groups.is_empty()) {
        let target = clients.get(&f.target)?;
        let setup = checkpoint::task::CheckpointSetup {
            flow: f.clone(),
            naming: s.naming.clone(),
            interval: t.replication.checkpoints_interval,
            create_topics: t.replication.create_topics,
            write_to_target: t.clusters[&f.target].checkpoints,
            sync_group_offsets: t.replication.sync_group_offsets,
            source_config: cluster::client_config(&t.clusters[&f.source]),
            target_config: cluster::client_config(&t.clusters[&f.target]),
            producer: target.producer,
            admin: target.admin,
            store: s.store.clone(),
            reverse: reverse_of(t, f),
            metrics: s.metrics.clone(),
        };
        tasks.push(setup);
    }
    Ok(tasks)
}

/// The flow T→S of a flow S→T, when the topology has it.
fn reverse_of(t: &Topology, f: &Flow) -> Option<Flow> {
    t.flows
        .iter()
        .find(|r| r.source == f.target && r.target == f.source)
        .cloned()
}
