//! Store fixtures shared by `tests/owners.rs` and `tests/segments.rs`: the partitions of flow
//! `a → b` over topic `orders`, and contiguous copies recorded as store events.

use hubmirror::store::{Event, PartitionKey};

/// Partition `partition` of `orders` in flow `a → b`.
pub fn key(partition: i32) -> PartitionKey {
    PartitionKey::new("a", "b", "orders", partition)
}

/// `upstream` copied contiguously from `downstream` on.
pub fn copied(upstream: std::ops::Range<i64>, downstream: i64) -> Vec<Event> {
    let start = upstream.start;
    upstream
        .map(|u| Event::Replicated {
            upstream: u,
            downstream: downstream + (u - start),
        })
        .collect()
}
