use super::super::tests::{fresh, key, run};
use super::super::{Event, PartitionState, Segment, SegmentSet, Store, StoreError, Translation};
use super::{overlay, Conflict};

fn seg(upstream: i64, downstream: i64, len: i64) -> Segment {
    Segment {
        upstream,
        downstream,
        len,
    }
}

/// Every translation of `0..upto` on `key()`.
fn translations(store: &Store, upto: i64) -> Vec<Translation> {
    (0..upto)
        .map(|u| store.translate(&key(), u).expect("translate"))
        .collect()
}

/// What `store` would publish of `key()`: everything.
fn report(store: &Store) -> SegmentSet {
    store.report(&key(), 0).expect("report").expect("recorded")
}

#[test]
fn overlay_adds_extends_joins_and_reports_conflicts() {
    // Disjoint: added, kept apart (a gap between them).
    let (out, m) = overlay(&[seg(0, 0, 5)], &[seg(8, 10, 2)]);
    assert_eq!(out, vec![seg(0, 0, 5), seg(8, 10, 2)]);
    assert_eq!((m.added, m.conflicts.len()), (2, 0));
    // The tail segment grown by its owner: one segment, the new part added.
    let (out, m) = overlay(&[seg(0, 100, 5)], &[seg(0, 100, 9)]);
    assert_eq!(out, vec![seg(0, 100, 9)]);
    assert_eq!((m.added, m.conflicts.len()), (4, 0));
    // A handover: the next owner's segment continues the previous one's copies.
    let (out, m) = overlay(&[seg(0, 100, 5)], &[seg(5, 105, 5)]);
    assert_eq!(out, vec![seg(0, 100, 10)]);
    assert_eq!(m.added, 5);
    // The same again changes nothing.
    let (out, m) = overlay(&[seg(0, 100, 10)], &[seg(2, 102, 3)]);
    assert_eq!(out, vec![seg(0, 100, 10)]);
    assert_eq!((m.added, m.conflicts.len()), (0, 0));
    // Copied twice: the publication's copies win over 3..6, the rest stays.
    let (out, m) = overlay(&[seg(0, 100, 10)], &[seg(3, 200, 3)]);
    assert_eq!(out, vec![seg(0, 100, 3), seg(3, 200, 3), seg(6, 106, 4)]);
    assert_eq!(m.added, 0);
    assert_eq!(
        m.conflicts,
        vec![Conflict {
            upstream: 3,
            len: 3,
            kept: 200,
            dropped: 103
        }]
    );
}

/// A partition replicated by A up to 40 (a record skipped at 20), then by B from 40 (its copies
/// start at 45: local records on the target in between). Every store that merges both
/// publications — A, B, or a new one, in either order — translates every offset alike, and as
/// one store that recorded everything would.
#[test]
fn a_handover_translates_alike_in_every_store() {
    let mut first: Vec<Event> = run(0..20, 0);
    first.push(Event::Skipped { upstream: 20 });
    first.extend(run(21..40, 20));
    let second = run(40..60, 45);
    let (_a_dir, a) = fresh();
    a.record(&key(), &first).expect("record");
    let (_b_dir, b) = fresh();
    b.record(&key(), &second).expect("record");
    let (_w_dir, whole) = fresh();
    whole.record(&key(), &first).expect("record");
    whole.record(&key(), &second).expect("record");
    let want = translations(&whole, 65);
    assert_eq!(
        want[20],
        Translation::Exact(20),
        "the skipped record: the next copy"
    );
    assert_eq!(want[40], Translation::Exact(45));
    assert_eq!(want[60], Translation::Exact(65));
    assert_eq!(want[61], Translation::NotYetReplicated);

    let (from_a, from_b) = (report(&a), report(&b));
    let (_c_dir, c) = fresh();
    c.merge(&key(), &from_b).expect("merge");
    c.merge(&key(), &from_a).expect("merge");
    let merged_a = a.merge(&key(), &from_b).expect("merge");
    assert_eq!((merged_a.added, merged_a.conflicts.len()), (20, 0));
    b.merge(&key(), &from_a).expect("merge");
    for (name, store) in [("a", &a), ("b", &b), ("new", &c)] {
        assert_eq!(translations(store, 65), want, "store {name}");
        assert_eq!(
            store.segments(&key()).expect("segments"),
            vec![seg(0, 0, 20), seg(21, 20, 19), seg(40, 45, 20)],
            "store {name}"
        );
        let state = store
            .partition_state(&key())
            .expect("state")
            .expect("known");
        assert_eq!((state.processed_upto, state.known_from), (60, 0), "{name}");
    }
    // Merging again changes nothing.
    let again = c.merge(&key(), &from_a).expect("merge");
    assert_eq!((again.added, again.conflicts.len()), (0, 0));
    assert_eq!(translations(&c, 65), want);
}

#[test]
fn a_conflicting_publication_wins_and_is_reported() {
    let (_dir, store) = fresh();
    store.record(&key(), &run(0..10, 0)).expect("record");
    let twice = SegmentSet {
        state: PartitionState {
            processed_upto: 10,
            known_from: 0,
            log_start: 0,
        },
        segments: vec![seg(5, 50, 5)],
    };
    let merged = store.merge(&key(), &twice).expect("merge");
    assert_eq!(
        merged.conflicts,
        vec![Conflict {
            upstream: 5,
            len: 5,
            kept: 50,
            dropped: 5
        }]
    );
    assert_eq!(
        store.translate(&key(), 6).expect("t"),
        Translation::Exact(51)
    );
    assert_eq!(
        store.translate(&key(), 4).expect("t"),
        Translation::Exact(4)
    );
}

#[test]
fn positions_merge_and_old_segments_are_pruned() {
    let (_dir, store) = fresh();
    store.record(&key(), &run(100..110, 0)).expect("record");
    let older = SegmentSet {
        state: PartitionState {
            processed_upto: 50,
            known_from: 0,
            log_start: 0,
        },
        segments: vec![seg(0, 500, 50)],
    };
    store.merge(&key(), &older).expect("merge");
    let state = store
        .partition_state(&key())
        .expect("state")
        .expect("known");
    assert_eq!((state.processed_upto, state.known_from), (110, 0));
    assert_eq!(store.segments(&key()).expect("segments").len(), 2);
    // A publication from a store that saw the source's log start at 60: below it goes.
    let pruned = SegmentSet {
        state: PartitionState {
            processed_upto: 110,
            known_from: 100,
            log_start: 60,
        },
        segments: vec![],
    };
    store.merge(&key(), &pruned).expect("merge");
    assert_eq!(
        store.segments(&key()).expect("segments"),
        vec![seg(100, 0, 10)]
    );
    assert_eq!(
        store.translate(&key(), 70).expect("t"),
        Translation::Exact(0)
    );
}

#[test]
fn malformed_segments_are_refused_and_nothing_is_written() {
    let (_dir, store) = fresh();
    let state = PartitionState {
        processed_upto: 10,
        known_from: 0,
        log_start: 0,
    };
    for bad in [
        vec![seg(5, 5, 3), seg(6, 6, 3)],
        vec![seg(0, 0, 0)],
        vec![seg(-1, 0, 2)],
    ] {
        let set = SegmentSet {
            state,
            segments: bad,
        };
        let e = store.merge(&key(), &set).expect_err("refused");
        assert!(matches!(e, StoreError::InvalidSegments { .. }), "{e}");
    }
    assert!(store.partitions().expect("partitions").is_empty());
}
