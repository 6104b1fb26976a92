//! The consume loop's liveness gate (see [`crate::flow::group::Liveness`]): before a record is
//! copied, the instance must have heard from its group coordinator within half the session
//! timeout. When it has not — a network cut from the source, a frozen process that just woke
//! up, or a rebalance that keeps its JoinGroup waiting at the coordinator — copying is *parked*:
//! the record is not copied, every partition is paused and the record's partition is moved back
//! to it, so nothing is skipped. The loop goes on serving the consumer's events meanwhile;
//! copying resumes once the coordinator answers again and the membership held for a moment, and
//! the run ends (and rejoins) when the assignment turns out lost.

use std::time::Instant;

use rdkafka::consumer::Consumer;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset};
use tokio::sync::mpsc;

use super::ConsumeLoop;
use crate::flow::acks::Work;
use crate::flow::group::{self, Partitions};
use crate::flow::FlowError;

impl ConsumeLoop {
    /// `Ok(true)` when `msg` may be copied now; `Ok(false)` when copying was parked (`msg` is
    /// read again once it resumes); an error when the instance must stop copying altogether.
    pub(super) async fn may_copy(
        &mut self,
        msg: &BorrowedMessage<'_>,
        pending: &mpsc::Sender<Work>,
    ) -> Result<bool, FlowError> {
        let liveness = self.group.liveness.clone();
        if liveness.alive(Instant::now()) {
            return Ok(true);
        }
        if liveness.fenced() {
            return Err(self
                .fence(pending, "the group took this instance's partitions away")
                .await);
        }
        self.park(msg, pending).await?;
        Ok(false)
    }

    /// Stops copying until the coordinator answers again: pauses every partition, with `msg`'s
    /// partition moved back to `msg`.
    async fn park(
        &mut self,
        msg: &BorrowedMessage<'_>,
        pending: &mpsc::Sender<Work>,
    ) -> Result<(), FlowError> {
        if !self.flush(pending).await {
            return Err(FlowError::Task("the ack task stopped".into()));
        }
        let err = |what: &str| {
            let what = what.to_string();
            move |source| FlowError::Source { what, source }
        };
        let assigned = self
            .consumer
            .assignment()
            .map_err(err("reading the assignment to pause it"))?;
        self.consumer
            .pause(&assigned)
            .map_err(err("pausing the assignment"))?;
        // librdkafka keeps a partition's pause across unassign and assign: what is paused here
        // is resumed by `unpark` even if it was handed over and comes back meanwhile.
        self.group.paused = group::partitions(&assigned);
        self.consumer
            .seek(
                msg.topic(),
                msg.partition(),
                Offset::Offset(msg.offset()),
                std::time::Duration::from_secs(10),
            )
            .map_err(err("moving a paused partition back to its next record"))?;
        self.group.parked = Some(Instant::now());
        tracing::warn!(
            source = %self.source, target = %self.target,
            "no word from the group coordinator of '{}' for {:?}: copying paused until it answers \
             (a rebalance in progress, or this instance is cut off from the source)",
            self.source,
            self.group.liveness.window()
        );
        Ok(())
    }

    /// While parked: resumes copying once the coordinator answered and the membership held for
    /// a few heartbeats since ([`crate::flow::group::Liveness::settled`]: an instance whose
    /// session expired hears an error on its first heartbeat, and learns the loss right after);
    /// gives up (the run ends) when the assignment was lost. Parked, nothing is copied, so
    /// there is no hurry: a rebalance that keeps the instance waiting (on a slow coordinator,
    /// for a member that died without leaving) ends in an assignment or in a loss, and a cut
    /// off source in a loss once it is back; a restart would only make the group wait longer.
    pub(super) async fn unpark(&mut self, pending: &mpsc::Sender<Work>) -> Result<(), FlowError> {
        let Some(since) = self.group.parked else {
            return Ok(());
        };
        let liveness = self.group.liveness.clone();
        if liveness.fenced() {
            return Err(self
                .fence(pending, "the group took this instance's partitions away")
                .await);
        }
        if liveness.settled(Instant::now()) {
            let assigned = self.consumer.assignment().map_err(|e| FlowError::Source {
                what: "reading the assignment to resume it".into(),
                source: e,
            })?;
            let mut all = group::partitions(&assigned);
            all.append(&mut self.group.paused);
            all.sort();
            all.dedup();
            // Partitions still starting stay paused: their start resumes them.
            all.retain(|p| !self.group.gone.contains(p));
            self.consumer
                .resume(&group::list(&all))
                .map_err(|e| FlowError::Source {
                    what: "resuming the assignment".into(),
                    source: e,
                })?;
            self.group.parked = None;
            tracing::info!(source = %self.source, target = %self.target, "the group coordinator answers again: copying resumed after {} ms", since.elapsed().as_millis());
            return Ok(());
        }
        Ok(())
    }

    /// Ends the run without committing anything more of the partitions: what the producer
    /// queues is dropped, the ack task forgets them.
    async fn fence(&mut self, pending: &mpsc::Sender<Work>, why: &str) -> FlowError {
        self.group_purge();
        let owned: Partitions = self.status.owned();
        self.forget(&owned, pending).await;
        FlowError::Fenced(format!("flow {}->{}: {why}", self.source, self.target))
    }
}
