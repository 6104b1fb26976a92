//! What the flows recorded and the other instances were not told yet.
//!
//! Every [`Store::record`] leaves a marker on its partition in the `unpublished` tree, written
//! in the same sled transaction as the segments: `[version][from: i64][sequence: u64]`, where
//! `from` is the lowest upstream offset recorded since the last publication and the sequence
//! grows with each call. A publisher lists the markers ([`Store::unpublished`]), publishes each
//! partition's segments from `from` on ([`Store::report`]), and once the target acknowledged
//! them removes the marker only if it is still the one it read ([`Store::mark_published`]):
//! anything recorded meanwhile changed the sequence and is published next time. Segments
//! merged from other instances ([`Store::merge`]) leave no marker — they are not this
//! instance's to publish.

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::codec::{self, Reader, VALUE_VERSION};
use super::{PartitionKey, PartitionState, SegmentSet, Store, StoreError};

/// A partition recorded since its last publication: what [`Store::unpublished`] lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpublished {
    /// The partition.
    pub key: PartitionKey,
    /// The lowest upstream offset recorded since the last publication: segments ending above
    /// it are to be published.
    pub from: i64,
    /// The marker as read, so that [`Store::mark_published`] removes only this one.
    marker: Vec<u8>,
}

/// The marker after recording a batch starting at `lo` over `previous` (none, or unreadable:
/// then from `lo`, the batch being all this store is sure of).
fn next_marker(previous: Option<&[u8]>, lo: i64) -> [u8; 17] {
    let (from, sequence) = previous
        .and_then(|v| decode_marker(v).ok())
        .map_or((lo, 0), |(from, seq)| (from.min(lo), seq.wrapping_add(1)));
    let mut v = [0; 17];
    v[0] = VALUE_VERSION;
    v[1..9].copy_from_slice(&from.to_be_bytes());
    v[9..17].copy_from_slice(&sequence.to_be_bytes());
    v
}

/// `(from, sequence)` of a marker.
fn decode_marker(v: &[u8]) -> Result<(i64, u64), String> {
    let mut r = Reader::new(v, "unpublished marker");
    r.version()?;
    let from = r.i64()?;
    let sequence = r.i64()? as u64;
    r.finish()?;
    Ok((from, sequence))
}

impl Store {
    /// Applies `batch` to the offsets tree and marks the partition at `prefix` unpublished
    /// from `lo` on, atomically.
    pub(super) fn apply_recorded(
        &self,
        prefix: &[u8],
        batch: &sled::Batch,
        lo: i64,
    ) -> Result<(), StoreError> {
        let (offsets, unpublished) = (&self.inner.offsets, &self.inner.unpublished);
        let done = (offsets, unpublished).transaction(|(o, u)| {
            o.apply_batch(batch)?;
            let previous = u.get(prefix)?;
            let marker = next_marker(previous.as_deref(), lo);
            u.insert(prefix, &marker[..])?;
            Ok::<(), ConflictableTransactionError<()>>(())
        });
        match done {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(self.sled(e)),
            Err(TransactionError::Abort(())) => {
                Err(self.corrupt("recording was aborted".to_owned()))
            }
        }
    }

    /// Every partition recorded since its last publication, in key order.
    pub fn unpublished(&self) -> Result<Vec<Unpublished>, StoreError> {
        self.inner
            .unpublished
            .iter()
            .map(|entry| {
                let (k, v) = entry.map_err(|e| self.sled(e))?;
                let (key, len) = codec::decode_partition_prefix(&k).map_err(|d| self.corrupt(d))?;
                if len != k.len() {
                    return Err(self.corrupt("malformed unpublished marker key".to_owned()));
                }
                // An unreadable marker publishes the whole partition: never less than needed.
                let from = decode_marker(&v).map_or(0, |(from, _)| from);
                Ok(Unpublished {
                    key,
                    from,
                    marker: v.to_vec(),
                })
            })
            .collect()
    }

    /// Removes the marker `u` was read from, unless the partition was recorded again since
    /// (then it stays, to be published next time); returns whether it was removed.
    pub fn mark_published(&self, u: &Unpublished) -> Result<bool, StoreError> {
        let prefix = codec::partition_prefix(&u.key)?;
        let swapped = self
            .inner
            .unpublished
            .compare_and_swap(prefix, Some(u.marker.as_slice()), None as Option<&[u8]>)
            .map_err(|e| self.sled(e))?;
        Ok(swapped.is_ok())
    }

    /// The partition's positions and its segments that end above upstream offset `from`
    /// (`0` or below: all of them): what to publish of it. `None` when nothing was recorded.
    pub fn report(&self, key: &PartitionKey, from: i64) -> Result<Option<SegmentSet>, StoreError> {
        let prefix = codec::partition_prefix(key)?;
        let Some(meta) = self.meta(&prefix)? else {
            return Ok(None);
        };
        let mut segments = Vec::new();
        if let Some(s) = self.segment_at_or_below(&prefix, from.max(0))? {
            if s.upstream_end() > from {
                segments.push(s);
            }
        }
        let range =
            codec::segment_key(&prefix, from.max(0).saturating_add(1))..codec::end_key(&prefix);
        for entry in self.inner.offsets.range(range) {
            segments.push(self.segment(entry)?);
        }
        Ok(Some(SegmentSet {
            state: PartitionState {
                processed_upto: meta.processed_upto,
                known_from: meta.known_from,
                log_start: meta.log_start,
            },
            segments,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fresh, key, run};
    use super::super::{PartitionKey, Segment};

    fn seg(upstream: i64, downstream: i64, len: i64) -> Segment {
        Segment {
            upstream,
            downstream,
            len,
        }
    }

    #[test]
    fn recording_marks_from_the_lowest_offset_and_a_publication_clears_it() {
        let (_dir, store) = fresh();
        assert!(store.unpublished().expect("list").is_empty());
        store.record(&key(), &run(10..20, 100)).expect("record");
        store.record(&key(), &run(20..25, 110)).expect("record");
        let pending = store.unpublished().expect("list");
        assert_eq!(pending.len(), 1);
        assert_eq!((pending[0].key.clone(), pending[0].from), (key(), 10));
        let report = store.report(&key(), pending[0].from).expect("report");
        let report = report.expect("recorded");
        assert_eq!(report.segments, vec![seg(10, 100, 15)]);
        assert_eq!(report.state.processed_upto, 25);
        assert!(store.mark_published(&pending[0]).expect("mark"));
        assert!(store.unpublished().expect("list").is_empty());

        // Only what ends above `from` is reported.
        store.record(&key(), &run(30..35, 200)).expect("record");
        let pending = store.unpublished().expect("list");
        assert_eq!(pending[0].from, 30);
        let report = store.report(&key(), 30).expect("report").expect("recorded");
        assert_eq!(report.segments, vec![seg(30, 200, 5)]);
        let all = store.report(&key(), 0).expect("report").expect("recorded");
        assert_eq!(all.segments, vec![seg(10, 100, 15), seg(30, 200, 5)]);
        // The extended tail is reported whole, from inside it.
        let inside = store.report(&key(), 32).expect("report").expect("recorded");
        assert_eq!(inside.segments, vec![seg(30, 200, 5)]);
    }

    #[test]
    fn a_marker_recorded_again_meanwhile_is_kept() {
        let (_dir, store) = fresh();
        store.record(&key(), &run(0..5, 0)).expect("record");
        let read = store.unpublished().expect("list");
        // Recorded while the publication was on its way: its marker must stay.
        store.record(&key(), &run(5..8, 5)).expect("record");
        assert!(!store.mark_published(&read[0]).expect("mark"));
        let left = store.unpublished().expect("list");
        assert_eq!(left.len(), 1);
        assert_eq!(
            left[0].from, 0,
            "the lowest offset since the last publication"
        );
        assert!(store.mark_published(&left[0]).expect("mark"));
    }

    #[test]
    fn merging_and_pruning_leave_no_marker() {
        let (_dir, store) = fresh();
        let other = PartitionKey::new("onprem", "eventhub", "testeh", 1);
        let set = super::super::SegmentSet {
            state: super::super::PartitionState {
                processed_upto: 10,
                known_from: 0,
                log_start: 0,
            },
            segments: vec![seg(0, 0, 10)],
        };
        store.merge(&other, &set).expect("merge");
        store.prune(&other, 5).expect("prune");
        assert!(store.unpublished().expect("list").is_empty());
        assert!(store.report(&key(), 0).expect("report").is_none());
    }
}
