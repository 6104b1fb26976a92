//! Why a run of a flow stops, and which of those reasons a restart can fix.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// An error that stops a run of a flow. Each names the cluster, topic and what to do where it
/// can. [`FlowError::is_transient`] ones restart the flow; the others stop hubmirror.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// A request to the source cluster failed.
    #[error("source cluster: {what}: {source}")]
    Source { what: String, source: KafkaError },
    /// A request to the target cluster failed.
    #[error("target cluster: {what}: {source}")]
    Target { what: String, source: KafkaError },
    /// The target refused a record (librdkafka already retried what can be retried).
    #[error(transparent)]
    Delivery(Box<DeliveryFailure>),
    /// A record is larger than the target accepts and the flow's `oversize` is `fail`.
    #[error(transparent)]
    Oversize(Box<OversizeRecord>),
    /// The target acknowledged a record without its offset (librdkafka reports a retried write
    /// the broker had already taken this way): the run restarts and reads the copy's position
    /// back from the target's tail, so the translation store stays exact.
    #[error("topic '{topic}' partition {partition} on cluster '{target}' acknowledged the record of source offset {source_offset} without its offset (a retried write it had already taken); restarting to read its position back from the target")]
    Unplaced {
        target: String,
        topic: String,
        partition: i32,
        source_offset: i64,
    },
    /// The producer was dropped while records were in flight.
    #[error("the target producer closed with records in flight")]
    ProducerGone,
    /// A client could not be created.
    #[error("cluster '{alias}': cannot create a {role}: {source}")]
    Client {
        alias: String,
        role: &'static str,
        source: KafkaError,
    },
    /// The offset-translation store failed: replicating on without recording would break
    /// failover, so the flow stops.
    #[error("offset-translation store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The source deleted records before they were replicated and the flow's `on_data_loss`
    /// is `fail`.
    #[error(transparent)]
    DataLoss(Box<DataLoss>),
    /// The source partition ends before the flow's position and `on_data_loss` is `fail`.
    #[error("{0}")]
    OutOfRange(String),
    /// A background task panicked or was cancelled.
    #[error("internal task failed: {0}")]
    Task(String),
    /// The group took this instance's partitions away without a handover (its session timed
    /// out), or the instance stopped itself for not hearing from the group coordinator: what it
    /// still queued was dropped; the run restarts and rejoins the group.
    #[error("{0}; what was queued for them was dropped, rejoining the group")]
    Fenced(String),
    /// Partitions could not be handed over in time: the run restarts (the new owner resumes
    /// after the target's last copy).
    #[error("{0}")]
    HandOver(String),
}

/// Records the source deleted (retention outran the mirror) before the flow copied them.
#[derive(Debug, thiserror::Error)]
#[error("data loss: cluster '{from}' deleted {lost} records of topic '{topic}' partition {partition} (offsets {next} to {log_start_minus_one}) before flow {from}->{target} replicated them (its log now starts at {log_start}); they cannot be recovered. Set `on_data_loss: continue` on the flow to resume at the log start, and raise the source's retention or the mirror's capacity", log_start_minus_one = .log_start - 1)]
pub struct DataLoss {
    /// Source cluster alias.
    pub from: String,
    /// Target cluster alias.
    pub target: String,
    /// Source topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset the flow would have replicated.
    pub next: i64,
    /// The partition's log start offset now.
    pub log_start: i64,
    /// `log_start - next`.
    pub lost: i64,
}

/// A record the target did not take.
#[derive(Debug, thiserror::Error)]
#[error("writing to topic '{topic}' partition {partition} on cluster '{target}' failed (source offset {source_offset}): {source}{}", cause.as_ref().map(|c| format!(" (after an earlier write failed: {c})")).unwrap_or_default())]
pub struct DeliveryFailure {
    /// Target cluster alias.
    pub target: String,
    /// Remote topic.
    pub topic: String,
    /// Partition (same number on both sides).
    pub partition: i32,
    /// Offset of the record on the source.
    pub source_offset: i64,
    /// librdkafka's error.
    pub source: KafkaError,
    /// When the record was only purged (librdkafka drops what is queued once a gap-less
    /// producer failed), the failure that caused it: it decides how the failure is classified.
    pub cause: Option<KafkaError>,
}

impl DeliveryFailure {
    /// The error code that classifies the failure: the cause's, if any.
    fn code(&self) -> Option<RDKafkaErrorCode> {
        self.cause
            .as_ref()
            .unwrap_or(&self.source)
            .rdkafka_error_code()
    }
}

/// A record too large for the target, under `oversize: fail`.
#[derive(Debug, thiserror::Error)]
#[error("record at topic '{topic}' partition {partition} offset {offset} on cluster '{from}' is {size} bytes (key, value and headers), more than cluster '{target}' accepts (message.max.bytes {limit}); set `oversize: skip` or `oversize: dead_letter` on flow {from}->{target} to go on without it")]
pub struct OversizeRecord {
    pub from: String,
    pub target: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub size: usize,
    pub limit: usize,
}

impl FlowError {
    pub(super) fn join(e: tokio::task::JoinError) -> Self {
        FlowError::Task(e.to_string())
    }

    /// Whether a new run of the flow may succeed where this one failed: throttling, timeouts,
    /// lost connections, a producer stopped by the gap-less guarantee. Configuration-like
    /// refusals (authorization, record too large, invalid record) and store failures are not.
    pub fn is_transient(&self) -> bool {
        match self {
            FlowError::Source { .. }
            | FlowError::Target { .. }
            | FlowError::ProducerGone
            | FlowError::Fenced(_)
            | FlowError::HandOver(_)
            | FlowError::Unplaced { .. } => true,
            FlowError::Delivery(d) => !matches!(
                d.code(),
                Some(
                    RDKafkaErrorCode::MessageSizeTooLarge
                        | RDKafkaErrorCode::InvalidMessageSize
                        | RDKafkaErrorCode::InvalidMessage
                        | RDKafkaErrorCode::TopicAuthorizationFailed
                        | RDKafkaErrorCode::ClusterAuthorizationFailed
                        | RDKafkaErrorCode::SaslAuthenticationFailed
                        | RDKafkaErrorCode::Authentication
                        | RDKafkaErrorCode::InvalidTopic
                        | RDKafkaErrorCode::UnsupportedForMessageFormat
                        | RDKafkaErrorCode::InvalidRecord
                )
            ),
            FlowError::Oversize(_)
            | FlowError::Client { .. }
            | FlowError::Store(_)
            | FlowError::DataLoss(_)
            | FlowError::OutOfRange(_)
            | FlowError::Task(_) => false,
        }
    }

    /// The `kind` label of `hubmirror_errors_total` for a transient failure.
    pub fn kind(&self) -> &'static str {
        let code = match self {
            FlowError::Delivery(d) => d.code(),
            FlowError::Source { .. } => return "source",
            FlowError::Fenced(_) | FlowError::HandOver(_) => return "rebalance",
            _ => None,
        };
        match code {
            Some(RDKafkaErrorCode::PolicyViolation | RDKafkaErrorCode::ThrottlingQuotaExceeded) => {
                "throttled"
            }
            Some(
                RDKafkaErrorCode::MessageTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::OperationTimedOut,
            ) => "timeout",
            _ => "delivery",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery_failure(code: RDKafkaErrorCode) -> Box<DeliveryFailure> {
        Box::new(DeliveryFailure {
            target: "eventhub".into(),
            topic: "t".into(),
            partition: 0,
            source_offset: 7,
            source: KafkaError::MessageProduction(code),
            cause: None,
        })
    }

    fn delivery(code: RDKafkaErrorCode) -> FlowError {
        FlowError::Delivery(delivery_failure(code))
    }

    #[test]
    fn an_acknowledgement_without_an_offset_restarts_the_flow() {
        let e = FlowError::Unplaced {
            target: "eventhub".into(),
            topic: "t".into(),
            partition: 0,
            source_offset: 7,
        };
        assert!(e.is_transient());
        assert_eq!(e.kind(), "delivery");
        assert!(e.to_string().contains("source offset 7"), "{e}");
    }

    #[test]
    fn throttling_and_timeouts_restart_the_flow_refusals_do_not() {
        let e = delivery(RDKafkaErrorCode::PolicyViolation);
        assert!(e.is_transient());
        assert_eq!(e.kind(), "throttled");
        let e = delivery(RDKafkaErrorCode::RequestTimedOut);
        assert!(e.is_transient());
        assert_eq!(e.kind(), "timeout");
        let e = delivery(RDKafkaErrorCode::PurgeQueue);
        assert!(e.is_transient());
        assert_eq!(e.kind(), "delivery");
        let purged_after_throttling = FlowError::Delivery(Box::new(DeliveryFailure {
            cause: Some(KafkaError::MessageProduction(
                RDKafkaErrorCode::PolicyViolation,
            )),
            ..*delivery_failure(RDKafkaErrorCode::PurgeQueue)
        }));
        assert_eq!(purged_after_throttling.kind(), "throttled");
        assert!(
            purged_after_throttling
                .to_string()
                .contains("after an earlier write failed"),
            "{purged_after_throttling}"
        );
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::TopicAuthorizationFailed,
        ] {
            assert!(!delivery(code).is_transient(), "{code:?}");
        }
        assert!(!FlowError::Task("panic".into()).is_transient());
        assert!(FlowError::ProducerGone.is_transient());
    }
}
