//! The delivery board of a flow run: where the target producer's delivery reports land, so that
//! the hot path allocates nothing and wakes nobody per record.
//!
//! The consume loop numbers every record it hands to the producer (a sequence number, passed to
//! librdkafka as the record's delivery opaque). librdkafka's delivery callback, on the producer's
//! polling thread, writes the outcome into the board's slot for that number; the ack task, which
//! walks records in consumption order, takes each outcome from its slot. The ring has
//! [`CAPACITY`] slots: the consume loop never numbers a record [`CAPACITY`] or more past the
//! oldest one the ack task has not taken ([`Board::has_room`]), so a slot is never reused before
//! it was taken.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{ProducerContext, ThreadedProducer};
use rdkafka::Message;
use tokio::sync::Notify;

use crate::cluster::ClusterContext;

/// Slots in the ring: the most records a flow run has in flight (handed to the producer, not
/// yet taken by the ack task).
pub const CAPACITY: u64 = 1 << 16;

/// A slot with no outcome yet.
const EMPTY: i64 = i64::MIN;
/// A slot whose record failed; the error waits in [`Board::failures`].
const FAILED: i64 = i64::MIN + 1;

/// A flow's target producer: delivery reports go to its [`Board`].
pub type FlowProducer = ThreadedProducer<FlowProducerContext>;

/// Outcomes of the records in flight, by sequence number.
pub struct Board {
    /// `EMPTY`, `FAILED`, or the target offset the record was written at.
    slots: Box<[AtomicI64]>,
    /// Errors of failed records (rare: gap-less producers fail everything after one failure).
    failures: Mutex<HashMap<u64, KafkaError>>,
    /// The first failure that was not a purge: what made librdkafka purge the others.
    cause: Mutex<Option<KafkaError>>,
    /// Sequence numbers below this were taken by the ack task; their slots are free.
    released: AtomicU64,
    /// Set by the ack task before it waits for an outcome.
    waiting: AtomicBool,
    /// Wakes the ack task when an outcome arrives while it waits.
    arrived: Notify,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            slots: (0..CAPACITY).map(|_| AtomicI64::new(EMPTY)).collect(),
            failures: Mutex::new(HashMap::new()),
            cause: Mutex::new(None),
            released: AtomicU64::new(0),
            waiting: AtomicBool::new(false),
            arrived: Notify::new(),
        }
    }
}

impl Board {
    /// When `e` is a purge, the failure that caused it (the first failed delivery that was not
    /// a purge), if one was reported: with `enable.gapless.guarantee`, one failed batch makes
    /// librdkafka purge every record still queued, on every partition.
    pub fn cause_of(&self, e: &KafkaError) -> Option<KafkaError> {
        if !is_purge(e) {
            return None;
        }
        self.cause.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn slot(&self, seq: u64) -> &AtomicI64 {
        // In bounds: CAPACITY is the slice's length and a power of two.
        &self.slots[(seq & (CAPACITY - 1)) as usize]
    }

    /// Whether record number `seq` may be handed to the producer now.
    pub fn has_room(&self, seq: u64) -> bool {
        seq < self.released.load(Ordering::Acquire) + CAPACITY
    }

    /// Frees every slot below `seq` (the ack task took their outcomes).
    pub fn release(&self, seq: u64) {
        self.released.store(seq, Ordering::Release);
    }

    /// The outcome of record `seq` if it arrived: the target offset, or the error. Taking it
    /// empties the slot.
    pub fn take(&self, seq: u64) -> Option<Result<i64, KafkaError>> {
        let slot = self.slot(seq);
        match slot.load(Ordering::SeqCst) {
            EMPTY => None,
            FAILED => {
                slot.store(EMPTY, Ordering::Relaxed);
                let e = self
                    .failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&seq);
                Some(Err(e.unwrap_or(KafkaError::Canceled)))
            }
            offset => {
                slot.store(EMPTY, Ordering::Relaxed);
                Some(Ok(offset))
            }
        }
    }

    /// Waits for record `seq`'s outcome (the caller adds its own deadlines around this).
    pub async fn settled(&self, seq: u64) -> Result<i64, KafkaError> {
        loop {
            if let Some(outcome) = self.take(seq) {
                return outcome;
            }
            // Announce the wait, then look again: an outcome stored before the flag was seen
            // is found by the second look, one stored after it notifies.
            self.waiting.store(true, Ordering::SeqCst);
            if let Some(outcome) = self.take(seq) {
                self.waiting.store(false, Ordering::Relaxed);
                return outcome;
            }
            self.arrived.notified().await;
        }
    }

    fn settle(&self, seq: u64, outcome: Result<i64, KafkaError>) {
        let value = match outcome {
            Ok(offset) => offset,
            Err(e) => {
                if !is_purge(&e) {
                    self.cause
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert_with(|| e.clone());
                }
                self.failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(seq, e);
                FAILED
            }
        };
        self.slot(seq).store(value, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) && self.waiting.swap(false, Ordering::SeqCst) {
            self.arrived.notify_one();
        }
    }
}

/// Whether `e` only says librdkafka dropped the record before or while sending it.
fn is_purge(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight)
    )
}

/// The flow producer's context: the cluster's context for logs and errors, and the board for
/// delivery reports (the delivery opaque is the record's sequence number).
pub struct FlowProducerContext {
    /// Logs, statistics and fatal errors, as for every client of the cluster.
    pub cluster: ClusterContext,
    /// Where delivery reports go.
    pub board: Arc<Board>,
}

impl ClientContext for FlowProducerContext {
    crate::cluster::oauth::entra_token_callback!();

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.cluster.log(level, fac, log_message)
    }

    fn stats_raw(&self, statistics: &[u8]) {
        self.cluster.stats_raw(statistics)
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.cluster.error(error, reason)
    }
}

impl ProducerContext for FlowProducerContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        let outcome = match result {
            Ok(m) => Ok(m.offset()),
            Err((e, _)) => Err(e.clone()),
        };
        self.board.settle(seq as u64, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_taken_once_and_slots_reused() {
        let b = Board::default();
        assert!(b.take(3).is_none());
        b.settle(3, Ok(42));
        assert_eq!(b.take(3).map(|o| o.ok()), Some(Some(42)));
        assert!(b.take(3).is_none(), "taking empties the slot");
        b.settle(3 + CAPACITY, Err(KafkaError::Canceled));
        assert!(matches!(
            b.take(3 + CAPACITY),
            Some(Err(KafkaError::Canceled))
        ));
    }

    #[test]
    fn a_purged_record_names_the_failure_that_caused_the_purge() {
        let b = Board::default();
        let purged = KafkaError::MessageProduction(RDKafkaErrorCode::PurgeQueue);
        let throttled = KafkaError::MessageProduction(RDKafkaErrorCode::PolicyViolation);
        b.settle(0, Err(purged.clone()));
        assert!(b.cause_of(&purged).is_none(), "no other failure yet");
        b.settle(1, Err(throttled.clone()));
        b.settle(
            2,
            Err(KafkaError::MessageProduction(
                RDKafkaErrorCode::RequestTimedOut,
            )),
        );
        assert_eq!(
            b.cause_of(&purged),
            Some(throttled.clone()),
            "the first one"
        );
        assert!(
            b.cause_of(&throttled).is_none(),
            "a failure of its own has no cause"
        );
    }

    #[test]
    fn room_is_bounded_by_what_was_released() {
        let b = Board::default();
        assert!(b.has_room(CAPACITY - 1));
        assert!(!b.has_room(CAPACITY));
        b.release(10);
        assert!(b.has_room(CAPACITY + 9) && !b.has_room(CAPACITY + 10));
    }

    #[tokio::test]
    async fn a_waiting_ack_task_is_woken_by_the_outcome() {
        let b = Arc::new(Board::default());
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.settled(7).await }
        });
        tokio::task::yield_now().await;
        b.settle(7, Ok(5));
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("joined");
        assert_eq!(outcome.ok(), Some(5));
    }
}
