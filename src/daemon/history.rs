//! A store that `run` has just created knows nothing of what the flows copied before: a new
//! deployment, or a store that was lost (a deleted directory, a new volume). The second case
//! is said out loud: for each flow whose consumer group already has committed offsets on its
//! source, one warning names the flow, where the new store takes what was copied before from
//! (the segments topic on the target, see `crate::segments`), and where `translate` and
//! `failover` take the positions it does not hold from instead.

use std::time::Duration;

use crate::checkpoint::{self, checkpoints_topic};
use crate::cluster::client_config;
use crate::naming::segments_topic;
use crate::topology::Topology;

/// How long the look at one source cluster may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// When `created` (the store was created by this `run`), looks, in the background, at each
/// flow's consumer group on its source and warns for each flow that has history there.
pub fn warn_if_new_store_has_history(t: &Topology, created: bool) {
    if !created {
        return;
    }
    tracing::info!(path = %t.store.path.display(), "offset-translation store created");
    for flow in &t.flows {
        let source = t.clusters[&flow.source].clone();
        let target_checkpoints = t.clusters[&flow.target].checkpoints;
        let (from, to) = (flow.source.clone(), flow.target.clone());
        let path = t.store.path.clone();
        let group = flow.group.clone();
        tokio::task::spawn_blocking(move || {
            let committed =
                checkpoint::committed_offsets(client_config(&source), &group, |_| true, TIMEOUT);
            let partitions = match committed {
                Ok(c) if c.is_empty() => return,
                Ok(c) => c.len(),
                Err(e) => {
                    tracing::debug!(flow = %format!("{from}->{to}"), "history not read: {e}");
                    return;
                }
            };
            let instead = if target_checkpoints {
                format!(
                    "translate and failover take the others from the latest checkpoints on {} on \
                     '{to}'",
                    checkpoints_topic(&from)
                )
            } else {
                format!("'{to}' has checkpoints: false, so nothing else can translate the others")
            };
            tracing::warn!(
                flow = %format!("{from}->{to}"),
                "the store at {} is new, but this flow copied records before it (its consumer \
                 group '{group}' has committed offsets for {partitions} partition(s) on \
                 '{from}'): it reads what was copied before from {} on '{to}', where every \
                 instance publishes its segments, so offsets translate exactly where those are \
                 kept; {instead}",
                path.display(),
                segments_topic(&from)
            );
        });
    }
}
