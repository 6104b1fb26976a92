//! Steps 1–3 of a round: read the selected groups' committed offsets on the source, translate
//! each exactly through the store, and keep what MirrorMaker 2's emission rule lets replace
//! the previous checkpoint.

use super::{blocking, Task, CALL_TIMEOUT};
use crate::checkpoint::{committed_offsets, list_groups, select_groups};
use crate::status::now_ms;
use crate::store::{PartitionKey, StoreError, StoredCheckpoint, Translation};

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

impl Task {
    /// Steps 1–3 (and storing): the selected groups, or `None` when S could not be read.
    pub(super) async fn read_source(&mut self) -> Option<Vec<String>> {
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
                // Another instance's, or one whose previous checkpoints are not known yet.
                if !self.synced.contains(&(topic.clone(), partition)) {
                    continue;
                }
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
        &mut self,
        group: &str,
        topic: &str,
        partition: i32,
        upstream: i64,
        now: i64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let (source, target) = (&self.s.flow.source, &self.s.flow.target);
        let key = PartitionKey::new(source, target, topic, partition);
        let translation = match self.back_topic(topic) {
            Some(back) => {
                let back_key = PartitionKey::new(target, source, back, partition);
                self.s
                    .store
                    .both_ways(&key, &back_key, upstream)?
                    .translation
            }
            None => self.s.store.translate(&key, upstream)?,
        };
        let downstream = match translation {
            Translation::Exact(d) => d,
            other => {
                tracing::debug!(flow = %self.flow_name, group, topic, partition, upstream,
                    "no checkpoint: {other:?}");
                return Ok(None);
            }
        };
        // The newer of this instance's last checkpoint and another instance's (see `owners`).
        let previous = self.s.store.checkpoint(&key, group)?;
        let imported = self
            .imported
            .get(&(group.to_string(), topic.to_string(), partition));
        let previous = match (previous, imported) {
            (Some(ours), Some(theirs)) if theirs.timestamp_ms > ours.timestamp_ms => {
                Some(theirs.clone())
            }
            (None, Some(theirs)) => Some(theirs.clone()),
            (ours, _) => ours,
        };
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
        self.imported
            .remove(&(group.to_string(), topic.to_string(), partition));
        tracing::debug!(flow = %self.flow_name, group, topic, partition, upstream, downstream,
            "checkpoint");
        Ok(Some(cp))
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
