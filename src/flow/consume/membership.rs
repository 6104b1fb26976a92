//! The consume loop's side of the group protocol (see [`crate::flow::group`]): subscribing the
//! group to the routed topics, starting the partitions the coordinator assigns, handing over
//! those it revokes, and stopping when they are lost or when the instance has not heard from the
//! coordinator for too long.
//!
//! Events are applied one at a time, in the order librdkafka gave them; a start (reading
//! committed offsets and the target's tail) runs beside the loop, which keeps copying the
//! partitions it already has, and the next event waits for it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::waiting::Waiting;
use super::ConsumeLoop;
use crate::flow::acks::Work;
use crate::flow::group::{self, GroupEvent, GroupEvents, Liveness, Partitions};
use crate::flow::route::Route;
use crate::flow::start::{Assignment, Starter};
use crate::flow::FlowError;

/// How long a handover may wait for the records in flight of the revoked partitions.
pub const HAND_OVER_WITHIN: Duration = Duration::from_secs(10);
/// How long a start retries reads that fail for a transient reason before the run ends.
const START_RETRY_WITHIN: Duration = Duration::from_secs(15);
/// How long moving started partitions to their start offsets may take (a local operation).
const SEEK_WITHIN: Duration = Duration::from_secs(10);

/// The loop's group state.
pub(in crate::flow) struct Membership {
    /// Events from the consumer's context.
    pub events: Arc<GroupEvents>,
    /// Proofs of membership (see [`Liveness`]).
    pub liveness: Arc<Liveness>,
    /// Decides where assigned partitions start.
    pub starter: Arc<Starter>,
    /// A start in progress: its assignments, and when its event arrived.
    pub starting: Option<JoinHandle<Result<Vec<Assignment>, FlowError>>>,
    /// The partitions being started, and when their event arrived.
    pub started_at: Option<(Instant, Partitions)>,
    /// Partitions given up this run: their records already fetched are dropped.
    pub gone: HashSet<(String, i32)>,
    /// The last partition checked against `gone`, and whether it is gone.
    pub checked: Option<(String, i32, bool)>,
    /// The topics the group is subscribed to.
    pub subscribed: Vec<String>,
    /// Since when copying is parked for want of a word from the coordinator (see `park`).
    pub parked: Option<Instant>,
    /// The partitions paused when copying was parked.
    pub paused: Partitions,
    /// Partitions waiting for their remote topic to grow.
    pub waiting: Waiting,
}

impl Membership {
    /// Waiting partitions the remote topic grew to take, to start now (none while a start
    /// runs).
    pub fn take_grown(&mut self) -> Option<Partitions> {
        if self.starting.is_some() {
            return None;
        }
        self.waiting.take_grown()
    }

    /// Whether records of `topic`/`partition` must be dropped (it was handed over or lost).
    pub fn is_gone(&mut self, topic: &str, partition: i32) -> bool {
        if self.gone.is_empty() {
            return false;
        }
        if let Some((t, p, verdict)) = &self.checked {
            if *p == partition && t == topic {
                return *verdict;
            }
        }
        let verdict = self.gone.contains(&(topic.to_string(), partition));
        self.checked = Some((topic.to_string(), partition, verdict));
        verdict
    }
}

impl ConsumeLoop {
    /// Takes new or changed routes and subscribes the group to every routed topic.
    pub(super) fn add_routes(&mut self, routes: Vec<Arc<Route>>) -> Result<(), FlowError> {
        for route in routes {
            let topic = route.source_topic.to_string();
            self.release_grown(&route);
            let age =
                self.metrics
                    .record_age
                    .with_label_values(&[&self.source, &self.target, &topic]);
            self.routes.insert(topic, (route, age));
        }
        let mut topics: Vec<String> = self.routes.keys().cloned().collect();
        topics.sort();
        if topics == self.group.subscribed {
            return Ok(());
        }
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        self.consumer
            .subscribe(&names)
            .map_err(|e| FlowError::Source {
                what: format!("subscribing the flow's group to {names:?}"),
                source: e,
            })?;
        tracing::info!(source = %self.source, target = %self.target, topics = ?names, "subscribed");
        self.group.subscribed = topics;
        Ok(())
    }

    /// Applies the group events waiting, unless a start is in progress (it goes first).
    pub(super) async fn apply_group_events(
        &mut self,
        pending: &mpsc::Sender<Work>,
    ) -> Result<(), FlowError> {
        while self.group.starting.is_none() {
            let Some(event) = self.group.events.pop() else {
                return Ok(());
            };
            match event {
                GroupEvent::Assigned(ps) => self.begin_start(ps),
                GroupEvent::Revoked(ps) => self.hand_over(ps, pending).await?,
                GroupEvent::Lost(ps) => {
                    self.forget(&ps, pending).await;
                    return Err(FlowError::Fenced(format!(
                        "the group gave {} partition(s) of this instance to others (its session \
                         timed out)",
                        ps.len()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Finds where each newly assigned (and paused) partition starts, beside the loop; until
    /// it is moved there, records of it are dropped.
    pub(super) fn begin_start(&mut self, partitions: Partitions) {
        self.group.gone.extend(partitions.iter().cloned());
        self.group.checked = None;
        self.group.started_at = Some((Instant::now(), partitions.clone()));
        let starter = self.group.starter.clone();
        let mut routes: Vec<RoutePartitions> = Vec::new();
        let mut held: Vec<RoutePartitions> = Vec::new();
        for (topic, ps) in by_topic(&partitions) {
            match self.routes.get(&topic) {
                Some((route, _)) => {
                    let route = route.clone();
                    let (now, later) = self.hold_unwritable(&route, ps);
                    if !later.is_empty() {
                        held.push((route.clone(), later));
                    }
                    if !now.is_empty() {
                        routes.push((route, now));
                    }
                }
                None => {
                    tracing::warn!(source = %self.source, target = %self.target, topic, "the group assigned a topic this flow has no route for; not replicating it")
                }
            }
        }
        let (source, target) = (self.source.clone(), self.target.clone());
        self.group.starting = Some(tokio::spawn(async move {
            // A cluster that was just unreachable (the run restarting after a cut) may fail the
            // first reads: the partitions wait, paused and owned, rather than the run rejoining.
            let deadline = Instant::now() + START_RETRY_WITHIN;
            let mut backoff = Duration::from_millis(250);
            loop {
                match start(&starter, (&routes, &held)).await {
                    Err(e) if e.is_transient() && Instant::now() + backoff < deadline => {
                        tracing::warn!(%source, %target, "starting assigned partitions: {e}; retrying in {backoff:?}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                    done => return done,
                }
            }
        }));
    }

    /// A start finished: moves its partitions to their start offsets (what was fetched before
    /// is stale from then on) and resumes them, unless copying is parked.
    pub(super) fn finish_start(
        &mut self,
        started: Result<Vec<Assignment>, FlowError>,
    ) -> Result<(), FlowError> {
        self.group.starting = None;
        let assignments = started?;
        let mut tpl = TopicPartitionList::new();
        for a in &assignments {
            for (p, offset) in &a.start {
                tpl.add_partition_offset(&a.route.source_topic, *p, *offset)
                    .map_err(|e| FlowError::Source {
                        what: format!("assigning '{}' partition {p}", a.route.source_topic),
                        source: e,
                    })?;
            }
        }
        // (librdkafka refuses an empty list: an assignment may bring nothing new.)
        let moved = match tpl.count() {
            0 => TopicPartitionList::new(),
            _ => self
                .consumer
                .seek_partitions(tpl.clone(), SEEK_WITHIN)
                .map_err(|e| FlowError::Source {
                    what: "moving assigned partitions to their start".into(),
                    source: e,
                })?,
        };
        for e in moved.elements() {
            if let Err(err) = e.error() {
                return Err(FlowError::Source {
                    what: format!(
                        "moving '{}' partition {} to its start",
                        e.topic(),
                        e.partition()
                    ),
                    source: err,
                });
            }
        }
        for a in &assignments {
            for (p, _) in &a.start {
                self.group
                    .gone
                    .remove(&(a.route.source_topic.to_string(), *p));
            }
        }
        self.group.checked = None;
        // Paused since they were assigned; parked, `unpark` resumes them with the rest.
        let paused = if self.group.parked.is_some() {
            self.consumer.pause(&tpl)
        } else {
            self.consumer.resume(&tpl)
        };
        paused.map_err(|e| FlowError::Source {
            what: "setting the assigned partitions' pause".into(),
            source: e,
        })?;
        for a in assignments {
            let topic = &a.route.source_topic;
            for (p, offset) in &a.start {
                let (from, next) = match offset {
                    Offset::Offset(n) => (format!("at offset {n}"), *n),
                    _ => ("from the beginning".to_string(), -1),
                };
                self.status.set_position(topic, *p, next);
                tracing::info!(source = %self.source, target = %self.target, topic = &**topic, partition = p, remote = %a.route.remote_topic, "partition assigned, starting {from}");
            }
            self.status.own(topic, a.start.iter().map(|(p, _)| *p));
        }
        if let Some((at, ps)) = self.group.started_at.take() {
            let (took, n) = (at.elapsed(), ps.len());
            self.metrics
                .rebalance_pause
                .with_label_values(&[&self.source, &self.target, "assign"])
                .observe(took.as_secs_f64());
            tracing::info!(source = %self.source, target = %self.target, partitions = n, "assigned partitions started in {} ms", took.as_millis());
        }
        Ok(())
    }

    /// Hands revoked partitions over: nothing more of them is copied, what is in flight settles,
    /// the store records it and their offsets are committed; only then does the group get them.
    async fn hand_over(
        &mut self,
        partitions: Partitions,
        pending: &mpsc::Sender<Work>,
    ) -> Result<(), FlowError> {
        let began = Instant::now();
        self.group.waiting.release(&partitions);
        self.group.gone.extend(partitions.iter().cloned());
        self.group.checked = None;
        if !self.flush(pending).await {
            return Err(FlowError::Task(
                "the ack task stopped during a handover".into(),
            ));
        }
        let (done, outcome) = oneshot::channel();
        let work = Work::HandOver {
            partitions: partitions.clone(),
            done,
        };
        if pending.send(work).await.is_err() {
            return Err(FlowError::Task(
                "the ack task stopped during a handover".into(),
            ));
        }
        match tokio::time::timeout(HAND_OVER_WITHIN, outcome).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(e),
            Ok(Err(_)) => {
                return Err(FlowError::Task(
                    "the ack task stopped during a handover".into(),
                ))
            }
            Err(_) => {
                self.group_purge();
                return Err(FlowError::HandOver(format!(
                    "{} revoked partition(s) could not be handed over: the target did not \
                     acknowledge their records in flight within {HAND_OVER_WITHIN:?}; restarting \
                     (records still in flight may be copied twice)",
                    partitions.len()
                )));
            }
        }
        group::give_up(&*self.consumer, &group::list(&partitions)).map_err(|e| {
            FlowError::Source {
                what: "giving revoked partitions back to the group".into(),
                source: e,
            }
        })?;
        for (topic, ps) in by_topic(&partitions) {
            self.status.disown(&topic, ps);
        }
        let took = began.elapsed();
        self.metrics
            .rebalance_pause
            .with_label_values(&[&self.source, &self.target, "revoke"])
            .observe(took.as_secs_f64());
        tracing::info!(source = %self.source, target = %self.target, partitions = partitions.len(), "handed partitions over in {} ms (settled, recorded, committed)", took.as_millis());
        Ok(())
    }

    /// The run's loop ended: the group events it did not apply (a start in progress is
    /// dropped: its partitions are assigned already, and given up when the consumer closes).
    /// See [`group::release`].
    pub(super) fn unapplied(&mut self) -> Vec<GroupEvent> {
        let mut waiting: Vec<GroupEvent> = Vec::new();
        if let Some(h) = self.group.starting.take() {
            h.abort();
            self.group.started_at = None;
        }
        while let Some(e) = self.group.events.pop() {
            waiting.push(e);
        }
        waiting
    }

    /// Tells the ack task to drop `partitions` uncommitted and the status to forget them.
    pub(super) async fn forget(&mut self, partitions: &Partitions, pending: &mpsc::Sender<Work>) {
        self.group.waiting.release(partitions);
        self.group.gone.extend(partitions.iter().cloned());
        self.group.checked = None;
        // The open batch goes first: the ack task settles (and forgets) in order.
        let _ = self.flush(pending).await;
        let _ = pending.send(Work::Forget(partitions.clone())).await;
        for (topic, ps) in by_topic(partitions) {
            self.status.disown(&topic, ps);
        }
    }

    /// Drops what the producer queues (not what it already sent).
    pub(super) fn group_purge(&self) {
        use rdkafka::producer::{Producer, PurgeConfig};
        self.producer.purge(PurgeConfig::default().queue());
    }
}

/// Where each partition of `routes` starts: its committed offset against the target's tail.
/// Partitions of one route.
type RoutePartitions = (Arc<Route>, Vec<i32>);

/// Held partitions (waiting for their remote topic) only get their `start_from` choice recorded.
async fn start(
    starter: &Starter,
    (routes, held): (&[RoutePartitions], &[RoutePartitions]),
) -> Result<Vec<Assignment>, FlowError> {
    for (route, ps) in held {
        starter.reserve(route, ps).await?;
    }
    let mut out = Vec::with_capacity(routes.len());
    for (route, ps) in routes {
        let committed = starter.committed(&route.source_topic, ps).await?;
        let start = starter.positions(route, committed).await?;
        out.push(Assignment {
            route: route.clone(),
            start,
        });
    }
    Ok(out)
}

/// Completes with the outcome of the start in progress (never, when there is none).
pub(super) async fn started(
    starting: &mut Option<JoinHandle<Result<Vec<Assignment>, FlowError>>>,
) -> Result<Vec<Assignment>, FlowError> {
    match starting.as_mut() {
        Some(h) => h.await.map_err(FlowError::join)?,
        None => std::future::pending().await,
    }
}

/// `partitions` grouped by topic, topics sorted.
fn by_topic(partitions: &[(String, i32)]) -> Vec<(String, Vec<i32>)> {
    let mut out: Vec<(String, Vec<i32>)> = Vec::new();
    let mut sorted = partitions.to_vec();
    sorted.sort();
    for (t, p) in sorted {
        match out.last_mut() {
            Some((last, ps)) if *last == t => ps.push(p),
            _ => out.push((t, vec![p])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_group_by_topic() {
        let got = by_topic(&[("b".into(), 1), ("a".into(), 2), ("b".into(), 0)]);
        assert_eq!(
            got,
            [("a".to_string(), vec![2]), ("b".to_string(), vec![0, 1])]
        );
    }
}
