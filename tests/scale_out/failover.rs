//! A failover after partitions moved between instances: the consumer group `app` consumes part
//! of `orders` on a and commits; the flow's partitions move (an instance stopped, another
//! added) and more records are copied by their new owners; the group consumes further on some
//! partitions. A local producer on b wrote records of its own into `a.orders` before each
//! chunk of copies, so that no copy sits at its record's offset. `translate` asked of every instance's topology (the running ones and the stopped
//! one's store) and `failover --execute` must give the group, on b, exactly the offsets of the
//! copies of the records at its positions on a, whichever instance copied them.

use super::*;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

use support::hubmirror::run_to_end;
use support::kafka::{stream_key, Rec, Sent};

const GROUP: &str = "app";
/// The copy of `orders` on b.
const REMOTE: &str = "a.orders";
/// Records per partition in each of the two chunks produced.
const CHUNK: u64 = 800;
/// The group's positions after its first round, inside the first chunk.
const FIRST: [u64; 6] = [301, 412, 523, 634, 745, 56];
/// Its final positions: partitions 0-2 inside the second chunk (copied after the partitions
/// moved), 3-5 where the first round left them (copied before).
const FINAL: [u64; 6] = [1_003, 1_234, 1_599, 634, 745, 56];

/// `3 + p` more records of the local stream on b's `a.orders` on each partition `p` (batched),
/// after those of `before`; returns every local record so far.
fn produce_local(cfg: &ClientConfig, before: &BTreeMap<i32, u64>) -> Sent {
    let from = |p: i32| before.get(&p).copied().unwrap_or(0);
    let records: Vec<(i32, Vec<u8>, Vec<u8>)> = (0..PARTITIONS)
        .flat_map(|p| (from(p)..from(p) + 3 + p as u64).map(move |seq| (p, seq)))
        .map(|(p, seq)| (p, stream_key("local", p, seq).into_bytes(), vec![b'b'; 10]))
        .collect();
    kafka::produce_batched(cfg, REMOTE, &records);
    Sent {
        prefix: "local".into(),
        per_partition: (0..PARTITIONS)
            .map(|p| (p, from(p) + 3 + p as u64))
            .collect(),
    }
}

/// Chunk `n` (0 or 1) of `orders` on a: records `n * CHUNK` to `(n + 1) * CHUNK - 1` of every
/// partition, batched, partitions interleaved; checks that each record's seq is its offset.
/// Returns everything produced so far.
fn produce_chunk(cfg: &ClientConfig, n: u64) -> Sent {
    let seqs = n * CHUNK..(n + 1) * CHUNK;
    let records: Vec<(i32, Vec<u8>, Vec<u8>)> = seqs
        .clone()
        .flat_map(|seq| (0..PARTITIONS).map(move |p| (p, seq)))
        .map(|(p, seq)| (p, stream_key("a", p, seq).into_bytes(), vec![b'x'; 40]))
        .collect();
    let offsets = kafka::produce_batched(cfg, TOPIC, &records);
    let want: Vec<i64> = seqs
        .flat_map(|seq| (0..PARTITIONS).map(move |_| seq as i64))
        .collect();
    assert_eq!(offsets, want, "each record's offset is its seq");
    Sent {
        prefix: "a".into(),
        per_partition: (0..PARTITIONS).map(|p| (p, (n + 1) * CHUNK)).collect(),
    }
}

/// A member of `app` on a reads each partition `p` from `from[p]` (its committed offset) up to
/// `to[p]`, checking every offset, commits `to` and leaves.
fn consume(cfg: &ClientConfig, from: &[u64; 6], to: &[u64; 6]) {
    let consumer = kafka::group_consumer(cfg, GROUP, &[TOPIC]);
    let mut next: Vec<u64> = from.to_vec();
    let deadline = Instant::now() + MOVE_LIMIT;
    while (0..6).any(|p| next[p] < to[p]) {
        assert!(
            Instant::now() < deadline,
            "app read only up to {next:?} of {to:?}"
        );
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let r = Rec::from(&m.expect("consume"));
        let p = r.partition as usize;
        if next[p] < to[p] {
            assert_eq!(r.offset as u64, next[p], "app reads {TOPIC}/{p} in order");
            next[p] += 1;
        }
    }
    let mut tpl = TopicPartitionList::new();
    for (p, o) in to.iter().enumerate() {
        tpl.add_partition_offset(TOPIC, p as i32, Offset::Offset(*o as i64))
            .expect("partition");
    }
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
}

/// `hubmirror <command> --json -c <topology>`, which must exit 0: its rows.
fn json(topology: &std::path::Path, command: &str) -> Vec<Value> {
    let c = topology.to_string_lossy().into_owned();
    let args: Vec<&str> = command.split(' ').collect();
    let out = run_to_end(&[&args[..], &["--json", "-c", &c]].concat(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hubmirror {args:?}: {stdout}{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

/// partition → `field` of `rows`.
fn column(rows: &[Value], field: &str) -> BTreeMap<i32, i64> {
    rows.iter()
        .map(|r| {
            let n = |k: &str| r[k].as_i64().unwrap_or(-1);
            (n("partition") as i32, n(field))
        })
        .collect()
}

/// The offsets `group` has committed on `topic` (6 partitions) of the cluster `cfg`.
fn committed(cfg: &ClientConfig, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = cfg
        .clone()
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    got.elements()
        .iter()
        .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(-1)))
        .collect()
}

#[test]
fn failover_after_partitions_moved_between_instances_is_exact() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&ca, TOPIC, PARTITIONS);
    kafka::create_topic(&cb, REMOTE, PARTITIONS);
    let topology = TopologyBuilder::new()
        .tansu("a", &a)
        .tansu("b", &b)
        .flow("a", "b", &[TOPIC])
        .flow_set("groups", r#"[".*"]"#)
        .replication("checkpoints_interval", "1s")
        .replication("refresh_topics_interval", "1s");
    let mut fleet = Fleet::new(topology, &[]);
    let flow = [("a", "b")];

    // The first chunk, copied by x and y sharing the partitions; the group consumes part of it.
    fleet.start("x");
    fleet.start("y");
    let (before, _) = fleet.wait_split(&["x", "y"], TOPIC, &flow, PARTITIONS, MOVE_LIMIT);
    let local = produce_local(&cb, &BTreeMap::new());
    let first = produce_chunk(&ca, 0);
    let ledger = Ledger::start(&cb, REMOTE);
    let t1 = ledger.tally(&[&first, &local], CATCH_UP);
    println!("failover_after_moves: first chunk on b: {t1}");
    t1.assert_exact("the first chunk on b");
    consume(&ca, &[0; 6], &FIRST);

    // The partitions move: y stops, z joins; the second chunk is copied by the new owners.
    fleet.stop("y");
    fleet.start("z");
    let (after, moved) = fleet.wait_split(&["x", "z"], TOPIC, &flow, PARTITIONS, MOVE_LIMIT);
    let local = produce_local(&cb, &local.per_partition);
    let both = produce_chunk(&ca, 1);
    let t2 = ledger.tally(&[&both, &local], CATCH_UP);
    println!(
        "failover_after_moves: both chunks on b: {t2}; partitions before: {}; after (split \
         {moved:.1?} after z started): {}",
        describe(&before),
        describe(&after)
    );
    t2.assert_exact("both chunks on b");
    consume(&ca, &FIRST, &FINAL);

    // Where the group must resume on b: the copy of the record at its position on a.
    let copies = ledger.copies("a");
    let want: BTreeMap<i32, i64> = (0..PARTITIONS)
        .map(|p| {
            let at = &copies[&(p, FINAL[p as usize])];
            assert_eq!(at.len(), 1, "one copy of a/{p}/{}", FINAL[p as usize]);
            assert_eq!(
                at[0].0, p,
                "the copy of a/{p}/{} keeps its partition",
                FINAL[p as usize]
            );
            (p, at[0].1)
        })
        .collect();
    let upstream: BTreeMap<i32, i64> = (0..PARTITIONS)
        .map(|p| (p, FINAL[p as usize] as i64))
        .collect();

    let x = fleet.get("x").topology().to_path_buf();
    wait_for(
        "a checkpoint of app at its final positions",
        MOVE_LIMIT,
        || {
            let rows = json(&x, "checkpoints --group app");
            let up = column(&rows, "upstream_offset");
            if up == upstream {
                Ok(())
            } else {
                Err(up)
            }
        },
    );
    for name in ["x", "z", "y"] {
        let rows = json(
            fleet.get(name).topology(),
            "translate --group app --from a --to b",
        );
        assert_eq!(
            column(&rows, "upstream_offset"),
            upstream,
            "translate asked of {name}: {rows:?}"
        );
        assert_eq!(
            column(&rows, "downstream_offset"),
            want,
            "translate asked of {name} (the copies of the group's next records): {rows:?}"
        );
    }
    let rows = json(&x, "failover --group app --from a --to b --execute");
    assert!(rows.iter().all(|r| r["committed"] == true), "{rows:?}");
    let on_b = committed(&cb, GROUP, REMOTE);
    println!(
        "SCALE failover_after_moves: {t2} ({} copies, {} local records on b); app at \
         {upstream:?} on a, committed on b {on_b:?}, copies of its next records at {want:?}",
        both.total(),
        local.total()
    );
    assert_eq!(on_b, want, "app's offsets on b after failover");
    fleet.stop("x");
    fleet.stop("z");
}
