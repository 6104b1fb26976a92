//! What a flow's consumer learns from librdkafka's statistics (`statistics.interval.ms`):
//! the source's watermarks per partition (for `hubmirror_lag_records`), whether responses still
//! arrive (for `/readyz`), and whether the consumer has joined its group (then the group
//! coordinator answers its heartbeats every second, even when it owns no partition). Only the
//! few fields used are parsed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// How often flow consumers emit statistics.
pub const STATS_INTERVAL_MS: &str = "1000";

/// The latest statistics of one consumer; shared between its context (writer) and the flow's
/// status (reader).
#[derive(Debug, Default)]
pub struct ConsumerStats {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// (topic, partition) → (low, high) watermark.
    watermarks: HashMap<(String, i32), (i64, i64)>,
    /// Responses received from every broker, at the last update.
    rx: u64,
    /// When `rx` last grew.
    rx_grew: Option<Instant>,
    /// Whether the consumer has taken part in its group's membership (subscribed) since the
    /// last restart.
    joined: bool,
}

/// The subset of librdkafka's statistics JSON hubmirror reads.
#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    brokers: HashMap<String, RawBroker>,
    #[serde(default)]
    topics: HashMap<String, RawTopic>,
    /// Present when the client has a `group.id`.
    #[serde(default)]
    cgrp: Option<RawGroup>,
}

#[derive(Deserialize)]
struct RawGroup {
    /// `up` while the coordinator is known and reachable.
    #[serde(default)]
    state: String,
    /// `init` until the consumer subscribes; then `wait-join`, ..., `steady`.
    #[serde(default)]
    join_state: String,
}

impl Raw {
    /// Whether the consumer is rejoining its group over a live connection to the coordinator:
    /// its JoinGroup or SyncGroup waits there until every member has rejoined, and no heartbeat
    /// goes out meanwhile, so no response arriving is no sign of trouble.
    fn rejoining(&self) -> bool {
        let waiting = self.cgrp.as_ref().is_some_and(|g| {
            g.state == "up" && matches!(g.join_state.as_str(), "wait-join" | "wait-sync")
        });
        waiting
            && self
                .brokers
                .values()
                .any(|b| b.source == "logical" && b.name == "GroupCoordinator" && b.state == "UP")
    }
}

#[derive(Deserialize)]
struct RawBroker {
    #[serde(default)]
    rx: u64,
    /// `GroupCoordinator` for the connection to the group's coordinator.
    #[serde(default)]
    name: String,
    /// `logical` for the coordinator's connection.
    #[serde(default)]
    source: String,
    /// `UP` while connected.
    #[serde(default)]
    state: String,
}

#[derive(Deserialize)]
struct RawTopic {
    #[serde(default)]
    partitions: HashMap<String, RawPartition>,
}

#[derive(Deserialize)]
struct RawPartition {
    partition: i32,
    #[serde(default = "invalid")]
    lo_offset: i64,
    #[serde(default = "invalid")]
    hi_offset: i64,
}

fn invalid() -> i64 {
    -1
}

impl ConsumerStats {
    /// Takes in one statistics JSON document; malformed ones are ignored.
    pub fn update(&self, json: &[u8]) {
        let Ok(raw) = serde_json::from_slice::<Raw>(json) else {
            return;
        };
        let rx: u64 = raw.brokers.values().map(|b| b.rx).sum();
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if rx != inner.rx || raw.rejoining() {
            inner.rx = rx;
            inner.rx_grew = Some(Instant::now());
        }
        if raw
            .cgrp
            .is_some_and(|g| !g.join_state.is_empty() && g.join_state != "init")
        {
            inner.joined = true;
        }
        for (topic, t) in raw.topics {
            // Partition -1 is librdkafka's internal "unassigned" partition.
            for p in t.partitions.into_values().filter(|p| p.partition >= 0) {
                if p.hi_offset >= 0 {
                    inner
                        .watermarks
                        .insert((topic.clone(), p.partition), (p.lo_offset, p.hi_offset));
                }
            }
        }
    }

    /// Forgets response progress: called when a new consumer takes over these statistics (a
    /// flow restart), so the previous consumer's last response does not count against the new
    /// one before its first statistics arrive. Watermarks stay: they are still the latest known.
    pub fn restart(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.rx = 0;
            inner.rx_grew = None;
            inner.joined = false;
        }
    }

    /// Whether the consumer has joined its consumer group (subscribed, rather than assigned
    /// partitions by hand) since the last [`restart`](Self::restart): a member is answered by
    /// the group coordinator every heartbeat, so silence means the cluster is out of reach even
    /// when the member owns no partition.
    pub fn joined_group(&self) -> bool {
        self.inner.lock().map(|i| i.joined).unwrap_or(false)
    }

    /// Pretends the last response arrived `ago` before now.
    #[cfg(test)]
    pub(crate) fn last_response_ago(&self, ago: Duration) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.rx_grew = Instant::now().checked_sub(ago);
        }
    }

    /// The (low, high) watermark of a partition, when a fetch response has told it.
    pub fn watermarks(&self, topic: &str, partition: i32) -> Option<(i64, i64)> {
        let inner = self.inner.lock().ok()?;
        inner
            .watermarks
            .get(&(topic.to_string(), partition))
            .copied()
    }

    /// Whether responses from the cluster arrived within `within`; `None` before the first
    /// statistics (statistics switched off, or not emitted yet).
    pub fn responsive(&self, within: Duration) -> Option<bool> {
        self.responsive_at(Instant::now(), within)
    }

    fn responsive_at(&self, now: Instant, within: Duration) -> Option<bool> {
        let inner = self.inner.lock().ok()?;
        inner
            .rx_grew
            .map(|t| now.saturating_duration_since(t) <= within)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"brokers":{"b/1":{"rx":10,"state":"UP"},"b/bootstrap":{"rx":2}},
        "topics":{"orders":{"partitions":{
            "0":{"partition":0,"lo_offset":0,"hi_offset":42,"fetch_state":"active"},
            "-1":{"partition":-1,"lo_offset":-1,"hi_offset":-1}}}}}"#;

    #[test]
    fn reads_watermarks_and_response_progress() {
        let s = ConsumerStats::default();
        assert_eq!(s.responsive(Duration::from_secs(5)), None);
        s.update(DOC.as_bytes());
        assert_eq!(s.watermarks("orders", 0), Some((0, 42)));
        assert_eq!(s.watermarks("orders", -1), None);
        assert_eq!(s.responsive(Duration::from_secs(5)), Some(true));
        // The same rx count again: no progress since the first update, so a second later it
        // is not responsive within 10 ms.
        s.update(DOC.as_bytes());
        let later = Instant::now() + Duration::from_secs(1);
        assert_eq!(
            s.responsive_at(later, Duration::from_millis(10)),
            Some(false)
        );
        assert_eq!(s.responsive_at(later, Duration::from_secs(5)), Some(true));
        s.update(b"not json");
        assert_eq!(s.watermarks("orders", 0), Some((0, 42)));
    }

    #[test]
    fn a_subscribed_consumer_has_joined_its_group_until_the_next_restart() {
        let s = ConsumerStats::default();
        s.update(DOC.as_bytes());
        assert!(!s.joined_group(), "no cgrp: no group");
        s.update(br#"{"brokers":{"b/1":{"rx":1}},"cgrp":{"state":"up","join_state":"init"}}"#);
        assert!(!s.joined_group(), "assigned by hand: never leaves init");
        s.update(br#"{"brokers":{"b/1":{"rx":2}},"cgrp":{"state":"up","join_state":"wait-join"}}"#);
        assert!(s.joined_group());
        // Back to init after a lost session: still a member that should hear heartbeats.
        s.update(br#"{"brokers":{"b/1":{"rx":3}},"cgrp":{"state":"up","join_state":"init"}}"#);
        assert!(s.joined_group());
        s.restart();
        assert!(!s.joined_group());
    }

    #[test]
    fn a_member_rejoining_over_a_live_coordinator_connection_counts_as_heard_from() {
        let s = ConsumerStats::default();
        let doc = |join: &str, coordinator: &str| {
            format!(
                r#"{{"brokers":{{"b/1":{{"rx":5}},"GroupCoordinator":{{"rx":3,"name":"GroupCoordinator","source":"logical","state":"{coordinator}"}}}},"cgrp":{{"state":"up","join_state":"{join}"}}}}"#
            )
        };
        s.update(doc("steady", "UP").as_bytes());
        let later = Instant::now() + Duration::from_secs(10);
        assert_eq!(s.responsive_at(later, Duration::from_secs(5)), Some(false));
        // The same counts, but the JoinGroup waits at the coordinator: progress.
        s.update(doc("wait-join", "UP").as_bytes());
        assert_eq!(s.responsive(Duration::from_secs(5)), Some(true));
        s.last_response_ago(Duration::from_secs(10));
        // Rejoining with the coordinator's connection down: no progress.
        s.update(doc("wait-join", "DOWN").as_bytes());
        assert_eq!(s.responsive(Duration::from_secs(5)), Some(false));
        s.update(doc("steady", "UP").as_bytes());
        assert_eq!(s.responsive(Duration::from_secs(5)), Some(false));
    }

    #[test]
    fn a_restart_forgets_the_previous_consumers_responses() {
        let s = ConsumerStats::default();
        s.update(DOC.as_bytes());
        let later = Instant::now() + Duration::from_secs(10);
        assert_eq!(s.responsive_at(later, Duration::from_secs(5)), Some(false));
        s.restart();
        assert_eq!(s.responsive_at(later, Duration::from_secs(5)), None);
        assert_eq!(s.watermarks("orders", 0), Some((0, 42)));
        // The new consumer's first statistics count as progress even with a smaller count.
        s.update(br#"{"brokers":{"b/1":{"rx":1}}}"#);
        assert_eq!(s.responsive(Duration::from_secs(5)), Some(true));
    }
}
