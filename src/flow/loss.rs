//! Data-loss detection: the source deleted records (retention outran the mirror) before the
//! flow replicated them. Checked when a partition starts (the position to resume from is below
//! the partition's log start) and while consuming (the source answers "offset out of range";
//! the flow's consumer has `auto.offset.reset=error`, so librdkafka never jumps silently).
//! What follows is the flow's `on_data_loss`: `fail` stops with [`DataLoss`], `continue` logs
//! the loss, counts it in `hubmirror_records_lost_total` and resumes at the log start.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::Offset;

use super::{DataLoss, FlowError};
use crate::cluster::clients;
use crate::cluster::metadata::log_end;
use crate::metrics::Metrics;
use crate::topology::{Cluster, OnDataLoss};

/// How long one request to the source may take here.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Applies a flow's `on_data_loss`.
pub struct LossGuard {
    /// Source cluster alias.
    pub source: String,
    /// Target cluster alias.
    pub target: String,
    /// The flow's policy.
    pub policy: OnDataLoss,
    /// For `hubmirror_records_lost_total`.
    pub metrics: Arc<Metrics>,
}

impl LossGuard {
    /// Where `topic`/`partition` goes on when the next offset to replicate is `next` and the
    /// source's log starts at `log_start`: `next` when nothing was lost; otherwise the log start
    /// (`continue`) or [`FlowError::DataLoss`] (`fail`).
    pub fn check(
        &self,
        topic: &str,
        partition: i32,
        next: i64,
        log_start: i64,
    ) -> Result<i64, FlowError> {
        if next >= log_start {
            return Ok(next);
        }
        let loss = DataLoss {
            from: self.source.clone(),
            target: self.target.clone(),
            topic: topic.to_string(),
            partition,
            next,
            log_start,
            lost: log_start - next,
        };
        self.metrics
            .records_lost
            .with_label_values(&[&self.source, &self.target, topic, &partition.to_string()])
            .inc_by(loss.lost as u64);
        match self.policy {
            OnDataLoss::Fail => Err(FlowError::DataLoss(Box::new(loss))),
            OnDataLoss::Continue => {
                tracing::error!(
                    source = %self.source, target = %self.target, topic, partition, lost = loss.lost,
                    "data loss: cluster '{}' deleted {} records of topic '{topic}' partition {partition} (offsets {next} to {}) before they were replicated; on_data_loss: continue, resuming at offset {log_start}",
                    self.source, loss.lost, log_start - 1
                );
                Ok(log_start)
            }
        }
    }
}

impl LossGuard {
    /// The source partition ends before the flow's position (the topic was deleted and
    /// recreated, or its log truncated): `continue` goes on at the log's end, `fail` stops.
    pub fn truncated(&self, o: &Outside) -> Result<i64, FlowError> {
        let what = format!(
            "topic '{}' partition {} on cluster '{}' ends at offset {}, before flow {}->{}'s position {} (the topic was recreated or its log truncated)",
            o.topic, o.partition, self.source, o.high, self.source, self.target, o.next
        );
        match self.policy {
            OnDataLoss::Fail => Err(FlowError::OutOfRange(format!(
                "{what}; set `on_data_loss: continue` on the flow to go on from the log's end"
            ))),
            OnDataLoss::Continue => {
                tracing::error!(source = %self.source, target = %self.target, "{what}; on_data_loss: continue, going on from offset {}", o.high);
                Ok(o.high)
            }
        }
    }
}

/// An assigned partition whose position lies outside its log.
#[derive(Debug)]
pub struct Outside {
    pub topic: String,
    pub partition: i32,
    /// The next offset the flow would read.
    pub next: i64,
    /// The log's start and end.
    pub low: i64,
    pub high: i64,
}

/// The consumer's assigned partitions whose position (or, before their first record, their
/// position as the flow last published it, `published`) lies below the log start or past the
/// log end. A position past the reported end is confirmed by reading the partition's end with
/// a reader of `source` (see [`log_end`]; created only then). Blocking.
pub fn outside_the_log<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
    consumer: &C,
    source: &Cluster,
    published: impl Fn(&str, i32) -> Option<i64>,
) -> Result<Vec<Outside>, KafkaError> {
    let mut reader = None;
    let mut out = Vec::new();
    for e in consumer.position()?.elements() {
        let next = match e.offset() {
            Offset::Offset(n) => n,
            _ => match published(e.topic(), e.partition()) {
                Some(n) => n,
                None => continue,
            },
        };
        let (topic, partition) = (e.topic(), e.partition());
        let (low, mut high) = consumer.fetch_watermarks(topic, partition, REQUEST_TIMEOUT)?;
        if next > high {
            let reader = match &mut reader {
                Some(r) => r,
                None => reader.insert(clients::tail_reader(source)?),
            };
            high = log_end(reader, topic, partition, high, REQUEST_TIMEOUT)?;
        }
        if next < low || next > high {
            out.push(Outside {
                topic: topic.to_string(),
                partition,
                next,
                low,
                high,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(policy: OnDataLoss) -> LossGuard {
        LossGuard {
            source: "eventhub".into(),
            target: "onprem".into(),
            policy,
            metrics: Arc::new(Metrics::new()),
        }
    }

    fn lost(g: &LossGuard) -> u64 {
        g.metrics
            .records_lost
            .with_label_values(&["eventhub", "onprem", "orders", "2"])
            .get()
    }

    #[test]
    fn nothing_lost_when_the_log_starts_at_or_before_the_position() {
        let g = guard(OnDataLoss::Fail);
        assert_eq!(g.check("orders", 2, 100, 100).expect("no loss"), 100);
        assert_eq!(g.check("orders", 2, 100, 0).expect("no loss"), 100);
        assert_eq!(lost(&g), 0);
    }

    #[test]
    fn fail_names_the_partition_the_count_and_the_fix() {
        let g = guard(OnDataLoss::Fail);
        let e = g.check("orders", 2, 100, 150).expect_err("loss");
        assert!(!e.is_transient());
        assert_eq!(
            e.to_string(),
            "data loss: cluster 'eventhub' deleted 50 records of topic 'orders' partition 2 \
             (offsets 100 to 149) before flow eventhub->onprem replicated them (its log now \
             starts at 150); they cannot be recovered. Set `on_data_loss: continue` on the flow \
             to resume at the log start, and raise the source's retention or the mirror's capacity"
        );
        assert_eq!(lost(&g), 50);
    }

    #[test]
    fn continue_resumes_at_the_log_start_and_counts() {
        let g = guard(OnDataLoss::Continue);
        assert_eq!(g.check("orders", 2, 100, 150).expect("continue"), 150);
        assert_eq!(g.check("orders", 2, 150, 160).expect("continue"), 160);
        assert_eq!(lost(&g), 60);
    }
}
