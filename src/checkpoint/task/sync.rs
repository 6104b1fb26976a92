//! Step 5 of a round (`sync_group_offsets`): commit a group's translated offsets on the
//! target for the partitions this instance owns, forward only, and only while the group has no
//! active members there.

use std::collections::{BTreeSet, HashMap};

use super::{blocking, CallError, Task, CALL_TIMEOUT};
use crate::checkpoint::{commit_group_offsets, committed_offsets, describe_group, CheckpointError};
use crate::store::StoredCheckpoint;

impl Task {
    /// Step 5 for one group: commits its translated offsets on T where that moves it forward,
    /// unless it has active members there.
    pub(super) async fn sync(&mut self, group: &str) -> Result<(), CallError> {
        let (source, target) = (self.s.flow.source.clone(), self.s.flow.target.clone());
        let checkpoints: Vec<StoredCheckpoint> = match self.s.store.checkpoints(Some(group)) {
            Ok(all) => all
                .into_iter()
                .filter(|c| c.group == group && c.source == source && c.target == target)
                // Only the partitions this instance owns: their owner syncs the others.
                .filter(|c| self.synced.contains(&(c.source_topic.clone(), c.partition)))
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
}
