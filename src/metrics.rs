//! Prometheus metrics shared by every flow. Metric names live here and nowhere else.
//! (The HTTP listener and the full set arrive with the "production" work; these counters are
//! what the flow already maintains.)

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

/// The process's metrics; one instance, shared by reference-counted pointer.
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// `hubmirror_records_replicated_total{source,target,topic}`: copies acknowledged by the target.
    pub records_replicated: IntCounterVec,
    /// `hubmirror_bytes_replicated_total{source,target,topic}`: key + value bytes acknowledged.
    pub bytes_replicated: IntCounterVec,
    /// `hubmirror_records_skipped_total{source,target,topic,reason}`: records not written.
    pub records_skipped: IntCounterVec,
    /// `hubmirror_errors_total{source,target,kind}`: errors by kind.
    pub errors: IntCounterVec,
    /// `hubmirror_checkpoints_total{source,target}`: checkpoints emitted (a group's translated
    /// position that moved: stored, and written to the target's checkpoints topic when enabled).
    pub checkpoints: IntCounterVec,
    /// `hubmirror_checkpoints_last_success_timestamp_seconds{source,target}`: when the flow's
    /// last checkpoint round read every selected group (age = `time()` minus this).
    pub checkpoints_last_success: IntGaugeVec,
    /// `hubmirror_group_offsets_synced_total{source,target}`: partitions whose translated
    /// offset was committed for an idle group on the target (`sync_group_offsets`).
    pub group_offsets_synced: IntCounterVec,
    /// `hubmirror_group_sync_skipped_total{source,target,reason}`: group offset syncs not done;
    /// `reason="active"`: the group had members on the target.
    pub group_sync_skipped: IntCounterVec,
}

/// Why a record was not written to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The loop rule of spec §3: the record already went through the target.
    Loop,
}

impl SkipReason {
    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            SkipReason::Loop => "loop",
        }
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let flow = ["source", "target", "topic"];
        let records_replicated = counter(
            &registry,
            "hubmirror_records_replicated_total",
            "Records written to the target and acknowledged by it.",
            &flow,
        );
        let bytes_replicated = counter(
            &registry,
            "hubmirror_bytes_replicated_total",
            "Key and value bytes written to the target and acknowledged by it.",
            &flow,
        );
        let records_skipped = counter(
            &registry,
            "hubmirror_records_skipped_total",
            "Records consumed but deliberately not written to the target, by reason.",
            &["source", "target", "topic", "reason"],
        );
        let errors = counter(
            &registry,
            "hubmirror_errors_total",
            "Errors by kind.",
            &["source", "target", "kind"],
        );
        let checkpoints = counter(
            &registry,
            "hubmirror_checkpoints_total",
            "Checkpoints emitted: a selected group's translated position that moved.",
            &["source", "target"],
        );
        let checkpoints_last_success = gauge(
            &registry,
            "hubmirror_checkpoints_last_success_timestamp_seconds",
            "When the last checkpoint round that read every selected group ended (Unix seconds).",
            &["source", "target"],
        );
        let group_offsets_synced = counter(
            &registry,
            "hubmirror_group_offsets_synced_total",
            "Partitions whose translated offset was committed for an idle group on the target.",
            &["source", "target"],
        );
        let group_sync_skipped = counter(
            &registry,
            "hubmirror_group_sync_skipped_total",
            "Group offset syncs not done, by reason (active: the group has members on the target).",
            &["source", "target", "reason"],
        );
        Metrics {
            registry,
            records_replicated,
            bytes_replicated,
            records_skipped,
            errors,
            checkpoints,
            checkpoints_last_success,
            group_offsets_synced,
            group_sync_skipped,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    // Names and labels are constants of this module: failure is a programming error.
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    // Names and labels are constants of this module: failure is a programming error.
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}
