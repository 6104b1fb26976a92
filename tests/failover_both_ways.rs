//! Failover under the identity policy with flows both ways: `orders` on each cluster holds its
//! own records and copies of the other side's, interleaved differently on each side. A group
//! that read part of `orders` on A fails over to B and must lose nothing of either kind.
//!
//! The records are written in turns (a chunk on A, copied to B; a chunk on B, copied to A),
//! batched: never two writers on one partition at once, which tansu does not serve reliably to
//! a consumer following the partition (see the README's caveats).

use hubmirror_test_support as support;

use std::collections::BTreeSet;
use std::path::PathBuf;
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

/// Brokers `a` and `b`, each with `orders` of `partitions` partitions, and a topology copying it
/// both ways under identity naming (no heartbeats, topics refreshed every second).
struct IdentityBothWays {
    a: Tansu,
    b: Tansu,
    ca: ClientConfig,
    cb: ClientConfig,
    work: Workdir,
    topo: PathBuf,
}

fn identity_both_ways(partitions: i32) -> IdentityBothWays {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&ca, "orders", partitions);
    kafka::create_topic(&cb, "orders", partitions);
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
    IdentityBothWays {
        a,
        b,
        ca,
        cb,
        work,
        topo,
    }
}

#[test]
fn identity_both_ways_failover_loses_nothing_of_either_side() {
    // The brokers and the work directory live (and are cleaned up) with the bindings.
    let IdentityBothWays {
        a: _a,
        b: _b,
        ca,
        cb,
        work: _work,
        topo,
    } = identity_both_ways(PARTITIONS);
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

/// `translate --json` for `GROUP` from a to b: (downstream_offset, records_again, via) of the
/// one row.
fn plan_row(cfg: &str) -> (Option<i64>, Option<i64>, String) {
    let args = [
        "translate",
        "--group",
        GROUP,
        "--from",
        "a",
        "--to",
        "b",
        "--json",
        "-c",
        cfg,
    ];
    let out = run_to_end(&args, &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "translate: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_str(&text).expect("translate --json");
    let row = &rows[0];
    (
        row["downstream_offset"].as_i64(),
        row["records_again"].as_i64(),
        row["via"].as_str().expect(&text).to_string(),
    )
}

/// On a: a's own records at 0..10, then b's copies at 10..20; on b: a's copies at 0..10, then
/// b's own at 10..20. Wherever the group stands on a, every record before the same offset on b
/// is one it processed, and none after: the plan is that offset, with nothing read again —
/// through the daemon while `run` runs, and through the store after it stopped.
#[test]
fn identity_both_ways_plans_the_latest_safe_position() {
    // The brokers and the work directory live (and are cleaned up) with the bindings.
    let IdentityBothWays {
        a: _a,
        b: _b,
        ca,
        cb,
        work: _work,
        topo,
    } = identity_both_ways(1);
    let mut run = Running::start(&topo, &[]);
    let ten = |prefix: &str| -> Vec<(i32, Vec<u8>, Vec<u8>)> {
        (0..10)
            .map(|i| (0, format!("{prefix}-{i}").into_bytes(), b"v".to_vec()))
            .collect()
    };
    let (mut on_a, mut on_b) = (
        TopicTail::new(&ca, "orders", 1),
        TopicTail::new(&cb, "orders", 1),
    );
    kafka::produce_batched(&ca, "orders", &ten("a"));
    on_b.wait_for_count(10, Duration::from_secs(60));
    kafka::produce_batched(&cb, "orders", &ten("b"));
    on_a.wait_for_count(20, Duration::from_secs(60));

    let cfg = topo.to_str().unwrap();
    let commit = |at: i64| {
        let offsets = [("orders".to_string(), 0, at)];
        hubmirror::checkpoint::commit_group_offsets(
            ca.clone(),
            GROUP,
            &offsets,
            Duration::from_secs(15),
        )
        .expect("commit the group's offset on a");
    };
    // The b→a flow records what it did with b's records a moment after it wrote them.
    for at in [20, 5, 15] {
        commit(at);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got = plan_row(cfg);
        while got.0 != Some(at) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            got = plan_row(cfg);
        }
        let want = (Some(at), Some(0), "daemon".to_string());
        assert_eq!(got, want, "group at {at} on a");
    }
    run.stop_cleanly();
    assert_eq!(plan_row(cfg), (Some(15), Some(0), "store".to_string()));
}
