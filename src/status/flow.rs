//! One flow's live figures ([`FlowStatus`]): written by the flow's tasks, read as a
//! [`FlowReport`] and judged for readiness.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::report::{FlowReport, PartitionLag, SourcePartition};
pub use super::state::FlowState;
use crate::cluster::{diagnose, ConsumerStats};

/// A flow with records in flight and no acknowledgement for this long is not progressing.
pub const STALL_AFTER: Duration = Duration::from_secs(5);
/// A flow whose source sent no response for this long (while it has partitions) is not
/// connected. Fetches return at least every `fetch.wait.max.ms` (100 ms) when healthy.
pub const SOURCE_SILENT_AFTER: Duration = Duration::from_secs(5);

/// Live figures of one flow; every field is lock-free so the hot path can update it.
pub struct FlowStatus {
    /// Source cluster alias.
    pub source: String,
    /// Target cluster alias.
    pub target: String,
    state: AtomicU8,
    /// Records acknowledged by the target since start.
    replicated: AtomicU64,
    /// Records handed to the target's producer and not yet acknowledged.
    in_flight: AtomicI64,
    /// Records per second over the last rate window, as f64 bits.
    rate_bits: AtomicU64,
    /// Timestamp (ms) inside the last heartbeat whose copy the target acknowledged; 0 = none.
    pub(super) heartbeat_ts_ms: AtomicI64,
    /// Heartbeat timestamp → target acknowledgement of that heartbeat, ms; -1 = none yet.
    heartbeat_latency_ms: AtomicI64,
    /// When the target last acknowledged a record (ms since the epoch; 0 = never).
    pub(super) last_ack_ms: AtomicI64,
    /// Record timestamp → target acknowledgement of the newest acknowledged record with a
    /// timestamp, ms; -1 = none yet. The latency of flows without heartbeats.
    record_latency_ms: AtomicI64,
    /// Set while the flow waits to restart after a transient failure, cleared by the next
    /// acknowledged record.
    recovering: AtomicBool,
    /// Assigned source partitions → next offset to replicate (-1: from the log start).
    positions: Mutex<BTreeMap<(String, i32), i64>>,
    /// What the flow's source consumer reports (watermarks, responsiveness).
    pub source_stats: Arc<ConsumerStats>,
    /// Whether a checkpoint task runs for this flow (its age is exported).
    pub(super) checkpoints: AtomicBool,
    /// The source partitions this instance owns in the flow's group now (given by the group
    /// coordinator): checkpoints, group offset sync and heartbeats are done by their owner.
    owned: Mutex<BTreeSet<(String, i32)>>,
}

impl FlowStatus {
    /// A flow in state `Starting`.
    pub fn new(source: &str, target: &str) -> Arc<Self> {
        Arc::new(FlowStatus {
            source: source.to_string(),
            target: target.to_string(),
            state: AtomicU8::new(FlowState::Starting as u8),
            replicated: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            rate_bits: AtomicU64::new(0f64.to_bits()),
            heartbeat_ts_ms: AtomicI64::new(0),
            heartbeat_latency_ms: AtomicI64::new(-1),
            last_ack_ms: AtomicI64::new(0),
            record_latency_ms: AtomicI64::new(-1),
            recovering: AtomicBool::new(false),
            positions: Mutex::new(BTreeMap::new()),
            source_stats: Arc::new(ConsumerStats::default()),
            checkpoints: AtomicBool::new(false),
            owned: Mutex::new(BTreeSet::new()),
        })
    }

    /// Notes that a checkpoint task runs for this flow.
    pub fn enable_checkpoints(&self) {
        self.checkpoints.store(true, Ordering::Relaxed);
    }

    /// Notes records acknowledged by the target just now; returns `true` when this ends a
    /// recovery (the first acknowledgement after a restart).
    pub fn acked(&self) -> bool {
        self.last_ack_ms.store(now_ms(), Ordering::Relaxed);
        self.recovering.load(Ordering::Relaxed) && self.recovering.swap(false, Ordering::Relaxed)
    }

    /// A run that owns partitions, has copied everything they hold and has nothing in flight
    /// ends a recovery too: with no record to send, the target owes no acknowledgement (a
    /// partition that came back idle after a rebalance). Returns `true` when this ended one.
    pub fn idle_settled(&self) -> bool {
        if !self.recovering.load(Ordering::Relaxed)
            || self.in_flight.load(Ordering::Relaxed) != 0
            || self.state() != FlowState::Running
        {
            return false;
        }
        let owned = self.owned();
        if owned.is_empty() {
            return false;
        }
        let lag = self.lag();
        let caught_up = owned
            .iter()
            .all(|(t, p)| lag.iter().any(|(lt, lp, n)| lt == t && lp == p && *n == 0));
        caught_up && self.recovering.swap(false, Ordering::Relaxed)
    }

    /// Marks the flow as waiting to restart after a transient failure.
    pub fn set_recovering(&self) {
        self.recovering.store(true, Ordering::Relaxed);
    }

    /// Sets where replication of a partition stands: the next offset to replicate
    /// (-1 when it starts from the log start).
    pub fn set_position(&self, topic: &str, partition: i32, next: i64) {
        if let Ok(mut p) = self.positions.lock() {
            p.insert((topic.to_string(), partition), next);
        }
    }

    /// The next offset to replicate of a partition, when known (not "from the log start").
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        let p = self.positions.lock().ok()?;
        p.get(&(topic.to_string(), partition))
            .copied()
            .filter(|n| *n >= 0)
    }

    /// Notes source partitions the group gave this instance (replication of them has started).
    pub fn own(&self, topic: &str, partitions: impl IntoIterator<Item = i32>) {
        if let Ok(mut o) = self.owned.lock() {
            o.extend(partitions.into_iter().map(|p| (topic.to_string(), p)));
        }
    }

    /// Notes source partitions this instance gave up (handed over, or lost).
    pub fn disown(&self, topic: &str, partitions: impl IntoIterator<Item = i32>) {
        let gone: Vec<(String, i32)> = partitions
            .into_iter()
            .map(|p| (topic.to_string(), p))
            .collect();
        if let Ok(mut o) = self.owned.lock() {
            for k in &gone {
                o.remove(k);
            }
        }
        if let Ok(mut positions) = self.positions.lock() {
            for k in &gone {
                positions.remove(k);
            }
        }
    }

    /// Whether this instance owns `topic`/`partition` in the flow's group now.
    pub fn owns(&self, topic: &str, partition: i32) -> bool {
        self.owned
            .lock()
            .map(|o| o.contains(&(topic.to_string(), partition)))
            .unwrap_or(false)
    }

    /// The source partitions this instance owns now, sorted.
    pub fn owned(&self) -> Vec<(String, i32)> {
        self.owned
            .lock()
            .map(|o| o.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Starts a new run of the flow (fresh clients): forgets every partition (they are
    /// assigned again), the records the previous run left unsettled (its producer is gone; they
    /// will be replicated again) and the previous consumer's response progress.
    pub fn begin_run(&self) {
        if let Ok(mut p) = self.positions.lock() {
            p.clear();
        }
        if let Ok(mut o) = self.owned.lock() {
            o.clear();
        }
        self.in_flight.store(0, Ordering::Relaxed);
        self.source_stats.restart();
    }

    /// Lag per assigned partition: source high watermark − next offset to replicate, for the
    /// partitions whose watermark the source has reported.
    pub fn lag(&self) -> Vec<(String, i32, i64)> {
        let Ok(positions) = self.positions.lock() else {
            return Vec::new();
        };
        positions
            .iter()
            .filter_map(|((topic, partition), next)| {
                let (low, high) = self.source_stats.watermarks(topic, *partition)?;
                let from = if *next >= 0 { *next } else { low.max(0) };
                Some((topic.clone(), *partition, (high - from).max(0)))
            })
            .collect()
    }

    /// `Ok` when the flow is ready (running, connected, progressing or idle), else why not.
    pub fn readiness(&self) -> Result<(), String> {
        self.readiness_of_flow()
            .map_err(|why| self.with_cluster_problems(why))
    }

    /// `why`, followed by the connection problem of the source or target seen lately (see
    /// `cluster::diagnose`), so that "starting" or "no response" says what to fix.
    fn with_cluster_problems(&self, why: String) -> String {
        let mut out = why;
        for alias in [&self.source, &self.target] {
            if let Some(p) = diagnose::recent(alias) {
                out.push_str(&format!(": {p}"));
            }
        }
        out
    }

    fn readiness_of_flow(&self) -> Result<(), String> {
        let name = format!("{}->{}", self.source, self.target);
        match self.state() {
            FlowState::Running => {}
            other => return Err(format!("flow {name}: {other:?}").to_lowercase()),
        }
        if self.recovering.load(Ordering::Relaxed) {
            return Err(format!(
                "flow {name}: recovering from a transient failure (restarting)"
            ));
        }
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        let since_ack = now_ms() - self.last_ack_ms.load(Ordering::Relaxed);
        if in_flight > 0 && since_ack > STALL_AFTER.as_millis() as i64 {
            return Err(format!(
                "flow {name}: {in_flight} records in flight, none acknowledged by '{}' for {} s",
                self.target,
                since_ack / 1000
            ));
        }
        // An instance that owns no partition is idle, and ready, as long as the source still
        // answers: a group member hears from the coordinator every heartbeat, so its silence
        // means the source is out of reach. A consumer assigned partitions by hand and given
        // none asks the source nothing, so its silence means nothing.
        let assigned = self
            .positions
            .lock()
            .map(|p| !p.is_empty())
            .unwrap_or(false);
        let expects_answers = assigned || self.source_stats.joined_group();
        if expects_answers && self.source_stats.responsive(SOURCE_SILENT_AFTER) == Some(false) {
            return Err(format!(
                "flow {name}: no response from source '{}' for over {} s",
                self.source,
                SOURCE_SILENT_AFTER.as_secs()
            ));
        }
        Ok(())
    }

    /// Sets the state.
    pub fn set_state(&self, s: FlowState) {
        self.state.store(s as u8, Ordering::Relaxed);
    }

    /// The state.
    pub fn state(&self) -> FlowState {
        FlowState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// Adds `n` acknowledged records.
    pub fn add_replicated(&self, n: u64) {
        self.replicated.fetch_add(n, Ordering::Relaxed);
    }

    /// Notes a record handed to the producer (`+1`) or settled (`-1`).
    pub fn add_in_flight(&self, delta: i64) {
        self.in_flight.fetch_add(delta, Ordering::Relaxed);
    }

    /// Records acknowledged since start.
    pub fn replicated(&self) -> u64 {
        self.replicated.load(Ordering::Relaxed)
    }

    /// Sets the recent records/s.
    pub fn set_rate(&self, per_second: f64) {
        self.rate_bits
            .store(per_second.to_bits(), Ordering::Relaxed);
    }

    /// Notes that the copy of a heartbeat stamped `ts_ms` was acknowledged now.
    pub fn heartbeat_replicated(&self, ts_ms: i64) {
        self.heartbeat_ts_ms.fetch_max(ts_ms, Ordering::Relaxed);
        self.heartbeat_latency_ms
            .store((now_ms() - ts_ms).max(0), Ordering::Relaxed);
    }

    /// Notes the latency (record timestamp → acknowledgement now, ms) of the newest record of
    /// a batch the target acknowledged.
    pub fn record_latency(&self, ms: i64) {
        self.record_latency_ms.store(ms.max(0), Ordering::Relaxed);
    }

    /// A serialisable snapshot. `replication_latency_ms` is the last heartbeat's latency, or,
    /// when the flow has copied no heartbeat (heartbeats off, or a target with
    /// `heartbeats: false`), the newest acknowledged record's.
    pub fn report(&self) -> FlowReport {
        let hb = self.heartbeat_ts_ms.load(Ordering::Relaxed);
        let latency = match self.heartbeat_latency_ms.load(Ordering::Relaxed) {
            -1 => self.record_latency_ms.load(Ordering::Relaxed),
            hb_latency => hb_latency,
        };
        FlowReport {
            source: self.source.clone(),
            target: self.target.clone(),
            state: self.state(),
            records_replicated: self.replicated(),
            records_in_flight: self.in_flight.load(Ordering::Relaxed).max(0) as u64,
            records_per_second: f64::from_bits(self.rate_bits.load(Ordering::Relaxed)),
            heartbeat_age_ms: (hb > 0).then(|| (now_ms() - hb).max(0)),
            replication_latency_ms: (latency >= 0).then_some(latency),
            lag: self
                .lag()
                .into_iter()
                .map(|(topic, partition, lag)| PartitionLag {
                    topic,
                    partition,
                    lag,
                })
                .collect(),
            not_ready: self.readiness().err(),
            instance: String::new(),
            owned_partitions: self
                .owned()
                .into_iter()
                .map(|(topic, partition)| SourcePartition { topic, partition })
                .collect(),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
#[path = "flow_tests.rs"]
mod tests;
