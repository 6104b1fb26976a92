//! Property-style test: the store against a naive model (one map entry per replicated record)
//! over random flows with skips, compaction gaps, local writes, restarts, prunes and reopens.

use std::collections::BTreeMap;

use super::{rep, skip};
use crate::store::{Event, PartitionKey, Store, Translation};

/// splitmix64: deterministic, so a failure names a seed that reproduces it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi]`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
}

/// The rules of [`Translation`] applied to a plain map upstream → downstream.
#[derive(Default)]
struct Model {
    map: BTreeMap<i64, i64>,
    /// processed_upto, known_from, log_start.
    meta: Option<(i64, i64, i64)>,
}

impl Model {
    fn record(&mut self, events: &[Event]) {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return;
        };
        let (lo, hi) = (first.upstream(), last.upstream() + 1);
        let stale: Vec<i64> = self.map.range(lo..hi).map(|(&u, _)| u).collect();
        for u in stale {
            self.map.remove(&u);
        }
        for e in events {
            if let Event::Replicated {
                upstream,
                downstream,
            } = *e
            {
                self.map.insert(upstream, downstream);
            }
        }
        self.meta = Some(match self.meta {
            None => (hi, lo, 0),
            Some((p, k, l)) => (p.max(hi), k.min(lo), l),
        });
    }

    fn translate(&self, u: i64) -> Translation {
        let Some((processed, known_from, log_start)) = self.meta else {
            return Translation::Unknown;
        };
        if u > processed {
            return Translation::NotYetReplicated;
        }
        if u < known_from && known_from > log_start {
            return Translation::Unknown;
        }
        if let Some(&d) = self.map.get(&u) {
            return Translation::Exact(d);
        }
        if let Some((_, &d)) = self.map.range(u + 1..).next() {
            return Translation::Exact(d);
        }
        self.map
            .last_key_value()
            .map_or(Translation::Unknown, |(_, &d)| Translation::Exact(d + 1))
    }
}

/// One partition of a simulated flow.
#[derive(Default)]
struct Sim {
    model: Model,
    /// The next upstream offset the flow reads.
    cursor: i64,
    /// The target partition's end.
    down: i64,
}

impl Sim {
    /// A batch as the flow would acknowledge it from `cursor` on.
    fn batch(&mut self, rng: &mut Rng) -> Vec<Event> {
        let mut events = Vec::new();
        for _ in 0..rng.between(1, 30) {
            if rng.percent(10) {
                self.cursor += rng.between(1, 3); // compacted away
            }
            if rng.percent(10) {
                self.down += rng.between(1, 3); // a local producer on the target
            }
            if rng.percent(15) {
                events.push(skip(self.cursor));
            } else {
                events.push(rep(self.cursor, self.down));
                self.down += 1;
            }
            self.cursor += 1;
        }
        events
    }
}

fn check(store: &Store, key: &PartitionKey, sim: &Sim, rng: &mut Rng, context: &str) {
    let segments = store.segments(key).expect("segments");
    let mut expanded = BTreeMap::new();
    let processed = sim.model.meta.map_or(0, |m| m.0);
    for pair in segments.windows(2) {
        assert!(
            pair[0].upstream_end() <= pair[1].upstream,
            "{context}: overlapping {pair:?}"
        );
    }
    for s in &segments {
        assert!(
            s.len > 0 && s.upstream_end() <= processed,
            "{context}: bad segment {s:?}"
        );
        for i in 0..s.len {
            expanded.insert(s.upstream + i, s.downstream + i);
        }
    }
    assert_eq!(expanded, sim.model.map, "{context}: mappings differ");
    let state = store
        .partition_state(key)
        .expect("state")
        .map(|s| (s.processed_upto, s.known_from, s.log_start));
    assert_eq!(state, sim.model.meta, "{context}: partition state differs");
    let mut probes: Vec<i64> = (0..48).map(|_| rng.between(-1, processed + 2)).collect();
    for s in &segments {
        probes.extend([
            s.upstream - 1,
            s.upstream,
            s.upstream_end() - 1,
            s.upstream_end(),
        ]);
    }
    for u in probes {
        let got = store.translate(key, u).expect("translate");
        assert_eq!(got, sim.model.translate(u), "{context}: translate({u})");
    }
}

#[test]
fn translate_matches_a_naive_model_over_random_flows() {
    let keys = [
        PartitionKey::new("a", "b", "t", 0),
        PartitionKey::new("a", "b", "t", 1),
    ];
    for seed in 0..40u64 {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        let mut rng = Rng(seed);
        let mut sims = [Sim::default(), Sim::default()];
        // A flow may start past offset 0 (older records expired).
        sims[1].cursor = rng.between(0, 50);
        for step in 0..60 {
            let which = rng.between(0, 1) as usize;
            let (key, sim) = (&keys[which], &mut sims[which]);
            let context = format!("seed {seed} step {step} partition {which}");
            match rng.between(0, 99) {
                0..=64 => {}
                65..=79 => sim.cursor = rng.between((sim.cursor - 40).max(0), sim.cursor), // restart
                80..=91 => {
                    let log_start = rng.between(0, sim.cursor + 5);
                    store.prune(key, log_start).expect("prune");
                    let segments = store.segments(key).expect("segments");
                    // Every segment but the last must reach past the log start.
                    if let [first, _, ..] = segments.as_slice() {
                        assert!(
                            first.upstream_end() > log_start,
                            "{context}: unpruned {first:?}"
                        );
                    }
                    if let Some(first) = segments.first().map(|s| s.upstream) {
                        let dropped: Vec<i64> =
                            sim.model.map.range(..first).map(|(&u, _)| u).collect();
                        assert!(
                            dropped.iter().all(|&u| u < log_start),
                            "{context}: pruned above {log_start}"
                        );
                        for u in dropped {
                            sim.model.map.remove(&u);
                        }
                    }
                    if let Some(meta) = sim.model.meta.as_mut() {
                        meta.2 = meta.2.max(log_start);
                    }
                    check(&store, key, sim, &mut rng, &context);
                    continue;
                }
                _ => {
                    drop(store);
                    store = Store::open(dir.path()).expect("reopen");
                }
            }
            let events = sim.batch(&mut rng);
            store.record(key, &events).expect("record");
            sim.model.record(&events);
            check(&store, key, sim, &mut rng, &context);
        }
    }
}
