//! A flow's membership in its consumer group on the source: which instance replicates which
//! partition is the group coordinator's decision, delivered as rebalance events.
//!
//! librdkafka calls the consumer context on the consume loop's thread, inside a poll. Handing a
//! partition over takes more than a callback should do (waiting for the target to acknowledge
//! what is in flight, recording the store, committing), and starting one means reading the
//! target's tail back. So [`GroupContext`] only queues an assignment or a revocation as a
//! [`GroupEvent`] and leaves librdkafka waiting for the assign (or unassign) call, which it
//! allows; the consume loop does the work and then makes that call (see
//! `consume::membership`). Meanwhile the group waits and the flow's other partitions keep
//! flowing.
//!
//! A *lost* assignment (the session timed out: the coordinator has already given the partitions
//! to other instances) is different: nothing may be settled or committed, and whatever the
//! producer still queues must never reach the target. The context purges the producer's queue
//! there and then, gives the partitions up at once, and the run ends.
//!
//! [`Liveness`] is the other half of that fence: an instance that has not heard from the group
//! coordinator for half the session timeout stops producing (see [`Liveness::alive`]), so that
//! it is silent before the coordinator can give its partitions away.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
use rdkafka::TopicPartitionList;

use super::board::FlowProducer;
use crate::cluster::ClusterContext;

/// A flow's source consumer.
pub type FlowConsumer = StreamConsumer<GroupContext>;

/// Source partitions, as `(topic, partition)`.
pub type Partitions = Vec<(String, i32)>;

/// What the group coordinator decided for this instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    /// These partitions are this instance's now: start them, then call [`take`].
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

/// When this instance last heard from the group coordinator, and how long that holds.
///
/// Proofs come from the assignments the coordinator sends and from the consumer's statistics
/// (every second): while the consumer is a steady member, the age of the last response of the
/// coordinator's connection (heartbeats go out every second). An instance frozen or cut off from
/// the coordinator gets no new proof; one whose assignment was lost is fenced for the rest of
/// the run.
pub struct Liveness {
    base: Instant,
    /// Nanoseconds after `base` until which the instance may produce.
    until_ns: AtomicU64,
    /// How long one proof of membership holds: half the session timeout.
    window: Duration,
    /// Set when the assignment was lost: no proof counts any more.
    fenced: AtomicBool,
    /// Nanoseconds after `base` since when every statistics snapshot showed a steady member
    /// that heard from the coordinator (0: not steady now).
    steady_since_ns: AtomicU64,
}

/// How long the membership must hold, steady and heard from, before parked copying resumes.
pub const SETTLE: Duration = Duration::from_secs(2);

impl Liveness {
    /// A liveness with no proof yet; each proof holds for `window`. Create it just before the
    /// consumer whose statistics it reads (their `age` counts from then).
    pub fn new(window: Duration) -> Self {
        Liveness {
            base: Instant::now(),
            until_ns: AtomicU64::new(0),
            window,
            fenced: AtomicBool::new(false),
            steady_since_ns: AtomicU64::new(0),
        }
    }

    /// The coordinator answered a request sent at `at` as to a member of the group.
    pub fn prove(&self, at: Instant) {
        let until = at.saturating_duration_since(self.base) + self.window;
        self.until_ns
            .fetch_max(until.as_nanos() as u64, Ordering::AcqRel);
    }

    /// Whether the last proof still holds at `now`.
    pub fn alive(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.base).as_nanos() as u64;
        elapsed < self.until_ns.load(Ordering::Acquire) && !self.fenced.load(Ordering::Acquire)
    }

    /// Whether the last proof holds at `now` and the member has been steady and heard from for
    /// [`SETTLE`] (parked copying resumes only then).
    pub fn settled(&self, now: Instant) -> bool {
        let since = self.steady_since_ns.load(Ordering::Acquire);
        let elapsed = now.saturating_duration_since(self.base).as_nanos() as u64;
        self.alive(now) && since != 0 && elapsed >= since + SETTLE.as_nanos() as u64
    }

    /// The assignment was lost: nothing more may be produced in this run.
    pub fn fence(&self) {
        self.fenced.store(true, Ordering::Release);
        self.steady_since_ns.store(0, Ordering::Release);
    }

    /// Whether the assignment was lost in this run.
    pub fn fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }

    /// Takes a proof from the consumer's statistics: a member whose coordinator connection last
    /// received a response `rxidle` µs before the statistics were taken heard from the
    /// coordinator then (heartbeats go out every second). When they were taken is the client's
    /// creation (`base`, just before it) plus their `age`, not when they are read: statistics
    /// queue behind the records already fetched, and a late reading must not look fresh. Only a response counts: a member waiting for its JoinGroup to be answered
    /// cannot tell a coordinator that holds the request (a rebalance waiting for the others)
    /// from one that never got it (a network cut), and only in the second case does the
    /// coordinator give its partitions away after the session timeout. So a rebalance that keeps
    /// a member waiting for longer than the window stops its copying too: the run restarts and
    /// rejoins, at the cost of a restart, never of a duplicate.
    fn prove_from_stats(&self, json: &[u8], now: Instant) {
        let Ok(stats) = serde_json::from_slice::<RawStats>(json) else {
            return;
        };
        let steady = stats
            .cgrp
            .as_ref()
            .is_some_and(|g| g.state == "up" && g.join_state == "steady");
        if !steady {
            self.steady_since_ns.store(0, Ordering::Release);
        }
        if stats.cgrp.as_ref().is_none_or(|g| g.state != "up") {
            return;
        }
        let Some(coordinator) = stats
            .brokers
            .values()
            .find(|b| b.source == "logical" && b.name == "GroupCoordinator")
        else {
            return;
        };
        let (Ok(idle), Ok(age)) = (u64::try_from(coordinator.rxidle), u64::try_from(stats.age))
        else {
            return;
        };
        let taken = (self.base + Duration::from_micros(age)).min(now);
        if let Some(at) = taken.checked_sub(Duration::from_micros(idle)) {
            self.prove(at);
            let fresh = taken.saturating_duration_since(at) < self.window;
            let taken_ns = taken.saturating_duration_since(self.base).as_nanos() as u64;
            if steady && fresh {
                let _ = self.steady_since_ns.compare_exchange(
                    0,
                    taken_ns.max(1),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            } else {
                self.steady_since_ns.store(0, Ordering::Release);
            }
        }
    }

    /// How long one proof holds.
    pub fn window(&self) -> Duration {
        self.window
    }
}

/// The few statistics fields [`Liveness`] reads.
#[derive(serde::Deserialize)]
struct RawStats {
    /// µs since the client was created.
    #[serde(default = "minus_one")]
    age: i64,
    #[serde(default)]
    brokers: std::collections::HashMap<String, RawBroker>,
    cgrp: Option<RawGroup>,
}

#[derive(serde::Deserialize)]
struct RawBroker {
    #[serde(default)]
    name: String,
    #[serde(default)]
    source: String,
    /// µs since the last response on this connection; -1 when none.
    #[serde(default = "minus_one")]
    rxidle: i64,
}

#[derive(serde::Deserialize)]
struct RawGroup {
    #[serde(default)]
    state: String,
    #[serde(default)]
    join_state: String,
}

fn minus_one() -> i64 {
    -1
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
                if closing {
                    take(consumer, tpl)
                } else {
                    self.events.push(GroupEvent::Assigned(partitions));
                    Ok(())
                }
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
/// events the consume loop left (`unapplied`) are applied now — librdkafka waits for the
/// assign or unassign call it was promised before it can close.
pub fn release(consumer: &FlowConsumer, unapplied: Vec<GroupEvent>) {
    consumer.context().closing.store(true, Ordering::Release);
    for e in unapplied {
        let (ps, result) = match &e {
            GroupEvent::Assigned(ps) => (ps, take(consumer, &list(ps))),
            GroupEvent::Revoked(ps) => (ps, give_up(consumer, &list(ps))),
            GroupEvent::Lost(_) => continue,
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
    fn a_proof_holds_for_its_window_only() {
        let l = Liveness::new(Duration::from_secs(5));
        let now = Instant::now();
        assert!(!l.alive(now), "no proof yet");
        l.prove(now);
        assert!(l.alive(now + Duration::from_secs(4)));
        assert!(!l.alive(now + Duration::from_secs(5)));
        // An older proof never shortens a newer one.
        l.prove(now - Duration::from_secs(3));
        assert!(l.alive(now + Duration::from_secs(4)));
        l.fence();
        assert!(!l.alive(now), "a lost assignment fences the run");
    }

    #[test]
    fn statistics_prove_membership_by_the_coordinator_connection() {
        // Taken 60 s after the client was created (`age`), read at about that moment.
        let stats_at = |age_s: i64, state: &str, join: &str, rxidle: i64| {
            format!(
                r#"{{"age":{age},"brokers":{{"b:9092/1":{{"name":"b:9092/1","source":"learned","rxidle":10}},
                "GroupCoordinator":{{"name":"GroupCoordinator","source":"logical","state":"UP","rxidle":{rxidle}}}}},
                "cgrp":{{"state":"{state}","join_state":"{join}"}}}}"#,
                age = age_s * 1_000_000
            )
        };
        let stats_in = |state: &str, join: &str, rxidle: i64| stats_at(60, state, join, rxidle);
        let stats = |state: &str, rxidle: i64| stats_in(state, "steady", rxidle);
        let l = Liveness::new(Duration::from_secs(5));
        let now = l.base + Duration::from_secs(60);
        // Last heard 7 s ago: too old to hold now.
        l.prove_from_stats(stats("up", 7_000_000).as_bytes(), now);
        assert!(!l.alive(now));
        // Not a steady member: no proof, however fresh the connection.
        l.prove_from_stats(stats("wait-coord", 1_000).as_bytes(), now);
        assert!(!l.alive(now));
        l.prove_from_stats(stats("up", 900_000).as_bytes(), now);
        assert!(l.alive(now));
        assert!(!l.alive(now + Duration::from_secs(5)));
        // Statistics taken 20 s ago and read only now (they queued behind fetched records):
        // heard from 20.5 s ago, not 0.5 s.
        let l = Liveness::new(Duration::from_secs(5));
        let now = l.base + Duration::from_secs(60);
        l.prove_from_stats(stats_at(40, "up", "steady", 500_000).as_bytes(), now);
        assert!(!l.alive(now));
        assert!(l.alive(l.base + Duration::from_secs(41)));
        // Rejoining with no answer for 8 s: a coordinator holding the JoinGroup looks like one
        // that never got it; no proof.
        let l = Liveness::new(Duration::from_secs(5));
        let now = l.base + Duration::from_secs(60);
        l.prove_from_stats(stats_in("up", "wait-join", 8_000_000).as_bytes(), now);
        assert!(!l.alive(now));
        // Parked copying resumes only once the member was steady and heard from for SETTLE:
        // a reconnection's first answers are not enough (the first heartbeat may be refused).
        let l = Liveness::new(Duration::from_secs(5));
        l.prove_from_stats(
            stats_at(50, "up", "steady", 100_000).as_bytes(),
            l.base + Duration::from_secs(50),
        );
        assert!(l.alive(l.base + Duration::from_secs(51)));
        assert!(
            !l.settled(l.base + Duration::from_secs(51)),
            "steady for 1 s only"
        );
        l.prove_from_stats(
            stats_at(51, "up", "wait-join", 100_000).as_bytes(),
            l.base + Duration::from_secs(51),
        );
        l.prove_from_stats(
            stats_at(52, "up", "steady", 100_000).as_bytes(),
            l.base + Duration::from_secs(52),
        );
        assert!(
            !l.settled(l.base + Duration::from_secs(53)),
            "a rejoin restarts the count"
        );
        l.prove_from_stats(
            stats_at(54, "up", "steady", 100_000).as_bytes(),
            l.base + Duration::from_secs(54),
        );
        assert!(l.settled(l.base + Duration::from_secs(54)));
        l.fence();
        assert!(!l.settled(l.base + Duration::from_secs(54)));
        // Never heard (-1) or malformed: nothing.
        let l = Liveness::new(Duration::from_secs(5));
        let now = l.base + Duration::from_secs(60);
        l.prove_from_stats(stats("up", -1).as_bytes(), now);
        l.prove_from_stats(b"{not json", now);
        assert!(!l.alive(now));
    }

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
