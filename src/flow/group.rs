//! A flow's membership in its consumer group on the source: which instance replicates which
//! partition is the group coordinator's decision, delivered as rebalance events.
//!
//! librdkafka calls the consumer context on the consume loop's thread, inside a poll. Handing a
//! partition over takes more than a callback should do (waiting for the target to acknowledge
//! what is in flight, recording the store, committing): [`GroupContext`] queues a revocation as
//! a [`GroupEvent`] and leaves librdkafka waiting for the unassign call, which it allows; the
//! consume loop hands the partitions over and then makes that call (see `consume::membership`).
//! Meanwhile the group waits and the flow's other partitions keep flowing.
//!
//! An assignment is taken at once, *paused*, and queued for the loop, which decides where each
//! partition starts (reading committed offsets and the target's tail back), moves it there and
//! resumes it. The group never waits for a start: a start reads the committed offsets from the
//! coordinator, which may itself be busy with the next round of the same rebalance (a topic
//! subscribed meanwhile, a member joining), and a member holding its assign call while waiting
//! for the coordinator can keep the whole group from completing that round.
//!
//! A *lost* assignment (the session timed out: the coordinator has already given the partitions
//! to other instances) is different: nothing may be settled or committed, and whatever the
//! producer still queues must never reach the target. The context purges the producer's queue
//! there and then, gives the partitions up at once, and the run ends.
//!
//! [`Liveness`] (`super::liveness`) is the other half of that fence: an instance that has not
//! heard from the group coordinator for half the session timeout stops producing, so that it
//! is silent before the coordinator can give its partitions away.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::{Producer, PurgeConfig};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use super::board::FlowProducer;
pub use super::liveness::Liveness;
use crate::cluster::ClusterContext;

/// A flow's source consumer.
pub type FlowConsumer = StreamConsumer<GroupContext>;

/// Source partitions, as `(topic, partition)`.
pub type Partitions = Vec<(String, i32)>;

/// What the group coordinator decided for this instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    /// These partitions are this instance's now and part of the consumer's assignment, paused:
    /// start them (move each to its start and resume it).
    Assigned(Partitions),
    /// Hand these over: settle and commit, then call [`give_up`].
    Revoked(Partitions),
    /// These partitions were lost (already given away): the producer's queue was purged and
    /// they were given up; nothing of them may be committed.
    Lost(Partitions),
}

/// Group events waiting for the consume loop, in the order librdkafka gave them.
#[derive(Default)]
pub struct GroupEvents {
    queue: Mutex<VecDeque<GroupEvent>>,
    /// Set while the queue is not empty: one load per poll on the hot path.
    pending: AtomicBool,
    /// Wakes the consume loop when an event arrives while it waits for records.
    notify: tokio::sync::Notify,
}

impl GroupEvents {
    fn push(&self, e: GroupEvent) {
        if let Ok(mut q) = self.queue.lock() {
            q.push_back(e);
            self.pending.store(true, Ordering::Release);
        }
        self.notify.notify_one();
    }

    /// Completes when an event was pushed since the last time this completed.
    pub async fn arrived(&self) {
        self.notify.notified().await
    }

    /// Whether an event waits.
    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// The oldest event waiting.
    pub fn pop(&self) -> Option<GroupEvent> {
        let mut q = self.queue.lock().ok()?;
        let e = q.pop_front();
        if q.is_empty() {
            self.pending.store(false, Ordering::Release);
        }
        e
    }
}

/// The context of a flow's source consumer: the cluster's context (logs, errors, statistics)
/// plus the group membership described in the module documentation.
pub struct GroupContext {
    /// Logs, errors and statistics, as for every client of the cluster.
    pub cluster: ClusterContext,
    /// Events for the consume loop.
    pub events: Arc<GroupEvents>,
    /// Proofs of membership.
    pub liveness: Arc<Liveness>,
    /// The flow's producer, purged when the assignment is lost (set once it exists).
    pub producer: Arc<OnceLock<FlowProducer>>,
    /// Set when the run ends: from then on events are applied at once (closing the consumer
    /// revokes everything and waits for that).
    pub closing: AtomicBool,
}

impl GroupContext {
    /// A context reporting through `cluster`, each proof of membership holding `window`.
    pub fn new(cluster: ClusterContext, window: Duration) -> Self {
        GroupContext {
            cluster,
            events: Arc::new(GroupEvents::default()),
            liveness: Arc::new(Liveness::new(window)),
            producer: Arc::new(OnceLock::new()),
            closing: AtomicBool::new(false),
        }
    }

    /// Drops every record the producer still queues (not those already sent).
    pub fn purge_producer(&self) {
        if let Some(p) = self.producer.get() {
            p.purge(PurgeConfig::default().queue());
        }
    }
}

impl ClientContext for GroupContext {
    crate::cluster::oauth::entra_token_callback!();

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.cluster.log(level, fac, log_message);
    }

    fn stats_raw(&self, statistics: &[u8]) {
        self.liveness.prove_from_stats(statistics, Instant::now());
        self.cluster.stats_raw(statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.cluster.error(error, reason);
    }
}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let partitions = partitions(tpl);
        let closing = self.closing.load(Ordering::Acquire);
        let applied = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.liveness.prove(Instant::now());
                // Taken now, paused until the loop has moved each to its start; a record
                // fetched before the pause is dropped by the loop, and made stale by that move.
                // Placed at the beginning meanwhile: without an offset librdkafka would look up
                // the committed one and, with none, report a reset (`auto.offset.reset=error`).
                let taken = tpl
                    .set_all_offsets(Offset::Beginning)
                    .and_then(|()| take(consumer, tpl))
                    .and_then(|()| consumer.pause(tpl));
                if !closing {
                    self.events.push(GroupEvent::Assigned(partitions));
                }
                taken
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                if consumer.assignment_lost() {
                    // Already someone else's: nothing queued for them may go out.
                    self.liveness.fence();
                    self.purge_producer();
                    let r = give_up(consumer, tpl);
                    self.events.push(GroupEvent::Lost(partitions));
                    r
                } else if closing {
                    give_up(consumer, tpl)
                } else {
                    self.events.push(GroupEvent::Revoked(partitions));
                    Ok(())
                }
            }
            other => {
                tracing::warn!(
                    cluster = %self.cluster.alias(),
                    "consumer group rebalance failed: {}",
                    rdkafka::error::RDKafkaErrorCode::from(other)
                );
                Ok(())
            }
        };
        if let Err(e) = applied {
            tracing::warn!(cluster = %self.cluster.alias(), "applying a rebalance: {e}");
        }
    }
}

/// The run ends and its ack task has committed what it could: from now on the context applies
/// rebalances at once (closing the consumer revokes everything and waits for that), and the
/// revocations the consume loop left (`unapplied`) are applied now — librdkafka waits for the
/// unassign call it was promised before it can close. (Assignments were taken already; lost
/// partitions given up.)
pub fn release(consumer: &FlowConsumer, unapplied: Vec<GroupEvent>) {
    consumer.context().closing.store(true, Ordering::Release);
    for e in unapplied {
        let (ps, result) = match &e {
            GroupEvent::Revoked(ps) => (ps, give_up(consumer, &list(ps))),
            GroupEvent::Assigned(_) | GroupEvent::Lost(_) => continue,
        };
        if let Err(err) = result {
            tracing::debug!(
                partitions = ps.len(),
                "applying a rebalance while stopping: {err}"
            );
        }
    }
    // Events that came in meanwhile.
    while let Some(e) = consumer.context().events.pop() {
        release(consumer, vec![e]);
    }
}

/// `partitions` as a list without offsets.
pub fn list(partitions: &[(String, i32)]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (t, p) in partitions {
        tpl.add_partition(t, *p);
    }
    tpl
}

/// The `(topic, partition)`s of a list.
pub fn partitions(tpl: &TopicPartitionList) -> Partitions {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

/// Makes `tpl` (with start offsets) part of the consumer's assignment.
pub fn take<C: Consumer<X>, X: ConsumerContext>(
    consumer: &C,
    tpl: &TopicPartitionList,
) -> KafkaResult<()> {
    match consumer.rebalance_protocol() {
        RebalanceProtocol::Cooperative => consumer.incremental_assign(tpl),
        _ => consumer.assign(tpl),
    }
}

/// Removes `tpl` from the consumer's assignment (with an eager assignor: everything, as
/// revoked).
pub fn give_up<C: Consumer<X>, X: ConsumerContext>(
    consumer: &C,
    tpl: &TopicPartitionList,
) -> KafkaResult<()> {
    match consumer.rebalance_protocol() {
        RebalanceProtocol::Cooperative => consumer.incremental_unassign(tpl),
        _ => consumer.unassign(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_in_order_and_clear_the_flag() {
        let e = GroupEvents::default();
        assert!(!e.pending());
        e.push(GroupEvent::Assigned(vec![("t".into(), 0)]));
        e.push(GroupEvent::Revoked(vec![("t".into(), 0)]));
        assert!(e.pending());
        assert_eq!(e.pop(), Some(GroupEvent::Assigned(vec![("t".into(), 0)])));
        assert!(e.pending());
        assert_eq!(e.pop(), Some(GroupEvent::Revoked(vec![("t".into(), 0)])));
        assert!(!e.pending());
        assert_eq!(e.pop(), None);
    }
}
