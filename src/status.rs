//! What the running daemon knows about each flow, shared between the flow's tasks (which write
//! it) and the HTTP listener (which serves it as `/status` and judges `/readyz`).

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The lifecycle of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowState {
    /// Created, not yet consuming.
    Starting,
    /// Consuming and replicating (or idle with nothing to do).
    Running,
    /// Stopping after a signal: draining in-flight records.
    Stopping,
    /// Stopped cleanly.
    Stopped,
    /// Stopped by an error.
    Failed,
}

impl FlowState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => FlowState::Starting,
            1 => FlowState::Running,
            2 => FlowState::Stopping,
            3 => FlowState::Stopped,
            _ => FlowState::Failed,
        }
    }
}

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
    heartbeat_ts_ms: AtomicI64,
    /// Heartbeat timestamp → target acknowledgement of that heartbeat, ms; -1 = none yet.
    heartbeat_latency_ms: AtomicI64,
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
        })
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

    /// A serialisable snapshot.
    pub fn report(&self) -> FlowReport {
        let hb = self.heartbeat_ts_ms.load(Ordering::Relaxed);
        let latency = self.heartbeat_latency_ms.load(Ordering::Relaxed);
        FlowReport {
            source: self.source.clone(),
            target: self.target.clone(),
            state: self.state(),
            records_replicated: self.replicated(),
            records_in_flight: self.in_flight.load(Ordering::Relaxed).max(0) as u64,
            records_per_second: f64::from_bits(self.rate_bits.load(Ordering::Relaxed)),
            heartbeat_age_ms: (hb > 0).then(|| (now_ms() - hb).max(0)),
            replication_latency_ms: (latency >= 0).then_some(latency),
        }
    }
}

/// One flow as `/status` reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowReport {
    pub source: String,
    pub target: String,
    pub state: FlowState,
    /// Records acknowledged by the target since the daemon started.
    pub records_replicated: u64,
    /// Records sent to the target and not yet acknowledged.
    #[serde(default)]
    pub records_in_flight: u64,
    /// Recent records per second.
    pub records_per_second: f64,
    /// Age of the newest heartbeat this flow replicated, ms.
    pub heartbeat_age_ms: Option<i64>,
    /// Heartbeat timestamp → target acknowledgement of its copy, ms (the last one).
    pub replication_latency_ms: Option<i64>,
}

/// Every flow of the daemon.
#[derive(Default, Clone)]
pub struct Registry {
    flows: Vec<Arc<FlowStatus>>,
}

impl Registry {
    /// Adds a flow and returns its status handle.
    pub fn add(&mut self, source: &str, target: &str) -> Arc<FlowStatus> {
        let f = FlowStatus::new(source, target);
        self.flows.push(f.clone());
        f
    }

    /// Snapshots of every flow.
    pub fn reports(&self) -> Vec<FlowReport> {
        self.flows.iter().map(|f| f.report()).collect()
    }

    /// Whether every flow is running.
    pub fn ready(&self) -> bool {
        self.flows.iter().all(|f| f.state() == FlowState::Running)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_what_was_recorded() {
        let mut reg = Registry::default();
        let f = reg.add("a", "b");
        assert!(!reg.ready());
        let r = f.report();
        assert_eq!(
            (r.state, r.heartbeat_age_ms, r.replication_latency_ms),
            (FlowState::Starting, None, None)
        );
        f.set_state(FlowState::Running);
        f.add_replicated(5);
        f.heartbeat_replicated(now_ms() - 40);
        let r = reg.reports().remove(0);
        assert!(reg.ready());
        assert_eq!(r.records_replicated, 5);
        assert!(r.replication_latency_ms.unwrap() >= 40);
        assert!(r.heartbeat_age_ms.unwrap() >= 40);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"state\":\"running\""), "{json}");
    }
}
