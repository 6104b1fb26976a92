//! What `/status` serves for each flow ([`FlowReport`]), as `hubmirror status` reads it back.

use serde::{Deserialize, Serialize};

use super::state::FlowState;

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
    /// Heartbeat timestamp → target acknowledgement of its copy, ms (the last one); without
    /// heartbeats, the newest acknowledged record's timestamp → its acknowledgement.
    pub replication_latency_ms: Option<i64>,
    /// Per assigned source partition: high watermark − next offset to replicate.
    #[serde(default)]
    pub lag: Vec<PartitionLag>,
    /// Why the flow is not ready (`/readyz`), when it is not.
    #[serde(default)]
    pub not_ready: Option<String>,
    /// The name of the instance (`hubmirror run --instance`) that reports this.
    #[serde(default)]
    pub instance: String,
    /// The source partitions this instance owns in the flow's consumer group now, sorted.
    #[serde(default)]
    pub owned_partitions: Vec<SourcePartition>,
}

/// The lag of one source partition of a flow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// Records on the source not yet replicated.
    pub lag: i64,
}

/// One source partition of a flow.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SourcePartition {
    pub topic: String,
    pub partition: i32,
}
