//! Failover under the identity policy with flows both ways: `orders` on each cluster holds its
//! own records and copies of the other side's, interleaved differently on each side. A group
//! that read part of `orders` on A fails over to B and must lose nothing of either kind.
//!
//! The records are written in turns (a chunk on A, copied to B; a chunk on B, copied to A),
//! batched: never two writers on one partition at once, which tansu does not serve reliably to
//! a consumer following the partition (see the README's caveats).

use hubmirror_test_support as support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::ClientConfig;
use support::hubmirror::{run_to_end, Running, Workdir};
use support::kafka::{self, Rec, TopicTail};
use support::tansu::Tansu;
use support::topology::TopologyBuilder;

const PARTITIONS: i32 = 2;
const CHUNKS: usize = 10;
const CHUNK: usize = 30;
const GROUP: &str = "app";

fn chunk(prefix: &str, c: usize) -> Vec<(i32, Vec<u8>, Vec<u8>)> {
    (c * CHUNK..(c + 1) * CHUNK)
        .map(|i| {
            (
                (i % PARTITIONS as usize) as i32,
                format!("{prefix}-{i}").into_bytes(),
                b"v".to_vec(),
            )
        })
        .collect()
}

fn keys(recs: &[Rec]) -> BTreeSet<String> {
    recs.iter()
        .map(|r| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

/// A consumer of `GROUP` on `cfg` reads until it has every key in `want`, then 2 s more.
fn read_rest(cfg: &ClientConfig, want: &BTreeSet<String>) -> Vec<Rec> {
    let consumer = kafka::group_consumer(cfg, GROUP, &["orders"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet_until = None;
    let mut got = Vec::new();
    while quiet_until.is_none_or(|q| Instant::now() < q) {
        if Instant::now() > deadline {
            break; // the assertion below reports what is missing
        }
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            got.push(Rec::from(&m.expect("consume")));
        }
        if quiet_until.is_none() && want.is_subset(&keys(&got)) {
            quiet_until = Some(Instant::now() + Duration::from_secs(2));
        }
    }
    got
}

#[test]
fn identity_both_ways_failover_loses_nothing_of_either_side() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&ca, "orders", PARTITIONS);
    kafka::create_topic(&cb, "orders", PARTITIONS);
    let work = Workdir::new();
    let topo = TopologyBuilder::new()
        .tansu("a", &a)
        .tansu("b", &b)
        .flow("a", "b", &["orders"])
        .flow("b", "a", &["orders"])
        .replication("policy", "identity")
        .replication("refresh_topics_interval", "1s")
        .replication("heartbeats_interval", "0s")
        .write(&work);
    let mut run = Running::start(&topo, &[]);
    let (mut on_a, mut on_b) = (
        TopicTail::new(&ca, "orders", PARTITIONS),
        TopicTail::new(&cb, "orders", PARTITIONS),
    );
    let turn = Duration::from_secs(60);
    for c in 0..CHUNKS {
        kafka::produce_batched(&ca, "orders", &chunk("a", c));
        on_b.wait_for_count((2 * c + 1) * CHUNK, turn);
        kafka::produce_batched(&cb, "orders", &chunk("b", c));
        on_a.wait_for_count((2 * c + 2) * CHUNK, turn);
    }
    let total = 2 * CHUNKS * CHUNK;
    let all_a = kafka::read_all(&ca, "orders", total, Duration::from_secs(120));
    let all_b = kafka::read_all(&cb, "orders", total, Duration::from_secs(120));
    kafka::assert_exactly_once(
        &all_a,
        &[("a", CHUNKS * CHUNK), ("b", CHUNKS * CHUNK)],
        "a/orders",
    );
    kafka::assert_exactly_once(
        &all_b,
        &[("a", CHUNKS * CHUNK), ("b", CHUNKS * CHUNK)],
        "b/orders",
    );

    // The group reads part of `orders` on A (both kinds of records), commits, and leaves.
    let consumer = kafka::group_consumer(&ca, GROUP, &["orders"]);
    let read_on_a = kafka::poll_records(&consumer, 250, Duration::from_secs(60));
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    drop(consumer);
    let read_keys = keys(&read_on_a);
    let from_b = read_keys.iter().filter(|k| k.starts_with("b-")).count();
    println!(
        "read on a: {} records ({from_b} of them copies of b's)",
        read_on_a.len()
    );

    let cfg = topo.to_str().unwrap();
    let out = run_to_end(
        &[
            "failover",
            "--group",
            GROUP,
            "--from",
            "a",
            "--to",
            "b",
            "--execute",
            "--json",
            "-c",
            cfg,
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "failover: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("plan: {}", String::from_utf8_lossy(&out.stdout));

    let want: BTreeSet<String> = keys(&all_a).difference(&read_keys).cloned().collect();
    let got = read_rest(&cb, &want);
    let got_keys = keys(&got);
    let lost: Vec<_> = want.difference(&got_keys).collect();
    let duplicates = got.len() - got_keys.intersection(&want).count();
    println!(
        "after failover to b: {} read, {} lost, {duplicates} read again",
        got.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "lost after failover: {lost:?}");
    run.stop_cleanly();
}
