//! Remote topic names, MirrorMaker 2 style, and the name-based rules built on them.
//!
//! - `default` policy (MM2's DefaultReplicationPolicy): `orders` from `onprem` becomes
//!   `onprem.orders`; the name carries its source chain (`b.a.orders` came from `a` via `b`).
//! - `identity` policy (MM2's IdentityReplicationPolicy): names are kept, so the chain cannot be
//!   read off a name (hubmirror's origin headers catch loops instead) — except heartbeats, which
//!   are renamed `<alias>.heartbeats` under both policies, as in MM2, so upstream clusters and hop
//!   counts stay visible and heartbeats never loop.

use std::fmt;

use crate::topology::{Flow, Policy, Replication};

/// The heartbeats topic on every source cluster.
pub const HEARTBEATS_TOPIC: &str = "heartbeats";

/// The segments topic the flows from `source_alias` publish their offset-translation segments
/// to on their target (`hubmirror.segments.<source alias>.internal`, see `crate::segments`):
/// internal, so no flow replicates it and `topics` does not list it; named like hubmirror's
/// dead-letter topics (and MM2's `mm2-offset-syncs.<alias>.internal`), not like a topic
/// replicated from the source.
pub fn segments_topic(source_alias: &str) -> String {
    format!("hubmirror.segments.{source_alias}.internal")
}

/// Remote naming under one policy and separator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    policy: Policy,
    separator: String,
    /// Whether heartbeats are on (`heartbeats_interval` is not 0): off, no flow copies them.
    heartbeats: bool,
}

/// Why a flow leaves a source topic alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// `__*`, `.*`, `*.internal`, `*-internal` (including checkpoints topics).
    Internal,
    /// The topic came from the flow's target already (its name's source chain contains it).
    Cycle {
        /// The target alias found in the chain.
        target: String,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Internal => f.write_str("internal topic"),
            SkipReason::Cycle { target } => {
                write!(f, "already replicated from {target} (would loop)")
            }
        }
    }
}

impl Naming {
    /// Naming with `policy` and `separator` (non-empty).
    pub fn new(policy: Policy, separator: impl Into<String>) -> Self {
        Naming {
            policy,
            separator: separator.into(),
            heartbeats: true,
        }
    }

    /// The naming of a topology's `replication:` section (`heartbeats_interval: 0s` switches
    /// heartbeats off: none are emitted, and no flow copies a heartbeats topic).
    pub fn from_replication(r: &Replication) -> Self {
        Naming {
            heartbeats: !r.heartbeats_interval.is_zero(),
            ..Naming::new(r.policy, r.separator.clone())
        }
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The separator.
    pub fn separator(&self) -> &str {
        &self.separator
    }

    /// The name `topic` of cluster `source_alias` gets on the target.
    pub fn remote_topic(&self, source_alias: &str, topic: &str) -> String {
        match self.policy {
            Policy::Identity if !self.is_heartbeats(topic) => topic.to_string(),
            _ => format!("{source_alias}{}{topic}", self.separator),
        }
    }

    /// Whether the name is read as `<alias><sep><rest>` under this policy.
    fn names_carry_source(&self, topic: &str) -> bool {
        self.policy == Policy::Default || self.is_heartbeats(topic)
    }

    /// The alias a remote topic came from: the part before the first separator
    /// (`None` without one, or under `identity` for anything but heartbeats).
    pub fn topic_source<'t>(&self, topic: &'t str) -> Option<&'t str> {
        if !self.names_carry_source(topic) {
            return None;
        }
        match topic.split_once(self.separator.as_str()) {
            Some((alias, rest)) if !alias.is_empty() && !rest.is_empty() => Some(alias),
            _ => None,
        }
    }

    /// The topic's name on the cluster it came from: what follows the source alias
    /// (`None` when [`Self::topic_source`] is; the topic itself under `identity`).
    pub fn upstream_topic<'t>(&self, topic: &'t str) -> Option<&'t str> {
        if !self.names_carry_source(topic) {
            return Some(topic);
        }
        let alias = self.topic_source(topic)?;
        Some(&topic[alias.len() + self.separator.len()..])
    }

    /// The name on the cluster the records were first written to (`b.a.orders` → `orders`).
    pub fn original_topic<'t>(&self, topic: &'t str) -> &'t str {
        let mut t = topic;
        while let (Some(_), Some(up)) = (self.topic_source(t), self.upstream_topic(t)) {
            t = up;
        }
        t
    }

    /// The aliases read off the name, nearest first: `b.a.orders` → `[b, a]`. Empty under
    /// `identity` except for heartbeats (`b.a.heartbeats` → `[b, a]` under both policies).
    pub fn source_chain(&self, topic: &str) -> Vec<String> {
        let mut chain = Vec::new();
        let mut t = topic;
        while let Some(alias) = self.topic_source(t) {
            chain.push(alias.to_string());
            t = &t[alias.len() + self.separator.len()..];
        }
        chain
    }

    /// MM2's internal topics: `__*`, `.*`, `*.internal`, `*-internal`. Heartbeats are not.
    pub fn is_internal(&self, topic: &str) -> bool {
        topic.starts_with("__")
            || topic.starts_with('.')
            || topic.ends_with(".internal")
            || topic.ends_with("-internal")
    }

    /// `heartbeats`, or a replicated one (`<...><sep>heartbeats`).
    pub fn is_heartbeats(&self, topic: &str) -> bool {
        topic == HEARTBEATS_TOPIC
            || topic.strip_suffix(HEARTBEATS_TOPIC).is_some_and(|head| {
                head.len() > self.separator.len() && head.ends_with(&self.separator)
            })
    }

    /// The checkpoints topic a flow from `source_alias` writes on its target.
    pub fn checkpoints_topic(&self, source_alias: &str) -> String {
        format!("{source_alias}.checkpoints.internal")
    }

    /// MM2's `shouldReplicateTopic`: whether `flow` copies source topic `topic` — selected by
    /// its regexes, or a heartbeats topic (always replicated, so hop counts can be read off the
    /// names downstream) — and not skipped by [`Self::flow_skips_topic`].
    pub fn flow_replicates(&self, flow: &Flow, topic: &str) -> bool {
        (flow.selects_topic(topic) || self.is_heartbeats(topic))
            && self.flow_skips_topic(topic, &flow.target).is_none()
    }

    /// Whether `flow` copies `topic` when it runs: [`Self::flow_replicates`], and for a
    /// heartbeats topic, heartbeats are on (`heartbeats_interval` is not 0) and the target takes
    /// them (`target_heartbeats`: the target cluster's `heartbeats` switch). `run`, `topics` and
    /// `validate` all decide by this.
    pub fn flow_copies(&self, flow: &Flow, topic: &str, target_heartbeats: bool) -> bool {
        self.flow_replicates(flow, topic)
            && (!self.is_heartbeats(topic) || (self.heartbeats && target_heartbeats))
    }

    /// Whether a flow into `target_alias` must leave `topic` alone, and why: internal topics,
    /// and (by name) topics whose source chain already contains the target.
    pub fn flow_skips_topic(&self, topic: &str, target_alias: &str) -> Option<SkipReason> {
        if self.is_internal(topic) {
            return Some(SkipReason::Internal);
        }
        if self.source_chain(topic).iter().any(|a| a == target_alias) {
            return Some(SkipReason::Cycle {
                target: target_alias.to_string(),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default() -> Naming {
        Naming::new(Policy::Default, ".")
    }

    fn identity() -> Naming {
        Naming::new(Policy::Identity, ".")
    }

    #[test]
    fn remote_names() {
        let cases = [
            (default(), "onprem", "orders", "onprem.orders"),
            (default(), "onprem", "eh.orders", "onprem.eh.orders"),
            (default(), "onprem", "heartbeats", "onprem.heartbeats"),
            (identity(), "onprem", "orders", "orders"),
            (identity(), "onprem", "eh.orders", "eh.orders"),
            (identity(), "onprem", "heartbeats", "onprem.heartbeats"),
            (identity(), "b", "a.heartbeats", "b.a.heartbeats"),
            (Naming::new(Policy::Default, "__"), "a", "t", "a__t"),
        ];
        for (n, alias, topic, want) in cases {
            assert_eq!(n.remote_topic(alias, topic), want, "{n:?} {alias} {topic}");
        }
    }

    #[test]
    fn sources_and_upstreams() {
        let d = default();
        assert_eq!(d.topic_source("onprem.orders"), Some("onprem"));
        assert_eq!(d.upstream_topic("onprem.orders"), Some("orders"));
        assert_eq!(d.topic_source("b.a.orders"), Some("b"));
        assert_eq!(d.upstream_topic("b.a.orders"), Some("a.orders"));
        assert_eq!(d.topic_source("orders"), None);
        assert_eq!(d.upstream_topic("orders"), None);
        assert_eq!(d.topic_source(".x"), None);
        assert_eq!(d.original_topic("b.a.orders"), "orders");
        let i = identity();
        assert_eq!(i.topic_source("onprem.orders"), None);
        assert_eq!(i.upstream_topic("onprem.orders"), Some("onprem.orders"));
        assert_eq!(i.topic_source("onprem.heartbeats"), Some("onprem"));
        assert_eq!(i.upstream_topic("onprem.heartbeats"), Some("heartbeats"));
        assert_eq!(i.original_topic("a.orders"), "a.orders");
        let u = Naming::new(Policy::Default, "_x_");
        assert_eq!(u.topic_source("a_x_b_x_t"), Some("a"));
        assert_eq!(u.source_chain("a_x_b_x_t"), vec!["a", "b"]);
    }

    #[test]
    fn source_chains() {
        let d = default();
        assert_eq!(d.source_chain("b.a.orders"), vec!["b", "a"]);
        assert_eq!(d.source_chain("orders"), Vec::<String>::new());
        assert_eq!(d.source_chain("b.a.heartbeats"), vec!["b", "a"]);
        let i = identity();
        assert!(i.source_chain("b.a.orders").is_empty());
        assert_eq!(i.source_chain("b.a.heartbeats"), vec!["b", "a"]);
        assert!(i.source_chain("heartbeats").is_empty());
    }

    #[test]
    fn internal_and_heartbeats() {
        let d = default();
        for t in [
            "__consumer_offsets",
            ".hidden",
            "onprem.checkpoints.internal",
            "mm2-offsets.internal",
            "connect-internal",
        ] {
            assert!(d.is_internal(t), "{t}");
        }
        for t in [
            "heartbeats",
            "onprem.heartbeats",
            "orders",
            "internal",
            "a_internal",
        ] {
            assert!(!d.is_internal(t), "{t}");
        }
        for t in ["heartbeats", "onprem.heartbeats", "b.a.heartbeats"] {
            assert!(d.is_heartbeats(t), "{t}");
        }
        for t in ["myheartbeats", "heartbeats.x", ".heartbeats", "heartbeat"] {
            assert!(!d.is_heartbeats(t), "{t}");
        }
        assert!(Naming::new(Policy::Default, "-").is_heartbeats("a-heartbeats"));
        assert_eq!(d.checkpoints_topic("onprem"), "onprem.checkpoints.internal");
        assert_eq!(
            segments_topic("onprem"),
            "hubmirror.segments.onprem.internal"
        );
        for n in [default(), identity()] {
            assert!(n.is_internal(&segments_topic("onprem")));
            assert_eq!(
                n.flow_skips_topic(&segments_topic("onprem"), "eh"),
                Some(SkipReason::Internal)
            );
        }
    }

    #[test]
    fn flow_replicates_selected_and_heartbeats() {
        let re = |p: &str| regex::Regex::new(&format!("^(?:{p})$")).expect("regex");
        let flow = Flow {
            source: "onprem".into(),
            target: "eh".into(),
            group: "hubmirror-onprem-eh".into(),
            topics: vec![re("orders.*")],
            topics_exclude: vec![re("orders-tmp")],
            groups: vec![],
            groups_exclude: vec![],
            oversize: Default::default(),
            dead_letter_topic: "hubmirror.dead-letter.eh.internal".into(),
            on_data_loss: Default::default(),
            start_from: Default::default(),
        };
        let d = default();
        assert!(d.flow_replicates(&flow, "orders"));
        assert!(!d.flow_replicates(&flow, "orders-tmp"));
        assert!(!d.flow_replicates(&flow, "payments"));
        assert!(d.flow_replicates(&flow, "heartbeats"));
        assert!(d.flow_replicates(&flow, "x.heartbeats"));
        assert!(!d.flow_replicates(&flow, "eh.heartbeats"), "loop");
        assert!(!d.flow_replicates(&flow, "orders.internal"));
        // What a running flow copies: no heartbeats into a target with `heartbeats: false`,
        // none at all with `heartbeats_interval: 0s`; other topics either way.
        assert!(d.flow_copies(&flow, "heartbeats", true));
        assert!(!d.flow_copies(&flow, "x.heartbeats", false));
        assert!(d.flow_copies(&flow, "orders", false));
        let off = Naming {
            heartbeats: false,
            ..default()
        };
        assert!(!off.flow_copies(&flow, "heartbeats", true));
        assert!(off.flow_copies(&flow, "orders", true));
    }

    #[test]
    fn flow_skips() {
        let d = default();
        assert_eq!(
            d.flow_skips_topic("__consumer_offsets", "eh"),
            Some(SkipReason::Internal)
        );
        assert_eq!(
            d.flow_skips_topic("eh.orders", "eh"),
            Some(SkipReason::Cycle {
                target: "eh".into()
            })
        );
        assert_eq!(
            d.flow_skips_topic("x.eh.orders", "eh"),
            Some(SkipReason::Cycle {
                target: "eh".into()
            })
        );
        assert_eq!(d.flow_skips_topic("onprem.orders", "eh"), None);
        assert_eq!(d.flow_skips_topic("heartbeats", "eh"), None);
        assert_eq!(
            d.flow_skips_topic("eh.heartbeats", "eh"),
            Some(SkipReason::Cycle {
                target: "eh".into()
            })
        );
        let i = identity();
        assert_eq!(
            i.flow_skips_topic("eh.orders", "eh"),
            None,
            "identity can't tell"
        );
        assert_eq!(
            i.flow_skips_topic("eh.heartbeats", "eh"),
            Some(SkipReason::Cycle {
                target: "eh".into()
            })
        );
        assert_eq!(
            SkipReason::Cycle {
                target: "eh".into()
            }
            .to_string(),
            "already replicated from eh (would loop)"
        );
    }
}
