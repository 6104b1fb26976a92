//! The publisher of one flow S→T: what the flow recorded since the last publication, and every
//! [`REFRESH_INTERVAL`] all segments of the partitions this instance owns, to
//! `hubmirror.segments.<S>.internal` on T.
//!
//! A round publishes every partition the store marks unpublished for this flow
//! ([`Store::unpublished`]) — whoever owns it now: a partition just handed over still gets its
//! last segments out — and removes the marks once T acknowledged every record of the round.
//! A round that fails leaves them for the next one; publishing a segment twice is harmless.

use std::sync::Arc;

use futures::future::join_all;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::time::Instant;

use super::task::SegmentsSetup;
use super::{
    kafka, Publication, SegmentsError, FIRST_REFRESH, MAX_SEGMENTS_PER_RECORD, REFRESH_INTERVAL,
};
use crate::cluster::ClusterContext;
use crate::naming::{segments_topic, Naming};
use crate::status::{now_ms, FlowStatus};
use crate::store::{PartitionKey, SegmentSet, Store};

/// How long a topic lookup or creation, or a round's deliveries, may take.
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How often a missing segments topic is looked for again.
const TOPIC_RETRY: std::time::Duration = std::time::Duration::from_secs(10);

/// Publishes one flow's segments.
pub struct Publisher {
    source: String,
    target: String,
    naming: Naming,
    instance: String,
    store: Store,
    producer: FutureProducer<ClusterContext>,
    admin: Arc<AdminClient<ClusterContext>>,
    create_topics: bool,
    /// Which partitions this instance owns (refreshed ones).
    status: Arc<FlowStatus>,
    /// `hubmirror.segments.<S>.internal`.
    topic: String,
    /// The topic is known to exist on T.
    topic_ready: bool,
    /// When to look for a missing topic again.
    next_topic_check: Instant,
    /// Why the topic is not ready, while it is not.
    topic_problem: Option<String>,
    /// When to publish every owned partition's segments again.
    next_refresh: Instant,
}

impl Publisher {
    /// A publisher for the flow of `setup`; its first full refresh is [`FIRST_REFRESH`] away.
    pub fn new(setup: &SegmentsSetup) -> Publisher {
        Publisher {
            source: setup.flow.source.clone(),
            target: setup.flow.target.clone(),
            naming: setup.naming.clone(),
            instance: setup.instance.clone(),
            store: setup.store.clone(),
            producer: setup.producer.clone(),
            admin: setup.admin.clone(),
            create_topics: setup.create_topics,
            status: setup.status.clone(),
            topic: segments_topic(&setup.flow.source),
            topic_ready: false,
            next_topic_check: Instant::now(),
            topic_problem: None,
            next_refresh: Instant::now() + FIRST_REFRESH,
        }
    }

    /// The segments topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Makes the next [`Publisher::round`] publish every owned partition's segments.
    pub fn refresh_now(&mut self) {
        self.next_refresh = Instant::now();
    }

    /// One round: publishes what the flow recorded since the last round and, when due, every
    /// segment of the partitions this instance owns. Returns how many records T acknowledged.
    pub async fn round(&mut self) -> Result<usize, SegmentsError> {
        let pending: Vec<_> = self
            .store
            .unpublished()?
            .into_iter()
            .filter(|u| u.key.source == self.source && u.key.target == self.target)
            .collect();
        let refresh = Instant::now() >= self.next_refresh;
        if pending.is_empty() && !refresh {
            return Ok(0);
        }
        self.ensure_topic().await?;
        let mut records = Vec::new();
        for u in &pending {
            if let Some(set) = self.store.report(&u.key, u.from)? {
                records.extend(self.publications(&u.key, set));
            }
        }
        if refresh {
            for (topic, partition) in self.status.owned() {
                let key = PartitionKey::new(&self.source, &self.target, &topic, partition);
                if let Some(set) = self.store.report(&key, 0)? {
                    records.extend(self.publications(&key, set));
                }
            }
        }
        let sent = self.send(&records).await?;
        for u in &pending {
            self.store.mark_published(u)?;
        }
        if refresh {
            self.next_refresh = Instant::now() + REFRESH_INTERVAL;
            let owned = self.status.owned().len();
            if owned > 0 {
                tracing::info!(source = %self.source, target = %self.target, topic = %self.topic,
                    partitions = owned,
                    "published every segment of the partitions this instance owns again (next \
                     in {})", humantime::format_duration(REFRESH_INTERVAL));
            }
        }
        Ok(sent)
    }

    /// `set` as records of at most [`MAX_SEGMENTS_PER_RECORD`] segments each.
    fn publications(&self, key: &PartitionKey, set: SegmentSet) -> Vec<Publication> {
        let remote_topic = self.naming.remote_topic(&self.source, &key.topic);
        let one = |segments: &[_]| Publication {
            key: key.clone(),
            remote_topic: remote_topic.clone(),
            instance: self.instance.clone(),
            set: SegmentSet {
                state: set.state,
                segments: segments.to_vec(),
            },
        };
        if set.segments.is_empty() {
            return vec![one(&[])];
        }
        set.segments
            .chunks(MAX_SEGMENTS_PER_RECORD)
            .map(one)
            .collect()
    }

    /// Writes `records` and waits (bounded) for every acknowledgement.
    async fn send(&mut self, records: &[Publication]) -> Result<usize, SegmentsError> {
        let now = now_ms();
        let mut deliveries = Vec::with_capacity(records.len());
        for p in records {
            let (k, v) = (p.encode_key()?, p.encode_value()?);
            let record = FutureRecord::to(&self.topic)
                .key(&k)
                .payload(&v)
                .timestamp(now);
            match self.producer.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                Err((e, _)) => return Err(self.delivery_error(e)),
            }
        }
        let outcomes = tokio::time::timeout(CALL_TIMEOUT, join_all(deliveries))
            .await
            .map_err(|_| SegmentsError::Timeout {
                what: format!(
                    "writing segments to '{}' on cluster '{}'",
                    self.topic, self.target
                ),
                waited: CALL_TIMEOUT,
            })?;
        for outcome in outcomes {
            match outcome {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(self.delivery_error(e)),
                Err(_) => {
                    return Err(SegmentsError::Topic(format!(
                        "cannot write segments to '{}' on cluster '{}': the producer closed",
                        self.topic, self.target
                    )))
                }
            }
        }
        Ok(records.len())
    }

    fn delivery_error(&mut self, e: rdkafka::error::KafkaError) -> SegmentsError {
        if matches!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
        ) {
            self.topic_ready = false;
        }
        let what = format!(
            "writing segments to '{}' on cluster '{}'",
            self.topic, self.target
        );
        kafka(what)(e)
    }

    /// Makes sure the segments topic exists on T, creating it (1 partition,
    /// `cleanup.policy=delete`) when allowed.
    async fn ensure_topic(&mut self) -> Result<(), SegmentsError> {
        if self.topic_ready {
            return Ok(());
        }
        if Instant::now() < self.next_topic_check {
            if let Some(p) = &self.topic_problem {
                return Err(SegmentsError::Topic(p.clone()));
            }
        }
        match self.find_or_create_topic().await {
            Ok(()) => {
                self.topic_ready = true;
                self.topic_problem = None;
                Ok(())
            }
            Err(problem) => {
                self.next_topic_check = Instant::now() + TOPIC_RETRY;
                self.topic_problem = Some(problem.clone());
                Err(SegmentsError::Topic(problem))
            }
        }
    }

    /// `Err` is a sentence naming the topic, the cluster and the fix.
    async fn find_or_create_topic(&self) -> Result<(), String> {
        let (cluster, topic) = (&self.target, &self.topic);
        let producer = self.producer.clone();
        let t = topic.clone();
        // All topics are listed: asking for one by name could auto-create it.
        let listed = tokio::task::spawn_blocking(move || {
            crate::cluster::metadata::partitions_of(producer.client(), &t, CALL_TIMEOUT)
        })
        .await
        .map_err(|e| format!("cannot look for '{topic}' on cluster '{cluster}': {e}"))?
        .map_err(|e| format!("cannot list topics on cluster '{cluster}' to find '{topic}': {e}"))?;
        if listed.is_some() {
            return Ok(());
        }
        let fix = "create it with 1 partition and cleanup.policy=delete (retention of 2 days or \
                   more); without it each instance translates only the partitions it replicated \
                   itself";
        if !self.create_topics {
            return Err(format!(
                "segments topic '{topic}' is missing on cluster '{cluster}' and \
                 replication.create_topics is false: {fix}"
            ));
        }
        let new =
            NewTopic::new(topic, 1, TopicReplication::Fixed(-1)).set("cleanup.policy", "delete");
        let opts = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT));
        let cannot = |why: String| {
            format!("cannot create segments topic '{topic}' on cluster '{cluster}': {why}; {fix}")
        };
        let created = tokio::time::timeout(CALL_TIMEOUT, self.admin.create_topics([&new], &opts))
            .await
            .map_err(|_| cannot(format!("no answer within {CALL_TIMEOUT:?}")))?
            .map_err(|e| cannot(e.to_string()))?;
        for result in created {
            match result {
                Ok(_) => {
                    tracing::info!(source = %self.source, cluster = %cluster, topic = %topic,
                        partitions = 1, "created segments topic");
                }
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(cannot(code.to_string())),
            }
        }
        Ok(())
    }
}
