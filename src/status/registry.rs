//! Every flow of the daemon together: what `/status` lists, whether `/readyz` says ready, and
//! the gauges `/metrics` computes from the flows' state at each scrape.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::flow::{now_ms, FlowStatus};
use super::report::FlowReport;
use crate::metrics::Metrics;

/// Every flow of the daemon.
#[derive(Default, Clone)]
pub struct Registry {
    /// The instance name (`hubmirror run --instance`), in every report.
    instance: String,
    flows: Vec<Arc<FlowStatus>>,
}

impl Registry {
    /// No flow yet, in the daemon of instance `instance`.
    pub fn new(instance: &str) -> Self {
        Registry {
            instance: instance.to_string(),
            flows: Vec::new(),
        }
    }

    /// Adds a flow and returns its status handle.
    pub fn add(&mut self, source: &str, target: &str) -> Arc<FlowStatus> {
        let f = FlowStatus::new(source, target);
        self.flows.push(f.clone());
        f
    }

    /// The status of flow `source → target`, when it was added.
    pub fn flow(&self, source: &str, target: &str) -> Option<Arc<FlowStatus>> {
        self.flows
            .iter()
            .find(|f| f.source == source && f.target == target)
            .cloned()
    }

    /// Snapshots of every flow, each naming this instance.
    pub fn reports(&self) -> Vec<FlowReport> {
        self.flows
            .iter()
            .map(|f| FlowReport {
                instance: self.instance.clone(),
                ..f.report()
            })
            .collect()
    }

    /// Whether every flow is ready; otherwise why not, one line per flow that is not.
    pub fn readiness(&self) -> Result<(), Vec<String>> {
        let reasons: Vec<String> = self
            .flows
            .iter()
            .filter_map(|f| f.readiness().err())
            .collect();
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }

    /// Whether every flow is ready.
    pub fn ready(&self) -> bool {
        self.readiness().is_ok()
    }

    /// Sets the gauges computed from the flows' state: `flow_up`, heartbeat and checkpoint
    /// ages, and lag per partition. Called on every scrape of `/metrics`.
    pub fn export(&self, metrics: &Metrics) {
        let now = now_ms();
        for f in &self.flows {
            let labels = [f.source.as_str(), f.target.as_str()];
            metrics
                .flow_up
                .with_label_values(&labels)
                .set(i64::from(f.readiness().is_ok()));
            let hb = f.heartbeat_ts_ms.load(Ordering::Relaxed);
            if hb > 0 {
                let age = (now - hb).max(0) as f64 / 1000.0;
                metrics.heartbeat_age.with_label_values(&labels).set(age);
            }
            let acked = f.last_ack_ms.load(Ordering::Relaxed);
            if acked > 0 {
                let age = (now - acked).max(0) as f64 / 1000.0;
                metrics.last_ack_age.with_label_values(&labels).set(age);
            }
            let checkpointed = match f.checkpoints.load(Ordering::Relaxed) {
                true => metrics
                    .checkpoints_last_success
                    .get_metric_with_label_values(&labels)
                    .map(|g| g.get())
                    .unwrap_or(0),
                false => 0,
            };
            if checkpointed > 0 {
                let age = (now as f64 / 1000.0 - checkpointed as f64).max(0.0);
                metrics.checkpoint_age.with_label_values(&labels).set(age);
            }
            for (topic, partition, lag) in f.lag() {
                metrics
                    .lag_records
                    .with_label_values(&[&f.source, &f.target, &topic, &partition.to_string()])
                    .set(lag);
            }
        }
    }
}
