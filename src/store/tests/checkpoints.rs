//! Checkpoints: the latest per (group, flow partition).

use super::key;
use crate::store::{PartitionKey, Store, StoredCheckpoint};

fn cp(group: &str, partition: i32, upstream: i64, downstream: i64, ts: i64) -> StoredCheckpoint {
    StoredCheckpoint {
        source: "onprem".into(),
        target: "eventhub".into(),
        group: group.into(),
        source_topic: "testeh".into(),
        partition,
        remote_topic: "onprem.testeh".into(),
        upstream_offset: upstream,
        downstream_offset: downstream,
        metadata: String::new(),
        timestamp_ms: ts,
    }
}

#[test]
fn the_latest_checkpoint_per_key_wins_and_groups_are_separate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store.put_checkpoint(&cp("g", 0, 10, 12, 1)).expect("put");
    store.put_checkpoint(&cp("g", 0, 20, 25, 2)).expect("put");
    store.put_checkpoint(&cp("g", 1, 5, 5, 2)).expect("put");
    // Prefix names must not leak into each other's scans.
    store.put_checkpoint(&cp("g2", 0, 7, 7, 3)).expect("put");
    store.put_checkpoint(&cp("", 0, 1, 1, 3)).expect("put");
    let mut unicode = cp("gruppe-ä", 0, 1, 2, 4);
    unicode.metadata = "metadaten — ✓".into();
    unicode.source_topic = "bestellungen.ö".into();
    store.put_checkpoint(&unicode).expect("put");

    let g = store.checkpoints(Some("g")).expect("list");
    assert_eq!(g, [cp("g", 0, 20, 25, 2), cp("g", 1, 5, 5, 2)]);
    assert_eq!(
        store.checkpoints(Some("g2")).expect("list"),
        [cp("g2", 0, 7, 7, 3)]
    );
    assert_eq!(
        store.checkpoints(Some("gruppe-ä")).expect("list"),
        [unicode.clone()]
    );
    assert!(store.checkpoints(Some("nobody")).expect("list").is_empty());
    assert_eq!(store.checkpoints(None).expect("list").len(), 5);

    assert_eq!(
        store.checkpoint(&key(), "g").expect("get"),
        Some(cp("g", 0, 20, 25, 2))
    );
    assert_eq!(store.checkpoint(&key(), "nobody").expect("get"), None);
    let other_flow = PartitionKey::new("eventhub", "onprem", "testeh", 0);
    assert_eq!(store.checkpoint(&other_flow, "g").expect("get"), None);
    assert_eq!(
        unicode.partition_key(),
        PartitionKey::new("onprem", "eventhub", "bestellungen.ö", 0)
    );

    drop(store);
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(
        store.checkpoints(Some("gruppe-ä")).expect("list"),
        [unicode]
    );
    assert_eq!(store.checkpoints(None).expect("list").len(), 5);
}
