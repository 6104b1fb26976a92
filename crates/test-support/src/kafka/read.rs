//! Readers: everything from the beginning, a topic followed as it grows, group members.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::Rec;

/// Reads `topic` from the beginning until `expected` records arrived and nothing more came for
/// `settle`, or panics at `timeout`. Returns the records in arrival order (per partition ordered).
pub fn read_all(cfg: &ClientConfig, topic: &str, expected: usize, timeout: Duration) -> Vec<Rec> {
    let consumer: BaseConsumer = cfg
        .clone()
        .set("group.id", format!("test-reader-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let deadline = Instant::now() + timeout;
    // Wait for the topic to exist, then assign every partition from the beginning.
    let partitions = loop {
        let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(5));
        if let Ok(md) = md {
            if let Some(t) = md.topics().first() {
                if t.error().is_none() && !t.partitions().is_empty() {
                    break t.partitions().len() as i32;
                }
            }
        }
        assert!(Instant::now() < deadline, "topic {topic} never appeared");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    while out.len() < expected && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            out.push(Rec::from(&m.expect("consume")));
        }
    }
    // Anything beyond `expected` (duplicates) that is already there is picked up too.
    let settle = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < settle {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(Rec::from(&m));
        }
    }
    out
}

/// A reader that follows every partition of `topic` from the beginning and counts the records
/// it has seen, to wait for copies to arrive without sizing partitions by their (on tansu,
/// wrong) reported end.
pub struct TopicTail {
    consumer: BaseConsumer,
    topic: String,
    seen: usize,
}

impl TopicTail {
    /// Follows `topic`, which has `partitions` partitions.
    pub fn new(cfg: &ClientConfig, topic: &str, partitions: i32) -> TopicTail {
        let consumer: BaseConsumer = cfg
            .clone()
            .set("group.id", format!("test-tail-{}", std::process::id()))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .expect("partition");
        }
        consumer.assign(&tpl).expect("assign");
        TopicTail {
            consumer,
            topic: topic.to_string(),
            seen: 0,
        }
    }

    /// Reads until `n` records in all have been seen; panics after `timeout`.
    pub fn wait_for_count(&mut self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.seen < n {
            assert!(
                Instant::now() < deadline,
                "{}: {} of {n} records within {timeout:?}",
                self.topic,
                self.seen
            );
            if let Some(m) = self.consumer.poll(Duration::from_millis(100)) {
                m.expect("consume");
                self.seen += 1;
            }
        }
    }
}

/// A consumer in consumer group `group`, subscribed to `topics`, reading from the beginning
/// when the group has no offsets; it commits only when told to. `session.timeout.ms=6000`
/// (Kafka's smallest by default): tansu completes a group's first join only after about half
/// the session timeout, 23 s with librdkafka's 45 s default (see the README's caveats).
pub fn group_consumer(cfg: &ClientConfig, group: &str, topics: &[&str]) -> BaseConsumer {
    let consumer: BaseConsumer = cfg
        .clone()
        .set("group.id", group)
        .set("session.timeout.ms", "6000")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .create()
        .expect("group consumer");
    consumer.subscribe(topics).expect("subscribe");
    consumer
}

/// Polls `consumer` until `n` records arrived, or panics at `timeout`. Returns them in arrival
/// order.
pub fn poll_records(consumer: &BaseConsumer, n: usize, timeout: Duration) -> Vec<Rec> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} records within {timeout:?}",
            out.len()
        );
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            out.push(Rec::from(&m.expect("consume")));
        }
    }
    out
}

/// The first record a consumer assigned to `topic`/`partition` at `offset` receives; panics
/// unless it is the record at `offset`, also when `offset` is inside a record batch (the test
/// broker must serve a fetch from the middle of a batch, as Kafka and Event Hubs do).
pub fn first_record_from(cfg: &ClientConfig, topic: &str, partition: i32, offset: i64) -> Rec {
    let consumer: BaseConsumer = cfg
        .clone()
        .set("group.id", format!("test-probe-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let r = poll_records(&consumer, 1, Duration::from_secs(30)).remove(0);
    assert_eq!(
        r.offset, offset,
        "a fetch of {topic}/{partition} from {offset}: {r:?}"
    );
    r
}
