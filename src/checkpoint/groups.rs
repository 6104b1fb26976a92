//! Consumer groups on a cluster: which exist, which a flow checkpoints, whether one has active
//! members, and reading and setting their committed offsets.
//!
//! Offsets are read and committed with a consumer that carries the group's id but never joins
//! the group (no subscribe, no JoinGroup): its OffsetFetch and OffsetCommit requests go to the
//! group coordinator like an admin tool's. A commit from outside the group uses generation -1,
//! which Kafka accepts only while the group has no active members; [`commit_group_offsets`]
//! checks that itself first (like MM2, hubmirror never moves an active group).
//!
//! Groups are found and described with ListGroups then DescribeGroups (librdkafka's
//! `rd_kafka_list_groups`). tansu (the test broker) lists only groups that have committed offsets, so
//! there a group whose members have not committed yet is not seen (it reads as `Dead`, idle).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use regex::Regex;

use super::{kafka, left, CheckpointError};
use crate::cluster::context::ReaderContext;

/// Groups whose names start with this are hubmirror's own (`hubmirror-<source>-<target>` of
/// each flow, and its readers); they are never checkpointed or moved.
pub const OWN_GROUP_PREFIX: &str = "hubmirror-";

/// The names of the consumer groups on the cluster (ListGroups to every broker, then
/// DescribeGroups), sorted. Groups of other protocol types (e.g. Kafka Connect workers) are left
/// out, as Kafka's `listConsumerGroups` does; groups that only store offsets (no protocol type)
/// are kept. Blocking: call it off the async runtime.
pub fn list_groups(
    config: ClientConfig,
    timeout: Duration,
) -> Result<Vec<String>, CheckpointError> {
    let consumer = plain_consumer(config, "listing the consumer groups")?;
    let list = consumer
        .fetch_group_list(None, timeout)
        .map_err(kafka("listing the consumer groups"))?;
    let mut names: Vec<String> = list
        .groups()
        .iter()
        .filter(|g| matches!(g.protocol_type(), "consumer" | ""))
        .map(|g| g.name().to_string())
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// The groups of `all` that match one of `include` and none of `exclude` (anchored regexes, as
/// the topology compiles a flow's `groups` and `groups_exclude`), sorted and without duplicates.
/// hubmirror's own groups ([`OWN_GROUP_PREFIX`]) are always left out.
pub fn select_groups(all: &[String], include: &[Regex], exclude: &[Regex]) -> Vec<String> {
    let mut out: Vec<String> = all
        .iter()
        .filter(|g| !g.starts_with(OWN_GROUP_PREFIX))
        .filter(|g| include.iter().any(|r| r.is_match(g)))
        .filter(|g| !exclude.iter().any(|r| r.is_match(g)))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A consumer group as the cluster describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub name: String,
    /// The coordinator's state: `Empty`, `Stable`, `PreparingRebalance`, `CompletingRebalance`,
    /// `Dead`; `Dead` (with no members) also when the cluster does not know the group.
    pub state: String,
    /// How many members the group has now.
    pub members: usize,
    /// `consumer` for consumer groups; empty for groups that only store offsets or are unknown.
    pub protocol_type: String,
}

impl GroupDescription {
    /// Whether the group has members: consumers that would overwrite (or reject) offsets
    /// committed from outside.
    pub fn is_active(&self) -> bool {
        self.members > 0
    }
}

/// Describes `group` (ListGroups and DescribeGroups). A group the cluster does not list is
/// reported as `Dead` with no members (on tansu also a live group that has not committed
/// any offset yet). Blocking: call it off the async runtime.
pub fn describe_group(
    config: ClientConfig,
    group: &str,
    timeout: Duration,
) -> Result<GroupDescription, CheckpointError> {
    let what = || format!("describing consumer group '{group}'");
    let consumer = plain_consumer(config, &what())?;
    let list = consumer
        .fetch_group_list(Some(group), timeout)
        .map_err(kafka(what()))?;
    let found = list.groups().iter().filter(|g| g.name() == group);
    // A group is described by its coordinator; other brokers may list nothing or a stale
    // `Dead` entry, so the description with the most members wins.
    let best = found.max_by_key(|g| g.members().len());
    Ok(match best {
        Some(g) => GroupDescription {
            name: group.to_string(),
            state: g.state().to_string(),
            members: g.members().len(),
            protocol_type: g.protocol_type().to_string(),
        },
        None => GroupDescription {
            name: group.to_string(),
            state: "Dead".to_string(),
            members: 0,
            protocol_type: String::new(),
        },
    })
}

/// Whether `group` has active members on the cluster (see [`describe_group`]).
/// Blocking: call it off the async runtime.
pub fn group_is_active(
    config: ClientConfig,
    group: &str,
    timeout: Duration,
) -> Result<bool, CheckpointError> {
    Ok(describe_group(config, group, timeout)?.is_active())
}

/// The committed offsets of `group` on the partitions of every topic for which `topics` returns
/// true, as `(topic, partition, offset)` sorted by topic and partition. Partitions without a
/// committed offset are left out. The topics' partitions come from the cluster's metadata; a
/// group with no offsets gives an empty list. Blocking: call it off the async runtime.
pub fn committed_offsets(
    config: ClientConfig,
    group: &str,
    topics: impl Fn(&str) -> bool,
    timeout: Duration,
) -> Result<Vec<(String, i32, i64)>, CheckpointError> {
    let deadline = Instant::now() + timeout;
    let what = format!("reading the committed offsets of consumer group '{group}'");
    let consumer: BaseConsumer<ReaderContext> =
        crate::cluster::oauth::create(&group_consumer(config, group), ReaderContext)
            .map_err(kafka(what.clone()))?;
    let md = consumer
        .fetch_metadata(None, left(deadline))
        .map_err(kafka(format!("{what}: listing the topics")))?;
    let mut tpl = TopicPartitionList::new();
    for t in md.topics() {
        if t.error().is_some() || !topics(t.name()) {
            continue;
        }
        for p in t.partitions() {
            tpl.add_partition(t.name(), p.id());
        }
    }
    if tpl.count() == 0 {
        return Ok(Vec::new());
    }
    let got = consumer
        .committed_offsets(tpl, left(deadline))
        .map_err(kafka(what.clone()))?;
    let mut out = Vec::new();
    for e in got.elements() {
        if let Err(source) = e.error() {
            return Err(CheckpointError::Kafka {
                what: format!("{what} ('{}' partition {})", e.topic(), e.partition()),
                source,
            });
        }
        if let Offset::Offset(o) = e.offset() {
            if o >= 0 {
                out.push((e.topic().to_string(), e.partition(), o));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Sets the committed offsets of `group` to `offsets` (`(topic, partition, offset)`), as one
/// OffsetCommit from outside the group (generation -1, without joining). Partitions not named
/// keep their offsets. Refuses ([`CheckpointError::GroupActive`], nothing committed) when the
/// group has active members (see [`describe_group`]): their own commits would overwrite these.
/// Kafka itself rejects such a commit too, but tansu 0.6.0 accepted it. Fails if any
/// partition's commit fails or the cluster does not answer within `timeout` (in which case the
/// commit may still land later). Blocking: call it off the async runtime.
pub fn commit_group_offsets(
    config: ClientConfig,
    group: &str,
    offsets: &[(String, i32, i64)],
    timeout: Duration,
) -> Result<(), CheckpointError> {
    let deadline = Instant::now() + timeout;
    let what = format!("committing offsets for consumer group '{group}'");
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in offsets {
        if *offset < 0 {
            return Err(CheckpointError::InvalidOffset {
                group: group.to_string(),
                topic: topic.clone(),
                partition: *partition,
                offset: *offset,
            });
        }
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(kafka(format!("{what} ('{topic}' partition {partition})")))?;
    }
    if tpl.count() == 0 {
        return Ok(());
    }
    let described = describe_group(config.clone(), group, left(deadline))?;
    if described.is_active() {
        return Err(CheckpointError::GroupActive {
            group: group.to_string(),
            state: described.state,
            members: described.members,
        });
    }
    let consumer: BaseConsumer<ReaderContext> =
        crate::cluster::oauth::create(&group_consumer(config, group), ReaderContext)
            .map_err(kafka(what.clone()))?;
    // Reach the group coordinator first, within the deadline: a synchronous commit waits
    // without limit for a coordinator it cannot find, and librdkafka reports the result of an
    // asynchronous manual commit to nobody (no offset_commit_cb is set by rdkafka).
    consumer
        .committed_offsets(tpl.clone(), left(deadline))
        .map_err(kafka(format!("{what}: reaching the group coordinator")))?;
    // The commit runs on its own thread so that this call returns at the deadline even if
    // the coordinator goes away now; that thread ends when librdkafka gives up or succeeds.
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("hubmirror-commit".into())
        .spawn(move || {
            let result = consumer.commit(&tpl, CommitMode::Sync);
            // The receiver is gone if the caller stopped waiting.
            let _ = tx.send(result);
        })
        .map_err(|source| CheckpointError::Thread {
            what: what.clone(),
            source,
        })?;
    match rx.recv_timeout(left(deadline)) {
        Ok(result) => result.map_err(kafka(what)),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(CheckpointError::Timeout {
            what,
            waited: timeout,
        }),
        // The thread ended without an answer: it panicked.
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(CheckpointError::Kafka {
            what,
            source: KafkaError::Canceled,
        }),
    }
}

/// A consumer without a group (metadata and group listings only).
fn plain_consumer(
    mut config: ClientConfig,
    what: &str,
) -> Result<BaseConsumer<ReaderContext>, CheckpointError> {
    config.remove("group.id");
    crate::cluster::oauth::create(&config, ReaderContext).map_err(kafka(what))
}

/// Settings of a consumer that speaks for `group` without joining it or committing by itself.
fn group_consumer(mut config: ClientConfig, group: &str) -> ClientConfig {
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    config
}
