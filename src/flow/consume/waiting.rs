//! Partitions that wait for their remote topic to grow ([`Route::writable`], see
//! `crate::flow::remote`): the group assigned them to this instance, but the remote topic has no
//! partition of that number yet. They stay owned and paused — nothing of them is copied or
//! committed — and start, like a fresh assignment, once a route says the remote topic has them.

use std::collections::HashSet;

use super::ConsumeLoop;
use crate::flow::group::Partitions;
use crate::flow::route::Route;

/// The waiting partitions of one consume loop.
#[derive(Default)]
pub(in crate::flow) struct Waiting {
    /// Assigned partitions the remote topic cannot take yet.
    held: HashSet<(String, i32)>,
    /// Held partitions the remote topic grew to take: started next.
    grown: Partitions,
}

impl Waiting {
    /// Forgets `partitions` (handed over or lost: no longer this instance's).
    pub fn release(&mut self, partitions: &Partitions) {
        for p in partitions {
            self.held.remove(p);
        }
        self.grown.retain(|p| !partitions.contains(p));
    }

    /// The held partitions whose remote topic grew, to start now.
    pub fn take_grown(&mut self) -> Option<Partitions> {
        if self.grown.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut self.grown))
    }
}

impl ConsumeLoop {
    /// `partitions` of `route`'s topic just assigned: those its remote topic can take, and those
    /// held (owned, paused, not started).
    pub(super) fn hold_unwritable(
        &mut self,
        route: &Route,
        partitions: Vec<i32>,
    ) -> (Vec<i32>, Vec<i32>) {
        let (now, later): (Vec<i32>, Vec<i32>) =
            partitions.into_iter().partition(|p| *p < route.writable);
        if !later.is_empty() {
            let topic = &*route.source_topic;
            tracing::info!(source = %self.source, target = %self.target, topic, partitions = ?later, remote = %route.remote_topic, "partitions assigned, waiting: the remote topic has only {} partitions", route.writable);
            self.status.own(topic, later.iter().copied());
            let held = &mut self.group.waiting.held;
            held.extend(later.iter().map(|p| (topic.to_string(), *p)));
        }
        (now, later)
    }

    /// A new route for a topic: its held partitions that the remote topic now takes are started
    /// next.
    pub(super) fn release_grown(&mut self, route: &Route) {
        let topic = &*route.source_topic;
        let writable = |(t, p): &(String, i32)| t == topic && *p < route.writable;
        let waiting = &mut self.group.waiting;
        let mut now: Partitions = waiting
            .held
            .iter()
            .filter(|e| writable(e))
            .cloned()
            .collect();
        if now.is_empty() {
            return;
        }
        now.sort();
        waiting.held.retain(|e| !writable(e));
        let numbers: Vec<i32> = now.iter().map(|(_, p)| *p).collect();
        tracing::info!(source = %self.source, target = %self.target, topic, partitions = ?numbers, "the remote topic grew: starting the partitions that waited for it");
        waiting.grown.append(&mut now);
    }
}
