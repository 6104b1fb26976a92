//! Who is in a consumer group and which partitions each member owns, as the group's coordinator
//! describes it (ListGroups, then DescribeGroups: librdkafka's `rd_kafka_list_groups`). This is
//! how `hubmirror status` lists the instances sharing a flow from any machine, with no daemon
//! running: every instance's flow consumer is a member of the flow's group, with its instance
//! name as `client.id` and `group.instance.id`.
//!
//! A member's assignment is the consumer protocol's `ConsumerProtocolAssignment` (an `i16`
//! version, then topics and partitions, then user data), written by the group's leader and kept
//! by the coordinator. Apache Kafka reports it; a coordinator that does not (tansu, the test
//! broker, sends empty assignments and no client id) leaves the partitions unknown, never empty.

use std::time::Duration;

use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::{Decodable, Message};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::groups::GroupMemberInfo;
use rdkafka::ClientConfig;
use thiserror::Error;

use super::context::ReaderContext;
use super::drop_producer_settings;

/// Why a group could not be described.
#[derive(Debug, Error)]
#[error("describing consumer group '{group}': {source}")]
pub struct GroupError {
    /// The group.
    pub group: String,
    /// librdkafka's reason.
    #[source]
    pub source: KafkaError,
}

/// Why a member's assignment could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("unreadable consumer-protocol assignment: {0}")]
pub struct AssignmentError(String);

/// A consumer group as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMembers {
    /// `Stable`, `PreparingRebalance`, `CompletingRebalance`, `Empty` or `Dead` (also for a
    /// group the cluster does not list).
    pub state: String,
    /// The members, sorted by instance name.
    pub members: Vec<Member>,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's instance name: its `client.id`, or, when the coordinator does not report
    /// client ids, its member id without the `-<uuid>` the coordinator appended.
    pub instance: String,
    /// The member's host as the coordinator saw it (without Kafka's leading `/`); empty when
    /// not reported.
    pub host: String,
    /// The partitions the member owns, sorted; `None` when the coordinator reported no
    /// assignment (during a rebalance, or a coordinator that does not keep them).
    pub partitions: Option<Vec<(String, i32)>>,
}

/// Describes `group` on the cluster `config` connects to, within `timeout`. A group the cluster
/// does not list is `Dead` with no members. Blocking: call it off the async runtime.
pub fn describe_members(
    mut config: ClientConfig,
    group: &str,
    timeout: Duration,
) -> Result<GroupMembers, GroupError> {
    let fail = |source| GroupError {
        group: group.to_string(),
        source,
    };
    // A plain client: it must not join the group it describes.
    config.remove("group.id");
    drop_producer_settings(&mut config);
    let consumer: BaseConsumer<ReaderContext> =
        super::oauth::create(&config, ReaderContext).map_err(fail)?;
    let list = consumer
        .fetch_group_list(Some(group), timeout)
        .map_err(fail)?;
    // The coordinator describes the group; another broker may list a stale entry: the
    // description with the most members wins.
    let best = list
        .groups()
        .iter()
        .filter(|g| g.name() == group)
        .max_by_key(|g| g.members().len());
    let Some(g) = best else {
        return Ok(GroupMembers {
            state: "Dead".into(),
            members: Vec::new(),
        });
    };
    let mut members: Vec<Member> = g.members().iter().map(member).collect();
    members.sort_by(|a, b| a.instance.cmp(&b.instance).then(a.host.cmp(&b.host)));
    Ok(GroupMembers {
        state: g.state().to_string(),
        members,
    })
}

fn member(m: &GroupMemberInfo) -> Member {
    let partitions = match m.assignment().filter(|a| !a.is_empty()) {
        None => None,
        Some(bytes) => match parse_assignment(bytes) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(member = m.id(), "{e}");
                None
            }
        },
    };
    Member {
        instance: instance_name(m.client_id(), m.id()),
        host: m.client_host().trim_start_matches('/').to_string(),
        partitions,
    }
}

/// The instance name of a member: `client_id` when reported, else `member_id` without the
/// `-<uuid>` a coordinator appends to the static instance id (or client id) it was joined with.
pub fn instance_name(client_id: &str, member_id: &str) -> String {
    if !client_id.is_empty() {
        return client_id.to_string();
    }
    // `<name>-<uuid>`: a UUID is 36 characters.
    let n = member_id.len();
    let suffix = n.checked_sub(37).and_then(|at| {
        let (name, rest) = (member_id.get(..at)?, member_id.get(at..)?);
        let uuid = rest.strip_prefix('-')?;
        (!name.is_empty() && uuid::Uuid::try_parse(uuid).is_ok()).then_some(name)
    });
    suffix.unwrap_or(member_id).to_string()
}

/// The partitions of a consumer-protocol assignment, sorted by topic and partition. Versions
/// above the newest this build knows are read as that version (Kafka only appends fields, as
/// its own `ConsumerProtocol` does).
pub fn parse_assignment(bytes: &[u8]) -> Result<Vec<(String, i32)>, AssignmentError> {
    let (Some(head), Some(mut rest)) = (bytes.get(..2), bytes.get(2..)) else {
        return Err(AssignmentError(format!(
            "{} bytes, no version",
            bytes.len()
        )));
    };
    let version = i16::from_be_bytes([head[0], head[1]]);
    if version < 0 {
        return Err(AssignmentError(format!("version {version}")));
    }
    let version = version.min(ConsumerProtocolAssignment::VERSIONS.max);
    let a = ConsumerProtocolAssignment::decode(&mut rest, version)
        .map_err(|e| AssignmentError(format!("version {version}: {e}")))?;
    let mut out: Vec<(String, i32)> = a
        .assigned_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.to_string(), *p)))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
