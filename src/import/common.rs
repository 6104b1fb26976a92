//! What every input kind shares: aliases, Event Hubs hosts, regex lists, durations, and the
//! MirrorMaker 2 connector settings (Strimzi `config:` maps and `.properties` alike).

use super::model::{Flow, Replication};

/// MirrorMaker 2's default `topics.exclude`.
pub(crate) const MM2_TOPICS_EXCLUDE: [&str; 3] = [r".*[\-\.]internal", r".*\.replica", "__.*"];
/// MirrorMaker 2's default `groups.exclude`.
pub(crate) const MM2_GROUPS_EXCLUDE: [&str; 3] = ["console-consumer-.*", "connect-.*", "__.*"];

/// `raw` as a hubmirror alias (`[a-z][a-z0-9_-]*`).
pub(crate) fn alias(raw: &str) -> String {
    let mut a: String = raw
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' | '-' => c,
            _ => '-',
        })
        .collect();
    if !a.starts_with(|c: char| c.is_ascii_lowercase()) {
        a.insert_str(0, "c-");
    }
    a
}

/// The first host of a bootstrap list, without scheme and port.
fn first_host(bootstrap: &str) -> &str {
    let first = bootstrap.split(',').next().unwrap_or("").trim();
    let first = first.split_once("://").map_or(first, |(_, rest)| rest);
    first.rsplit_once(':').map_or(first, |(host, _)| host)
}

/// Whether `bootstrap` is an Event Hubs namespace's own endpoint (`*.servicebus.*:9093`),
/// which the connection string implies.
pub(crate) fn is_event_hubs_endpoint(bootstrap: &str) -> bool {
    !bootstrap.contains(',')
        && first_host(bootstrap).contains(".servicebus.")
        && bootstrap.trim().ends_with(":9093")
}

/// An alias suggested by a bootstrap: Strimzi's `<cluster>-kafka-bootstrap` → `<cluster>`.
pub(crate) fn alias_from_bootstrap(bootstrap: &str) -> Option<String> {
    let host = first_host(bootstrap);
    let service = host.split('.').next()?;
    let cluster = service.strip_suffix("-kafka-bootstrap")?;
    Some(alias(cluster)).filter(|a| !cluster.is_empty() && a == cluster)
}

/// `NAME_SUFFIX` from an alias, as an environment variable name.
pub(crate) fn env_var(alias: &str, suffix: &str) -> String {
    let base: String = alias
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{base}_{suffix}")
}

/// A comma-separated MM2 list (`topics`, `groups`) as regexes; empty entries dropped.
pub(crate) fn regex_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Checks that every regex is one hubmirror accepts (Rust syntax, anchored).
pub(crate) fn check_regexes(list: &[String]) -> Result<(), String> {
    for re in list {
        if let Err(e) = regex::Regex::new(&format!("^(?:{re})$")) {
            let why = e.to_string();
            let last = why.lines().last().unwrap_or("").trim();
            return Err(format!(
                "`{re}` is not a regex hubmirror accepts ({last}); rewrite it without \
                 look-around or back-references"
            ));
        }
    }
    Ok(())
}

/// A whole number of seconds as a duration string.
pub(crate) fn seconds(value: &str) -> Result<i64, String> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| format!("`{value}` is not a whole number of seconds; write e.g. `60`"))
}

/// A Java boolean (`true`/`false`, any case).
pub(crate) fn boolean(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!(
            "`{value}` is not a boolean; write `true` or `false`"
        )),
    }
}

/// A setting's value as shown in a note: hidden when the key or the value looks secret.
pub(crate) fn shown(key: &str, value: &str) -> String {
    let k = key.to_ascii_lowercase();
    let secret_key = ["password", "jaas", "secret", "token", "credential", "key"]
        .iter()
        .any(|w| k.contains(w));
    let v = value.to_ascii_lowercase();
    if secret_key || v.contains("sharedaccesskey") || v.contains("endpoint=") {
        format!("{key}=<hidden>")
    } else {
        format!("{key}={value}")
    }
}

/// Sets `slot` to `value` unless another value is there already (one `replication:` serves
/// every flow); the note for a conflict.
fn set_once(slot: &mut Option<String>, name: &str, value: String) -> Option<String> {
    match slot {
        Some(old) if *old != value => Some(format!(
            "not carried over: {name} {value} from another mirror: one replication.{name} \
             serves every flow, {old} is kept"
        )),
        _ => {
            *slot = Some(value);
            None
        }
    }
}

/// What a MirrorMaker 2 connector setting became.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Applied {
    /// Carried over into the topology.
    Done,
    /// Not carried over, with this note.
    Note(String),
    /// Not a key this function knows.
    Unknown,
}

/// Applies one MirrorMaker 2 setting `key=value` to `r` (or `flow`); `Err` is a message
/// saying what is wrong with the value and the fix.
pub(crate) fn mm2_setting(
    r: &mut Replication,
    flow: &mut Flow,
    key: &str,
    value: &str,
) -> Result<Applied, String> {
    let note = |why: &str| Applied::Note(format!("not carried over: {}: {why}", shown(key, value)));
    let conflict = |n: Option<String>| n.map_or(Applied::Done, Applied::Note);
    Ok(match key {
        "replication.policy.class" => match value.rsplit('.').next().unwrap_or("") {
            "DefaultReplicationPolicy" => conflict(set_once(&mut r.policy, "policy", "default".into())),
            "IdentityReplicationPolicy" => conflict(set_once(&mut r.policy, "policy", "identity".into())),
            _ => note("a custom policy; hubmirror has `default` (<alias><separator><topic>) and `identity`: check the remote names with `hubmirror topics`"),
        },
        "replication.policy.separator" => {
            let ok = !value.is_empty()
                && value.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if !ok {
                return Ok(note("hubmirror separators use only letters, digits, `.`, `_`, `-`"));
            }
            conflict(set_once(&mut r.separator, "separator", value.to_string()))
        }
        "refresh.topics.interval.seconds" => match seconds(value)? {
            s if s > 0 => conflict(set_once(&mut r.refresh_topics_interval, "refresh_topics_interval", format!("{s}s"))),
            _ => note("hubmirror always refreshes topics; the default is 30s"),
        },
        "emit.heartbeats.interval.seconds" => {
            let s = seconds(value)?.max(0);
            conflict(set_once(&mut r.heartbeats_interval, "heartbeats_interval", format!("{s}s")))
        }
        "emit.checkpoints.interval.seconds" => match seconds(value)? {
            s if s > 0 => conflict(set_once(&mut r.checkpoints_interval, "checkpoints_interval", format!("{s}s"))),
            _ => note("hubmirror's checkpoint interval is positive; leave the flow's groups empty for no checkpoints"),
        },
        "sync.group.offsets.enabled" => {
            let v = boolean(value)?;
            match r.sync_group_offsets {
                Some(old) if old != v => Applied::Note(format!("not carried over: {key}={v} from another mirror: one replication.sync_group_offsets serves every flow, {old} is kept")),
                _ => {
                    r.sync_group_offsets = Some(v);
                    Applied::Done
                }
            }
        }
        "topics.exclude" | "topics.blacklist" => {
            flow.topics_exclude = regex_list(value);
            check_regexes(&flow.topics_exclude)?;
            Applied::Done
        }
        "groups.exclude" | "groups.blacklist" => {
            flow.groups_exclude = regex_list(value);
            check_regexes(&flow.groups_exclude)?;
            Applied::Done
        }
        "sync.topic.configs.enabled" if boolean(value)? => Applied::Done,
        "sync.topic.configs.enabled" => {
            r.sync_topic_configs = Some(false);
            Applied::Done
        }
        "consumer.auto.offset.reset" | "source.consumer.auto.offset.reset" if value == "latest" => {
            flow.start_from = Some("latest".to_string());
            Applied::Done
        }
        "consumer.auto.offset.reset" | "source.consumer.auto.offset.reset" if value == "earliest" => Applied::Done,
        "sync.topic.acls.enabled" => note("hubmirror does not copy ACLs; grant them on the target yourself"),
        "tasks.max" => note("hubmirror has no tasks: run more instances of the topology to share the partitions"),
        "replication.factor" => note("hubmirror creates remote topics with the target's default replication factor"),
        "offset.lag.max" | "offset-syncs.topic.location" => note("hubmirror keeps no offset-syncs topic: its store translates offsets exactly"),
        "sync.group.offsets.interval.seconds" | "refresh.groups.interval.seconds" => note("hubmirror lists and syncs groups at every checkpoint (replication.checkpoints_interval)"),
        "key.converter" | "value.converter" | "header.converter" => note("hubmirror copies keys, values and headers as bytes"),
        "emit.heartbeats.enabled" | "emit.checkpoints.enabled" | "enabled" => Applied::Done,
        k if k.ends_with(".replication.factor") || k.ends_with("topic.replication.factor") => {
            note("hubmirror's internal topics get the target's default replication factor")
        }
        k if k.starts_with("consumer.") || k.starts_with("producer.") || k.starts_with("admin.") => {
            note("client tuning: put the librdkafka equivalent, if it has one, under the cluster's `client:`")
        }
        _ => Applied::Unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_hosts() {
        assert_eq!(alias("DC1"), "dc1");
        assert_eq!(alias("1st.cluster"), "c-1st-cluster");
        assert_eq!(
            alias_from_bootstrap("my-cluster-kafka-bootstrap:9092").as_deref(),
            Some("my-cluster")
        );
        assert_eq!(
            alias_from_bootstrap("my-cluster-kafka-bootstrap.kafka.svc:9093").as_deref(),
            Some("my-cluster")
        );
        assert_eq!(alias_from_bootstrap("broker:9092"), None);
        assert!(is_event_hubs_endpoint("myns.servicebus.windows.net:9093"));
        assert!(!is_event_hubs_endpoint("127.0.0.1:9093"));
        assert_eq!(
            env_var("my-cluster", "SASL_PASSWORD"),
            "MY_CLUSTER_SASL_PASSWORD"
        );
    }

    #[test]
    fn regexes_and_values() {
        assert_eq!(regex_list("a, b.*,,"), vec!["a", "b.*"]);
        assert!(check_regexes(&["a|b".into()]).is_ok());
        let e = check_regexes(&["(?!x).*".into()]).unwrap_err();
        assert!(e.contains("look-around"), "{e}");
        assert_eq!(
            shown("a.sasl.jaas.config", "x"),
            "a.sasl.jaas.config=<hidden>"
        );
        assert_eq!(shown("tasks.max", "4"), "tasks.max=4");
        assert_eq!(
            shown("x", "Endpoint=sb://n/;SharedAccessKey=k"),
            "x=<hidden>"
        );
    }

    #[test]
    fn mm2_settings_map_or_explain() {
        let (mut r, mut f) = (Replication::default(), Flow::default());
        let mut set = |k: &str, v: &str| mm2_setting(&mut r, &mut f, k, v);
        assert_eq!(
            set(
                "replication.policy.class",
                "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"
            ),
            Ok(Applied::Done)
        );
        assert_eq!(
            set("emit.heartbeats.interval.seconds", "-1"),
            Ok(Applied::Done)
        );
        assert_eq!(
            set("refresh.topics.interval.seconds", "60"),
            Ok(Applied::Done)
        );
        assert_eq!(set("sync.group.offsets.enabled", "TRUE"), Ok(Applied::Done));
        assert!(matches!(set("tasks.max", "4"), Ok(Applied::Note(n)) if n.contains("tasks.max=4")));
        assert!(
            matches!(set("replication.policy.class", "x.DefaultReplicationPolicy"), Ok(Applied::Note(n)) if n.contains("identity is kept"))
        );
        assert_eq!(set("whatever", "1"), Ok(Applied::Unknown));
        assert!(set("emit.checkpoints.interval.seconds", "soon")
            .unwrap_err()
            .contains("whole number"));
        assert_eq!(r.policy.as_deref(), Some("identity"));
        assert_eq!(r.heartbeats_interval.as_deref(), Some("0s"));
        assert_eq!(r.refresh_topics_interval.as_deref(), Some("60s"));
        assert_eq!(r.sync_group_offsets, Some(true));
    }
}
