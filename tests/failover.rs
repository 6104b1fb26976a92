//! Failover exactness on real tansu brokers with the real `hubmirror run` (flow a → b, all
//! groups, checkpoints every second) and CLI; an rdkafka client plays the consumer group `app`.
//! Records are batched on a (the application's producer) and on b (hubmirror's copies), so the
//! group stops, and resumes after failover, in the middle of record batches.

use hubmirror_test_support as support;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use support::hubmirror::{http_get, metric_sum, run_to_end, Running, Workdir};
use support::kafka::{self, Rec};
use support::tansu::{free_port, Tansu};
use support::topology::TopologyBuilder;
use support::wait_for;

const GROUP: &str = "app";
const RECORDS: usize = 10_000;
/// What the group consumes on a, per partition of 3: 4,321 in all (odd and even positions).
const CONSUMED: [i64; 3] = [1_441, 1_440, 1_440];
/// What it consumes after the last checkpoint in test 2: 700 in all.
const SINCE: [i64; 3] = [234, 233, 233];
const LONG: Duration = Duration::from_secs(120);
/// How long a reader on b waits for a record (the group join included) before it stops.
const IDLE: Duration = Duration::from_secs(20);
const FAILOVER: &str = "failover --group app --from a --to b --execute";
const CHECKPOINTS: &str = "checkpoints --group app";

/// partition → offset.
type Pos = BTreeMap<i32, i64>;

#[path = "failover/app.rs"]
mod app;
#[path = "failover/site.rs"]
mod site;

use app::*;
use site::*;

/// Tests 1 and 2 up to the checkpoint: 10,000 records on a (3 partitions), all of them on b,
/// and `app` at [`CONSUMED`] on a with a checkpoint there: the site, the keys read, the offsets.
fn consumed_and_checkpointed(policy: &'static str) -> (Site, BTreeSet<String>, Pos) {
    let mut site = Site::new(policy, 3, false);
    produce(&site.ca, "k", RECORDS, 3);
    let started = Instant::now();
    site.start_run();
    let copies = kafka::read_all(&site.cb, site.remote, RECORDS, LONG);
    assert_eq!(copies.len(), RECORDS, "every record is on b once");
    eprintln!("replicated {RECORDS} records in {:?}", started.elapsed());
    let (read, pos) = consume_on_a(&site.ca, &Pos::new(), &CONSUMED);
    assert_eq!((read.len(), keys(&read).len()), (4_321, 4_321));
    site.checkpoint_at(&pos);
    (site, keys(&read), pos)
}

/// 4,321 of 10,000 records consumed on a; after a checkpoint covers them, failover (`run` keeps
/// running: the plan comes via the daemon) and the group reads the rest on b exactly once.
fn failover_is_exact(policy: &'static str) {
    let (site, read, pos) = consumed_and_checkpointed(policy);
    // `run` keeps running: the plan is the group's committed offsets translated by the daemon.
    site.failover("daemon", &pos);
    let want = unread("k", RECORDS, &read);
    let got = read_on_b(&site.cb, site.remote, &want);
    let (lost, duplicates) = lost_and_duplicates(&got, &want);
    println!(
        "{policy} policy: app consumed {} on a; after failover it read {} on b: {lost} lost, \
         {duplicates} duplicates",
        read.len(),
        got.len()
    );
    assert_eq!((lost, duplicates, got.len()), (0, 0, RECORDS - 4_321));
}

#[test]
fn failover_is_exact_under_both_policies_default() {
    failover_is_exact("default");
}

#[test]
fn failover_is_exact_under_both_policies_identity() {
    failover_is_exact("identity");
}

/// As above (default policy), then the site is lost after the group consumed 700 more on a:
/// failover from the checkpoints topic on b repeats at most those 700 and loses nothing.
#[test]
fn consuming_after_the_last_checkpoint_repeats_at_most_what_was_consumed_since() {
    let (mut site, mut read, at_checkpoint) = consumed_and_checkpointed("default");
    // Wait for the checkpoint in `a.checkpoints.internal` on b too: `checkpoints` with a
    // topology whose store does not exist and whose metrics port no daemon answers reads it.
    let lost_site = site.work.path().join("site-lost.yaml");
    let a = site.a.as_ref().unwrap();
    let text = topology("default", a, &site.b, "./no-store")
        .metrics(&format!("127.0.0.1:{}", free_port()))
        .yaml();
    std::fs::write(&lost_site, text).unwrap();
    wait_until("the checkpoint in b's checkpoints topic", || {
        let rows = json(&lost_site, CHECKPOINTS);
        assert!(
            rows.iter().all(|r| r["via"] == "checkpoints-topic"),
            "{rows:?}"
        );
        upstream(&rows) == at_checkpoint
    });

    // The replicator stops first (so no later checkpoint covers what follows), the group
    // consumes and commits 700 more on a, then the site is lost: its store and its broker.
    let mut run = site.run.take().unwrap();
    assert!(
        run.terminate(Duration::from_secs(15)).success(),
        "{}",
        run.output()
    );
    let (since, pos) = consume_on_a(&site.ca, &at_checkpoint, &SINCE);
    let n = since.len();
    read.extend(keys(&since));
    assert_eq!((n, read.len()), (700, 5_021));
    std::fs::remove_dir_all(site.work.path().join("store")).expect("delete the store");
    drop(site.a.take());
    eprintln!("app at {pos:?} on a: {n} records after the checkpoint; site a lost");

    // Only the checkpoints topic on b is left: it still says where the checkpoint was.
    let cps = json(&site.topology, CHECKPOINTS);
    assert_eq!(upstream(&cps), at_checkpoint);
    site.failover("checkpoints-topic", &at_checkpoint);
    let want = unread("k", RECORDS, &read);
    let got = read_on_b(&site.cb, site.remote, &want);
    let (lost, duplicates) = lost_and_duplicates(&got, &want);
    println!(
        "site lost: after failover app read {} on b: {lost} lost, {duplicates} duplicates; it had \
         consumed N = {n} on a since the last checkpoint",
        got.len()
    );
    assert_eq!(lost, 0, "lost after failover");
    assert!(
        duplicates <= n,
        "{duplicates} duplicates > {n} consumed since the checkpoint"
    );
}

/// Identity policy with a local producer writing to `orders` on b while the copies arrive: the
/// translation lands after the copy of the group's last record and at or before the copy of its
/// next one (anything between is local to b); failover loses and repeats none of a's records.
#[test]
fn identity_translation_is_exact_with_local_producers_on_the_target() {
    const N: usize = 3_000;
    const CHUNK: usize = 100;
    let mut site = Site::new("identity", 2, true);
    // A local producer writes b-0, b-1, ... to `orders` on b, batched, until every copy of a's
    // records has arrived. a's records are written in chunks while `run` copies them, each
    // chunk once the previous one is copied, so local records land between chunks of copies
    // while none can land inside a batch of copies. (The pace comes from hubmirror's own count
    // of acknowledged copies: a consumer following b's `orders` could miss records of the two
    // writers there on tansu; see the README's caveats. Everything is read back afterwards.)
    let stop = Arc::new(AtomicBool::new(false));
    let (cb, halt) = (site.cb.clone(), stop.clone());
    let local = std::thread::spawn(move || kafka::produce_until(&cb, "orders", 2, "b", &halt));
    site.start_run();
    let metrics = site.work.metrics_addr();
    let copied = || {
        let page = http_get(&metrics, "/metrics").unwrap_or_default();
        metric_sum(
            &page,
            "hubmirror_records_replicated_total",
            &["source=\"a\"", "topic=\"orders\""],
        )
    };
    for start in (0..N).step_by(CHUNK) {
        produce_range(&site.ca, "a", start..start + CHUNK, 2);
        wait_until("the chunk's copies acknowledged on b", || {
            copied() >= (start + CHUNK) as f64
        });
    }
    stop.store(true, Ordering::Relaxed);
    let locals = local.join().expect("local producer");
    let on_b = kafka::read_all(&site.cb, "orders", N + locals, LONG);
    assert_eq!(
        on_b.len(),
        N + locals,
        "b has a's {N} records and {locals} local ones"
    );

    // Where the copy of a's record (p, u) is on b, checked to rise with u.
    let mut copy_at: BTreeMap<(i32, i64), i64> = BTreeMap::new();
    for r in on_b.iter().filter(|r| key_of(r).starts_with("a-")) {
        let source = r.header("hubmirror.source").expect("hubmirror.source");
        let prefix = format!("a/orders/{}/", r.partition);
        let u = source
            .strip_prefix(&prefix)
            .and_then(|u| u.parse().ok())
            .expect(&source);
        assert!(
            copy_at.insert((r.partition, u), r.offset).is_none(),
            "{source} twice"
        );
    }
    let per = (N / 2) as i64;
    for p in 0..2 {
        let offsets: Vec<i64> = (0..per).map(|u| copy_at[&(p, u)]).collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "copies in order on {p}"
        );
        let between = offsets[per as usize - 1] - offsets[0] + 1 - per;
        eprintln!("b/orders/{p}: {between} local records between the first and last copy");
    }
    // The group stops where local records sit between the copies of its last and its next
    // record on partition 0, and where none does on partition 1 (nearest the middle).
    let gap = |p: i32, u: i64| copy_at[&(p, u)] - copy_at[&(p, u - 1)] > 1;
    let pick = |p: i32, with_local: bool| {
        let u = (1..per)
            .filter(|&u| gap(p, u) == with_local)
            .min_by_key(|&u| (u - per / 2).abs());
        u.unwrap_or_else(|| panic!("no place with local records: {with_local} on {p}"))
    };
    let (read, pos) = consume_on_a(&site.ca, &Pos::new(), &[pick(0, true), pick(1, false)]);
    site.checkpoint_at(&pos);

    let rows = json(&site.topology, "translate --group app --from a --to b");
    assert_eq!(upstream(&rows), pos, "{rows:?}");
    let mut resume = Pos::new();
    for r in &rows {
        let (p, u, d) = (
            num(r, "partition") as i32,
            num(r, "upstream_offset"),
            num(r, "downstream_offset"),
        );
        let (c1, c2) = (copy_at[&(p, u - 1)], copy_at[&(p, u)]);
        let local = d - 1 != c1;
        println!(
            "partition {p}: upstream {u} -> downstream {d}; copies of {u} - 1 and {u} at {c1} \
             and {c2}; the record at {d} - 1 is local: {local}"
        );
        // After the copy of the last record read, at or before that of the next one to read:
        // whatever lies between them is local to b.
        assert!(c1 < d && d <= c2, "{r}: the copies are at {c1} and {c2}");
        resume.insert(p, d);
    }

    site.failover("daemon", &pos);
    let read = keys(&read);
    let want_a = unread("a", N, &read);
    let local_after = |r: &&Rec| key_of(r).starts_with("b-") && r.offset >= resume[&r.partition];
    let want_local: BTreeSet<String> = on_b.iter().filter(local_after).map(key_of).collect();
    let got = read_on_b(
        &site.cb,
        "orders",
        &want_a.union(&want_local).cloned().collect(),
    );
    let (got_a, got_local): (Vec<Rec>, Vec<Rec>) =
        got.into_iter().partition(|r| key_of(r).starts_with("a-"));
    let (lost, duplicates) = lost_and_duplicates(&got_a, &want_a);
    println!(
        "identity, {locals} local records interleaved on b: app consumed {} on a; after failover \
         it read {} of a's records ({lost} lost, {duplicates} duplicates) and {} local records \
         (those from the translated offsets on: {})",
        read.len(),
        got_a.len(),
        got_local.len(),
        want_local.len()
    );
    assert_eq!((lost, duplicates), (0, 0), "a's records after failover");
    let got_local = (got_local.len(), keys(&got_local));
    assert_eq!(
        got_local,
        (want_local.len(), want_local),
        "local records, once each"
    );
}
