//! Which configs of a topic are copied, and what must change on the remote topic: pure
//! functions over DescribeConfigs answers.

use std::collections::BTreeMap;

use rdkafka::admin::{ConfigEntry, ConfigSource};
use regex::Regex;

use crate::cluster::alter_configs::ConfigOp;

/// Config name → value.
pub type Settings = BTreeMap<String, String>;

/// Configs every Apache Kafka broker lists when it describes a topic (defaults included) and
/// nobody sets on a topic. A description that claims every entry is a default yet lacks
/// them all comes from a broker that lists only the topic's own settings (tansu).
const ALWAYS_DESCRIBED: [&str; 3] = [
    "segment.index.bytes",
    "index.interval.bytes",
    "flush.messages",
];

/// Whether the broker described only the configs set on the topic, marking them all as
/// defaults (tansu does; Apache Kafka lists every config with its real source).
pub fn lists_only_topic_settings(entries: &[ConfigEntry]) -> bool {
    entries
        .iter()
        .all(|e| e.source == ConfigSource::Default && e.is_default)
        && !entries
            .iter()
            .any(|e| ALWAYS_DESCRIBED.contains(&e.name.as_str()))
}

/// The configs set on the topic itself (topic-level overrides), neither read-only nor
/// sensitive: a `DYNAMIC_TOPIC_CONFIG` source, or a non-default entry of unknown source (a
/// broker before Kafka 1.1), or every entry of a broker that lists only topic settings.
/// Broker-wide settings (static or dynamic) are the source cluster's, not the topic's: never
/// copied.
pub fn topic_settings(entries: &[ConfigEntry]) -> Settings {
    let only_topic = lists_only_topic_settings(entries);
    entries
        .iter()
        .filter(|e| !e.is_read_only && !e.is_sensitive)
        .filter(|e| {
            only_topic
                || e.source == ConfigSource::DynamicTopic
                || (e.source == ConfigSource::Unknown && !e.is_default)
        })
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect()
}

/// Every value the broker reports for the topic, defaults included.
pub fn all_values(entries: &[ConfigEntry]) -> Settings {
    entries
        .iter()
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect()
}

/// `settings` without the excluded config names.
pub fn without_excluded(mut settings: Settings, exclude: &[Regex]) -> Settings {
    settings.retain(|name, _| !exclude.iter().any(|r| r.is_match(name)));
    settings
}

/// The changes that bring the remote topic in line with `desired` (the source's settings,
/// exclusions applied): a `Set` for every desired config whose value the target does not
/// report (`target_values`, defaults included), and a `Delete` for every config copied
/// before (`previous`) that the source no longer sets and that is still set on the remote
/// topic (`target_set`). Configs set on the remote topic by someone else are left alone.
pub fn changes(
    desired: &Settings,
    previous: Option<&Settings>,
    target_values: &Settings,
    target_set: &Settings,
) -> Vec<ConfigOp> {
    let mut ops: Vec<ConfigOp> = desired
        .iter()
        .filter(|(k, v)| target_values.get(*k) != Some(*v))
        .map(|(k, v)| ConfigOp::Set(k.clone(), v.clone()))
        .collect();
    if let Some(previous) = previous {
        ops.extend(
            previous
                .keys()
                .filter(|k| !desired.contains_key(*k) && target_set.contains_key(*k))
                .map(|k| ConfigOp::Delete(k.clone())),
        );
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, value: &str, source: ConfigSource, default: bool) -> ConfigEntry {
        ConfigEntry {
            name: name.into(),
            value: Some(value.into()),
            source,
            is_read_only: false,
            is_default: default,
            is_sensitive: false,
        }
    }

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kafka_descriptions_copy_only_topic_overrides() {
        let mut ro = entry(
            "message.format.version",
            "3.0",
            ConfigSource::DynamicTopic,
            false,
        );
        ro.is_read_only = true;
        let mut secret = entry("some.password", "x", ConfigSource::DynamicTopic, false);
        secret.is_sensitive = true;
        let entries = vec![
            entry(
                "cleanup.policy",
                "compact",
                ConfigSource::DynamicTopic,
                false,
            ),
            entry(
                "retention.ms",
                "604800000",
                ConfigSource::StaticBroker,
                false,
            ),
            entry(
                "segment.bytes",
                "1073741824",
                ConfigSource::DynamicDefaultBroker,
                false,
            ),
            entry(
                "segment.index.bytes",
                "10485760",
                ConfigSource::Default,
                true,
            ),
            entry("max.message.bytes", "2000", ConfigSource::Unknown, false),
            entry("flush.ms", "1", ConfigSource::Unknown, true),
            ro,
            secret,
        ];
        assert!(!lists_only_topic_settings(&entries));
        assert_eq!(
            topic_settings(&entries),
            settings(&[("cleanup.policy", "compact"), ("max.message.bytes", "2000")])
        );
    }

    #[test]
    fn a_broker_listing_only_topic_settings_as_defaults_has_them_copied() {
        // What tansu answers for a topic created with two configs.
        let entries = vec![
            entry("cleanup.policy", "compact", ConfigSource::Default, true),
            entry("retention.ms", "1234", ConfigSource::Default, true),
        ];
        assert!(lists_only_topic_settings(&entries));
        assert_eq!(
            topic_settings(&entries),
            settings(&[("cleanup.policy", "compact"), ("retention.ms", "1234")])
        );
        // A bare Apache Kafka topic on an unconfigured broker: every entry a default, the
        // always-described configs among them: nothing copied.
        let bare = vec![
            entry("cleanup.policy", "delete", ConfigSource::Default, true),
            entry(
                "segment.index.bytes",
                "10485760",
                ConfigSource::Default,
                true,
            ),
        ];
        assert!(topic_settings(&bare).is_empty());
    }

    #[test]
    fn exclusions_drop_matching_names() {
        let exclude = vec![
            Regex::new("^(?:min\\.insync\\.replicas)$").unwrap(),
            Regex::new("^(?:segment\\..*)$").unwrap(),
        ];
        let got = without_excluded(
            settings(&[
                ("min.insync.replicas", "2"),
                ("segment.ms", "100"),
                ("retention.ms", "5"),
                ("xmin.insync.replicas", "1"),
            ]),
            &exclude,
        );
        assert_eq!(
            got,
            settings(&[("retention.ms", "5"), ("xmin.insync.replicas", "1")])
        );
    }

    #[test]
    fn changes_set_what_differs_and_delete_only_what_was_copied() {
        let desired = settings(&[("cleanup.policy", "compact"), ("retention.ms", "10")]);
        let previous = settings(&[("retention.ms", "5"), ("max.message.bytes", "100")]);
        let target_values = settings(&[
            ("cleanup.policy", "compact"),
            ("retention.ms", "5"),
            ("max.message.bytes", "100"),
            ("segment.ms", "7"),
        ]);
        let target_set = settings(&[
            ("retention.ms", "5"),
            ("max.message.bytes", "100"),
            ("segment.ms", "7"),
        ]);
        let got = changes(&desired, Some(&previous), &target_values, &target_set);
        assert_eq!(
            got,
            vec![
                ConfigOp::Set("retention.ms".into(), "10".into()),
                ConfigOp::Delete("max.message.bytes".into()),
            ]
        );
        // Nothing copied before (a fresh start): no deletes, even of unknown target settings.
        assert_eq!(
            changes(&desired, None, &target_values, &target_set),
            vec![ConfigOp::Set("retention.ms".into(), "10".into())]
        );
        // In line: nothing to do.
        assert!(changes(&desired, Some(&desired), &desired, &desired).is_empty());
    }
}
