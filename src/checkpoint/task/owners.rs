//! Step 0 of a round: which partitions this instance checkpoints — those it owns in the flow's
//! group — and, for each it has just started owning, the last checkpoint another instance
//! emitted for it, so that checkpoints never go backwards across instances.
//!
//! The previous owner's checkpoints are in `<S>.checkpoints.internal` on T (every owner writes
//! there). When partitions become this instance's, the topic is read to its end once and, per
//! (group, partition), its latest checkpoint is kept beside the task's state when it is newer
//! (by emission time) than the store's: the emission rule compares with the newer of the two
//! (the store keeps holding only what this instance emitted). Until that read succeeds the new
//! partitions get no checkpoint. With `checkpoints: false` on T there is nothing to read: each
//! instance then only knows the checkpoints it emitted itself.
//!
//! Checkpoints of partitions this instance no longer owns that T has not acknowledged yet are
//! dropped: written late, after the new owner's, they would move the topic backwards.

use std::collections::{BTreeMap, BTreeSet};

use super::{blocking, Task, CALL_TIMEOUT};
use crate::checkpoint::read_latest;
use crate::store::{PartitionKey, StoredCheckpoint};

/// Checkpoints other instances emitted, by (group, source topic, partition).
pub(super) type Imported = std::collections::HashMap<(String, String, i32), StoredCheckpoint>;

impl Task {
    /// Step 0: follows the ownership of partitions (see the module documentation).
    pub(super) async fn follow_owners(&mut self) {
        let owned: BTreeSet<(String, i32)> = self.s.status.owned().into_iter().collect();
        self.synced.retain(|p| owned.contains(p));
        self.imported
            .retain(|(_, topic, p), _| owned.contains(&(topic.clone(), *p)));
        self.unsent
            .retain(|_, cp| owned.contains(&(cp.source_topic.clone(), cp.partition)));
        let new: Vec<(String, i32)> = owned
            .iter()
            .filter(|p| !self.synced.contains(*p))
            .cloned()
            .collect();
        if new.is_empty() {
            return;
        }
        if !self.s.write_to_target {
            self.synced.extend(new);
            return;
        }
        let (cfg, topic) = (self.s.target_config.clone(), self.topic.clone());
        let read = match blocking(move || read_latest(cfg, &topic, CALL_TIMEOUT)).await {
            Ok(read) => read,
            Err(e) => {
                let msg = format!(
                    "cannot read the previous checkpoints of {} partition(s) this instance now \
                     owns from '{}' on cluster '{}': {e}; they get no checkpoint until it can",
                    new.len(),
                    self.topic,
                    self.s.flow.target
                );
                self.problem("owners".into(), "checkpoint_topic", msg);
                return;
            }
        };
        self.resolved("owners");
        // The remote name of each new partition's topic → its source name.
        let (source, target) = (&self.s.flow.source, &self.s.flow.target);
        let by_remote: BTreeMap<(String, i32), String> = new
            .iter()
            .map(|(t, p)| ((self.s.naming.remote_topic(source, t), *p), t.clone()))
            .collect();
        let mut taken = 0;
        for r in read {
            let c = r.checkpoint;
            let Some(source_topic) = by_remote.get(&(c.topic.clone(), c.partition)) else {
                continue;
            };
            let theirs = StoredCheckpoint {
                source: source.clone(),
                target: target.clone(),
                group: c.group,
                source_topic: source_topic.clone(),
                partition: c.partition,
                remote_topic: c.topic,
                upstream_offset: c.upstream_offset,
                downstream_offset: c.downstream_offset,
                metadata: c.metadata,
                timestamp_ms: r.timestamp_ms.unwrap_or(0),
            };
            let key = PartitionKey::new(source, target, source_topic, c.partition);
            let ours = match self.s.store.checkpoint(&key, &theirs.group) {
                Ok(ours) => ours,
                Err(e) => {
                    let msg = format!("cannot keep checkpoints in the store: {e}");
                    self.problem("store".into(), "checkpoint_store", msg);
                    return;
                }
            };
            if ours.is_some_and(|o| o.timestamp_ms >= theirs.timestamp_ms) {
                continue;
            }
            let k = (theirs.group.clone(), source_topic.clone(), c.partition);
            self.imported.insert(k, theirs);
            taken += 1;
        }
        tracing::info!(flow = %self.flow_name, partitions = new.len(), taken,
            "checkpointing partitions this instance now owns, after the last checkpoints emitted \
             for them");
        self.synced.extend(new);
    }
}
