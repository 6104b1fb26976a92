//! Unit tests of the store: pure sled in temporary directories.

mod bench;
mod checkpoints;
mod model;
mod open;
mod record;
mod translate;

use std::ops::Range;

use super::{Event, PartitionKey, Store};

/// The seed scenario's partition.
pub(super) fn key() -> PartitionKey {
    PartitionKey::new("onprem", "eventhub", "testeh", 0)
}

/// A new store in a new temporary directory (kept alive by the returned guard).
pub(super) fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("store")).expect("open a new store");
    (dir, store)
}

fn rep(upstream: i64, downstream: i64) -> Event {
    Event::Replicated {
        upstream,
        downstream,
    }
}

fn skip(upstream: i64) -> Event {
    Event::Skipped { upstream }
}

/// `upstream` copied contiguously from `downstream` on.
pub(super) fn run(upstream: Range<i64>, downstream: i64) -> Vec<Event> {
    let start = upstream.start;
    upstream.map(|u| rep(u, downstream + (u - start))).collect()
}

/// How many entries the offsets tree holds (partition entries plus segments).
fn offsets_keys(store: &Store) -> usize {
    store.inner.offsets.len()
}
