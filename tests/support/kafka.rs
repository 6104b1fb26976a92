//! rdkafka helpers for tests: an independent client that creates topics, produces test records
//! and reads everything back, polling with deadlines.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// A plaintext client config for a broker at `bootstrap`.
pub fn plain(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

/// Creates `topic` with `partitions` partitions (replication factor 1).
pub fn create_topic(cfg: &ClientConfig, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = cfg.create().expect("admin client");
    let rt = runtime();
    let res = rt
        .block_on(admin.create_topics(
            [&NewTopic::new(
                topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        ))
        .expect("create_topics");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
}

/// A record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl<M: Message> From<&M> for Rec {
    fn from(m: &M) -> Self {
        Rec {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            timestamp: m.timestamp().to_millis(),
            headers: m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

impl Rec {
    /// The first value of header `name`, as UTF-8.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_ref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// The test record number `i`: key `k<i>`, value `v<i>-...`, one header, timestamp base + i.
pub fn test_record(i: usize, partitions: i32, ts_base: i64) -> (i32, String, String, i64) {
    let partition = (i % partitions as usize) as i32;
    (
        partition,
        format!("k{i}"),
        format!("v{i}-{}", "x".repeat(i % 50)),
        ts_base + i as i64,
    )
}

/// Produces records `range` of [`test_record`] to `topic`, each with header `app-id: <i>`,
/// and waits until all are acknowledged.
pub fn produce_test_records(
    cfg: &ClientConfig,
    topic: &str,
    partitions: i32,
    range: std::ops::Range<usize>,
    ts_base: i64,
) {
    let producer = producer(cfg, &[("linger.ms", "5")]);
    let rt = runtime();
    rt.block_on(async {
        let mut futs = Vec::with_capacity(range.len());
        for i in range {
            let (p, k, v, ts) = test_record(i, partitions, ts_base);
            let id = i.to_string();
            let mut rec = FutureRecord::to(topic)
                .partition(p)
                .key(&k)
                .payload(&v)
                .timestamp(ts)
                .headers(OwnedHeaders::new().insert(Header {
                    key: "app-id",
                    value: Some(&id),
                }));
            loop {
                match producer.send_result(rec) {
                    Ok(f) => {
                        futs.push(f);
                        break;
                    }
                    Err((e, back)) => {
                        assert!(format!("{e}").contains("Queue full"), "produce: {e}");
                        rec = back;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
        }
        for f in futs {
            f.await.expect("delivery future").expect("delivered");
        }
    });
}

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

/// Counts records per key.
pub fn count_by_key(recs: &[Rec]) -> BTreeMap<Vec<u8>, usize> {
    let mut m = BTreeMap::new();
    for r in recs {
        *m.entry(r.key.clone().unwrap_or_default()).or_default() += 1;
    }
    m
}

/// Produces records with keys `<prefix>-<i>` to `topic` (partition `i % partitions`) at about
/// `per_second` for `duration`, and waits for every acknowledgement. Returns how many it sent.
pub fn produce_for(
    cfg: &ClientConfig,
    topic: &str,
    partitions: i32,
    prefix: &str,
    per_second: usize,
    duration: Duration,
) -> usize {
    let producer = producer(cfg, &[("linger.ms", "5")]);
    let rt = runtime();
    rt.block_on(async {
        let start = Instant::now();
        let mut futs = Vec::new();
        let mut i = 0usize;
        while start.elapsed() < duration {
            // Pace: records due by now.
            let due = (start.elapsed().as_secs_f64() * per_second as f64) as usize;
            while i < due {
                let (k, v) = (format!("{prefix}-{i}"), format!("payload {prefix} {i}"));
                let rec = FutureRecord::to(topic)
                    .partition((i % partitions as usize) as i32)
                    .key(&k)
                    .payload(&v);
                futs.push(
                    producer
                        .send_result(rec)
                        .map_err(|(e, _)| e)
                        .expect("enqueue"),
                );
                i += 1;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for f in futs {
            f.await.expect("delivery future").expect("delivered");
        }
        i
    })
}

/// Asserts every key `<prefix>-<i>` for `i < n` appears exactly once among `recs` for each
/// prefix, and nothing else does. Returns a one-line summary for the test log.
pub fn assert_exactly_once(recs: &[Rec], expected: &[(&str, usize)], what: &str) -> String {
    let counts = count_by_key(recs);
    let mut summary = Vec::new();
    for (prefix, n) in expected {
        let mut lost = 0;
        let mut dup = 0;
        for i in 0..*n {
            match counts.get(format!("{prefix}-{i}").as_bytes()) {
                None => lost += 1,
                Some(c) if *c > 1 => dup += c - 1,
                _ => {}
            }
        }
        assert_eq!(
            (lost, dup),
            (0, 0),
            "{what}: records from {prefix}: {lost} lost, {dup} duplicated of {n}"
        );
        summary.push(format!("{n} from {prefix}"));
    }
    let total: usize = expected.iter().map(|(_, n)| n).sum();
    assert_eq!(recs.len(), total, "{what}: unexpected extra records");
    format!(
        "{what}: {} records, exactly once ({})",
        recs.len(),
        summary.join(", ")
    )
}

/// The topic names on a cluster.
pub fn topic_names(cfg: &ClientConfig) -> Vec<String> {
    let consumer: BaseConsumer = cfg.create().expect("consumer");
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    md.topics().iter().map(|t| t.name().to_string()).collect()
}

/// The reported high watermark of every partition of `topic`, in partition order.
pub fn high_watermarks(cfg: &ClientConfig, topic: &str) -> Vec<i64> {
    let consumer: BaseConsumer = cfg.create().expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let n = md
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len() as i32);
    (0..n)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks")
                .1
        })
        .collect()
}

/// Produces `(partition, key, value)` records to `topic` in order and waits until all are
/// acknowledged.
pub fn produce_raw(cfg: &ClientConfig, topic: &str, records: &[(i32, Vec<u8>, Vec<u8>)]) {
    let producer = producer(cfg, &[]);
    let rt = runtime();
    rt.block_on(async {
        let mut futs = Vec::with_capacity(records.len());
        for (p, k, v) in records {
            let rec = FutureRecord::to(topic).partition(*p).key(k).payload(v);
            futs.push(
                producer
                    .send_result(rec)
                    .map_err(|(e, _)| e)
                    .expect("enqueue"),
            );
        }
        for f in futs {
            f.await.expect("delivery future").expect("delivered");
        }
    });
}

/// A consumer in consumer group `group`, subscribed to `topics`, reading from the beginning
/// when the group has no offsets; it commits only when told to.
pub fn group_consumer(cfg: &ClientConfig, group: &str, topics: &[&str]) -> BaseConsumer {
    let consumer: BaseConsumer = cfg
        .clone()
        .set("group.id", group)
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

/// Produces `(partition, key, value)` records to `topic`, each in its own batch: the next one
/// is sent only after the previous one was acknowledged. (tansu 0.6.0 cannot fetch from an
/// offset inside a batch: it skips to the next batch, so tests that resume consumers at
/// arbitrary offsets need one record per batch.)
pub fn produce_one_per_batch(cfg: &ClientConfig, topic: &str, records: &[(i32, Vec<u8>, Vec<u8>)]) {
    let producer = producer(cfg, &[("linger.ms", "0")]);
    let rt = runtime();
    rt.block_on(async {
        for (p, k, v) in records {
            let rec = FutureRecord::to(topic).partition(*p).key(k).payload(v);
            producer
                .send_result(rec)
                .map_err(|(e, _)| e)
                .expect("enqueue")
                .await
                .expect("delivery future")
                .expect("delivered");
        }
    });
}

/// Produces `(partition, key, value)` records to `topic` quickly, each in its own record batch:
/// `batch.num.messages=1` and `linger.ms=0` with many requests in flight (no retries, so nothing
/// is reordered). Waits for every acknowledgement and returns each record's offset in input
/// order, after checking that the offsets rise per partition in input order. (The fast variant
/// of [`produce_one_per_batch`]; [`first_record_from`] checks a resumed fetch.)
pub fn produce_fast_one_per_batch(
    cfg: &ClientConfig,
    topic: &str,
    records: &[(i32, Vec<u8>, Vec<u8>)],
) -> Vec<i64> {
    let producer = producer(
        cfg,
        &[
            ("linger.ms", "0"),
            ("batch.num.messages", "1"),
            ("enable.idempotence", "false"),
            ("message.send.max.retries", "0"),
        ],
    );
    let rt = runtime();
    let offsets: Vec<(i32, i64)> = rt.block_on(async {
        let mut futs = Vec::with_capacity(records.len());
        for (p, k, v) in records {
            let mut rec = FutureRecord::to(topic).partition(*p).key(k).payload(v);
            loop {
                match producer.send_result(rec) {
                    Ok(f) => break futs.push(f),
                    Err((e, back)) => {
                        assert!(format!("{e}").contains("Queue full"), "produce: {e}");
                        rec = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(futs.len());
        for f in futs {
            let d = f.await.expect("delivery future").expect("delivered");
            out.push((d.partition, d.offset));
        }
        out
    });
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for &(p, o) in &offsets {
        let before = last.insert(p, o);
        assert!(
            before.is_none_or(|b| b < o),
            "{topic}/{p}: offset {o} after {before:?}"
        );
    }
    offsets.into_iter().map(|(_, o)| o).collect()
}

/// The first record a consumer assigned to `topic`/`partition` at `offset` receives; panics
/// unless it is the record at `offset` (tansu 0.6.0 would skip to the next batch if `offset`
/// were inside a batch of several records).
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

/// Produces records `<prefix>-0`, `<prefix>-1`, ... (partition `i % partitions`) to `topic`,
/// each acknowledged before the next is sent (so each is alone in its batch), until `stop` is
/// set; returns how many it produced.
pub fn produce_one_per_batch_until(
    cfg: &ClientConfig,
    topic: &str,
    partitions: i32,
    prefix: &str,
    stop: &std::sync::atomic::AtomicBool,
) -> usize {
    let producer = producer(cfg, &[("linger.ms", "0")]);
    let rt = runtime();
    rt.block_on(async {
        let mut i = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let (k, v) = (format!("{prefix}-{i}"), format!("local {i}"));
            let p = (i % partitions as usize) as i32;
            let rec = FutureRecord::to(topic).partition(p).key(&k).payload(&v);
            producer
                .send_result(rec)
                .map_err(|(e, _)| e)
                .expect("enqueue")
                .await
                .expect("delivery future")
                .expect("delivered");
            i += 1;
        }
        i
    })
}

/// A current-thread tokio runtime for a test helper's async client calls.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A producer for `cfg` with `settings` on top.
fn producer(cfg: &ClientConfig, settings: &[(&str, &str)]) -> FutureProducer {
    let mut cfg = cfg.clone();
    for (k, v) in settings {
        cfg.set(*k, *v);
    }
    cfg.create().expect("producer")
}
