//! Per flow, the instances of the topology in the flow's consumer group on the source and the
//! partitions each owns, read from the group itself (its coordinator on the source cluster): it
//! works from any machine, with or without a daemon running.

use std::time::Duration;

use serde::Serialize;

use crate::cluster::{client_config, group};
use crate::status::SourcePartition;
use crate::topology::{Flow, Topology};

/// How long describing one flow's group may take (only on a source that answered).
const GROUP_TIMEOUT: Duration = Duration::from_secs(3);

/// One instance of the topology, as the flow's group knows it.
#[derive(Debug, Serialize)]
pub(super) struct InstanceLine {
    /// The instance name (`hubmirror run --instance`, the pod name in Kubernetes).
    pub instance: String,
    /// Where it connects from, as the source cluster saw it; empty when not reported.
    pub host: String,
    /// The source partitions it owns in the flow, sorted; `null` when the source cluster does
    /// not report the members' assignments (during a rebalance, or a broker that keeps none).
    pub partitions: Option<Vec<SourcePartition>>,
}

/// What the flow's group says.
#[derive(Debug, Default)]
pub(super) struct Fleet {
    /// The group's state (`Stable`, `PreparingRebalance`, `Empty`, `Dead`, ...); `None` when
    /// the group could not be read.
    pub state: Option<String>,
    /// Why the group could not be read, when the source answered otherwise.
    pub error: Option<String>,
    pub instances: Vec<InstanceLine>,
}

/// Describes the group of flow `f` on its source, each connection set up within `setup`.
/// Blocking.
pub(super) fn read(t: &Topology, f: &Flow, setup: Duration) -> Fleet {
    let mut cfg = client_config(&t.clusters[&f.source]);
    cfg.set(
        "socket.connection.setup.timeout.ms",
        setup.as_millis().to_string(),
    );
    match group::describe_members(cfg, &f.group, GROUP_TIMEOUT) {
        Ok(g) => Fleet {
            state: Some(g.state),
            error: None,
            instances: g
                .members
                .into_iter()
                .map(|m| InstanceLine {
                    instance: m.instance,
                    host: m.host,
                    partitions: m.partitions.map(|ps| {
                        ps.into_iter()
                            .map(|(topic, partition)| SourcePartition { topic, partition })
                            .collect()
                    }),
                })
                .collect(),
        },
        Err(e) => Fleet {
            error: Some(format!("cluster '{}': {e}", f.source)),
            ..Fleet::default()
        },
    }
}

/// `orders[0,2,4] audit[1]`: partitions grouped by topic, in order; `-` for none, `?` when
/// unknown.
pub(super) fn partitions_text(partitions: Option<&[SourcePartition]>) -> String {
    let Some(ps) = partitions else {
        return "?".into();
    };
    if ps.is_empty() {
        return "-".into();
    }
    let mut out: Vec<String> = Vec::new();
    let mut current: Option<(&str, Vec<String>)> = None;
    for p in ps {
        match &mut current {
            Some((topic, list)) if *topic == p.topic => list.push(p.partition.to_string()),
            _ => {
                if let Some((topic, list)) = current.take() {
                    out.push(format!("{topic}[{}]", list.join(",")));
                }
                current = Some((&p.topic, vec![p.partition.to_string()]));
            }
        }
    }
    if let Some((topic, list)) = current {
        out.push(format!("{topic}[{}]", list.join(",")));
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(topic: &str, partition: i32) -> SourcePartition {
        SourcePartition {
            topic: topic.into(),
            partition,
        }
    }

    #[test]
    fn partitions_read_as_topic_lists() {
        assert_eq!(partitions_text(None), "?");
        assert_eq!(partitions_text(Some(&[])), "-");
        let ps = [
            sp("audit", 1),
            sp("orders", 0),
            sp("orders", 2),
            sp("orders", 4),
        ];
        assert_eq!(partitions_text(Some(&ps)), "audit[1] orders[0,2,4]");
    }
}
