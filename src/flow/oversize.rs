//! A flow's `oversize` policy: what becomes of a record the target's producer refused as too
//! large (librdkafka's `message.max.bytes`) — skipped, written to the dead-letter topic, or the
//! end of the run.

use std::sync::Arc;

use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::Message;

use super::acks::Fate;
use super::dead_letter::DeadLetter;
use super::route::Route;
use super::{FlowError, OversizeRecord};
use crate::metrics::SkipReason;
use crate::topology::Oversize;

/// The flow's `oversize` setting with what it needs.
pub(super) struct OversizePolicy {
    /// `oversize` from the topology.
    pub policy: Oversize,
    /// The dead-letter writer (with `oversize: dead_letter`).
    pub dead_letter: Option<Arc<DeadLetter>>,
    /// The target producer's `message.max.bytes`, for error messages.
    pub max_record_bytes: usize,
}

impl OversizePolicy {
    /// Applies the policy to a record (consumed from cluster `source`) that the producer for
    /// cluster `target` refused as too large.
    pub fn apply(
        &self,
        msg: &BorrowedMessage<'_>,
        route: &Route,
        (source, target): (&str, &str),
    ) -> Result<Fate, FlowError> {
        let size = record_size(msg);
        let coordinates = format!(
            "topic '{}' partition {} offset {}",
            msg.topic(),
            msg.partition(),
            msg.offset()
        );
        match (self.policy, &self.dead_letter) {
            (Oversize::Skip, _) => {
                tracing::warn!(source = %source, target = %target, "skipped an oversize record ({coordinates}, {size} bytes; oversize: skip)");
                Ok(Fate::Skipped(SkipReason::Oversize))
            }
            (Oversize::DeadLetter, Some(dl)) => {
                let delivery = dl.send(msg, target, size)?;
                tracing::warn!(source = %source, target = %target, dead_letter = %dl.topic, "oversize record ({coordinates}, {size} bytes) written to the dead-letter topic");
                Ok(Fate::DeadLettered { delivery })
            }
            _ => Err(FlowError::Oversize(Box::new(OversizeRecord {
                from: source.to_string(),
                target: target.to_string(),
                topic: route.source_topic.to_string(),
                partition: msg.partition(),
                offset: msg.offset(),
                size,
                limit: self.max_record_bytes,
            }))),
        }
    }
}

/// Key, value and header bytes of a record: what librdkafka compares with `message.max.bytes`.
fn record_size(msg: &BorrowedMessage<'_>) -> usize {
    let headers = msg.headers().map_or(0, |h| {
        h.iter()
            .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
            .sum()
    });
    msg.key().map_or(0, <[u8]>::len) + msg.payload().map_or(0, <[u8]>::len) + headers
}
