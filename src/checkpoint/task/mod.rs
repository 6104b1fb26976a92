//! The checkpoint task of one flow `S → T`. Every `checkpoints_interval` it:
//!
//! 0. takes the partitions this instance owns in the flow's group ([`FlowStatus::owns`]):
//!    checkpoints and group offset sync are done by each partition's owner only, so never twice
//!    however many instances run; for a partition it has just started owning it first reads
//!    the last checkpoints another instance emitted for it (see `owners`), so they never go
//!    backwards across instances either;
//! 1. lists the consumer groups on S and keeps those the flow selects (`groups`,
//!    `groups_exclude`; never hubmirror's own), and reads each one's committed offsets on S for
//!    the topics the flow replicates;
//! 2. translates each offset of an owned partition with the store; only an exact translation makes a checkpoint
//!    (a group ahead of the flow, or a partition the store knows nothing of, waits);
//! 3. applies MirrorMaker 2's emission rule against the group's previous checkpoint for that
//!    partition ([`should_emit`]): the first one, a rewound group (upstream offset went
//!    backwards), or a downstream offset that advanced; otherwise the previous one stays, so
//!    checkpoints never go backwards unless the group did;
//! 4. stores what it emits and, unless T has `checkpoints: false`, writes it in MM2's record
//!    format to `<S>.checkpoints.internal` on T (created with 1 partition when missing and
//!    `create_topics` is on); a checkpoint whose write failed is written again next round
//!    unless a newer one for its key replaced it;
//! 5. with `sync_group_offsets`, commits the translated offsets of the owned partitions of each
//!    selected group on T, only while the group has no active members there and only where that moves the group
//!    forward (or where it has no offset yet): a target group never goes backwards. An active
//!    group is skipped, counted (`hubmirror_group_sync_skipped_total{reason="active"}`) and
//!    logged once until it has been seen idle again.
//!
//! It never stops the run: problems are logged once per episode (per group where they concern
//! one group; once more when they end), counted in `hubmirror_errors_total{kind}`
//! (`checkpoint_source`, `checkpoint_store`, `checkpoint_topic`, `checkpoint_delivery`,
//! `group_sync`), and retried next round; one group's failure does not hold back the others.
//! Every cluster call is bounded ([`CALL_TIMEOUT`]) and runs off the async runtime; a call that
//! finds a cluster unreachable (a timeout, no broker up) ends that cluster's part of the round,
//! so a dead cluster costs one timeout per phase and round. On shutdown the task returns at
//! once; a blocking call in flight finishes in the background.
//!
//! The metadata MM2 carries over from the group's commit is left empty: the committed offsets
//! are read without it.
//!
//! Layout: this file holds the task's state, its round and its problem log; `owners` step 0,
//! `emit` steps 1–3, `publish` step 4, `sync` step 5.

mod emit;
mod owners;
mod publish;
mod sync;

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use tokio::time::{Instant, MissedTickBehavior};

use super::{checkpoints_topic, CheckpointError};
use crate::cluster::ClusterContext;
use crate::metrics::Metrics;
use crate::naming::Naming;
use crate::shutdown::CancellationToken;
use crate::status::FlowStatus;
use crate::store::{Store, StoredCheckpoint};
use crate::topology::Flow;

pub use emit::should_emit;

/// How long one cluster call (listing, describing, reading or committing offsets, a topic
/// lookup or creation, a round's deliveries) may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a missing checkpoints topic is looked for again (at least every interval).
const TOPIC_RETRY: Duration = Duration::from_secs(10);

/// What one checkpoint task works with.
pub struct CheckpointSetup {
    /// The flow: its aliases, topic and group patterns.
    pub flow: Flow,
    /// Remote topic names and which topics the flow replicates.
    pub naming: Naming,
    /// `replication.checkpoints_interval` (positive).
    pub interval: Duration,
    /// `replication.create_topics`: create the checkpoints topic on T when it is missing.
    pub create_topics: bool,
    /// `clusters.<T>.checkpoints`: write checkpoints to `<S>.checkpoints.internal` on T.
    pub write_to_target: bool,
    /// `replication.sync_group_offsets`.
    pub sync_group_offsets: bool,
    /// Connection settings of S (`cluster::client_config`), for the group calls.
    pub source_config: ClientConfig,
    /// Connection settings of T, for the group calls.
    pub target_config: ClientConfig,
    /// T's shared producer: writes the checkpoint records.
    pub producer: FutureProducer<ClusterContext>,
    /// T's shared admin client: creates the checkpoints topic.
    pub admin: Arc<AdminClient<ClusterContext>>,
    /// The offset-translation store (translations in, checkpoints out).
    pub store: Store,
    /// The flow T→S, when the topology also has it: under the identity policy a topic it
    /// replicates back holds both sides' records, and checkpoints take both into account.
    pub reverse: Option<Flow>,
    /// Where counts go.
    pub metrics: Arc<Metrics>,
    /// The flow's status: which source partitions this instance owns.
    pub status: Arc<FlowStatus>,
}

/// Checkpoints the flow's groups every interval until `shutdown`; returns within moments of it.
pub async fn run(setup: CheckpointSetup, shutdown: CancellationToken) {
    let mut task = Task::new(setup);
    tracing::info!(flow = %task.flow_name, topic = %task.topic,
        to_target = task.s.write_to_target, sync_group_offsets = task.s.sync_group_offsets,
        "checkpointing consumer groups every {}", humantime::format_duration(task.s.interval));
    let mut ticker = tokio::time::interval(task.s.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            _ = task.round() => {}
        }
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error(transparent)]
    Group(#[from] CheckpointError),
    #[error("the call did not complete: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl CallError {
    /// Whether the cluster did not answer (down, unreachable, or too slow), rather than refused
    /// this one call: then the rest of the round's calls to it would wait out their timeouts too.
    fn unreachable(&self) -> bool {
        use RDKafkaErrorCode as C;
        match self {
            CallError::Group(CheckpointError::Timeout { .. }) => true,
            CallError::Group(CheckpointError::Kafka { source, .. }) => matches!(
                source.rdkafka_error_code(),
                Some(
                    C::OperationTimedOut
                        | C::RequestTimedOut
                        | C::BrokerTransportFailure
                        | C::AllBrokersDown
                        | C::Resolve
                        | C::NetworkException
                )
            ),
            _ => false,
        }
    }
}

/// Runs a blocking group call off the async runtime.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, CheckpointError> + Send + 'static,
) -> Result<R, CallError> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

/// The task's state between rounds.
struct Task {
    s: CheckpointSetup,
    /// `S->T`, for logs.
    flow_name: String,
    /// `<S>.checkpoints.internal`.
    topic: String,
    /// The checkpoints topic is known to exist on T.
    topic_ready: bool,
    /// When to look for a missing checkpoints topic again.
    next_topic_check: Instant,
    /// Emitted checkpoints not yet acknowledged by T, by (group, remote topic, partition):
    /// only the latest per key, so this stays as small as the set of keys.
    unsent: BTreeMap<(String, String, i32), StoredCheckpoint>,
    /// Ongoing problems by episode (`source`, `source <group>`, `store`, `topic`, `delivery`,
    /// `sync <group>`): the message logged when the episode began.
    problems: HashMap<String, String>,
    /// Groups last seen with active members on T (logged once per episode).
    active: HashSet<String>,
    /// Owned partitions (source topic, partition) whose previous checkpoints are known: the
    /// ones this task checkpoints.
    synced: BTreeSet<(String, i32)>,
    /// The latest checkpoints other instances emitted for them, where newer than the store's.
    imported: owners::Imported,
}

impl Task {
    fn new(mut s: CheckpointSetup) -> Self {
        crate::cluster::drop_producer_settings(&mut s.source_config);
        crate::cluster::drop_producer_settings(&mut s.target_config);
        Task {
            flow_name: s.flow.name(),
            topic: checkpoints_topic(&s.flow.source),
            s,
            topic_ready: false,
            next_topic_check: Instant::now(),
            unsent: BTreeMap::new(),
            problems: HashMap::new(),
            active: HashSet::new(),
            synced: BTreeSet::new(),
            imported: HashMap::new(),
        }
    }

    /// One interval's work (steps 0–5 of the module doc).
    async fn round(&mut self) {
        self.follow_owners().await;
        let Some(groups) = self.read_source().await else {
            return;
        };
        if self.s.write_to_target {
            self.publish().await;
        }
        if self.s.sync_group_offsets {
            for group in &groups {
                if let Err(e) = self.sync(group).await {
                    let unreachable = e.unreachable();
                    let msg = format!(
                        "cannot sync the offsets of consumer group '{group}' onto cluster '{}': {e}",
                        self.s.flow.target
                    );
                    self.problem(format!("sync {group}"), "group_sync", msg);
                    if unreachable {
                        break;
                    }
                } else {
                    self.resolved(&format!("sync {group}"));
                }
            }
        }
    }

    /// Counts a problem; logs it when its episode begins.
    fn problem(&mut self, episode: String, kind: &str, msg: String) {
        let (s, t) = (&self.s.flow.source, &self.s.flow.target);
        self.s
            .metrics
            .errors
            .with_label_values(&[s.as_str(), t.as_str(), kind])
            .inc();
        if let Entry::Vacant(v) = self.problems.entry(episode) {
            tracing::error!(flow = %self.flow_name, "{msg} (logged once until it works again)");
            v.insert(msg);
        }
    }

    /// Ends a problem's episode, if one was going on.
    fn resolved(&mut self, episode: &str) {
        if let Some(was) = self.problems.remove(episode) {
            tracing::info!(flow = %self.flow_name, "checkpoints: working again (was: {was})");
        }
    }

    fn labels(&self) -> [&str; 2] {
        [&self.s.flow.source, &self.s.flow.target]
    }
}
