//! The checkpoint task of one flow `S → T`. Every `checkpoints_interval` it:
//!
//! 1. lists the consumer groups on S and keeps those the flow selects (`groups`,
//!    `groups_exclude`; never hubmirror's own), and reads each one's committed offsets on S for
//!    the topics the flow replicates;
//! 2. translates each offset with the store; only an exact translation makes a checkpoint
//!    (a group ahead of the flow, or a partition the store knows nothing of, waits);
//! 3. applies MirrorMaker 2's emission rule against the group's previous checkpoint for that
//!    partition ([`should_emit`]): the first one, a rewound group (upstream offset went
//!    backwards), or a downstream offset that advanced; otherwise the previous one stays, so
//!    checkpoints never go backwards unless the group did;
//! 4. stores what it emits and, unless T has `checkpoints: false`, writes it in MM2's record
//!    format to `<S>.checkpoints.internal` on T (created with 1 partition when missing and
//!    `create_topics` is on); a checkpoint whose write failed is written again next round
//!    unless a newer one for its key replaced it;
//! 5. with `sync_group_offsets`, commits the translated offsets of each selected group on T,
//!    only while the group has no active members there and only where that moves the group
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

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use tokio::time::{Instant, MissedTickBehavior};

use super::{
    checkpoints_topic, commit_group_offsets, committed_offsets, describe_group, list_groups,
    select_groups, Checkpoint, CheckpointError,
};
use crate::cluster::ClusterContext;
use crate::metrics::Metrics;
use crate::naming::Naming;
use crate::shutdown::CancellationToken;
use crate::status::now_ms;
use crate::store::resume_both_ways;
use crate::store::{PartitionKey, Store, StoreError, StoredCheckpoint, Translation};
use crate::topology::Flow;

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
}

/// MirrorMaker 2's checkpoint emission rule: given the previous checkpoint's
/// `(upstream, downstream)` for a (group, partition), whether a new translation
/// `upstream → downstream` replaces it. Yes for the first, when the group's source offset went
/// backwards (it was rewound: follow it), or when the downstream offset advanced; never
/// otherwise, so a checkpoint only moves back when the group itself did.
pub fn should_emit(previous: Option<(i64, i64)>, upstream: i64, downstream: i64) -> bool {
    match previous {
        None => true,
        Some((up, down)) => upstream < up || downstream > down,
    }
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
        }
    }

    /// One interval's work (steps 1–5 of the module doc).
    async fn round(&mut self) {
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

    /// Steps 1–3 (and storing): the selected groups, or `None` when S could not be read.
    async fn read_source(&mut self) -> Option<Vec<String>> {
        let cfg = self.s.source_config.clone();
        let all = match blocking(move || list_groups(cfg, CALL_TIMEOUT)).await {
            Ok(all) => all,
            Err(e) => {
                let msg = format!(
                    "cannot list the consumer groups on cluster '{}': {e}",
                    self.s.flow.source
                );
                self.problem("source".into(), "checkpoint_source", msg);
                return None;
            }
        };
        self.resolved("source");
        let mut complete = true;
        let groups = select_groups(&all, &self.s.flow.groups, &self.s.flow.groups_exclude);
        let now = now_ms();
        for group in &groups {
            let (cfg, g) = (self.s.source_config.clone(), group.clone());
            let (flow, naming) = (self.s.flow.clone(), self.s.naming.clone());
            let replicated = move |t: &str| naming.flow_replicates(&flow, t);
            let offsets = match blocking(move || {
                committed_offsets(cfg, &g, replicated, CALL_TIMEOUT)
            })
            .await
            {
                Ok(o) => {
                    self.resolved(&format!("source {group}"));
                    o
                }
                Err(e) => {
                    complete = false;
                    let unreachable = e.unreachable();
                    let msg = format!(
                        "cannot read the committed offsets of consumer group '{group}' on \
                         cluster '{}': {e}",
                        self.s.flow.source
                    );
                    self.problem(format!("source {group}"), "checkpoint_source", msg);
                    if unreachable {
                        break;
                    }
                    continue;
                }
            };
            for (topic, partition, upstream) in offsets {
                match self.checkpoint(group, &topic, partition, upstream, now) {
                    Ok(Some(cp)) => {
                        self.s
                            .metrics
                            .checkpoints
                            .with_label_values(&self.labels())
                            .inc();
                        if self.s.write_to_target {
                            let key = (cp.group.clone(), cp.remote_topic.clone(), cp.partition);
                            self.unsent.insert(key, cp);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let msg = format!("cannot keep checkpoints in the store: {e}");
                        self.problem("store".into(), "checkpoint_store", msg);
                        return None;
                    }
                }
            }
        }
        self.resolved("store");
        if complete {
            self.s
                .metrics
                .checkpoints_last_success
                .with_label_values(&self.labels())
                .set(now_ms() / 1000);
        }
        Some(groups)
    }

    /// The topic on T whose T→S copies land in `topic` on S, when both flows carry it under one
    /// name (identity policy); `None` otherwise.
    fn back_topic<'t>(&self, topic: &'t str) -> Option<&'t str> {
        let back = self.s.reverse.as_ref()?;
        let naming = &self.s.naming;
        (naming.remote_topic(&back.source, topic) == topic && naming.flow_replicates(back, topic))
            .then_some(topic)
    }

    /// Translates one committed offset and stores the checkpoint if the emission rule lets it
    /// replace the previous one; returns it then.
    fn checkpoint(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        upstream: i64,
        now: i64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let (source, target) = (&self.s.flow.source, &self.s.flow.target);
        let key = PartitionKey::new(source, target, topic, partition);
        let mut translation = self.s.store.translate(&key, upstream)?;
        if let Some(back) = self.back_topic(topic) {
            let back_key = PartitionKey::new(target, source, back, partition);
            translation = resume_both_ways(translation, self.s.store.reverse(&back_key, upstream)?);
        }
        let downstream = match translation {
            Translation::Exact(d) => d,
            other => {
                tracing::debug!(flow = %self.flow_name, group, topic, partition, upstream,
                    "no checkpoint: {other:?}");
                return Ok(None);
            }
        };
        let previous = self.s.store.checkpoint(&key, group)?;
        let before = previous
            .as_ref()
            .map(|p| (p.upstream_offset, p.downstream_offset));
        if !should_emit(before, upstream, downstream) {
            return Ok(None);
        }
        let cp = StoredCheckpoint {
            source: source.clone(),
            target: target.clone(),
            group: group.to_string(),
            source_topic: topic.to_string(),
            partition,
            remote_topic: self.s.naming.remote_topic(source, topic),
            upstream_offset: upstream,
            downstream_offset: downstream,
            metadata: String::new(),
            timestamp_ms: now,
        };
        self.s.store.put_checkpoint(&cp)?;
        tracing::debug!(flow = %self.flow_name, group, topic, partition, upstream, downstream,
            "checkpoint");
        Ok(Some(cp))
    }

    /// Step 4: writes the unsent checkpoints to T and waits (bounded) for the acknowledgements.
    async fn publish(&mut self) {
        if self.unsent.is_empty() {
            return;
        }
        if !self.topic_ready {
            if Instant::now() < self.next_topic_check {
                return;
            }
            match self.find_or_create_topic().await {
                Ok(()) => {
                    self.topic_ready = true;
                    self.resolved("topic");
                }
                Err(msg) => {
                    self.next_topic_check = Instant::now() + TOPIC_RETRY.max(self.s.interval);
                    self.problem("topic".into(), "checkpoint_topic", msg);
                    return;
                }
            }
        }
        let mut in_flight = Vec::with_capacity(self.unsent.len());
        let mut failure = None;
        for (key, cp) in &self.unsent {
            let record = Checkpoint {
                group: cp.group.clone(),
                topic: cp.remote_topic.clone(),
                partition: cp.partition,
                upstream_offset: cp.upstream_offset,
                downstream_offset: cp.downstream_offset,
                metadata: cp.metadata.clone(),
            };
            let (k, v) = match (record.encode_key(), record.encode_value()) {
                (Ok(k), Ok(v)) => (k, v),
                (Err(e), _) | (_, Err(e)) => {
                    failure = Some(format!("checkpoint of group '{}': {e}", cp.group));
                    continue;
                }
            };
            let rec = FutureRecord::to(&self.topic)
                .key(&k)
                .payload(&v)
                .timestamp(cp.timestamp_ms);
            match self.s.producer.send_result(rec) {
                Ok(delivery) => in_flight.push((key.clone(), cp.clone(), delivery)),
                Err((e, _)) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        let (keys, deliveries): (Vec<_>, Vec<_>) =
            in_flight.into_iter().map(|(k, cp, d)| ((k, cp), d)).unzip();
        match tokio::time::timeout(CALL_TIMEOUT, join_all(deliveries)).await {
            Err(_) => {
                failure.get_or_insert(format!("no acknowledgement within {CALL_TIMEOUT:?}"));
            }
            Ok(outcomes) => {
                for ((key, cp), outcome) in keys.into_iter().zip(outcomes) {
                    match outcome {
                        Ok(Ok(_)) => {
                            // Unless a newer checkpoint for the key arrived meanwhile.
                            if self.unsent.get(&key) == Some(&cp) {
                                self.unsent.remove(&key);
                            }
                        }
                        Ok(Err((e, _))) => {
                            if matches!(
                                e.rdkafka_error_code(),
                                Some(
                                    RDKafkaErrorCode::UnknownTopicOrPartition
                                        | RDKafkaErrorCode::UnknownTopic
                                )
                            ) {
                                self.topic_ready = false;
                            }
                            failure.get_or_insert(e.to_string());
                        }
                        Err(_) => {
                            failure.get_or_insert("the producer closed".to_string());
                        }
                    }
                }
            }
        }
        match failure {
            None => self.resolved("delivery"),
            Some(why) => {
                let msg = format!(
                    "cannot write checkpoints to '{}' on cluster '{}': {why}; retrying every {}",
                    self.topic,
                    self.s.flow.target,
                    humantime::format_duration(self.s.interval)
                );
                self.problem("delivery".into(), "checkpoint_delivery", msg);
            }
        }
    }

    /// Makes sure the checkpoints topic exists on T, creating it when allowed. `Err` is a
    /// sentence naming the topic, the cluster and what to do.
    async fn find_or_create_topic(&self) -> Result<(), String> {
        let (cluster, topic) = (&self.s.flow.target, &self.topic);
        let producer = self.s.producer.clone();
        // All topics: asking for one by name could auto-create it with broker defaults.
        let md = tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(None, CALL_TIMEOUT)
        })
        .await
        .map_err(|e| format!("cannot look for '{topic}' on cluster '{cluster}': {e}"))?
        .map_err(|e| format!("cannot list topics on cluster '{cluster}' to find '{topic}': {e}"))?;
        let exists = md
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
        if exists {
            return Ok(());
        }
        let fix = format!(
            "create it with 1 partition, or stop writing checkpoints to this cluster \
             (clusters.{cluster}.checkpoints: false; they are still kept in the store)"
        );
        if !self.s.create_topics {
            return Err(format!(
                "checkpoints topic '{topic}' is missing on cluster '{cluster}' and \
                 replication.create_topics is false: {fix}"
            ));
        }
        let new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1));
        let opts = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT));
        let cannot = |why: String| {
            format!(
                "cannot create checkpoints topic '{topic}' on cluster '{cluster}': {why}; {fix}"
            )
        };
        let created = tokio::time::timeout(CALL_TIMEOUT, self.s.admin.create_topics([&new], &opts))
            .await
            .map_err(|_| cannot(format!("no answer within {CALL_TIMEOUT:?}")))?
            .map_err(|e| cannot(e.to_string()))?;
        for result in created {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(cannot(code.to_string())),
            }
        }
        tracing::info!(flow = %self.flow_name, cluster = %cluster, topic = %topic, partitions = 1,
            "created checkpoints topic");
        Ok(())
    }

    /// Step 5 for one group: commits its translated offsets on T where that moves it forward,
    /// unless it has active members there.
    async fn sync(&mut self, group: &str) -> Result<(), CallError> {
        let (source, target) = (self.s.flow.source.clone(), self.s.flow.target.clone());
        let checkpoints: Vec<StoredCheckpoint> = match self.s.store.checkpoints(Some(group)) {
            Ok(all) => all
                .into_iter()
                .filter(|c| c.group == group && c.source == source && c.target == target)
                .collect(),
            Err(e) => {
                let msg = format!("cannot read checkpoints from the store: {e}");
                self.problem("store".into(), "checkpoint_store", msg);
                return Ok(());
            }
        };
        if checkpoints.is_empty() {
            return Ok(());
        }
        let (cfg, g) = (self.s.target_config.clone(), group.to_string());
        let described = blocking(move || describe_group(cfg, &g, CALL_TIMEOUT)).await?;
        if described.is_active() {
            self.skipped_active(group, &described.state, described.members);
            return Ok(());
        }
        let remote: BTreeSet<String> = checkpoints.iter().map(|c| c.remote_topic.clone()).collect();
        let (cfg, g) = (self.s.target_config.clone(), group.to_string());
        let on_target = move |t: &str| remote.contains(t);
        let committed =
            blocking(move || committed_offsets(cfg, &g, on_target, CALL_TIMEOUT)).await?;
        let committed: HashMap<(String, i32), i64> =
            committed.into_iter().map(|(t, p, o)| ((t, p), o)).collect();
        // Forward only: a partition where the group is already at or past the checkpoint stays.
        let plan: Vec<(String, i32, i64)> = checkpoints
            .iter()
            .filter(|c| {
                committed
                    .get(&(c.remote_topic.clone(), c.partition))
                    .is_none_or(|&at| c.downstream_offset > at)
            })
            .map(|c| (c.remote_topic.clone(), c.partition, c.downstream_offset))
            .collect();
        if !plan.is_empty() {
            let (cfg, g, n) = (self.s.target_config.clone(), group.to_string(), plan.len());
            match blocking(move || commit_group_offsets(cfg, &g, &plan, CALL_TIMEOUT)).await {
                Ok(()) => {
                    self.s
                        .metrics
                        .group_offsets_synced
                        .with_label_values(&self.labels())
                        .inc_by(n as u64);
                    tracing::debug!(flow = %self.flow_name, group, cluster = %target,
                        partitions = n, "synced group offsets");
                }
                // It gained members since it was described.
                Err(CallError::Group(CheckpointError::GroupActive { state, members, .. })) => {
                    self.skipped_active(group, &state, members);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        if self.active.remove(group) {
            tracing::info!(flow = %self.flow_name, group, cluster = %target,
                "consumer group has no active members on the target any more: syncing its \
                 offsets again");
        }
        Ok(())
    }

    /// An active group on T: counted every time, logged once per episode.
    fn skipped_active(&mut self, group: &str, state: &str, members: usize) {
        let (s, t) = (&self.s.flow.source, &self.s.flow.target);
        self.s
            .metrics
            .group_sync_skipped
            .with_label_values(&[s.as_str(), t.as_str(), "active"])
            .inc();
        if self.active.insert(group.to_string()) {
            tracing::warn!(flow = %self.flow_name, group, cluster = %t, state, members,
                "consumer group '{group}' has {members} active member(s) on cluster '{t}': its \
                 offsets are not synced while it has members (logged once until it is idle)");
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

#[cfg(test)]
mod tests {
    use super::should_emit;

    #[test]
    fn emission_rule() {
        // The first checkpoint.
        assert!(should_emit(None, 0, 0));
        assert!(should_emit(None, 400, 407));
        // Downstream advanced.
        assert!(should_emit(Some((400, 407)), 600, 607));
        assert!(should_emit(Some((400, 407)), 400, 408));
        // Nothing moved, or only upstream moved (skipped records): keep the previous one.
        assert!(!should_emit(Some((400, 407)), 400, 407));
        assert!(!should_emit(Some((400, 407)), 410, 407));
        // Never backwards downstream while upstream did not go back.
        assert!(!should_emit(Some((400, 407)), 400, 300));
        assert!(!should_emit(Some((400, 407)), 500, 300));
        // The group was rewound on the source: follow it back.
        assert!(should_emit(Some((400, 407)), 50, 57));
        assert!(should_emit(Some((400, 407)), 399, 407));
    }
}
