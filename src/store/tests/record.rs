//! Recording batches: collapsing, interleaving, skips, re-replication, pruning, invalid input.

use super::{fresh, key, offsets_keys, rep, run, skip};
use crate::store::{PartitionKey, Segment, Store, StoreError, Translation};

fn seg(upstream: i64, downstream: i64, len: i64) -> Segment {
    Segment {
        upstream,
        downstream,
        len,
    }
}

fn segments(store: &Store) -> Vec<Segment> {
    store.segments(&key()).expect("segments")
}

fn exact(store: &Store, upstream: i64) -> i64 {
    match store.translate(&key(), upstream).expect("translate") {
        Translation::Exact(d) => d,
        other => panic!("upstream {upstream}: {other:?}"),
    }
}

#[test]
fn a_million_contiguous_records_are_one_segment_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    {
        let store = Store::open(&path).expect("open");
        // One batch of 1,000,000 …
        store.record(&key(), &run(0..1_000_000, 0)).expect("record");
        // … then 100 batches of 10,000 continuing it.
        for b in 0..100 {
            let from = 1_000_000 + b * 10_000;
            store
                .record(&key(), &run(from..from + 10_000, from))
                .expect("record");
        }
        store.flush().expect("flush");
    }
    let store = Store::open(&path).expect("reopen");
    assert_eq!(segments(&store), [seg(0, 0, 2_000_000)]);
    // One partition entry and one segment; the default tree holds the marker alone.
    assert_eq!(offsets_keys(&store), 2);
    assert_eq!(store.inner.db.len(), 1);
    assert_eq!(exact(&store, 1_234_567), 1_234_567);
    assert_eq!(exact(&store, 2_000_000), 2_000_000);
}

#[test]
fn interleaved_downstream_makes_one_segment_per_run() {
    // Identity policy with local producers on the target: upstream 0..5 landed at 0, 1, 5, 6, 9.
    let (_dir, store) = fresh();
    let batch: Vec<_> = [0, 1, 5, 6, 9]
        .iter()
        .enumerate()
        .map(|(u, &d)| rep(u as i64, d))
        .collect();
    store.record(&key(), &batch).expect("record");
    assert_eq!(segments(&store), [seg(0, 0, 2), seg(2, 5, 2), seg(4, 9, 1)]);
    let got: Vec<_> = (0..=5).map(|u| exact(&store, u)).collect();
    assert_eq!(got, [0, 1, 5, 6, 9, 10]);
}

#[test]
fn consecutive_batches_extend_the_tail_segment() {
    let (_dir, store) = fresh();
    store.record(&key(), &run(0..5, 100)).expect("record");
    store.record(&key(), &run(5..10, 105)).expect("record");
    assert_eq!(segments(&store), [seg(0, 100, 10)]);
    // A downstream jump (someone else wrote in between) starts a new segment.
    store.record(&key(), &run(10..12, 200)).expect("record");
    assert_eq!(segments(&store), [seg(0, 100, 10), seg(10, 200, 2)]);
    assert_eq!(offsets_keys(&store), 3);
    store
        .record(&key(), &[])
        .expect("an empty batch is a no-op");
    assert_eq!(offsets_keys(&store), 3);
}

#[test]
fn skipped_records_break_runs_and_advance_processed_upto() {
    let (_dir, store) = fresh();
    // Downstream is contiguous (skipped records are not written), upstream is not.
    let mut batch = run(0..3, 0);
    batch.extend([skip(3), skip(4)]);
    batch.extend(run(5..8, 3));
    batch.push(skip(8));
    store.record(&key(), &batch).expect("record");
    assert_eq!(segments(&store), [seg(0, 0, 3), seg(5, 3, 3)]);
    let state = store
        .partition_state(&key())
        .expect("state")
        .expect("known");
    assert_eq!(state.processed_upto, 9);
    assert_eq!([3, 4, 5, 8, 9].map(|u| exact(&store, u)), [3, 3, 3, 6, 6]);
}

#[test]
fn re_replication_after_a_restart_newest_copies_win() {
    // 0..100 copied to 0..100; the flow crashes having committed 40, restarts there and
    // copies 40.. again at 100.. (the old copies stay on the target).
    let (_dir, store) = fresh();
    store.record(&key(), &run(0..100, 0)).expect("record");
    store.record(&key(), &run(40..60, 100)).expect("record");
    assert_eq!(
        segments(&store),
        [seg(0, 0, 40), seg(40, 100, 20), seg(60, 60, 40)]
    );
    assert_eq!(
        store
            .partition_state(&key())
            .expect("state")
            .expect("known")
            .processed_upto,
        100
    );
    assert_eq!(
        [39, 40, 59, 60, 99, 100].map(|u| exact(&store, u)),
        [39, 100, 119, 60, 99, 100]
    );
    // The next batch reaches the old end: the new run is one segment again.
    store.record(&key(), &run(60..100, 120)).expect("record");
    assert_eq!(segments(&store), [seg(0, 0, 40), seg(40, 100, 60)]);
    store.record(&key(), &run(100..110, 160)).expect("record");
    assert_eq!(segments(&store), [seg(0, 0, 40), seg(40, 100, 70)]);
    assert_eq!(
        [39, 40, 99, 110].map(|u| exact(&store, u)),
        [39, 100, 159, 170]
    );
}

#[test]
fn re_replication_across_several_segments_cuts_and_splits_them() {
    let (_dir, store) = fresh();
    for (up, down) in [(0, 0), (10, 20), (20, 40), (30, 60)] {
        store
            .record(&key(), &run(up..up + 10, down))
            .expect("record");
    }
    // Again from 5 to 25 with 12 skipped this time, at 100.. .
    let mut batch = run(5..12, 100);
    batch.push(skip(12));
    batch.extend(run(13..26, 107));
    store.record(&key(), &batch).expect("record");
    let want = [
        seg(0, 0, 5),
        seg(5, 100, 7),
        seg(13, 107, 13),
        seg(26, 46, 4),
        seg(30, 60, 10),
    ];
    assert_eq!(segments(&store), want);
    assert_eq!(
        [4, 5, 12, 25, 26, 29, 30, 40].map(|u| exact(&store, u)),
        [4, 100, 107, 119, 46, 49, 60, 70]
    );
}

#[test]
fn re_replication_inside_one_segment_splits_it() {
    let (_dir, store) = fresh();
    store.record(&key(), &run(0..10, 0)).expect("record");
    // 3..6 is loop-dropped this time (its origin changed? no matter: newest knowledge wins).
    store
        .record(&key(), &[skip(3), skip(4), skip(5)])
        .expect("record");
    assert_eq!(segments(&store), [seg(0, 0, 3), seg(6, 6, 4)]);
    assert_eq!([2, 3, 5, 6].map(|u| exact(&store, u)), [2, 6, 6, 6]);
}

#[test]
fn re_replication_below_the_first_offset_seen_extends_what_is_known() {
    let (_dir, store) = fresh();
    store.record(&key(), &run(1000..1010, 0)).expect("record");
    store.record(&key(), &run(500..510, 50)).expect("record");
    let state = store
        .partition_state(&key())
        .expect("state")
        .expect("known");
    assert_eq!((state.known_from, state.processed_upto), (500, 1010));
    assert_eq!(
        [500, 509, 510, 1000].map(|u| exact(&store, u)),
        [50, 59, 0, 0]
    );
}

#[test]
fn pruning_drops_whole_segments_below_the_log_start_but_never_the_last() {
    let (_dir, store) = fresh();
    for i in 0..5 {
        store
            .record(&key(), &run(i * 10..i * 10 + 10, i * 100))
            .expect("record");
    }
    assert_eq!(
        store.prune(&key(), 5).expect("prune"),
        0,
        "[0, 10) still holds 5..10"
    );
    assert_eq!(store.prune(&key(), 10).expect("prune"), 1);
    assert_eq!(store.prune(&key(), 10).expect("prune"), 0, "idempotent");
    assert_eq!(store.prune(&key(), 35).expect("prune"), 2);
    assert_eq!(segments(&store), [seg(30, 300, 10), seg(40, 400, 10)]);
    // Past everything (retention outran the mirror): the last segment stays.
    assert_eq!(store.prune(&key(), 1000).expect("prune"), 1);
    assert_eq!(segments(&store), [seg(40, 400, 10)]);
    assert_eq!(exact(&store, 50), 410);
    let unknown = PartitionKey::new("x", "y", "z", 0);
    assert_eq!(store.prune(&unknown, 10).expect("prune"), 0);
    assert!(store
        .partitions()
        .expect("partitions")
        .iter()
        .all(|k| *k != unknown));
}

#[test]
fn forgetting_a_partition_leaves_the_others() {
    let (_dir, store) = fresh();
    let other = PartitionKey::new("onprem", "eventhub", "testeh", 1);
    store
        .record(&key(), &[rep(0, 0), rep(1, 5)])
        .expect("record");
    store.record(&other, &run(0..3, 0)).expect("record");
    assert_eq!(store.forget(&key()).expect("forget"), 2);
    assert_eq!(
        store.translate(&key(), 0).expect("translate"),
        Translation::Unknown
    );
    assert_eq!(store.partitions().expect("partitions"), [other]);
}

#[test]
fn invalid_events_are_refused_and_nothing_is_written() {
    let (_dir, store) = fresh();
    for bad in [
        vec![rep(5, 5), rep(4, 6)],
        vec![rep(5, 5), skip(5)],
        vec![rep(-1, 0)],
        vec![rep(0, -3)],
    ] {
        let err = store.record(&key(), &bad).expect_err("invalid");
        assert!(matches!(err, StoreError::InvalidEvents { .. }), "{err}");
        assert!(
            err.to_string().contains("onprem→eventhub testeh/0"),
            "{err}"
        );
    }
    assert_eq!(offsets_keys(&store), 0);
}

#[test]
fn partitions_are_listed_once_each_even_with_prefix_names() {
    let (_dir, store) = fresh();
    let keys = [
        PartitionKey::new("a", "b", "t", 0),
        PartitionKey::new("a", "b", "t", 1),
        PartitionKey::new("a", "b", "t", 10),
        PartitionKey::new("a", "b", "t.x", 0),
        PartitionKey::new("a", "bc", "t", 0),
        PartitionKey::new("ab", "c", "t", 0),
    ];
    for k in keys.iter().rev() {
        store.record(k, &run(0..100, 0)).expect("record");
        store.record(k, &run(100..110, 500)).expect("record");
    }
    let mut want = keys.to_vec();
    want.sort_by_key(|k| {
        (
            k.source.len(),
            k.source.clone(),
            k.target.len(),
            k.target.clone(),
            k.topic.len(),
            k.topic.clone(),
            k.partition,
        )
    });
    assert_eq!(store.partitions().expect("partitions"), want);
    for k in &keys {
        assert_eq!(
            store.segments(k).expect("segments"),
            [seg(0, 0, 100), seg(100, 500, 10)]
        );
    }
}

#[test]
fn concurrent_writers_on_different_partitions() {
    let (_dir, store) = fresh();
    std::thread::scope(|s| {
        for p in 0..4 {
            let store = store.clone();
            s.spawn(move || {
                let k = PartitionKey::new("onprem", "eventhub", "testeh", p);
                for b in 0..200 {
                    store
                        .record(&k, &run(b * 50..b * 50 + 50, b * 50))
                        .expect("record");
                }
            });
        }
    });
    for p in 0..4 {
        let k = PartitionKey::new("onprem", "eventhub", "testeh", p);
        assert_eq!(store.segments(&k).expect("segments"), [seg(0, 0, 10_000)]);
    }
}
