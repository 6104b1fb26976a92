//! Segments: learning from acknowledged batches, translating, pruning.

use std::collections::BTreeMap;
use std::sync::PoisonError;

use super::codec::{self, Meta};
use super::{Event, PartitionKey, PartitionState, Segment, Store, StoreError, Translation};

/// A validated batch of events: the upstream range `[lo, hi)` it covers and its replicated
/// records folded into segments.
struct Batch {
    lo: i64,
    hi: i64,
    segments: Vec<Segment>,
}

impl Batch {
    /// Checks the order and range of `events` and folds them; `None` for no events.
    fn fold(key: &PartitionKey, events: &[Event]) -> Result<Option<Batch>, StoreError> {
        let invalid = |detail| StoreError::InvalidEvents {
            partition: key.to_string(),
            detail,
        };
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(None);
        };
        let mut segments: Vec<Segment> = Vec::new();
        let mut previous = None;
        for event in events {
            let u = event.upstream();
            if !(0..i64::MAX).contains(&u) {
                return Err(invalid(format!("upstream offset {u} is out of range")));
            }
            if let Some(p) = previous.filter(|&p| u <= p) {
                return Err(invalid(format!(
                    "upstream offset {u} follows {p}: events must be in increasing upstream order"
                )));
            }
            previous = Some(u);
            // A skipped record needs no handling here: it breaks the upstream run by itself.
            if let Event::Replicated { downstream: d, .. } = *event {
                if !(0..i64::MAX).contains(&d) {
                    return Err(invalid(format!("downstream offset {d} is out of range")));
                }
                match segments.last_mut() {
                    Some(s) if s.upstream_end() == u && s.downstream_end() == d => s.len += 1,
                    _ => segments.push(Segment {
                        upstream: u,
                        downstream: d,
                        len: 1,
                    }),
                }
            }
        }
        Ok(Some(Batch {
            lo: first.upstream(),
            hi: last.upstream() + 1,
            segments,
        }))
    }
}

/// The part of `s` from upstream offset `from` on (`from` inside `s`).
fn suffix(s: &Segment, from: i64) -> Segment {
    Segment {
        upstream: from,
        downstream: s.downstream + (from - s.upstream),
        len: s.upstream_end() - from,
    }
}

impl Store {
    /// Records what the flow learnt about one partition from one acknowledged batch: `events`
    /// in increasing upstream order, each [`Event::Replicated`] or [`Event::Skipped`]. Upstream
    /// offsets missing between events (compaction, transaction markers) count as skipped.
    ///
    /// The batch's upstream range `[first, last]` replaces whatever the store knew of it: after
    /// a restart the flow may copy records again that it had copied before (it resumes from its
    /// last committed offset), and the newest copies win — older segments over that range are
    /// cut, split or dropped. Afterwards processed-up-to is at least `last + 1`.
    ///
    /// Cost: one pass over `events`, two range lookups and one sled transaction writing a few
    /// keys; a contiguous batch following the previous one only grows the tail segment. The
    /// partition is marked unpublished from the batch's first offset on, in the same
    /// transaction (see [`Store::unpublished`]).
    /// Calls for different partitions may run concurrently; they are serialised internally.
    /// Call [`Store::flush`] before committing the batch's source offsets.
    pub fn record(&self, key: &PartitionKey, events: &[Event]) -> Result<(), StoreError> {
        let Some(Batch { lo, hi, segments }) = Batch::fold(key, events)? else {
            return Ok(());
        };
        let prefix = codec::partition_prefix(key)?;
        let _writer = self.write_lock();
        let meta = self.meta(&prefix)?;

        // Upstream start → the segment to write there, or `None` to delete the one there.
        let mut writes: BTreeMap<i64, Option<Segment>> = BTreeMap::new();
        // The segment starting below the batch: cut at `lo`, keeping any part beyond `hi`.
        let mut left = self.segment_starting_before(&prefix, lo)?;
        if let Some(l) = left.as_mut() {
            if l.upstream_end() > lo {
                if l.upstream_end() > hi {
                    writes.insert(hi, Some(suffix(l, hi)));
                }
                l.len = lo - l.upstream;
                writes.insert(l.upstream, Some(*l));
            }
        }
        // Segments starting inside the batch: dropped, keeping any part beyond `hi`.
        for s in self.segments_in(&prefix, lo, hi)? {
            writes.insert(s.upstream, None);
            if s.upstream_end() > hi {
                writes.insert(hi, Some(suffix(&s, hi)));
            }
        }
        let mut new = segments.into_iter().peekable();
        if let (Some(l), Some(first)) = (left, new.peek()) {
            if l.upstream_end() == first.upstream && l.downstream_end() == first.downstream {
                writes.insert(
                    l.upstream,
                    Some(Segment {
                        len: l.len + first.len,
                        ..l
                    }),
                );
                new.next();
            }
        }
        for s in new {
            writes.insert(s.upstream, Some(s));
        }
        let meta = match meta {
            None => Meta {
                processed_upto: hi,
                known_from: lo,
                log_start: 0,
            },
            Some(m) => Meta {
                processed_upto: m.processed_upto.max(hi),
                known_from: m.known_from.min(lo),
                log_start: m.log_start,
            },
        };

        let mut batch = sled::Batch::default();
        for (upstream, segment) in writes {
            let k = codec::segment_key(&prefix, upstream);
            match segment {
                Some(s) => batch.insert(k, &codec::encode_segment(&s)[..]),
                None => batch.remove(k),
            }
        }
        batch.insert(codec::meta_key(&prefix), &codec::encode_meta(&meta)[..]);
        self.apply_recorded(&prefix, &batch, lo)
    }

    /// Where a consumer group at source offset `upstream` (the next record it would read)
    /// resumes on the target; see [`Translation`] for the rules. Two range lookups at most.
    pub fn translate(&self, key: &PartitionKey, upstream: i64) -> Result<Translation, StoreError> {
        let prefix = codec::partition_prefix(key)?;
        let Some(meta) = self.meta(&prefix)? else {
            return Ok(Translation::Unknown);
        };
        if upstream > meta.processed_upto {
            return Ok(Translation::NotYetReplicated);
        }
        // Below what the store ever saw, while those offsets still exist on the source: their
        // copies may be anywhere before the first segment; "the first segment" would skip them.
        if upstream < meta.known_from && meta.known_from > meta.log_start {
            return Ok(Translation::Unknown);
        }
        let at = self.segment_at_or_below(&prefix, upstream)?;
        if let Some(s) = at.filter(|s| upstream < s.upstream_end()) {
            return Ok(Translation::Exact(s.downstream + (upstream - s.upstream)));
        }
        if let Some(next) = self.segment_above(&prefix, upstream)? {
            return Ok(Translation::Exact(next.downstream));
        }
        Ok(at.map_or(Translation::Unknown, |s| {
            Translation::Exact(s.downstream_end())
        }))
    }

    /// Drops the partition's segments that lie wholly below `log_start`, the source partition's
    /// current log start (those records are gone there); returns how many. The last segment is
    /// always kept: it answers every translation past the end. Remembers `log_start` so that
    /// offsets below it translate to the first remaining segment.
    pub fn prune(&self, key: &PartitionKey, log_start: i64) -> Result<usize, StoreError> {
        let prefix = codec::partition_prefix(key)?;
        let _writer = self.write_lock();
        self.prune_locked(&prefix, log_start)
    }

    /// [`Store::prune`] of the partition at `prefix`, the write lock held.
    pub(super) fn prune_locked(&self, prefix: &[u8], log_start: i64) -> Result<usize, StoreError> {
        let Some(mut meta) = self.meta(prefix)? else {
            return Ok(0);
        };
        let last = self.last_segment(prefix)?.map(|s| s.upstream);
        let mut batch = sled::Batch::default();
        let mut pruned = 0;
        for s in self.segments_in(prefix, 0, log_start)? {
            if s.upstream_end() <= log_start && Some(s.upstream) != last {
                batch.remove(codec::segment_key(prefix, s.upstream));
                pruned += 1;
            }
        }
        if pruned == 0 && meta.log_start >= log_start {
            return Ok(0);
        }
        meta.log_start = meta.log_start.max(log_start);
        batch.insert(codec::meta_key(prefix), &codec::encode_meta(&meta)[..]);
        self.inner
            .offsets
            .apply_batch(batch)
            .map_err(|e| self.sled(e))?;
        Ok(pruned)
    }

    /// Forgets everything about a partition (its segments and position), e.g. when its target
    /// topic was deleted and created again; returns how many segments were dropped.
    pub fn forget(&self, key: &PartitionKey) -> Result<usize, StoreError> {
        let prefix = codec::partition_prefix(key)?;
        let _writer = self.write_lock();
        let mut batch = sled::Batch::default();
        let mut segments = 0;
        for entry in self
            .inner
            .offsets
            .range(codec::meta_key(&prefix)..codec::end_key(&prefix))
        {
            let (k, _) = entry.map_err(|e| self.sled(e))?;
            segments += usize::from(k.len() > prefix.len() + 1);
            batch.remove(k);
        }
        self.inner
            .offsets
            .apply_batch(batch)
            .map_err(|e| self.sled(e))?;
        // Nothing of it is left to publish.
        self.inner
            .unpublished
            .remove(&prefix)
            .map_err(|e| self.sled(e))?;
        Ok(segments)
    }

    /// Every partition the store has recorded something for, in key order.
    pub fn partitions(&self) -> Result<Vec<PartitionKey>, StoreError> {
        let mut out = Vec::new();
        let mut from = Vec::new();
        loop {
            // Each partition's first key is its meta entry; then jump past its segments.
            let Some(entry) = self.inner.offsets.range(from.as_slice()..).next() else {
                return Ok(out);
            };
            let (k, _) = entry.map_err(|e| self.sled(e))?;
            let (key, len) = codec::decode_partition_prefix(&k).map_err(|d| self.corrupt(d))?;
            from = codec::end_key(&k[..len]);
            out.push(key);
        }
    }

    /// Processed-up-to and the other positions of a partition; `None` if nothing was recorded.
    pub fn partition_state(
        &self,
        key: &PartitionKey,
    ) -> Result<Option<PartitionState>, StoreError> {
        let prefix = codec::partition_prefix(key)?;
        Ok(self.meta(&prefix)?.map(|m| PartitionState {
            processed_upto: m.processed_upto,
            known_from: m.known_from,
            log_start: m.log_start,
        }))
    }

    /// All segments of a partition in upstream order (for inspection and tests).
    pub fn segments(&self, key: &PartitionKey) -> Result<Vec<Segment>, StoreError> {
        let prefix = codec::partition_prefix(key)?;
        self.segments_in(&prefix, 0, i64::MAX)
    }

    pub(super) fn meta(&self, prefix: &[u8]) -> Result<Option<Meta>, StoreError> {
        let value = self
            .inner
            .offsets
            .get(codec::meta_key(prefix))
            .map_err(|e| self.sled(e))?;
        value
            .map(|v| codec::decode_meta(&v).map_err(|d| self.corrupt(d)))
            .transpose()
    }

    pub(super) fn segment(
        &self,
        entry: sled::Result<(sled::IVec, sled::IVec)>,
    ) -> Result<Segment, StoreError> {
        let (k, v) = entry.map_err(|e| self.sled(e))?;
        codec::decode_segment(&k, &v).map_err(|d| self.corrupt(d))
    }

    /// The last segment starting strictly below `upstream`.
    pub(super) fn segment_starting_before(
        &self,
        prefix: &[u8],
        upstream: i64,
    ) -> Result<Option<Segment>, StoreError> {
        let range = codec::segment_key(prefix, 0)..codec::segment_key(prefix, upstream);
        self.inner
            .offsets
            .range(range)
            .next_back()
            .map(|e| self.segment(e))
            .transpose()
    }

    /// The last segment starting at or below `upstream`.
    pub(super) fn segment_at_or_below(
        &self,
        prefix: &[u8],
        upstream: i64,
    ) -> Result<Option<Segment>, StoreError> {
        if upstream < 0 {
            return Ok(None);
        }
        let range = codec::segment_key(prefix, 0)..=codec::segment_key(prefix, upstream);
        self.inner
            .offsets
            .range(range)
            .next_back()
            .map(|e| self.segment(e))
            .transpose()
    }

    /// The first segment starting above `upstream`.
    pub(super) fn segment_above(
        &self,
        prefix: &[u8],
        upstream: i64,
    ) -> Result<Option<Segment>, StoreError> {
        let range = codec::segment_key(prefix, upstream.saturating_add(1))..codec::end_key(prefix);
        self.inner
            .offsets
            .range(range)
            .next()
            .map(|e| self.segment(e))
            .transpose()
    }

    pub(super) fn last_segment(&self, prefix: &[u8]) -> Result<Option<Segment>, StoreError> {
        let range = codec::segment_key(prefix, 0)..codec::end_key(prefix);
        self.inner
            .offsets
            .range(range)
            .next_back()
            .map(|e| self.segment(e))
            .transpose()
    }

    /// The segments starting in `[lo, hi)`.
    pub(super) fn segments_in(
        &self,
        prefix: &[u8],
        lo: i64,
        hi: i64,
    ) -> Result<Vec<Segment>, StoreError> {
        if lo >= hi {
            return Ok(Vec::new());
        }
        let range = codec::segment_key(prefix, lo)..codec::segment_key(prefix, hi);
        self.inner
            .offsets
            .range(range)
            .map(|e| self.segment(e))
            .collect()
    }
}

impl Store {
    /// Serialises `record`, `merge`, `prune` and `forget`: each reads a partition's state and
    /// writes it back. A panic while holding it left nothing half-written (writes are atomic sled batches),
    /// so a poisoned lock is simply taken over.
    pub(super) fn write_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
