//! The dead-letter topic of a flow with `oversize: dead_letter`: a topic on the *source*
//! cluster (which took the record, so it can take it again) receiving each record the target
//! refused as too large, unchanged, with its original coordinates in `hubmirror.dead_letter.*`
//! headers. The source offset is committed only after the dead-letter copy is acknowledged.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Message;

use super::{DeliveryFailure, FlowError};
use crate::cluster::ClusterContext;

/// Header: the topic the record was consumed from.
pub const TOPIC: &str = "hubmirror.dead_letter.topic";
/// Header: its partition.
pub const PARTITION: &str = "hubmirror.dead_letter.partition";
/// Header: its offset.
pub const OFFSET: &str = "hubmirror.dead_letter.offset";
/// Header: the alias of the cluster that could not take it.
pub const TARGET: &str = "hubmirror.dead_letter.target";
/// Header: why, e.g. `oversize: 1200000 bytes`.
pub const REASON: &str = "hubmirror.dead_letter.reason";

/// Writes refused records to the dead-letter topic.
pub struct DeadLetter {
    /// The dead-letter topic (on the source cluster).
    pub topic: String,
    /// The source cluster's alias.
    pub source: String,
    /// A producer on the source cluster.
    pub producer: FutureProducer<ClusterContext>,
    /// An admin client on the source cluster (topic creation).
    pub admin: Arc<AdminClient<ClusterContext>>,
}

impl DeadLetter {
    /// Creates the topic (one partition) unless it exists.
    pub async fn ensure_topic(&self) -> Result<(), String> {
        let new = NewTopic::new(&self.topic, 1, TopicReplication::Fixed(-1));
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let cannot = |e: String| {
            format!(
                "cannot create dead-letter topic '{}' on cluster '{}': {e}; create it or allow \
                 topic creation",
                self.topic, self.source
            )
        };
        let results = self
            .admin
            .create_topics([&new], &opts)
            .await
            .map_err(|e| cannot(e.to_string()))?;
        for result in results {
            match result {
                Ok(_) => {
                    tracing::info!(topic = %self.topic, cluster = %self.source, "created dead-letter topic")
                }
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(cannot(code.to_string())),
            }
        }
        Ok(())
    }

    /// Hands a copy of `msg` (refused by cluster `target`, `size` bytes) to the producer.
    pub fn send(
        &self,
        msg: &BorrowedMessage<'_>,
        target: &str,
        size: usize,
    ) -> Result<DeliveryFuture, FlowError> {
        let own = msg.headers();
        let mut headers = OwnedHeaders::new_with_capacity(own.map_or(0, |h| h.count()) + 5);
        if let Some(h) = own {
            for header in h.iter() {
                headers = headers.insert(header);
            }
        }
        let partition = msg.partition().to_string();
        let offset = msg.offset().to_string();
        let reason = format!("oversize: {size} bytes");
        for (key, value) in [
            (TOPIC, msg.topic()),
            (PARTITION, &partition),
            (OFFSET, &offset),
            (TARGET, target),
            (REASON, &reason),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = msg.key() {
            record = record.key(key);
        }
        if let Some(payload) = msg.payload() {
            record = record.payload(payload);
        }
        if let Some(ts) = msg.timestamp().to_millis() {
            record = record.timestamp(ts);
        }
        self.producer.send_result(record).map_err(|(e, _)| {
            FlowError::Delivery(Box::new(DeliveryFailure {
                target: self.source.clone(),
                topic: self.topic.clone(),
                partition: 0,
                source_offset: msg.offset(),
                source: e,
                cause: None,
            }))
        })
    }
}
