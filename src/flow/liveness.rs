//! When a flow's consumer last heard from its group coordinator ([`Liveness`]), from the
//! assignments it gets and from its statistics; the consume loop stops copying when that is
//! too long ago (see `consume::park`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When this instance last heard from the group coordinator, and how long that holds.
///
/// Proofs come from the assignments the coordinator sends and from the consumer's statistics
/// (every second): while the consumer is a steady member, the age of the last response of the
/// coordinator's connection (heartbeats go out every second). An instance frozen or cut off from
/// the coordinator gets no new proof; one whose assignment was lost is fenced for the rest of
/// the run.
pub struct Liveness {
    base: Instant,
    /// Nanoseconds after `base` until which the instance may produce.
    until_ns: AtomicU64,
    /// How long one proof of membership holds: half the session timeout.
    window: Duration,
    /// Set when the assignment was lost: no proof counts any more.
    fenced: AtomicBool,
    /// Nanoseconds after `base` since when every statistics snapshot showed a steady member
    /// that heard from the coordinator (0: not steady now).
    steady_since_ns: AtomicU64,
}

/// How long the membership must hold, steady and heard from, before parked copying resumes.
pub const SETTLE: Duration = Duration::from_secs(2);

impl Liveness {
    /// A liveness with no proof yet; each proof holds for `window`. Create it just before the
    /// consumer whose statistics it reads (their `age` counts from then).
    pub fn new(window: Duration) -> Self {
        Liveness {
            base: Instant::now(),
            until_ns: AtomicU64::new(0),
            window,
            fenced: AtomicBool::new(false),
            steady_since_ns: AtomicU64::new(0),
        }
    }

    /// The coordinator answered a request sent at `at` as to a member of the group.
    pub fn prove(&self, at: Instant) {
        let until = at.saturating_duration_since(self.base) + self.window;
        self.until_ns
            .fetch_max(until.as_nanos() as u64, Ordering::AcqRel);
    }

    /// Whether the last proof still holds at `now`.
    pub fn alive(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.base).as_nanos() as u64;
        elapsed < self.until_ns.load(Ordering::Acquire) && !self.fenced.load(Ordering::Acquire)
    }

    /// Whether the last proof holds at `now` and the member has been steady and heard from for
    /// [`SETTLE`] (parked copying resumes only then).
    pub fn settled(&self, now: Instant) -> bool {
        let since = self.steady_since_ns.load(Ordering::Acquire);
        let elapsed = now.saturating_duration_since(self.base).as_nanos() as u64;
        self.alive(now) && since != 0 && elapsed >= since + SETTLE.as_nanos() as u64
    }

    /// The assignment was lost: nothing more may be produced in this run.
    pub fn fence(&self) {
        self.fenced.store(true, Ordering::Release);
        self.steady_since_ns.store(0, Ordering::Release);
    }

    /// Whether the assignment was lost in this run.
    pub fn fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }

    /// Takes a proof from the consumer's statistics: a member whose coordinator connection last
    /// received a response `rxidle` µs before the statistics were taken heard from the
    /// coordinator then (heartbeats go out every second). When they were taken is the client's
    /// creation (`base`, just before it) plus their `age`, not when they are read: statistics
    /// queue behind the records already fetched, and a late reading must not look fresh. Only a response counts: a member waiting for its JoinGroup to be answered
    /// cannot tell a coordinator that holds the request (a rebalance waiting for the others)
    /// from one that never got it (a network cut), and only in the second case does the
    /// coordinator give its partitions away after the session timeout. So a rebalance that keeps
    /// a member waiting for longer than the window stops its copying too: the run restarts and
    /// rejoins, at the cost of a restart, never of a duplicate.
    pub(super) fn prove_from_stats(&self, json: &[u8], now: Instant) {
        let Ok(stats) = serde_json::from_slice::<RawStats>(json) else {
            return;
        };
        let steady = stats
            .cgrp
            .as_ref()
            .is_some_and(|g| g.state == "up" && g.join_state == "steady");
        if !steady {
            self.steady_since_ns.store(0, Ordering::Release);
        }
        if stats.cgrp.as_ref().is_none_or(|g| g.state != "up") {
            return;
        }
        let Some(coordinator) = stats
            .brokers
            .values()
            .find(|b| b.source == "logical" && b.name == "GroupCoordinator")
        else {
            return;
        };
        let (Ok(idle), Ok(age)) = (u64::try_from(coordinator.rxidle), u64::try_from(stats.age))
        else {
            return;
        };
        let taken = (self.base + Duration::from_micros(age)).min(now);
        if let Some(at) = taken.checked_sub(Duration::from_micros(idle)) {
            self.prove(at);
            let fresh = taken.saturating_duration_since(at) < self.window;
            let taken_ns = taken.saturating_duration_since(self.base).as_nanos() as u64;
            if steady && fresh {
                let _ = self.steady_since_ns.compare_exchange(
                    0,
                    taken_ns.max(1),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            } else {
                self.steady_since_ns.store(0, Ordering::Release);
            }
        }
    }

    /// How long one proof holds.
    pub fn window(&self) -> Duration {
        self.window
    }
}

/// The few statistics fields [`Liveness`] reads.
#[derive(serde::Deserialize)]
struct RawStats {
    /// µs since the client was created.
    #[serde(default = "minus_one")]
    age: i64,
    #[serde(default)]
    brokers: std::collections::HashMap<String, RawBroker>,
    cgrp: Option<RawGroup>,
}

#[derive(serde::Deserialize)]
struct RawBroker {
    #[serde(default)]
    name: String,
    #[serde(default)]
    source: String,
    /// µs since the last response on this connection; -1 when none.
    #[serde(default = "minus_one")]
    rxidle: i64,
}

#[derive(serde::Deserialize)]
struct RawGroup {
    #[serde(default)]
    state: String,
    #[serde(default)]
    join_state: String,
}

fn minus_one() -> i64 {
    -1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_holds_for_its_window_only() {
        let l = Liveness::new(Duration::from_secs(5));
        let now = Instant::now();
        assert!(!l.alive(now), "no proof yet");
        l.prove(now);
        assert!(l.alive(now + Duration::from_secs(4)));
        assert!(!l.alive(now + Duration::from_secs(5)));
        // An older proof never shortens a newer one.
        l.prove(now - Duration::from_secs(3));
        assert!(l.alive(now + Duration::from_secs(4)));
        l.fence();
        assert!(!l.alive(now), "a lost assignment fences the run");
    }

    #[test]
    fn statistics_prove_membership_by_the_coordinator_connection() {
        // Taken 60 s after the client was created (`age`), read at about that moment.
        let stats_at = |age_s: i64, state: &str, join: &str, rxidle: i64| {
            format!(
                r#"{{"age":{age},"brokers":{{"b:9092/1":{{"name":"b:9092/1","source":"learned","rxidle":10}},
                "GroupCoordinator":{{"name":"GroupCoordinator","source":"logical","state":"UP","rxidle":{rxidle}}}}},
                "cgrp":{{"state":"{state}","join_state":"{join}"}}}}"#,
                age = age_s * 1_000_000
            )
        };
        let stats_in = |state: &str, join: &str, rxidle: i64| stats_at(60, state, join, rxidle);
        let stats = |state: &str, rxidle: i64| stats_in(state, "steady", rxidle);
        let l = Liveness::new(Duration::from_secs(5));
        let now = l.base + Duration::from_secs(60);
        // Last heard 7 s ago: too old to hold now.
        l.prove_from_stats(stats("up", 7_000_000).as_bytes(), now);
        assert!(!l.alive(now));
        // Not a steady member: no proof, however fresh the connection.
        l.prove_from_stats(stats("wait-coord", 1_000).as_bytes(), now);
        assert!(!l.alive(now));
        l.prove_from_stats(stats("up", 900_000).as_bytes(), now);
        assert!(l.alive(now));
        assert!(!l.alive(now + Duration::from_secs(5)));
        // Statistics taken 20 s ago and read only now (they queued behind fetched records):
        // heard from 20.5 s ago, not 0.5 s.
        let l = Liveness::new(Duration::from_secs(5));
        let now = l.base + Duration::from_secs(60);
        l.prove_from_stats(stats_at(40, "up", "steady", 500_000).as_bytes(), now);
        assert!(!l.alive(now));
        assert!(l.alive(l.base + Duration::from_secs(41)));
        // Rejoining with no answer for 8 s: a coordinator holding the JoinGroup looks like one
        // that never got it; no proof.
        let l = Liveness::new(Duration::from_secs(5));
        let now = l.base + Duration::from_secs(60);
        l.prove_from_stats(stats_in("up", "wait-join", 8_000_000).as_bytes(), now);
        assert!(!l.alive(now));
        // Parked copying resumes only once the member was steady and heard from for SETTLE:
        // a reconnection's first answers are not enough (the first heartbeat may be refused).
        let l = Liveness::new(Duration::from_secs(5));
        l.prove_from_stats(
            stats_at(50, "up", "steady", 100_000).as_bytes(),
            l.base + Duration::from_secs(50),
        );
        assert!(l.alive(l.base + Duration::from_secs(51)));
        assert!(
            !l.settled(l.base + Duration::from_secs(51)),
            "steady for 1 s only"
        );
        l.prove_from_stats(
            stats_at(51, "up", "wait-join", 100_000).as_bytes(),
            l.base + Duration::from_secs(51),
        );
        l.prove_from_stats(
            stats_at(52, "up", "steady", 100_000).as_bytes(),
            l.base + Duration::from_secs(52),
        );
        assert!(
            !l.settled(l.base + Duration::from_secs(53)),
            "a rejoin restarts the count"
        );
        l.prove_from_stats(
            stats_at(54, "up", "steady", 100_000).as_bytes(),
            l.base + Duration::from_secs(54),
        );
        assert!(l.settled(l.base + Duration::from_secs(54)));
        l.fence();
        assert!(!l.settled(l.base + Duration::from_secs(54)));
        // Never heard (-1) or malformed: nothing.
        let l = Liveness::new(Duration::from_secs(5));
        let now = l.base + Duration::from_secs(60);
        l.prove_from_stats(stats("up", -1).as_bytes(), now);
        l.prove_from_stats(b"{not json", now);
        assert!(!l.alive(now));
    }
}
