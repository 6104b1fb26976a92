//! The third place the offset commands read checkpoints from (after the daemon and the store,
//! see [`super::offsets`]): `<source>.checkpoints.internal` on a flow's target, which `run`
//! keeps writing there, so a failover works when the source site and its store are gone.

use super::error::CommandError;
use super::offsets::{Via, CLUSTER_TIMEOUT};
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

/// Merges checkpoints read from a checkpoints topic into `held` (the daemon's or the store's,
/// each with what gave it): per (group, flow, source topic, partition) the newer by emission
/// time wins, the held one on a tie. With several instances each store holds the checkpoints
/// its own instance emitted (for the partitions it owned), the topic those of every instance.
/// Returns how many came from the topic.
pub fn merge_newest(
    held: &mut Vec<(StoredCheckpoint, Via)>,
    from_topic: Vec<StoredCheckpoint>,
) -> usize {
    let mut taken = 0;
    for c in from_topic {
        let same = |h: &StoredCheckpoint| {
            (&h.group, &h.source, &h.target, &h.source_topic, h.partition)
                == (&c.group, &c.source, &c.target, &c.source_topic, c.partition)
        };
        match held.iter_mut().find(|(h, _)| same(h)) {
            Some((h, via)) => {
                if c.timestamp_ms > h.timestamp_ms {
                    *h = c;
                    *via = Via::CheckpointsTopic;
                    taken += 1;
                }
            }
            None => {
                held.push((c, Via::CheckpointsTopic));
                taken += 1;
            }
        }
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp(partition: i32, upstream: i64, timestamp_ms: i64) -> StoredCheckpoint {
        StoredCheckpoint {
            source: "a".into(),
            target: "b".into(),
            group: "app".into(),
            source_topic: "orders".into(),
            partition,
            remote_topic: "a.orders".into(),
            upstream_offset: upstream,
            downstream_offset: upstream,
            metadata: String::new(),
            timestamp_ms,
        }
    }

    #[test]
    fn the_newest_checkpoint_of_each_partition_wins() {
        // This instance's store: partition 0 (old: another instance owns it now) and 1.
        let mut held = vec![
            (cp(0, 10, 1_000), Via::Store),
            (cp(1, 50, 5_000), Via::Store),
        ];
        // The topic: every instance's latest — newer for 0, the same for 1, and 2.
        let topic = vec![cp(0, 40, 4_000), cp(1, 50, 5_000), cp(2, 7, 3_000)];
        assert_eq!(merge_newest(&mut held, topic), 2);
        let got: Vec<(i32, i64, Via)> = held
            .iter()
            .map(|(c, via)| (c.partition, c.upstream_offset, *via))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 40, Via::CheckpointsTopic),
                (1, 50, Via::Store),
                (2, 7, Via::CheckpointsTopic)
            ]
        );
    }
}
