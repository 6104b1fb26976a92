//! Where a group resumes when one topic flows both ways under one name (the identity policy
//! with flows S→T and T→S): the topic on S holds S's own records and copies of T's, the topic
//! on T holds T's own records and copies of S's, interleaved differently on each side.
//!
//! A group at offset U on S (the next record it reads there) has processed every record of S
//! below U: S's own records (their copies on T are in the S→T segments) and copies of T's
//! records (the T→S segments say where each of T's records was copied to on S). The latest safe
//! position on T is the first offset on T holding a record the group has not processed:
//! - the copy of S's first record at or after U (S→T segments), or
//! - T's first own record whose copy on S is at or after U, or that the T→S flow has not
//!   handled yet (T→S segments and processed-up-to).
//!
//! Records on T after that position which the group did process are read again: they are
//! counted, so that `translate` and `failover` can say how many.

use serde::{Deserialize, Serialize};

use super::{codec, PartitionKey, Segment, Store, StoreError, Translation};

/// A translation, and how many records after it the group has already processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// Where the group resumes on the target.
    pub translation: Translation,
    /// How many records at or after that position the group already processed on the source
    /// (it will see them again); 0 when the translation is not exact.
    pub again: i64,
}

impl Store {
    /// Where a group at `upstream` on S resumes on T when `fwd` (S→T) and `back` (T→S) carry
    /// the same topic both ways; see the module documentation. When the S→T translation is not
    /// exact, it is returned as it is; when the T→S flow never recorded anything, the S→T
    /// translation is used alone.
    pub fn both_ways(
        &self,
        fwd: &PartitionKey,
        back: &PartitionKey,
        upstream: i64,
    ) -> Result<Resume, StoreError> {
        let forward = self.translate(fwd, upstream)?;
        let alone = Resume {
            translation: forward,
            again: 0,
        };
        let Translation::Exact(_) = forward else {
            return Ok(alone);
        };
        let back_prefix = codec::partition_prefix(back)?;
        let Some(meta) = self.meta(&back_prefix)? else {
            return Ok(alone);
        };
        let fwd_prefix = codec::partition_prefix(fwd)?;
        // T's first own record the group has not read: the first whose copy on S is at or
        // after `upstream`, else the first the T→S flow has not handled yet. Segments are read
        // from the last one back, only as far as needed.
        let mut unread_own = meta.processed_upto;
        for s in self.segments_rev(&back_prefix, i64::MAX) {
            let s = s?;
            if s.downstream_end() <= upstream {
                break;
            }
            unread_own = s.upstream + (upstream - s.downstream).max(0);
        }
        // Below what the T→S flow ever saw, T's records are unknown: never beyond them.
        if meta.known_from > meta.log_start {
            unread_own = unread_own.min(meta.known_from);
        }
        let at = self.segment_at_or_below(&fwd_prefix, upstream)?;
        let unread_copy = match at.filter(|s| upstream < s.upstream_end()) {
            Some(s) => Some(s.downstream + (upstream - s.upstream)),
            None => self
                .segment_above(&fwd_prefix, upstream)?
                .map(|s| s.downstream),
        };
        let resume = unread_copy.map_or(unread_own, |d| d.min(unread_own));
        // Records at or after `resume` the group processed: S's own below `upstream` …
        let mut again = 0;
        for s in self.segments_rev(&fwd_prefix, upstream) {
            let s = s?;
            if s.downstream_end() <= resume {
                break;
            }
            again += overlap(s.len, resume - s.downstream, upstream - s.upstream);
        }
        // … and T's own whose copies on S are below `upstream`.
        for s in self.segments_rev(&back_prefix, i64::MAX) {
            let s = s?;
            if s.upstream_end() <= resume {
                break;
            }
            again += overlap(s.len, resume - s.upstream, upstream - s.downstream);
        }
        Ok(Resume {
            translation: Translation::Exact(resume),
            again,
        })
    }

    /// The partition's segments starting below `below`, last first, read as they are taken.
    fn segments_rev<'a>(
        &'a self,
        prefix: &[u8],
        below: i64,
    ) -> impl Iterator<Item = Result<Segment, StoreError>> + 'a {
        let range = codec::segment_key(prefix, 0)..codec::segment_key(prefix, below);
        self.inner
            .offsets
            .range(range)
            .rev()
            .map(move |e| self.segment(e))
    }
}

/// How many `i` in `0..len` have `i >= from` and `i < to`.
fn overlap(len: i64, from: i64, to: i64) -> i64 {
    (to.min(len) - from.max(0)).max(0)
}

#[cfg(test)]
mod tests {
    use super::super::{Event, PartitionKey, Store, Translation};
    use super::Resume;

    fn rep(upstream: i64, downstream: i64) -> Event {
        Event::Replicated {
            upstream,
            downstream,
        }
    }

    /// A new store and the partition keys of `t`/0 both ways (a→b, b→a).
    fn empty() -> (tempfile::TempDir, Store, PartitionKey, PartitionKey) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("s")).expect("open");
        let (ab, ba) = (
            PartitionKey::new("a", "b", "t", 0),
            PartitionKey::new("b", "a", "t", 0),
        );
        (dir, store, ab, ba)
    }

    /// `a` and `b` each write 10 records of their own to `t`/0, in turns of 5; each side's
    /// records are copied to the other at once. On a: own 0..5, b's copies 5..10, own 10..15,
    /// b's copies 15..20. On b: a's copies 0..5, own 5..10, a's copies 10..15, own 15..20.
    fn interleaved() -> (tempfile::TempDir, Store, PartitionKey, PartitionKey) {
        let (dir, store, ab, ba) = empty();
        let skip = |u| Event::Skipped { upstream: u };
        let mut fwd: Vec<Event> = (0..5).map(|u| rep(u, u)).collect();
        fwd.extend((5..10).map(skip));
        fwd.extend((10..15).map(|u| rep(u, u)));
        fwd.extend((15..20).map(skip));
        store.record(&ab, &fwd).expect("record");
        let mut back: Vec<Event> = (0..5).map(skip).collect();
        back.extend((5..10).map(|u| rep(u, u)));
        back.extend((10..15).map(skip));
        back.extend((15..20).map(|u| rep(u, u)));
        store.record(&ba, &back).expect("record");
        (dir, store, ab, ba)
    }

    #[test]
    fn resumes_at_the_first_record_of_either_side_not_read() {
        let (_dir, store, ab, ba) = interleaved();
        let exact = |d, again| Resume {
            translation: Translation::Exact(d),
            again,
        };
        // (position on a, resume on b, records read again). The same offsets on both sides
        // here, as every record is copied at once: the group resumes exactly where it is.
        for u in [0, 3, 5, 7, 10, 12, 15, 17, 20] {
            assert_eq!(
                store.both_ways(&ab, &ba, u).expect("both ways"),
                exact(u, 0),
                "position {u} on a"
            );
        }
    }

    #[test]
    fn counts_what_is_read_again_when_the_sides_are_interleaved_differently() {
        let (_dir, store, ab, ba) = empty();
        // On a: own 0..4, then b's copies 4..8. On b: own 0..4 (copied to a at 4..8), then
        // a's copies 4..8. A group at 6 on a read a's 0..4 and b's 0, 1.
        let skip = |u| Event::Skipped { upstream: u };
        let mut fwd: Vec<Event> = (0..4).map(|u| rep(u, u + 4)).collect();
        fwd.extend((4..8).map(skip));
        store.record(&ab, &fwd).expect("record");
        let mut back: Vec<Event> = (0..4).map(|u| rep(u, u + 4)).collect();
        back.extend((4..8).map(skip));
        store.record(&ba, &back).expect("record");
        let got = |u| store.both_ways(&ab, &ba, u).expect("both ways");
        // b's 2 is the first not read; after it, a's 4 copies (at b 4..8) were read: 4 again.
        assert_eq!(got(6).translation, Translation::Exact(2));
        assert_eq!(got(6).again, 4);
        // Everything read: resume at the end of what the b→a flow handled, nothing again.
        assert_eq!(got(8).translation, Translation::Exact(8));
        assert_eq!(got(8).again, 0);
        // Nothing of b's read: b's 0 first; a's 0..2 were read (copies at b 4, 5).
        assert_eq!(got(2).translation, Translation::Exact(0));
        assert_eq!(got(2).again, 2);
    }

    #[test]
    fn not_exact_forward_and_no_reverse_data_answer_as_the_forward_flow_alone() {
        let (_dir, store, ab, ba) = empty();
        assert_eq!(
            store.both_ways(&ab, &ba, 3).expect("both ways").translation,
            Translation::Unknown
        );
        store.record(&ab, &[rep(0, 0), rep(1, 1)]).expect("record");
        assert_eq!(
            store.both_ways(&ab, &ba, 2).expect("both ways"),
            Resume {
                translation: Translation::Exact(2),
                again: 0
            }
        );
        assert_eq!(
            store.both_ways(&ab, &ba, 5).expect("both ways").translation,
            Translation::NotYetReplicated
        );
    }
}
