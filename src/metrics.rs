//! Prometheus metrics shared by every flow. Metric names live here and nowhere else.
//!
//! Counters and histograms are bumped where things happen (the flow's hot path holds
//! pre-resolved handles, see `flow::route`); the gauges that describe a state (`lag`, ages,
//! `flow_up`) are computed from the flows' status each time `/metrics` is scraped
//! (`status::Registry::export`).
//!
//! The daemon's metrics carry the label `instance` (the instance name, `hubmirror run
//! --instance`) on every sample ([`Metrics::for_instance`]), so the series of several instances
//! of one topology never collide, whatever the scrape adds.

use std::collections::HashMap;

use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// The label naming the instance on every sample of the daemon's metrics.
pub const INSTANCE_LABEL: &str = "instance";

/// Histogram buckets for latencies and ages, in seconds: 1 ms to 5 min.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

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
    /// `hubmirror_records_dead_lettered_total{source,target,topic}`: oversize records written
    /// to the flow's dead-letter topic on the source cluster.
    pub records_dead_lettered: IntCounterVec,
    /// `hubmirror_topic_configs_synced_total{source,target,topic}`: topic configs set (at
    /// creation or later) or deleted on a remote topic to match its source (`topic` = source).
    pub topic_configs_synced: IntCounterVec,
    /// `hubmirror_topic_configs_refused_total{source,target,topic}`: topic configs the target
    /// refused (counted once per topic and config, when reported).
    pub topic_configs_refused: IntCounterVec,
    /// `hubmirror_replication_latency_seconds{source,target,topic}`: record timestamp →
    /// acknowledgement of its copy by the target.
    pub replication_latency: HistogramVec,
    /// `hubmirror_record_age_seconds{source,target,topic}`: record timestamp → consumed.
    pub record_age: HistogramVec,
    /// `hubmirror_rebalance_pause_seconds{source,target,phase}`: per group rebalance, how long
    /// this instance took to hand revoked partitions over (`revoke`: settle, record, commit)
    /// or to start assigned ones (`assign`: committed offsets and the target's tail read back).
    pub rebalance_pause: HistogramVec,
    /// `hubmirror_lag_records{source,target,topic,partition}`: source high watermark minus
    /// the next offset to replicate (computed at scrape).
    pub lag_records: IntGaugeVec,
    /// `hubmirror_heartbeat_age_seconds{source,target}`: age of the newest heartbeat whose
    /// copy the target acknowledged (computed at scrape).
    pub heartbeat_age: GaugeVec,
    /// `hubmirror_last_ack_age_seconds{source,target}`: time since the target last
    /// acknowledged a record of the flow (computed at scrape; needs no heartbeats topic).
    pub last_ack_age: GaugeVec,
    /// `hubmirror_checkpoint_age_seconds{source,target}`: time since the flow's last complete
    /// checkpoint round (computed at scrape).
    pub checkpoint_age: GaugeVec,
    /// `hubmirror_flow_up{source,target}`: 1 while the flow is running and ready, else 0.
    pub flow_up: IntGaugeVec,
    /// `hubmirror_flow_restarts_total{source,target}`: the flow was restarted after a
    /// transient failure (throttling, timeouts, a lost connection).
    pub flow_restarts: IntCounterVec,
    /// `hubmirror_records_lost_total{source,target,topic,partition}`: records the source
    /// deleted (retention) before the flow replicated them.
    pub records_lost: IntCounterVec,
    /// `hubmirror_segments_published_total{source,target}`: segments records this instance
    /// wrote to the flow's segments topic on the target.
    pub segments_published: IntCounterVec,
    /// `hubmirror_segments_merged_total{source,target}`: segments records (this instance's and
    /// the others') merged into the store.
    pub segments_merged: IntCounterVec,
    /// `hubmirror_segment_conflicts_total{source,target}`: runs of source offsets two
    /// publications mapped to different copies (a partition copied twice).
    pub segment_conflicts: IntCounterVec,
    /// `hubmirror_entra_tokens_fetched{cluster}`: Entra ID tokens fetched (the first included).
    pub entra_tokens: IntGaugeVec,
    /// `hubmirror_entra_token_requests_failed{cluster}`: token requests that failed.
    pub entra_token_failures: IntGaugeVec,
    /// `hubmirror_entra_token_expiry_seconds{cluster}`: seconds until the current token expires.
    pub entra_token_expiry: GaugeVec,
    /// `hubmirror_entra_authority_up{cluster}`: 1 while the last token request got an answer.
    pub entra_authority_up: IntGaugeVec,
}

/// Why a record was not written to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The loop rule of spec §3: the record already went through the target.
    Loop,
    /// Larger than the target accepts (`oversize: skip` or `dead_letter`).
    Oversize,
}

impl SkipReason {
    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            SkipReason::Loop => "loop",
            SkipReason::Oversize => "oversize",
        }
    }
}

impl Metrics {
    /// Creates and registers every metric, without an `instance` label (tests, tools).
    pub fn new() -> Self {
        Self::with_registry(Registry::new())
    }

    /// Creates and registers every metric, each sample labelled `instance="<instance>"`.
    pub fn for_instance(instance: &str) -> Self {
        let labels = HashMap::from([(INSTANCE_LABEL.to_string(), instance.to_string())]);
        // The label name is a constant of this module: failure is a programming error.
        let registry = Registry::new_custom(None, Some(labels)).expect("valid constant label");
        Self::with_registry(registry)
    }

    fn with_registry(registry: Registry) -> Self {
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
        let records_dead_lettered = counter(
            &registry,
            "hubmirror_records_dead_lettered_total",
            "Oversize records written to the flow's dead-letter topic on the source cluster.",
            &flow,
        );
        let topic_configs_synced = counter(
            &registry,
            "hubmirror_topic_configs_synced_total",
            "Topic configs set or deleted on remote topics to match their source topics.",
            &flow,
        );
        let topic_configs_refused = counter(
            &registry,
            "hubmirror_topic_configs_refused_total",
            "Topic configs the target refused (once per topic and config).",
            &flow,
        );
        let replication_latency = histogram(
            &registry,
            "hubmirror_replication_latency_seconds",
            "Record timestamp to acknowledgement of its copy by the target.",
            &flow,
        );
        let record_age = histogram(
            &registry,
            "hubmirror_record_age_seconds",
            "Record timestamp to consumption from the source.",
            &flow,
        );
        let rebalance_pause = histogram(
            &registry,
            "hubmirror_rebalance_pause_seconds",
            "Per rebalance: time to hand revoked partitions over, or to start assigned ones.",
            &["source", "target", "phase"],
        );
        let lag_records = gauge(
            &registry,
            "hubmirror_lag_records",
            "Source high watermark minus the next offset to replicate, per partition.",
            &["source", "target", "topic", "partition"],
        );
        let heartbeat_age = float_gauge(
            &registry,
            "hubmirror_heartbeat_age_seconds",
            "Age of the newest heartbeat whose copy the target acknowledged.",
            &["source", "target"],
        );
        let last_ack_age = float_gauge(
            &registry,
            "hubmirror_last_ack_age_seconds",
            "Time since the target last acknowledged a record of the flow.",
            &["source", "target"],
        );
        let checkpoint_age = float_gauge(
            &registry,
            "hubmirror_checkpoint_age_seconds",
            "Time since the flow's last checkpoint round that read every selected group.",
            &["source", "target"],
        );
        let flow_up = gauge(
            &registry,
            "hubmirror_flow_up",
            "1 while the flow is running and ready (connected, progressing or idle), else 0.",
            &["source", "target"],
        );
        let flow_restarts = counter(
            &registry,
            "hubmirror_flow_restarts_total",
            "Flow restarts after a transient failure (throttling, timeouts, lost connections).",
            &["source", "target"],
        );
        let records_lost = counter(
            &registry,
            "hubmirror_records_lost_total",
            "Records the source deleted (retention) before they were replicated, per partition.",
            &["source", "target", "topic", "partition"],
        );
        let segments_published = counter(
            &registry,
            "hubmirror_segments_published_total",
            "Segments records written to the flow's segments topic on the target.",
            &["source", "target"],
        );
        let segments_merged = counter(
            &registry,
            "hubmirror_segments_merged_total",
            "Segments records (of every instance) merged into this instance's store.",
            &["source", "target"],
        );
        let segment_conflicts = counter(
            &registry,
            "hubmirror_segment_conflicts_total",
            "Runs of source offsets two segments records mapped to different copies.",
            &["source", "target"],
        );
        let cluster = ["cluster"];
        let entra_tokens = gauge(
            &registry,
            "hubmirror_entra_tokens_fetched",
            "Entra ID access tokens fetched for the cluster (the first one included).",
            &cluster,
        );
        let entra_token_failures = gauge(
            &registry,
            "hubmirror_entra_token_requests_failed",
            "Entra ID token requests for the cluster that failed.",
            &cluster,
        );
        let entra_token_expiry = float_gauge(
            &registry,
            "hubmirror_entra_token_expiry_seconds",
            "Seconds until the cluster's current Entra ID token expires.",
            &cluster,
        );
        let entra_authority_up = gauge(
            &registry,
            "hubmirror_entra_authority_up",
            "1 while the cluster's Entra ID authority (or identity endpoint) answers, 0 while it \
             cannot be reached.",
            &cluster,
        );
        Metrics {
            registry,
            entra_tokens,
            entra_token_failures,
            entra_token_expiry,
            entra_authority_up,
            records_lost,
            segments_published,
            segments_merged,
            segment_conflicts,
            records_dead_lettered,
            topic_configs_synced,
            topic_configs_refused,
            replication_latency,
            record_age,
            rebalance_pause,
            lag_records,
            heartbeat_age,
            last_ack_age,
            checkpoint_age,
            flow_up,
            flow_restarts,
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

fn float_gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    // Names and labels are constants of this module: failure is a programming error.
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    // Names, labels and buckets are constants of this module: failure is a programming error.
    let opts = HistogramOpts::new(name, help).buckets(SECONDS_BUCKETS.to_vec());
    let h = HistogramVec::new(opts, labels).expect("valid metric definition");
    registry
        .register(Box::new(h.clone()))
        .expect("metric registered once");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, TextEncoder};

    fn page(m: &Metrics) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&m.registry.gather(), &mut buf)
            .unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn every_sample_of_an_instance_names_it() {
        let m = Metrics::for_instance("hubmirror-1");
        m.flow_up.with_label_values(&["a", "b"]).set(1);
        m.records_replicated
            .with_label_values(&["a", "b", "orders"])
            .inc_by(3);
        m.replication_latency
            .with_label_values(&["a", "b", "orders"])
            .observe(0.2);
        let text = page(&m);
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(samples.len() > 3, "{text}");
        for s in &samples {
            assert!(s.contains(r#"instance="hubmirror-1""#), "{s}");
        }
        assert!(
            samples
                .contains(&r#"hubmirror_flow_up{source="a",target="b",instance="hubmirror-1"} 1"#),
            "{text}"
        );
        assert!(
            samples.contains(
                &r#"hubmirror_records_replicated_total{source="a",target="b",topic="orders",instance="hubmirror-1"} 3"#
            ),
            "{text}"
        );
        assert!(!page(&Metrics::new()).contains("instance="));
    }
}
