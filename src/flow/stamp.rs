//! Which target a committed source offset was written for.
//!
//! A flow's consumer group is named by the deployment and the two aliases, so another
//! deployment with the same names — an alias pointed at a new cluster, a staging copy of the
//! topology — finds offsets that were committed for a different target. Resuming from them
//! would skip everything below them on the new target, silently. So every commit carries a
//! stamp in its metadata (free text; Event Hubs keeps up to 1,024 bytes) naming the target:
//!
//! `hubmirror/1 target=<alias> cluster=<cluster id or -> topic=<remote topic> servers=<bootstrap>`
//!
//! (cut at 1,000 bytes: a very long bootstrap list loses its tail, the same way every time)
//!
//! and before resuming the flow [judges](CommitStamp::judge) the stamp it finds. The alias is
//! for people reading it; the identity of the target is its cluster id (Kafka clusters, when
//! both sides know it), else its bootstrap servers (always for Event Hubs, whose namespace host
//! is its identity), plus the remote topic. Brokers that drop commit metadata (tansu) give no
//! stamp at all: see [`Verdict::Unstamped`].

use std::time::Duration;

use rdkafka::producer::Producer;

use super::board::FlowProducer;
use crate::shutdown::CancellationToken;
use crate::topology::Cluster;

/// How long asking the target for its cluster id may take.
const CLUSTER_ID_TIMEOUT: Duration = Duration::from_secs(10);

/// The first word of every stamp (and its format version).
const MAGIC: &str = "hubmirror/1";
/// The longest stamp written (Event Hubs keeps 1,024 bytes of commit metadata).
const MAX_LEN: usize = 1_000;

/// The stamp of one flow's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStamp {
    target: String,
    cluster_id: Option<String>,
    servers: String,
    /// The servers alone identify the target (Event Hubs), whatever the cluster id says.
    servers_only: bool,
}

/// What a committed offset's metadata says about where it was committed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Written by this flow for this target and topic.
    Ours,
    /// Written by hubmirror for another target or topic: what differs, for the log line.
    Foreign(String),
    /// No hubmirror stamp (the broker dropped the metadata, or something else committed it).
    Unstamped,
}

impl CommitStamp {
    /// The stamp of target `alias` at `servers` (`host:port[,...]`) whose cluster id is
    /// `cluster_id` when the target reported one. `event_hubs`: the servers alone identify it.
    pub fn new(alias: &str, servers: &str, cluster_id: Option<String>, event_hubs: bool) -> Self {
        let mut list: Vec<String> = servers
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        list.sort();
        list.dedup();
        CommitStamp {
            target: word(alias),
            cluster_id: cluster_id.map(|c| word(&c)).filter(|c| !c.is_empty()),
            servers: word(&list.join(",")),
            servers_only: event_hubs,
        }
    }

    /// The metadata to commit with an offset of a partition copied into `remote_topic`.
    pub fn render(&self, remote_topic: &str) -> String {
        let mut s = format!(
            "{MAGIC} target={} cluster={} topic={} servers={}",
            self.target,
            self.cluster_id.as_deref().unwrap_or("-"),
            word(remote_topic),
            self.servers,
        );
        if s.len() > MAX_LEN {
            let mut end = MAX_LEN;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
        }
        s
    }

    /// Whether `metadata`, committed with an offset, was written for this target and
    /// `remote_topic`.
    pub fn judge(&self, metadata: &str, remote_topic: &str) -> Verdict {
        let Some(found) = Fields::parse(metadata) else {
            return Verdict::Unstamped;
        };
        let expected = self.render(remote_topic);
        let Some(want) = Fields::parse(&expected) else {
            return Verdict::Unstamped;
        };
        let mut differs = Vec::new();
        if found.topic != want.topic {
            differs.push(format!("topic '{}'", found.topic));
        }
        let ids_known = found.cluster != "-" && want.cluster != "-";
        if ids_known && found.cluster != want.cluster {
            differs.push(format!("cluster id {}", found.cluster));
        }
        let ids_agree = ids_known && found.cluster == want.cluster && !self.servers_only;
        if found.servers != want.servers && !ids_agree {
            differs.push(format!("servers {}", found.servers));
        }
        if differs.is_empty() {
            Verdict::Ours
        } else {
            Verdict::Foreign(format!(
                "target '{}' ({})",
                found.target,
                differs.join(", ")
            ))
        }
    }
}

/// The stamp of `target`, asking it for its cluster id through the flow's producer (none when
/// it does not answer in time, or when `shutdown` comes first).
pub async fn for_target(
    target: &Cluster,
    producer: &FlowProducer,
    shutdown: &CancellationToken,
) -> CommitStamp {
    let p = producer.clone();
    let ask = tokio::task::spawn_blocking(move || p.client().fetch_cluster_id(CLUSTER_ID_TIMEOUT));
    let cluster_id = tokio::select! {
        id = ask => id.ok().flatten(),
        _ = shutdown.cancelled() => None,
    };
    CommitStamp::new(
        &target.alias,
        &target.bootstrap_servers,
        cluster_id,
        target.event_hubs.is_some(),
    )
}

/// The fields of a stamp.
struct Fields<'a> {
    target: &'a str,
    cluster: &'a str,
    servers: &'a str,
    topic: &'a str,
}

impl<'a> Fields<'a> {
    fn parse(s: &'a str) -> Option<Fields<'a>> {
        let mut words = s.split(' ');
        if words.next()? != MAGIC {
            return None;
        }
        let mut f = Fields {
            target: "",
            cluster: "-",
            servers: "",
            topic: "",
        };
        for w in words {
            let (k, v) = w.split_once('=')?;
            match k {
                "target" => f.target = v,
                "cluster" => f.cluster = v,
                "servers" => f.servers = v,
                "topic" => f.topic = v,
                _ => {}
            }
        }
        Some(f)
    }
}

/// `s` as one word of a stamp (no spaces; `=` is allowed in values).
fn word(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka(servers: &str, id: Option<&str>) -> CommitStamp {
        CommitStamp::new("azure", servers, id.map(String::from), false)
    }

    #[test]
    fn a_stamp_is_ours_for_the_same_target_and_topic() {
        let s = kafka("b1:9092, B2:9092", Some("abc"));
        let m = s.render("onprem.orders");
        assert_eq!(
            m,
            "hubmirror/1 target=azure cluster=abc topic=onprem.orders servers=b1:9092,b2:9092"
        );
        assert_eq!(s.judge(&m, "onprem.orders"), Verdict::Ours);
        // The same servers listed in another order are the same target.
        assert_eq!(
            kafka("b2:9092,b1:9092", Some("abc")).judge(&m, "onprem.orders"),
            Verdict::Ours
        );
    }

    #[test]
    fn another_cluster_or_topic_is_foreign() {
        let m = kafka("b1:9092", Some("abc")).render("onprem.orders");
        let v = kafka("c1:9092", Some("xyz")).judge(&m, "onprem.orders");
        assert_eq!(
            v,
            Verdict::Foreign("target 'azure' (cluster id abc, servers b1:9092)".into())
        );
        // Same cluster, another remote topic (the naming policy changed).
        assert!(matches!(
            kafka("b1:9092", Some("abc")).judge(&m, "orders"),
            Verdict::Foreign(w) if w.contains("topic 'onprem.orders'")
        ));
        // Unknown cluster ids: the servers decide.
        let m = kafka("b1:9092", None).render("t");
        assert!(matches!(
            kafka("c1:9092", None).judge(&m, "t"),
            Verdict::Foreign(_)
        ));
        assert_eq!(kafka("b1:9092", None).judge(&m, "t"), Verdict::Ours);
        assert_eq!(kafka("b1:9092", Some("abc")).judge(&m, "t"), Verdict::Ours);
    }

    #[test]
    fn a_kafka_cluster_keeps_its_identity_when_its_bootstrap_list_changes() {
        let m = kafka("b1:9092", Some("abc")).render("t");
        assert_eq!(
            kafka("b1:9092,b2:9092", Some("abc")).judge(&m, "t"),
            Verdict::Ours
        );
    }

    #[test]
    fn an_event_hubs_namespace_is_its_host_whatever_the_cluster_id() {
        let old = CommitStamp::new(
            "eh",
            "old.servicebus.windows.net:9093",
            Some("x".into()),
            true,
        );
        let new = CommitStamp::new(
            "eh",
            "new.servicebus.windows.net:9093",
            Some("x".into()),
            true,
        );
        assert!(matches!(
            new.judge(&old.render("t"), "t"),
            Verdict::Foreign(w) if w.contains("servers old.servicebus.windows.net:9093")
        ));
        assert_eq!(old.judge(&old.render("t"), "t"), Verdict::Ours);
    }

    #[test]
    fn metadata_that_is_not_a_stamp_is_unstamped() {
        let s = kafka("b1:9092", None);
        for m in [
            "",
            "hubmirror",
            "something else",
            "hubmirror/2 target=a",
            "hubmirror/1 junk",
        ] {
            assert_eq!(s.judge(m, "t"), Verdict::Unstamped, "{m:?}");
        }
    }

    #[test]
    fn stamps_stay_within_what_event_hubs_keeps() {
        let servers: Vec<String> = (0..200)
            .map(|i| format!("broker-{i}.example.com:9092"))
            .collect();
        let s = kafka(&servers.join(","), Some("abc"));
        let m = s.render("t");
        assert!(m.len() <= MAX_LEN, "{}", m.len());
        assert_eq!(s.judge(&m, "t"), Verdict::Ours);
        assert!(!CommitStamp::new("a b", "h:1", Some("id x".into()), false)
            .render("t")
            .contains("a b"));
    }
}
