//! The latest checkpoint per (consumer group, flow partition).

use super::codec;
use super::{PartitionKey, Store, StoreError};

/// A consumer group's translated position, as the checkpoints work emits it (MM2's checkpoint
/// record plus the flow and the time it was taken).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredCheckpoint {
    /// The flow's source cluster alias.
    pub source: String,
    /// The flow's target cluster alias.
    pub target: String,
    /// The consumer group.
    pub group: String,
    /// The topic on the source.
    pub source_topic: String,
    /// The partition, the same on both sides.
    pub partition: i32,
    /// The topic's name on the target.
    pub remote_topic: String,
    /// The group's committed offset on the source.
    pub upstream_offset: i64,
    /// Where the group resumes on the target.
    pub downstream_offset: i64,
    /// The group's commit metadata on the source, carried over.
    pub metadata: String,
    /// When the checkpoint was taken, milliseconds since the epoch.
    pub timestamp_ms: i64,
}

impl StoredCheckpoint {
    /// The flow partition this checkpoint belongs to.
    pub fn partition_key(&self) -> PartitionKey {
        PartitionKey::new(
            &self.source,
            &self.target,
            &self.source_topic,
            self.partition,
        )
    }
}

impl Store {
    /// Stores `cp` as the latest checkpoint of its (group, flow partition), replacing the
    /// previous one. Whether it may replace it (checkpoints never go backwards unless the
    /// group's source offset did) is the caller's decision: see [`Store::checkpoint`].
    pub fn put_checkpoint(&self, cp: &StoredCheckpoint) -> Result<(), StoreError> {
        let key = codec::checkpoint_key(&cp.partition_key(), &cp.group)?;
        let value = codec::encode_checkpoint(cp)?;
        self.inner
            .checkpoints
            .insert(key, value)
            .map(drop)
            .map_err(|e| self.sled(e))
    }

    /// The latest checkpoint of `group` for one flow partition.
    pub fn checkpoint(
        &self,
        key: &PartitionKey,
        group: &str,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let k = codec::checkpoint_key(key, group)?;
        match self.inner.checkpoints.get(&k).map_err(|e| self.sled(e))? {
            Some(v) => codec::decode_checkpoint(&k, &v)
                .map(Some)
                .map_err(|d| self.corrupt(d)),
            None => Ok(None),
        }
    }

    /// The latest checkpoints of every group, or of `group` only, ordered by group, source,
    /// target, topic and partition.
    pub fn checkpoints(&self, group: Option<&str>) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let entries = match group {
            Some(g) => self.inner.checkpoints.scan_prefix(codec::group_prefix(g)?),
            None => self.inner.checkpoints.iter(),
        };
        entries
            .map(|entry| {
                let (k, v) = entry.map_err(|e| self.sled(e))?;
                codec::decode_checkpoint(&k, &v).map_err(|d| self.corrupt(d))
            })
            .collect()
    }
}
