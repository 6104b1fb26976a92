//! The third place the offset commands read checkpoints from (after the daemon and the store,
//! see [`super::offsets`]): `<source>.checkpoints.internal` on a flow's target, which `run`
//! keeps writing there, so a failover works when the source site and its store are gone.

use super::error::CommandError;
use super::offsets::CLUSTER_TIMEOUT;
use crate::checkpoint::{self, CheckpointError};
use crate::cluster;
use crate::naming::Naming;
use crate::store::StoredCheckpoint;
use crate::topology::{Flow, Topology};

/// The latest checkpoints of `flow` (of `group` only, when given) as read from
/// `<source>.checkpoints.internal` on its target, in the store's shape: the source topic is the
/// remote name with the flow's source alias taken off (the same name under `identity`), and
/// `timestamp_ms` is the record's timestamp (0 when it has none). Empty when the topic does
/// not exist. Fails when the target cannot be read.
pub fn topic_checkpoints(
    t: &Topology,
    flow: &Flow,
    group: Option<&str>,
) -> Result<Vec<StoredCheckpoint>, CommandError> {
    let naming = Naming::from_replication(&t.replication);
    let target = &t.clusters[&flow.target];
    // Fails fast, naming the cluster, when it cannot be reached at all.
    super::topics::list_topics(target, CLUSTER_TIMEOUT)?;
    let topic = checkpoint::checkpoints_topic(&flow.source);
    let read = checkpoint::read_latest(cluster::client_config(target), &topic, CLUSTER_TIMEOUT)
        .map_err(|e: CheckpointError| CommandError::cluster(target, &e))?;
    Ok(read
        .into_iter()
        .filter(|r| group.is_none_or(|g| r.checkpoint.group == g))
        .map(|r| {
            let c = r.checkpoint;
            StoredCheckpoint {
                source: flow.source.clone(),
                target: flow.target.clone(),
                group: c.group,
                source_topic: source_topic_of(&naming, &flow.source, &c.topic),
                partition: c.partition,
                remote_topic: c.topic,
                upstream_offset: c.upstream_offset,
                downstream_offset: c.downstream_offset,
                metadata: c.metadata,
                timestamp_ms: r.timestamp_ms.unwrap_or(0),
            }
        })
        .collect())
}

/// The name on the flow's source of `remote`, a topic the flow from `source` wrote: the name
/// without its source alias (`a.orders` → `orders`), or `remote` itself under `identity`.
pub fn source_topic_of(naming: &Naming, source: &str, remote: &str) -> String {
    match (naming.topic_source(remote), naming.upstream_topic(remote)) {
        (Some(alias), Some(up)) if alias == source => up.to_string(),
        (None, Some(up)) => up.to_string(),
        _ => remote.to_string(),
    }
}
