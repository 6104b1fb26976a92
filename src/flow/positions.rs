//! What a flow has acknowledged, per source partition: the next offset to commit and the
//! offset-translation events the store has not been told yet. The ack task feeds it record by
//! record (consecutive records mostly share a partition, so the lookup is usually skipped) and
//! commits it every second and on stop — always recording in the store first.

use std::collections::HashMap;
use std::sync::Arc;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::group::FlowConsumer;
use super::route::Route;
use super::stamp::CommitStamp;
use super::FlowError;
use crate::status::FlowStatus;
use crate::store::{Event, PartitionKey, Store};

/// Per source (topic, partition): the next offset to commit and what the store has not been
/// told yet. Commits always record in the store first: a committed source offset is never
/// ahead of the translations that cover it.
pub(super) struct Positions {
    source: String,
    target: String,
    store: Store,
    /// Names the target in each commit's metadata.
    stamp: Arc<CommitStamp>,
    /// Index into `positions` by (source topic, partition).
    index: HashMap<(Arc<str>, i32), usize>,
    positions: Vec<((Arc<str>, i32), Position)>,
    /// The partition acknowledged last (consecutive records mostly share it): skips the lookup.
    last: Option<(Arc<str>, i32, usize)>,
    dirty: bool,
}

/// One partition's acknowledged position and its events not yet in the store.
struct Position {
    next: i64,
    events: Vec<Event>,
    /// The commit metadata: the stamp of the target and remote topic.
    stamp: String,
}

impl Positions {
    pub(super) fn new(source: &str, target: &str, store: Store, stamp: Arc<CommitStamp>) -> Self {
        Positions {
            source: source.to_string(),
            target: target.to_string(),
            store,
            stamp,
            index: HashMap::new(),
            positions: Vec::new(),
            last: None,
            dirty: false,
        }
    }

    pub(super) fn ack(
        &mut self,
        route: &Arc<Route>,
        partition: i32,
        offset: i64,
        downstream: Option<i64>,
    ) {
        let event = match downstream {
            Some(downstream) => Event::Replicated {
                upstream: offset,
                downstream,
            },
            None => Event::Skipped { upstream: offset },
        };
        let i = match &self.last {
            Some((topic, p, i)) if *p == partition && Arc::ptr_eq(topic, &route.source_topic) => *i,
            _ => {
                let key = (route.source_topic.clone(), partition);
                let next = self.positions.len();
                let i = *self.index.entry(key.clone()).or_insert(next);
                if i == next {
                    let position = Position {
                        next: 0,
                        events: Vec::new(),
                        stamp: self.stamp.render(&route.remote_topic),
                    };
                    self.positions.push((key, position));
                }
                self.last = Some((route.source_topic.clone(), partition, i));
                i
            }
        };
        let position = &mut self.positions[i].1;
        position.events.push(event);
        position.next = offset + 1;
        self.dirty = true;
    }

    /// Tells the flow's status where each partition stands (for `hubmirror_lag_records`).
    pub(super) fn publish(&self, status: &FlowStatus) {
        for ((topic, partition), position) in &self.positions {
            status.set_position(topic, *partition, position.next);
        }
    }

    pub(super) fn commit(
        &mut self,
        consumer: &FlowConsumer,
        mode: CommitMode,
    ) -> Result<(), FlowError> {
        if !self.dirty {
            return Ok(());
        }
        self.record(|_| true)?;
        let tpl = self.offsets(|_| true);
        match consumer.commit(&tpl, mode) {
            Ok(()) => self.dirty = false,
            Err(e) => tracing::warn!("committing source offsets failed (will retry): {e}"),
        }
        Ok(())
    }

    /// Hands `partitions` over: records their events in the store, commits their positions
    /// synchronously, and forgets them (a later commit of this run never touches them again).
    pub(super) fn hand_over(
        &mut self,
        consumer: &FlowConsumer,
        partitions: &[(String, i32)],
    ) -> Result<(), FlowError> {
        let wanted = |k: &(Arc<str>, i32)| partitions.iter().any(|(t, p)| **t == *k.0 && *p == k.1);
        self.record(wanted)?;
        let tpl = self.offsets(wanted);
        if tpl.count() > 0 {
            consumer
                .commit(&tpl, CommitMode::Sync)
                .map_err(|e| FlowError::Source {
                    what: "committing the offsets of partitions handed over".into(),
                    source: e,
                })?;
        }
        self.forget(partitions);
        Ok(())
    }

    /// Forgets `partitions` without recording or committing anything more of them.
    pub(super) fn forget(&mut self, partitions: &[(String, i32)]) {
        self.positions
            .retain(|((t, p), _)| !partitions.iter().any(|(gt, gp)| **t == **gt && p == gp));
        self.index = self
            .positions
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        self.last = None;
    }

    /// Records the pending events of the partitions `which` selects in the store, and flushes.
    fn record(&mut self, which: impl Fn(&(Arc<str>, i32)) -> bool) -> Result<(), FlowError> {
        for (k, position) in &mut self.positions {
            if position.events.is_empty() || !which(k) {
                continue;
            }
            let key = PartitionKey::new(&self.source, &self.target, &k.0, k.1);
            self.store
                .record(&key, &position.events)
                .map_err(FlowError::Store)?;
            position.events.clear();
        }
        self.store.flush().map_err(FlowError::Store)
    }

    /// The positions of the partitions `which` selects, stamped, as a list to commit.
    fn offsets(&self, which: impl Fn(&(Arc<str>, i32)) -> bool) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for (k, position) in &self.positions {
            if !which(k) {
                continue;
            }
            let (topic, partition) = (&k.0, k.1);
            let next = position.next;
            let mut elem = tpl.add_partition(topic, partition);
            if let Err(e) = elem.set_offset(Offset::Offset(next)) {
                tracing::warn!(
                    topic = &**topic,
                    partition,
                    "cannot commit offset {next}: {e}"
                );
            }
            elem.set_metadata(position.stamp.as_str());
        }
        tpl
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn positions_follow_each_partition_whatever_the_interleaving() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let metrics = Metrics::new();
        let a = Arc::new(Route::new(&metrics, "s", "t", "a", "s.a", 2, false));
        let b = Arc::new(Route::new(&metrics, "s", "t", "b", "s.b", 2, false));
        let stamp = Arc::new(CommitStamp::new("t", "t:9092", None, false));
        let mut p = Positions::new("s", "t", store, stamp);
        // Runs of one partition (the fast path) broken by others, topics sharing partition numbers.
        p.ack(&a, 0, 10, Some(100));
        p.ack(&a, 0, 11, Some(101));
        p.ack(&a, 1, 5, None);
        p.ack(&b, 0, 7, Some(3));
        p.ack(&a, 0, 12, Some(102));
        p.ack(&b, 0, 8, Some(4));
        let got: Vec<_> = p
            .positions
            .iter()
            .map(|((t, part), pos)| (t.to_string(), *part, pos.next, pos.events.len()))
            .collect();
        assert_eq!(
            got,
            [
                ("a".to_string(), 0, 13, 3),
                ("a".to_string(), 1, 6, 1),
                ("b".to_string(), 0, 9, 2)
            ]
        );
        assert!(matches!(
            p.positions[0].1.events[2],
            Event::Replicated {
                upstream: 12,
                downstream: 102
            }
        ));
        assert!(matches!(
            p.positions[1].1.events[0],
            Event::Skipped { upstream: 5 }
        ));
    }
}
