//! rdkafka helpers for tests: an independent client that creates topics, produces test records
//! ([`produce`]: batched, as applications produce; [`Stream`]: steady, in the background) and
//! reads everything back ([`read`]; [`Ledger`]: counts a stream's copies), polling with
//! deadlines.

mod configs;
mod ledger;
mod produce;
mod read;
mod stream;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication, TopicResult};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message};

pub use configs::*;
pub use ledger::*;
pub use produce::*;
pub use read::*;
pub use stream::*;

/// A plaintext client config for a broker at `bootstrap`.
pub fn plain(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

/// Creates `topic` with `partitions` partitions (replication factor 1).
pub fn create_topic(cfg: &ClientConfig, topic: &str, partitions: i32) {
    for r in create_topics(cfg, topic, partitions) {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
}

/// The broker's answer to creating `topic` with `partitions` partitions (replication factor 1).
fn create_topics(cfg: &ClientConfig, topic: &str, partitions: i32) -> Vec<TopicResult> {
    let admin: AdminClient<DefaultClientContext> = cfg.create().expect("admin client");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    runtime()
        .block_on(admin.create_topics([&new], &opts))
        .expect("create_topics")
}

/// Deletes `topic` and creates it again with `partitions` partitions: how a test gives a remote
/// topic more partitions on tansu, which has no CreatePartitions. A client that names the topic
/// meanwhile may have it auto-created again (the wheel's build does that, with 4 partitions):
/// that topic is kept. Returns its partition count.
pub fn recreate_topic(cfg: &ClientConfig, topic: &str, partitions: i32) -> i32 {
    let admin: AdminClient<DefaultClientContext> = cfg.create().expect("admin client");
    let rt = runtime();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for r in rt
        .block_on(admin.delete_topics(&[topic], &opts))
        .expect("delete_topics")
    {
        r.unwrap_or_else(|(t, e)| panic!("deleting {t}: {e}"));
    }
    let res = create_topics(cfg, topic, partitions);
    for r in res {
        match r {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => panic!("creating {t}: {e}"),
        }
    }
    let consumer: BaseConsumer = cfg.create().expect("consumer");
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    let t = md.topics().iter().find(|t| t.name() == topic);
    t.map_or(0, |t| t.partitions().len() as i32)
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

/// Counts records per key.
pub fn count_by_key(recs: &[Rec]) -> BTreeMap<Vec<u8>, usize> {
    let mut m = BTreeMap::new();
    for r in recs {
        *m.entry(r.key.clone().unwrap_or_default()).or_default() += 1;
    }
    m
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

/// The topic names on a cluster (all topics are listed: naming one could create it).
pub fn topic_names(cfg: &ClientConfig) -> BTreeSet<String> {
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

/// A current-thread tokio runtime for a test helper's async client calls.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
