//! Active-active with two instances: flows a → b and b → a in one topology, run by two
//! instances (each runs both flows and gets a share of each flow's partitions); streams on both
//! sides; one instance restarted mid-stream. Every record must reach the other side exactly
//! once, in order, and never come back (the loop rule), under both naming policies.
//!
//! Under the identity policy each side's stream writes partitions of its own of the shared
//! topic (tansu does not reliably serve a partition two producers write at once to a consumer
//! following it; see tests/active_active.rs), and the copies land in the other side's.

use super::*;

use support::kafka::Tally;

/// Records per second of each side's stream.
const AA_RATE: u64 = 400;

/// One side: its alias and its broker's client settings.
struct Side {
    alias: &'static str,
    cfg: ClientConfig,
}

/// Two instances running a ↔ b under `policy`, streams on both sides, m2 restarted.
fn both_ways(name: &'static str, policy: &str) {
    let identity = policy == "identity";
    let (a, b) = (Tansu::start(), Tansu::start());
    let topology = TopologyBuilder::new()
        .tansu("a", &a)
        .tansu("b", &b)
        .flow("a", "b", &[TOPIC])
        .flow("b", "a", &[TOPIC])
        .replication("policy", policy)
        .replication("refresh_topics_interval", "1s");
    let sides = [("a", &a), ("b", &b)].map(|(alias, broker)| {
        let cfg = kafka::plain(&broker.listener());
        kafka::create_topic(&cfg, TOPIC, PARTITIONS);
        Side { alias, cfg }
    });
    let flows = [("a", "b"), ("b", "a")];
    let mut fleet = Fleet::new(topology, &[]);
    fleet.start("m1");
    fleet.start("m2");
    let streams: Vec<Stream> = sides
        .iter()
        .enumerate()
        .map(|(k, side)| {
            // Identity: a writes partitions 0, 2, 4 and b 1, 3, 5.
            let partitions: Vec<i32> = all_partitions()
                .into_iter()
                .filter(|p| !identity || *p as usize % 2 == k)
                .collect();
            Stream::start(&side.cfg, TOPIC, &partitions, side.alias, AA_RATE)
        })
        .collect();
    // What each cluster's topics must hold: (cluster, topic, streams).
    let remote = |s: &str| {
        if identity {
            TOPIC.to_string()
        } else {
            format!("{s}.{TOPIC}")
        }
    };
    let ledgers: Vec<(usize, String, Ledger)> = if identity {
        vec![
            (0, TOPIC.to_string(), Ledger::start(&sides[0].cfg, TOPIC)),
            (1, TOPIC.to_string(), Ledger::start(&sides[1].cfg, TOPIC)),
        ]
    } else {
        vec![
            (0, TOPIC.to_string(), Ledger::start(&sides[0].cfg, TOPIC)),
            (0, remote("b"), Ledger::start(&sides[0].cfg, &remote("b"))),
            (1, TOPIC.to_string(), Ledger::start(&sides[1].cfg, TOPIC)),
            (1, remote("a"), Ledger::start(&sides[1].cfg, &remote("a"))),
        ]
    };
    // The ledger of the copies of side k's records on the other side.
    let copies_of = |k: usize| {
        let on = 1 - k;
        let topic = remote(sides[k].alias);
        &ledgers
            .iter()
            .find(|(c, t, _)| *c == on && *t == topic)
            .expect("ledger")
            .2
    };
    let marks = |streams: &[Stream]| -> Vec<BTreeMap<i32, u64>> {
        streams.iter().map(Stream::marks).collect()
    };
    let wait_moving = |marks: &[BTreeMap<i32, u64>]| -> Duration {
        (0..2)
            .map(|k| copies_of(k).wait_past(sides[k].alias, &marks[k], MOVE_LIMIT))
            .max()
            .expect("two sides")
    };
    let started = wait_moving(&marks(&streams));
    fleet.wait_owning("m1", TOPIC, MOVE_LIMIT);
    fleet.wait_owning("m2", TOPIC, MOVE_LIMIT);
    std::thread::sleep(Duration::from_secs(3));

    // m2 restarted mid-stream: its partitions of both flows move and come back.
    let at_restart = marks(&streams);
    let restart = Instant::now();
    let exited = fleet.stop("m2");
    fleet.start("m2");
    let owning = fleet.wait_owning("m2", TOPIC, MOVE_LIMIT);
    wait_moving(&at_restart);
    let moving = restart.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    fleet.assert_alive();

    let sent: Vec<_> = streams.into_iter().map(Stream::stop).collect();
    let stopped = Instant::now();
    let mut tallies: Vec<(String, Tally)> = Vec::new();
    for (cluster, topic, ledger) in &ledgers {
        // A cluster's own topic: its records (and, under identity, the other side's copies);
        // a remote topic: the other side's copies.
        let holds: Vec<_> = if identity {
            sent.iter().collect()
        } else if topic == TOPIC {
            vec![&sent[*cluster]]
        } else {
            vec![&sent[1 - cluster]]
        };
        let what = format!("{}/{topic}", sides[*cluster].alias);
        tallies.push((what, ledger.tally(&holds, CATCH_UP)));
    }
    let pauses: Vec<String> = (0..2)
        .map(|k| {
            let (pause, p) = copies_of(k).longest_pause(sides[k].alias, restart, stopped);
            format!(
                "{} records paused up to {:.1}s (partition {p})",
                sides[k].alias,
                pause.as_secs_f64()
            )
        })
        .collect();
    println!(
        "SCALE {name}: {}; streaming after {:.1}s; restart m2 (exited after {:.1}s, owning \
         again after {:.1}s): moving after {:.1}s, {}",
        tallies
            .iter()
            .map(|(what, t)| format!("{what}: {t}"))
            .collect::<Vec<_>>()
            .join("; "),
        started.as_secs_f64(),
        exited.as_secs_f64(),
        owning.as_secs_f64(),
        moving.as_secs_f64(),
        pauses.join(", ")
    );
    for (what, t) in &tallies {
        t.assert_exact(what);
    }
    for side in &sides {
        let looped: Vec<String> = kafka::topic_names(&side.cfg)
            .into_iter()
            .filter(|t| t.starts_with("a.b.") || t.starts_with("b.a."))
            .collect();
        assert!(
            looped.is_empty(),
            "{} has looped topics {looped:?}",
            side.alias
        );
    }
    // Nothing moves any more: no record goes round.
    let watermarks = |sides: &[Side; 2]| -> Vec<Vec<i64>> {
        ledgers
            .iter()
            .map(|(c, t, _)| kafka::high_watermarks(&sides[*c].cfg, t))
            .collect()
    };
    let quiet = watermarks(&sides);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(watermarks(&sides), quiet, "topics moved after quiescence");
    let (split, _) = fleet.wait_split(&["m1", "m2"], TOPIC, &flows, PARTITIONS, MOVE_LIMIT);
    println!("  {name}: partitions at the end: {}", describe(&split));
    fleet.stop("m1");
    fleet.stop("m2");
}

#[test]
fn two_instances_both_ways_default_naming_loop_free_and_exact() {
    both_ways("active_active_default", "default");
}

#[test]
fn two_instances_both_ways_identity_naming_loop_free_and_exact() {
    both_ways("active_active_identity", "identity");
}
