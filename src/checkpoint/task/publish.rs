//! Step 4 of a round: write the checkpoints not yet acknowledged to
//! `<source>.checkpoints.internal` on the target, finding or creating that topic first.

use futures::future::join_all;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureRecord, Producer};
use tokio::time::Instant;

use super::{Task, CALL_TIMEOUT, TOPIC_RETRY};
use crate::checkpoint::Checkpoint;

impl Task {
    /// Step 4: writes the unsent checkpoints to T and waits (bounded) for the acknowledgements.
    pub(super) async fn publish(&mut self) {
        if self.unsent.is_empty() {
            return;
        }
        if !self.topic_ready {
            if Instant::now() < self.next_topic_check {
                return;
            }
            match self.find_or_create_topic().await {
                Ok(()) => {
                    self.topic_ready = true;
                    self.resolved("topic");
                }
                Err(msg) => {
                    self.next_topic_check = Instant::now() + TOPIC_RETRY.max(self.s.interval);
                    self.problem("topic".into(), "checkpoint_topic", msg);
                    return;
                }
            }
        }
        let mut in_flight = Vec::with_capacity(self.unsent.len());
        let mut failure = None;
        for (key, cp) in &self.unsent {
            let record = Checkpoint {
                group: cp.group.clone(),
                topic: cp.remote_topic.clone(),
                partition: cp.partition,
                upstream_offset: cp.upstream_offset,
                downstream_offset: cp.downstream_offset,
                metadata: cp.metadata.clone(),
            };
            let (k, v) = match (record.encode_key(), record.encode_value()) {
                (Ok(k), Ok(v)) => (k, v),
                (Err(e), _) | (_, Err(e)) => {
                    failure = Some(format!("checkpoint of group '{}': {e}", cp.group));
                    continue;
                }
            };
            let rec = FutureRecord::to(&self.topic)
                .key(&k)
                .payload(&v)
                .timestamp(cp.timestamp_ms);
            match self.s.producer.send_result(rec) {
                Ok(delivery) => in_flight.push((key.clone(), cp.clone(), delivery)),
                Err((e, _)) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        let (keys, deliveries): (Vec<_>, Vec<_>) =
            in_flight.into_iter().map(|(k, cp, d)| ((k, cp), d)).unzip();
        match tokio::time::timeout(CALL_TIMEOUT, join_all(deliveries)).await {
            Err(_) => {
                failure.get_or_insert(format!("no acknowledgement within {CALL_TIMEOUT:?}"));
            }
            Ok(outcomes) => {
                for ((key, cp), outcome) in keys.into_iter().zip(outcomes) {
                    match outcome {
                        Ok(Ok(_)) => {
                            // Unless a newer checkpoint for the key arrived meanwhile.
                            if self.unsent.get(&key) == Some(&cp) {
                                self.unsent.remove(&key);
                            }
                        }
                        Ok(Err((e, _))) => {
                            if matches!(
                                e.rdkafka_error_code(),
                                Some(
                                    RDKafkaErrorCode::UnknownTopicOrPartition
                                        | RDKafkaErrorCode::UnknownTopic
                                )
                            ) {
                                self.topic_ready = false;
                            }
                            failure.get_or_insert(e.to_string());
                        }
                        Err(_) => {
                            failure.get_or_insert("the producer closed".to_string());
                        }
                    }
                }
            }
        }
        match failure {
            None => self.resolved("delivery"),
            Some(why) => {
                let msg = format!(
                    "cannot write checkpoints to '{}' on cluster '{}': {why}; retrying every {}",
                    self.topic,
                    self.s.flow.target,
                    humantime::format_duration(self.s.interval)
                );
                self.problem("delivery".into(), "checkpoint_delivery", msg);
            }
        }
    }

    /// Makes sure the checkpoints topic exists on T, creating it when allowed. `Err` is a
    /// sentence naming the topic, the cluster and what to do.
    async fn find_or_create_topic(&self) -> Result<(), String> {
        let (cluster, topic) = (&self.s.flow.target, &self.topic);
        let producer = self.s.producer.clone();
        // All topics: asking for one by name could auto-create it with broker defaults.
        let md = tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(None, CALL_TIMEOUT)
        })
        .await
        .map_err(|e| format!("cannot look for '{topic}' on cluster '{cluster}': {e}"))?
        .map_err(|e| format!("cannot list topics on cluster '{cluster}' to find '{topic}': {e}"))?;
        let exists = md
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
        if exists {
            return Ok(());
        }
        let fix = format!(
            "create it with 1 partition, or stop writing checkpoints to this cluster \
             (clusters.{cluster}.checkpoints: false; they are still kept in the store)"
        );
        if !self.s.create_topics {
            return Err(format!(
                "checkpoints topic '{topic}' is missing on cluster '{cluster}' and \
                 replication.create_topics is false: {fix}"
            ));
        }
        let new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1));
        let opts = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT));
        let cannot = |why: String| {
            format!(
                "cannot create checkpoints topic '{topic}' on cluster '{cluster}': {why}; {fix}"
            )
        };
        let created = tokio::time::timeout(CALL_TIMEOUT, self.s.admin.create_topics([&new], &opts))
            .await
            .map_err(|_| cannot(format!("no answer within {CALL_TIMEOUT:?}")))?
            .map_err(|e| cannot(e.to_string()))?;
        for result in created {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(cannot(code.to_string())),
            }
        }
        tracing::info!(flow = %self.flow_name, cluster = %cluster, topic = %topic, partitions = 1,
            "created checkpoints topic");
        Ok(())
    }
}
