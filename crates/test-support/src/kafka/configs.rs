//! Topic configs from the outside: create a topic with configs, read a topic's configs back
//! (DescribeConfigs through rdkafka).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

use super::runtime;

/// Creates `topic` with `partitions` partitions and `configs` (replication factor 1).
pub fn create_topic_with_configs(
    cfg: &ClientConfig,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let admin: AdminClient<DefaultClientContext> = cfg.create().expect("admin client");
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        new = new.set(k, v);
    }
    let res = runtime()
        .block_on(admin.create_topics(
            [&new],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        ))
        .expect("create_topics");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
}

/// Every config value the broker reports for `topic` (tansu lists only those set on it).
pub fn topic_configs(cfg: &ClientConfig, topic: &str) -> BTreeMap<String, String> {
    let admin: AdminClient<DefaultClientContext> = cfg.create().expect("admin client");
    let spec = ResourceSpecifier::Topic(topic);
    let res = runtime()
        .block_on(admin.describe_configs(
            [&spec],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
        ))
        .expect("describe_configs");
    res.into_iter()
        .flat_map(|r| r.map(|r| r.entries).unwrap_or_default())
        .filter_map(|e| Some((e.name, e.value?)))
        .collect()
}
