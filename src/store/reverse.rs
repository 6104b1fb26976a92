//! Translation backwards, for failing back: a consumer group's position on the target's copy of
//! a partition → where it resumes on the source.

use super::{PartitionKey, Store, StoreError};

impl Store {
    /// Where a group that will next read downstream offset `d` on the target resumes on the
    /// source: right after the upstream record whose copy is the last one below `d`. Records the
    /// flow skipped after that record (copies of the target's own records, under the identity
    /// policy) are read again rather than risked: failing back never loses a record, it may
    /// repeat ones that came from the target. `None` when nothing was ever replicated for the
    /// partition; the first recorded upstream offset when `d` is at or below the first copy.
    pub fn reverse(&self, key: &PartitionKey, d: i64) -> Result<Option<i64>, StoreError> {
        let segments = self.segments(key)?;
        let Some(first) = segments.first() else {
            return Ok(None);
        };
        // Downstream offsets rise with upstream ones: the last segment starting below `d`.
        let Some(seg) = segments.iter().rev().find(|s| s.downstream < d) else {
            let state = self.partition_state(key)?;
            return Ok(Some(
                state.map_or(first.upstream, |s| s.known_from.min(first.upstream)),
            ));
        };
        let last_read = d - 1;
        Ok(Some(if last_read < seg.downstream_end() {
            seg.upstream + (last_read - seg.downstream) + 1
        } else {
            seg.upstream_end()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Event, PartitionKey, Store};

    #[test]
    fn reverse_maps_back_to_after_the_last_record_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        let key = PartitionKey::new("a", "b", "t", 0);
        assert_eq!(store.reverse(&key, 0).unwrap(), None);
        // upstream 10..13 → downstream 0..3; 13 skipped; 14..16 → downstream 5..7 (3,4 local).
        let mut events: Vec<Event> = (10..13)
            .map(|u| Event::Replicated {
                upstream: u,
                downstream: u - 10,
            })
            .collect();
        events.push(Event::Skipped { upstream: 13 });
        events.extend((14..16).map(|u| Event::Replicated {
            upstream: u,
            downstream: u - 9,
        }));
        store.record(&key, &events).unwrap();
        let cases = [
            (0, 10),
            (1, 11),
            (3, 13),
            (4, 13),
            (5, 13),
            (6, 15),
            (7, 16),
            (100, 16),
        ];
        for (d, want) in cases {
            assert_eq!(
                store.reverse(&key, d).unwrap(),
                Some(want),
                "downstream {d}"
            );
        }
    }
}
