//! What the daemon runs, per flow: the flow itself, its source's heartbeat emitter, its
//! checkpoint task when it selects consumer groups, and its segments publisher and follower
//! (`crate::segments`). Everything is prepared first — every
//! client created, which is where a bad setting fails — and only then spawned ([`Prepared`]),
//! so a run that cannot start fails before any task talks to a cluster. Each task gets the one
//! shutdown token and stops on it.

use std::sync::Arc;

use tokio::task::JoinSet;

use super::clients::Clients;
use super::RunError;
use crate::checkpoint;
use crate::cluster::{self, clients, FatalClusterError};
use crate::flow::topic_configs::ConfigSync;
use crate::flow::{self, Connector, DeadLetter, FlowError, FlowSetup};
use crate::heartbeat;
use crate::metrics::Metrics;
use crate::naming::{Naming, HEARTBEATS_TOPIC};
use crate::segments;
use crate::shutdown::CancellationToken;
use crate::status::{FlowStatus, Registry};
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
    emitters: Vec<Emitter>,
    checkpointers: Vec<checkpoint::task::CheckpointSetup>,
    segments: Vec<segments::task::SegmentsSetup>,
}

/// A heartbeat emitter: what it emits, with which clients, and the flow whose owner of
/// `heartbeats` partition 0 emits (`None`: the flow does not copy heartbeats, every instance
/// emits, as with one instance).
type Emitter = (
    heartbeat::EmitterConfig,
    heartbeat::EmitterClients,
    Option<Arc<FlowStatus>>,
);

/// The running tasks. Emitters and checkpointers stop on the shutdown token; dropping their
/// sets aborts any straggler. The segments tasks stop on it too and publish once more after
/// `flows_done` is cancelled (once the flows have drained).
pub(super) struct Running {
    pub flows: FlowTasks,
    pub _emitters: JoinSet<()>,
    pub _checkpointers: JoinSet<()>,
    pub segments: JoinSet<()>,
    pub flows_done: CancellationToken,
}

/// Creates every client and prepares every task; a flow gets a status handle in `registry`.
pub(super) fn prepare(
    s: &Shared<'_>,
    clients: &mut Clients<'_>,
    registry: &mut Registry,
) -> Result<Prepared, RunError> {
    let mut flows = flows(s, clients, registry)?;
    let emitters = heartbeats(s, clients, registry)?;
    // A flow that copies heartbeats lists topics once its emitter looked for `heartbeats`.
    for (cfg, _, owner) in &emitters {
        if owner.is_some() {
            for f in flows.iter_mut().filter(|f| {
                (f.flow.source.as_str(), f.flow.target.as_str())
                    == (cfg.source.as_str(), cfg.target.as_str())
            }) {
                f.heartbeats_looked = Some(cfg.looked.clone());
            }
        }
    }
    Ok(Prepared {
        flows,
        emitters,
        checkpointers: checkpoints(s, clients, registry)?,
        segments: segments(s, clients, registry)?,
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
        for (cfg, c, owner) in self.emitters {
            emitters.spawn(heartbeat::emit(
                cfg,
                c,
                owner,
                s.metrics.clone(),
                s.shutdown.clone(),
            ));
        }
        let mut checkpointers = JoinSet::new();
        for setup in self.checkpointers {
            checkpointers.spawn(checkpoint::task::run(setup, s.shutdown.clone()));
        }
        let flows_done = CancellationToken::new();
        let mut publishers = JoinSet::new();
        for setup in self.segments {
            let (stop, done) = (s.shutdown.clone(), flows_done.clone());
            publishers.spawn(segments::task::run(setup, stop, done));
        }
        Running {
            flows,
            _emitters: emitters,
            _checkpointers: checkpointers,
            segments: publishers,
            flows_done,
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
        let topic_configs = match t.replication.sync_topic_configs {
            true => Some(Arc::new(ConfigSync::new(
                (&f.source, &f.target),
                t.replication.topic_configs_exclude.clone(),
                (clients.get(&f.source)?.admin, target.admin.clone()),
                s.metrics.clone(),
            ))),
            false => None,
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
            heartbeats_looked: None,
            connector: Connector {
                source: source.clone(),
                target: t.clusters[&f.target].clone(),
                group: f.group.clone(),
                instance: s.instance.to_string(),
                static_membership: t.replication.static_membership,
                fatal: s.fatal.clone(),
            },
            topic_configs,
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
/// `heartbeats_interval` is 0). When the flow copies heartbeats (`Naming::flow_copies`), only
/// the instance that owns partition 0 of `heartbeats` in the flow's group emits, so the flow
/// writes one heartbeat per interval however many instances run; when it does not (its target
/// takes no heartbeats), nobody owns that partition and every instance emits, as one does.
fn heartbeats(
    s: &Shared<'_>,
    clients: &mut Clients<'_>,
    registry: &Registry,
) -> Result<Vec<Emitter>, RunError> {
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
            looked: CancellationToken::new(),
        };
        let clients = heartbeat::EmitterClients {
            producer: source.producer,
            admin: source.admin,
        };
        let copied = s
            .naming
            .flow_copies(f, HEARTBEATS_TOPIC, t.clusters[&f.target].heartbeats);
        let owner = copied.then(|| status_of(registry, f)).transpose()?;
        emitters.push((cfg, clients, owner));
    }
    Ok(emitters)
}

/// Every flow's segments topic, for the HTTP listener's `/store/sync`.
pub(super) fn readable(s: &Shared<'_>) -> Vec<segments::Readable> {
    let t = s.topology;
    t.flows
        .iter()
        .map(|f| {
            let mut config = cluster::client_config(&t.clusters[&f.target]);
            cluster::drop_producer_settings(&mut config);
            let merger = segments::Merger::new(
                &f.source,
                &f.target,
                s.naming.clone(),
                s.store.clone(),
                Some(s.metrics.clone()),
            );
            segments::Readable { config, merger }
        })
        .collect()
}

/// The status handle `flows` registered for `f`.
fn status_of(registry: &Registry, f: &Flow) -> Result<Arc<FlowStatus>, RunError> {
    registry
        .flow(&f.source, &f.target)
        .ok_or_else(|| RunError::flow(f.name(), FlowError::Task("no status registered".into())))
}

/// The segments publisher and follower of every flow.
fn segments(
    s: &Shared<'_>,
    clients: &mut Clients<'_>,
    registry: &Registry,
) -> Result<Vec<segments::task::SegmentsSetup>, RunError> {
    let t = s.topology;
    let mut tasks = Vec::new();
    for f in &t.flows {
        let target = clients.get(&f.target)?;
        tasks.push(segments::task::SegmentsSetup {
            flow: f.clone(),
            naming: s.naming.clone(),
            instance: s.instance.to_string(),
            store: s.store.clone(),
            producer: target.producer,
            admin: target.admin,
            target_config: cluster::client_config(&t.clusters[&f.target]),
            create_topics: t.replication.create_topics,
            status: status_of(registry, f)?,
            metrics: s.metrics.clone(),
        });
    }
    Ok(tasks)
}

/// A checkpoint task per flow that selects consumer groups. A group call in flight at
/// shutdown is left to finish in the background.
fn checkpoints(
    s: &Shared<'_>,
    clients: &mut Clients<'_>,
    registry: &Registry,
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
            status: status_of(registry, f)?,
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
