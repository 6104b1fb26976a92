//! Merging what another instance published about a partition ([`Store::merge`]).
//!
//! A publication says "upstream offset u was copied to downstream offset d" for every offset
//! its segments cover, and nothing about the offsets between them. So merging only ever adds
//! mappings: offsets the store did not map take the publication's; offsets it maps the same way
//! are unchanged; and an offset the two map differently is a *conflict* — both copies exist on
//! the target (a partition copied twice: a zombie instance, or a restart that did not find its
//! copies). The publication's mapping wins, as the newest copies win in [`Store::record`]: the
//! segments topic is read in one order by every instance, so every store ends with the mapping
//! of the last publication of each offset, whichever instance it asks. Conflicts are returned
//! so the caller can count and log them; positions merge as maxima (processed-up-to, log
//! start) and minimum (known-from).

use super::codec::{self, Meta};
use super::{PartitionKey, Segment, SegmentSet, Store, StoreError};

/// Upstream offsets two sources mapped to different copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict {
    /// The first upstream offset.
    pub upstream: i64,
    /// How many consecutive offsets.
    pub len: i64,
    /// Where the merged publication puts the first one's copy (kept).
    pub kept: i64,
    /// Where the store had it (dropped).
    pub dropped: i64,
}

/// What [`Store::merge`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merged {
    /// Upstream offsets the store did not map before.
    pub added: i64,
    /// Offsets the store mapped to other copies (now mapped as the publication says).
    pub conflicts: Vec<Conflict>,
}

/// `existing` with `incoming` laid over it (both sorted, neither overlapping itself), in
/// canonical form: adjacent segments that continue each other are joined.
pub(super) fn overlay(existing: &[Segment], incoming: &[Segment]) -> (Vec<Segment>, Merged) {
    let mut bounds: Vec<i64> = existing
        .iter()
        .chain(incoming)
        .flat_map(|s| [s.upstream, s.upstream_end()])
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    let covering = |list: &[Segment], i: &mut usize, at: i64| -> Option<Segment> {
        while list.get(*i).is_some_and(|s| s.upstream_end() <= at) {
            *i += 1;
        }
        list.get(*i).copied().filter(|s| s.upstream <= at)
    };
    let (mut e, mut n) = (0, 0);
    let mut out: Vec<Segment> = Vec::new();
    let mut merged = Merged::default();
    for w in bounds.windows(2) {
        let (a, b) = (w[0], w[1]);
        let delta = |s: Segment| s.downstream - s.upstream;
        let mapped = match (covering(existing, &mut e, a), covering(incoming, &mut n, a)) {
            (None, None) => continue,
            (Some(old), None) => delta(old),
            (None, Some(new)) => {
                merged.added += b - a;
                delta(new)
            }
            (Some(old), Some(new)) => {
                if delta(old) != delta(new) {
                    let c = Conflict {
                        upstream: a,
                        len: b - a,
                        kept: a + delta(new),
                        dropped: a + delta(old),
                    };
                    match merged.conflicts.last_mut() {
                        Some(p)
                            if p.upstream + p.len == a
                                && p.kept + p.len == c.kept
                                && p.dropped + p.len == c.dropped =>
                        {
                            p.len += c.len
                        }
                        _ => merged.conflicts.push(c),
                    }
                }
                delta(new)
            }
        };
        match out.last_mut() {
            Some(p) if p.upstream_end() == a && p.downstream_end() == a + mapped => p.len += b - a,
            _ => out.push(Segment {
                upstream: a,
                downstream: a + mapped,
                len: b - a,
            }),
        }
    }
    (out, merged)
}

/// Checks that `segments` are sorted, do not overlap and hold real offsets.
fn check(key: &PartitionKey, segments: &[Segment]) -> Result<(), StoreError> {
    let invalid = |detail: String| StoreError::InvalidSegments {
        partition: key.to_string(),
        detail,
    };
    let mut end = 0;
    for s in segments {
        if s.upstream < 0 || s.downstream < 0 || s.len <= 0 {
            return Err(invalid(format!(
                "segment {s:?} is not a run of real offsets"
            )));
        }
        if s.upstream.checked_add(s.len).is_none() || s.downstream.checked_add(s.len).is_none() {
            return Err(invalid(format!(
                "segment {s:?} runs past the largest offset"
            )));
        }
        if s.upstream < end {
            return Err(invalid(format!(
                "segment {s:?} starts below the end of the previous one ({end})"
            )));
        }
        end = s.upstream_end();
    }
    Ok(())
}

impl Store {
    /// Merges what another instance published about `key` (see the module documentation):
    /// its mappings are added, and win where they conflict with the store's; positions are
    /// merged; segments wholly below the (merged) log start are then pruned, as
    /// [`Store::prune`] does. Leaves no unpublished marker. Merging the same set again
    /// changes nothing.
    pub fn merge(&self, key: &PartitionKey, set: &SegmentSet) -> Result<Merged, StoreError> {
        check(key, &set.segments)?;
        let prefix = codec::partition_prefix(key)?;
        let _writer = self.write_lock();
        let (lo, hi) = match (set.segments.first(), set.segments.last()) {
            (Some(f), Some(l)) => (f.upstream, l.upstream_end()),
            _ => (set.state.processed_upto, set.state.processed_upto),
        };
        let state = set.state;
        let meta = match self.meta(&prefix)? {
            None => Meta {
                processed_upto: state.processed_upto.max(hi),
                known_from: state.known_from.min(lo),
                log_start: state.log_start,
            },
            Some(m) => Meta {
                processed_upto: m.processed_upto.max(state.processed_upto).max(hi),
                known_from: m.known_from.min(state.known_from).min(lo),
                log_start: m.log_start.max(state.log_start),
            },
        };
        let mut batch = sled::Batch::default();
        let mut merged = Merged::default();
        if !set.segments.is_empty() {
            // The segments the publication touches, and those just touching it (to join them).
            let mut existing = Vec::new();
            if let Some(left) = self.segment_starting_before(&prefix, lo)? {
                if left.upstream_end() >= lo {
                    existing.push(left);
                }
            }
            existing.extend(self.segments_in(&prefix, lo, hi.saturating_add(1))?);
            let (segments, outcome) = overlay(&existing, &set.segments);
            if outcome.added > 0 || !outcome.conflicts.is_empty() {
                for s in &existing {
                    batch.remove(codec::segment_key(&prefix, s.upstream));
                }
                for s in &segments {
                    batch.insert(
                        codec::segment_key(&prefix, s.upstream),
                        &codec::encode_segment(s)[..],
                    );
                }
            }
            merged = outcome;
        }
        batch.insert(codec::meta_key(&prefix), &codec::encode_meta(&meta)[..]);
        self.inner
            .offsets
            .apply_batch(batch)
            .map_err(|e| self.sled(e))?;
        if meta.log_start > 0 {
            self.prune_locked(&prefix, meta.log_start)?;
        }
        Ok(merged)
    }
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
