//! Prometheus metrics shared by every flow. Metric names live here and nowhere else.
//! (The HTTP listener and the full set arrive with the "production" work; these counters are
//! what the flow already maintains.)

use prometheus::{IntCounterVec, Opts, Registry};

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
        Metrics {
            registry,
            records_replicated,
            bytes_replicated,
            records_skipped,
            errors,
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
