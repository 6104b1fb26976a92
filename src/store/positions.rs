//! How far each segments topic partition was read (`crate::segments`): the next offset to
//! read, so that a restarted instance goes on where it stopped instead of reading the topic
//! again from its beginning (which would be harmless — merging is idempotent — only slower).

use super::codec;
use super::{Store, StoreError};

impl Store {
    /// The next offset to read of `topic`/`partition` on cluster `cluster`; `None` when it
    /// was never read into this store.
    pub fn read_position(
        &self,
        cluster: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>, StoreError> {
        let k = codec::read_position_key(cluster, topic, partition)?;
        let Some(v) = self.inner.read_positions.get(k).map_err(|e| self.sled(e))? else {
            return Ok(None);
        };
        let bytes: [u8; 8] = v
            .as_ref()
            .try_into()
            .map_err(|_| self.corrupt(format!("read position of '{topic}' is malformed")))?;
        Ok(Some(i64::from_be_bytes(bytes)))
    }

    /// Remembers that `topic`/`partition` on `cluster` was read up to `next` (exclusive).
    pub fn set_read_position(
        &self,
        cluster: &str,
        topic: &str,
        partition: i32,
        next: i64,
    ) -> Result<(), StoreError> {
        let k = codec::read_position_key(cluster, topic, partition)?;
        self.inner
            .read_positions
            .insert(k, &next.to_be_bytes()[..])
            .map(drop)
            .map_err(|e| self.sled(e))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::fresh;

    #[test]
    fn positions_are_kept_per_cluster_topic_and_partition() {
        let (_dir, store) = fresh();
        assert_eq!(
            store
                .read_position("b", "hubmirror.segments.a.internal", 0)
                .unwrap(),
            None
        );
        store
            .set_read_position("b", "hubmirror.segments.a.internal", 0, 42)
            .unwrap();
        store
            .set_read_position("c", "hubmirror.segments.a.internal", 0, 7)
            .unwrap();
        assert_eq!(
            store
                .read_position("b", "hubmirror.segments.a.internal", 0)
                .unwrap(),
            Some(42)
        );
        assert_eq!(
            store
                .read_position("c", "hubmirror.segments.a.internal", 0)
                .unwrap(),
            Some(7)
        );
        assert_eq!(
            store
                .read_position("b", "hubmirror.segments.a.internal", 1)
                .unwrap(),
            None
        );
    }
}
