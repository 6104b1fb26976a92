//! A route: one source topic of a flow, the remote topic it is copied to, and the metric
//! handles the hot path bumps for it (resolved once, not per record).

use std::sync::Arc;

use prometheus::{Histogram, IntCounter};

use crate::metrics::{Metrics, SkipReason};

/// One source topic → remote topic mapping of a flow.
pub struct Route {
    /// Topic on the source cluster.
    pub source_topic: Arc<str>,
    /// Topic on the target cluster.
    pub remote_topic: String,
    /// Partitions of the source topic.
    pub partitions: i32,
    /// Source partitions `0..writable` are replicated; the others wait for the remote topic to
    /// get as many partitions (see [`super::remote`]). `partitions` unless it has fewer.
    pub writable: i32,
    /// Whether the topic carries heartbeats (their replication latency is tracked).
    pub heartbeats: bool,
    /// `hubmirror_records_replicated_total` for this route.
    pub replicated: IntCounter,
    /// `hubmirror_bytes_replicated_total` for this route.
    pub bytes: IntCounter,
    /// `hubmirror_records_skipped_total{reason="loop"}` for this route.
    pub skipped_loop: IntCounter,
    /// `hubmirror_records_skipped_total{reason="oversize"}` for this route.
    pub skipped_oversize: IntCounter,
    /// `hubmirror_records_dead_lettered_total` for this route.
    pub dead_lettered: IntCounter,
    /// `hubmirror_replication_latency_seconds` for this route.
    pub latency: Histogram,
}

impl Route {
    /// A route with its metric handles registered in `metrics`.
    pub fn new(
        metrics: &Metrics,
        source: &str,
        target: &str,
        source_topic: &str,
        remote_topic: &str,
        partitions: i32,
        heartbeats: bool,
    ) -> Self {
        let labels = [source, target, source_topic];
        Route {
            source_topic: Arc::from(source_topic),
            remote_topic: remote_topic.to_string(),
            partitions,
            writable: partitions,
            heartbeats,
            replicated: metrics.records_replicated.with_label_values(&labels),
            bytes: metrics.bytes_replicated.with_label_values(&labels),
            skipped_loop: metrics.records_skipped.with_label_values(&[
                source,
                target,
                source_topic,
                SkipReason::Loop.label(),
            ]),
            skipped_oversize: metrics.records_skipped.with_label_values(&[
                source,
                target,
                source_topic,
                SkipReason::Oversize.label(),
            ]),
            dead_lettered: metrics.records_dead_lettered.with_label_values(&labels),
            latency: metrics.replication_latency.with_label_values(&labels),
        }
    }

    /// The skip counter for `reason`.
    pub fn skipped(&self, reason: SkipReason) -> &IntCounter {
        match reason {
            SkipReason::Loop => &self.skipped_loop,
            SkipReason::Oversize => &self.skipped_oversize,
        }
    }
}
