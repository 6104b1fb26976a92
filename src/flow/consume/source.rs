//! The consume loop's dealings with its source besides reading records: moving the partitions
//! the source answered "offset out of range" for (the flow's `on_data_loss`), and counting (and
//! now and then logging) consume errors.

use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::TopicPartitionList;

use super::ConsumeLoop;
use crate::flow::loss;
use crate::flow::FlowError;

/// Consume errors are logged at most this often (all are counted).
const WARN_EVERY: Duration = Duration::from_secs(30);

impl ConsumeLoop {
    /// The source answered "offset out of range" for some assigned partition (librdkafka does not
    /// say which): finds the partitions whose position lies outside their log and applies the
    /// flow's `on_data_loss` to them; when none can be identified, the run restarts (and the
    /// start positions are checked again).
    pub(super) async fn out_of_range(&mut self) -> Result<(), FlowError> {
        self.consume_error(KafkaError::MessageConsumption(
            RDKafkaErrorCode::AutoOffsetReset,
        ));
        let consumer = self.consumer.clone();
        let status = self.status.clone();
        let source = self.source_cluster.clone();
        let outside = tokio::task::spawn_blocking(move || {
            loss::outside_the_log(&*consumer, &source, |t, p| status.position(t, p))
        })
        .await
        .map_err(FlowError::join)?
        .map_err(|e| FlowError::Source {
            what: "locating the partition the source answered 'offset out of range' for".into(),
            source: e,
        })?;
        if outside.is_empty() {
            return Err(FlowError::Source {
                what: "a fetch was out of range, but every assigned partition's position lies \
                       inside its log; restarting the flow"
                    .into(),
                source: KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset),
            });
        }
        for o in outside {
            let at = if o.next < o.low {
                self.guard.check(&o.topic, o.partition, o.next, o.low)?
            } else {
                self.guard.truncated(&o)?
            };
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&o.topic, o.partition);
            let source = |e| FlowError::Source {
                what: format!(
                    "moving '{}' partition {} to offset {at}",
                    o.topic, o.partition
                ),
                source: e,
            };
            self.consumer.incremental_unassign(&tpl).map_err(source)?;
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&o.topic, o.partition, rdkafka::Offset::Offset(at))
                .map_err(source)?;
            self.consumer.incremental_assign(&tpl).map_err(source)?;
            self.status.set_position(&o.topic, o.partition, at);
        }
        Ok(())
    }

    /// Counts a consume error; logs it, at most once per [`WARN_EVERY`] (librdkafka reports
    /// one per poll while a broker is unreachable).
    pub(super) fn consume_error(&mut self, e: KafkaError) {
        let now = Instant::now();
        if crate::cluster::diagnose::already_named(&self.source_cluster.alias, &e) {
            tracing::debug!(source = %self.source, target = %self.target, "consume error: {e}");
        } else if self.quiet.0.is_none_or(|at| now >= at + WARN_EVERY) {
            let more = std::mem::take(&mut self.quiet.1);
            let more = if more > 0 {
                format!(" ({more} more since the last warning)")
            } else {
                String::new()
            };
            tracing::warn!(source = %self.source, target = %self.target, "consume error (retrying): {e}{more}");
            self.quiet.0 = Some(now);
        } else {
            self.quiet.1 += 1;
        }
        self.metrics
            .errors
            .with_label_values(&[&self.source, &self.target, "consume"])
            .inc();
    }
}
