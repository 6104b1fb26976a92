//! Translation rules, table-driven.

use super::{fresh, key, rep, run, skip};
use crate::store::{PartitionKey, Segment, Store, Translation};
use Translation::{Exact, NotYetReplicated, Unknown};

/// A partition with every kind of gap:
/// - 0..5 → 0..5;
/// - 5, 6 skipped (loop rule), while local producers wrote downstream 5..10;
/// - 7..10 → 10..13;
/// - 10, 11 never seen (compacted away), downstream 13..20 local;
/// - 12 → 20;
/// - 13, 14 skipped: processed up to 15.
fn gappy(store: &Store) {
    let k = key();
    store.record(&k, &run(0..5, 0)).expect("record");
    let mut batch = vec![skip(5), skip(6)];
    batch.extend(run(7..10, 10));
    store.record(&k, &batch).expect("record");
    store
        .record(&k, &[rep(12, 20), skip(13), skip(14)])
        .expect("record");
}

fn check(store: &Store, k: &PartitionKey, table: &[(i64, Translation)]) {
    for &(upstream, want) in table {
        assert_eq!(
            store.translate(k, upstream).expect("translate"),
            want,
            "upstream {upstream}"
        );
    }
}

#[test]
fn inside_segments_gaps_after_the_end_and_not_yet_replicated() {
    let (_dir, store) = fresh();
    gappy(&store);
    let want = [
        Segment {
            upstream: 0,
            downstream: 0,
            len: 5,
        },
        Segment {
            upstream: 7,
            downstream: 10,
            len: 3,
        },
        Segment {
            upstream: 12,
            downstream: 20,
            len: 1,
        },
    ];
    assert_eq!(store.segments(&key()).expect("segments"), want);
    #[rustfmt::skip]
    let table = [
        (-1, Exact(0)),                              // below everything: the first record
        (0, Exact(0)), (3, Exact(3)), (4, Exact(4)), // inside the first segment
        (5, Exact(10)), (6, Exact(10)),              // skipped: the next replicated record
        (7, Exact(10)), (9, Exact(12)),              // inside
        (10, Exact(20)), (11, Exact(20)),            // compaction gap: the next record
        (12, Exact(20)),
        (13, Exact(21)), (14, Exact(21)),            // skipped after the last segment: its end
        (15, Exact(21)),                             // = processed_upto: caught up
        (16, NotYetReplicated), (1_000_000, NotYetReplicated),
    ];
    check(&store, &key(), &table);
}

#[test]
fn unknown_partitions_and_partitions_without_copies() {
    let (_dir, store) = fresh();
    gappy(&store);
    let other = [
        PartitionKey::new("onprem", "eventhub", "testeh", 1),
        PartitionKey::new("onprem", "eventhub", "testeh2", 0),
        PartitionKey::new("eventhub", "onprem", "testeh", 0),
    ];
    for k in &other {
        assert_eq!(store.translate(k, 0).expect("translate"), Unknown, "{k}");
    }
    // Every record loop-dropped (identity policy, the way back): nothing to resume at.
    let back = &other[2];
    store
        .record(back, &(0..10).map(skip).collect::<Vec<_>>())
        .expect("record");
    check(
        &store,
        back,
        &[(0, Unknown), (10, Unknown), (11, NotYetReplicated)],
    );
}

#[test]
fn below_the_pruned_start_resumes_at_the_first_remaining_segment() {
    let (_dir, store) = fresh();
    gappy(&store);
    // The source's log start moved to 11: [0, 5) and [7, 10) are gone there.
    assert_eq!(store.prune(&key(), 11).expect("prune"), 2);
    assert_eq!(store.segments(&key()).expect("segments").len(), 1);
    #[rustfmt::skip]
    let table = [
        (0, Exact(20)), (5, Exact(20)), (10, Exact(20)), (12, Exact(20)),
        (13, Exact(21)), (15, Exact(21)), (16, NotYetReplicated),
    ];
    check(&store, &key(), &table);
}

#[test]
fn below_what_the_store_saw_is_unknown_until_the_source_dropped_it() {
    // The store was lost and recreated while the flow had committed 1000: copies of 0..1000
    // exist below downstream 5000, so "the first segment" would skip them for a group at 500.
    let (_dir, store) = fresh();
    store
        .record(&key(), &run(1000..1100, 5000))
        .expect("record");
    check(
        &store,
        &key(),
        &[(500, Unknown), (999, Unknown), (1000, Exact(5000))],
    );
    store.prune(&key(), 800).expect("prune");
    check(&store, &key(), &[(500, Unknown), (999, Unknown)]);
    // Once the source's log start passes 1000, those records are gone there too.
    store.prune(&key(), 1000).expect("prune");
    check(
        &store,
        &key(),
        &[(500, Exact(5000)), (999, Exact(5000)), (1050, Exact(5050))],
    );
    let state = store
        .partition_state(&key())
        .expect("state")
        .expect("known");
    assert_eq!(
        (state.processed_upto, state.known_from, state.log_start),
        (1100, 1000, 1000)
    );
}

#[test]
fn a_flow_starting_past_the_log_start_is_known_from_there() {
    // A new flow starts at the source's log start (here 300, older records expired): after
    // the first prune with that log start, a stale group below it resumes at the first copy.
    let (_dir, store) = fresh();
    store.record(&key(), &run(300..310, 0)).expect("record");
    assert_eq!(store.translate(&key(), 100).expect("translate"), Unknown);
    assert_eq!(store.prune(&key(), 300).expect("prune"), 0);
    assert_eq!(store.translate(&key(), 100).expect("translate"), Exact(0));
}
