//! Failover exactness, end to end: real tansu brokers, the real `hubmirror run` (flow a → b,
//! `groups: [".*"]`, checkpoints every second) and the real `checkpoints`, `translate` and
//! `failover` commands; an independent rdkafka client plays the application's consumer group.
//!
//! 1. A group that consumed exactly 4,321 of 10,000 records on a fails over to b once a
//!    checkpoint covers its offsets (`run` keeps running, so the plan comes via the daemon) and
//!    reads the rest there: 0 lost, 0 duplicates, under both naming policies.
//! 2. The group consumes 700 more on a after the last checkpoint, then the site is lost (`run`
//!    stopped, the store deleted, broker a gone): failover from the checkpoints topic on b loses
//!    nothing and repeats at most those 700.
//! 3. Identity policy with a local producer writing to `orders` on b while the copies arrive:
//!    translation lands between the copies of the group's last consumed and next record.
//!
//! Every record, on a and on b, is alone in its record batch: tansu 0.6.0 cannot fetch from an
//! offset inside a batch (see the README's tansu caveats).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use support::hubmirror::{run_to_end, Running, Workdir};
use support::kafka::{self, Rec};
use support::tansu::Tansu;

const GROUP: &str = "app";
const RECORDS: usize = 10_000;
const PARTITIONS: i32 = 3;
/// What the group consumes on a per partition: 4,321 in all, odd and even positions.
const CONSUMED: [i64; 3] = [1_441, 1_440, 1_440];
/// What it consumes after the last checkpoint in test 2: 700 in all.
const SINCE: [i64; 3] = [234, 233, 233];
const LONG: Duration = Duration::from_secs(120);

/// partition → offset (a group's position) or count.
type Pos = BTreeMap<i32, i64>;

/// Hubmirror first, so it is killed before its brokers.
struct Site {
    run: Option<Running>,
    work: Workdir,
    topology: PathBuf,
    policy: &'static str,
    ca: ClientConfig,
    cb: ClientConfig,
    a: Option<Tansu>,
    _b: Tansu,
}

impl Site {
    /// Brokers a and b, `orders` with `partitions` on a (and on b when `on_b`).
    fn new(policy: &'static str, partitions: i32, on_b: bool) -> Site {
        let (a, b) = (Tansu::start(), Tansu::start());
        let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
        kafka::create_topic(&ca, "orders", partitions);
        if on_b {
            kafka::create_topic(&cb, "orders", partitions);
        }
        let work = Workdir::new();
        let topology = work.topology(&topology(policy, &a, &b, "./store", None));
        let (run, a) = (None, Some(a));
        #[rustfmt::skip]
        return Site { run, work, topology, policy, ca, cb, a, _b: b };
    }

    /// `orders` on b: the remote name of a's `orders`.
    fn remote(&self) -> &'static str {
        if self.policy == "identity" {
            "orders"
        } else {
            "a.orders"
        }
    }

    fn start_run(&mut self) {
        self.run = Some(Running::start(&self.topology, &[]));
    }

    /// `hubmirror <args> --json -c <topology>`, which must exit 0: its array.
    fn json(&self, args: &[&str]) -> Vec<Value> {
        let c = self.topology.to_string_lossy().into_owned();
        let out = run_to_end(&[args, &["--json", "-c", &c]].concat(), &[]);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "hubmirror {args:?}: {stdout}{stderr}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
    }

    /// Polls `checkpoints --group app --json` until its upstream offsets are `pos`; its rows.
    fn checkpoint_at(&self, pos: &Pos) -> Vec<Value> {
        let deadline = Instant::now() + LONG;
        loop {
            let rows = self.json(&["checkpoints", "--group", GROUP]);
            if upstream(&rows) == *pos {
                return rows;
            }
            assert!(Instant::now() < deadline, "no checkpoint at {pos:?}: {rows:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `failover --group app --from a --to b --execute --json`: every row committed, `via`.
    fn failover(&self, via: &str) -> Vec<Value> {
        let rows = self.json(&["failover", "--group", GROUP, "--from", "a", "--to", "b", "--execute"]);
        assert_eq!(rows.len(), PARTITIONS.min(self.partitions()) as usize, "{rows:?}");
        for r in &rows {
            assert!(r["committed"] == true && r["via"] == via, "{r}");
            assert_eq!(r["target_topic"], self.remote(), "{r}");
        }
        eprintln!("failover plan, committed on b: {}", Value::from(rows.clone()));
        rows
    }

    fn partitions(&self) -> i32 {
        kafka::high_watermarks(&self.cb, self.remote()).len() as i32
    }
}

fn topology(policy: &str, a: &Tansu, b: &Tansu, store: &str, metrics: Option<u16>) -> String {
    let metrics = metrics.map_or(String::new(), |p| format!("metrics: {{ listen: 127.0.0.1:{p} }}\n"));
    format!(
        r#"clusters:
  a: {{ bootstrap_servers: "{a}", client: {{ batch.num.messages: "1" }} }}
  b: {{ bootstrap_servers: "{b}", client: {{ batch.num.messages: "1" }} }}
flows: [{{ source: a, target: b, topics: [orders], groups: [".*"] }}]
replication: {{ policy: {policy}, checkpoints_interval: 1s, refresh_topics_interval: 1s }}
store: {{ path: {store} }}
{metrics}"#,
        a = a.listener(),
        b = b.listener(),
    )
}

/// partition → upstream_offset of `checkpoints`/`translate` rows.
fn upstream(rows: &[Value]) -> Pos {
    let n = |r: &Value, k: &str| r[k].as_i64().unwrap_or(-1);
    rows.iter().map(|r| (n(r, "partition") as i32, n(r, "upstream_offset"))).collect()
}

fn key_of(r: &Rec) -> String {
    String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned()
}

/// Records `prefix-i` for `i` in `0..n`, on partition `i % partitions`, each alone in its batch;
/// checks that record `i` landed at offset `i / partitions` (when a was empty).
fn produce(cfg: &ClientConfig, prefix: &str, n: usize, partitions: i32) {
    let started = Instant::now();
    let records: Vec<_> = (0..n)
        .map(|i| ((i % partitions as usize) as i32, format!("{prefix}-{i}").into_bytes(), vec![b'v'; 20]))
        .collect();
    let offsets = kafka::produce_fast_one_per_batch(cfg, "orders", &records);
    let expected: Vec<i64> = (0..n).map(|i| (i / partitions as usize) as i64).collect();
    assert_eq!(offsets, expected, "offsets in production order");
    // One record per batch: a fetch starting at an odd offset gets exactly that record.
    for p in 0..partitions {
        let at = (n as i64 / partitions as i64 / 2) | 1;
        let r = kafka::first_record_from(cfg, "orders", p, at);
        assert_eq!(key_of(&r), format!("{prefix}-{}", at * partitions as i64 + p as i64));
    }
    eprintln!("produced {n} records to a, one per batch, in {:?}", started.elapsed());
}

/// A member of `app` on a consumes exactly `count[p]` records of each partition `p`, starting
/// at `from[p]` (checked: nothing skipped), commits exactly after them and leaves. Returns the
/// records and the new positions.
fn consume_on_a(cfg: &ClientConfig, from: &Pos, count: &[i64]) -> (Vec<Rec>, Pos) {
    let consumer = kafka::group_consumer(cfg, GROUP, &["orders"]);
    let mut read: BTreeMap<i32, Vec<Rec>> = BTreeMap::new();
    let deadline = Instant::now() + LONG;
    let done = |read: &BTreeMap<i32, Vec<Rec>>, p: usize| read.get(&(p as i32)).map_or(0, Vec::len) as i64 >= count[p];
    while !(0..count.len()).all(|p| done(&read, p)) {
        assert!(Instant::now() < deadline, "app consumed only {:?}", read.values().map(Vec::len).collect::<Vec<_>>());
        let Some(m) = consumer.poll(Duration::from_millis(100)) else { continue };
        let r = Rec::from(&m.expect("consume"));
        if !done(&read, r.partition as usize) {
            let next = from.get(&r.partition).copied().unwrap_or(0) + read.get(&r.partition).map_or(0, Vec::len) as i64;
            assert_eq!(r.offset, next, "app reads {}/{} in order, nothing skipped", r.topic, r.partition);
            read.entry(r.partition).or_default().push(r);
        }
    }
    let pos: Pos = read.iter().map(|(p, rs)| (*p, rs.last().unwrap().offset + 1)).collect();
    let mut tpl = TopicPartitionList::new();
    for (p, o) in &pos {
        tpl.add_partition_offset("orders", *p, Offset::Offset(*o)).unwrap();
    }
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    drop(consumer);
    (read.into_values().flatten().collect(), pos)
}

/// A new member of `app` on b reads `topic` until it has every key in `want`, then 2 s more
/// (or gives up at the deadline: the caller counts what is missing).
fn read_on_b(cfg: &ClientConfig, topic: &str, want: &BTreeSet<String>) -> Vec<Rec> {
    let consumer = kafka::group_consumer(cfg, GROUP, &[topic]);
    let (deadline, mut quiet_until, mut missing) = (Instant::now() + LONG, None, want.clone());
    let mut got = Vec::new();
    while quiet_until.is_none_or(|q| Instant::now() < q) && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let r = Rec::from(&m.expect("consume"));
            missing.remove(&key_of(&r));
            got.push(r);
        }
        if quiet_until.is_none() && missing.is_empty() {
            quiet_until = Some(Instant::now() + Duration::from_secs(2));
        }
    }
    got
}

/// (lost, duplicates): keys of `want` never read, and reads beyond the first of a wanted key
/// plus reads of keys not wanted.
fn lost_and_duplicates(got: &[Rec], want: &BTreeSet<String>) -> (usize, usize) {
    let keys: BTreeSet<String> = got.iter().map(key_of).collect();
    (want.difference(&keys).count(), got.len() - keys.intersection(want).count())
}

fn keys(recs: &[Rec]) -> BTreeSet<String> {
    recs.iter().map(key_of).collect()
}

/// Tests 1 and 2 up to the checkpoint: 10,000 records on a, all of them on b, and `app` at
/// [`CONSUMED`] on a with a checkpoint there. Returns the site, the keys read and the position.
fn consumed_and_checkpointed(policy: &'static str) -> (Site, BTreeSet<String>, Pos) {
    let mut site = Site::new(policy, PARTITIONS, false);
    produce(&site.ca, "k", RECORDS, PARTITIONS);
    let started = Instant::now();
    site.start_run();
    let copies = kafka::read_all(&site.cb, site.remote(), RECORDS, LONG);
    assert_eq!(copies.len(), RECORDS, "every record is on b once");
    eprintln!("replicated {RECORDS} records to b in {:?}", started.elapsed());
    let (read, pos) = consume_on_a(&site.ca, &Pos::new(), &CONSUMED);
    assert_eq!((read.len(), keys(&read).len()), (4_321, 4_321));
    let started = Instant::now();
    let rows = site.checkpoint_at(&pos);
    eprintln!("checkpoint at {pos:?} after {:?}: {}", started.elapsed(), Value::from(rows));
    (site, keys(&read), pos)
}

fn failover_is_exact(policy: &'static str) {
    let (site, read, pos) = consumed_and_checkpointed(policy);
    // `run` keeps running: the plan is the group's committed offsets translated by the daemon.
    let plan = site.failover("daemon");
    assert_eq!(upstream(&plan), pos);
    let want: BTreeSet<String> = (0..RECORDS).map(|i| format!("k-{i}")).filter(|k| !read.contains(k)).collect();
    let got = read_on_b(&site.cb, site.remote(), &want);
    let (lost, duplicates) = lost_and_duplicates(&got, &want);
    println!(
        "{policy} policy: app consumed 4321 on a, then read {} on b after failover: {lost} lost, {duplicates} duplicates",
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

#[test]
fn consuming_after_the_last_checkpoint_repeats_at_most_what_was_consumed_since() {
    let (mut site, mut read, at_checkpoint) = consumed_and_checkpointed("default");
    // The checkpoint is in `a.checkpoints.internal` on b too: read with a topology whose store
    // does not exist (and whose metrics port no daemon answers), as after losing the site.
    let lost_site = site.work.path().join("site-lost.yaml");
    let (a, b) = (site.a.as_ref().unwrap(), &site._b);
    let text = topology("default", a, b, "./no-store", Some(support::tansu::free_port()));
    std::fs::write(&lost_site, text).unwrap();
    let from_topic = |site: &Site| {
        let rows = Site { topology: lost_site.clone(), ..site.clone_view() }.json(&["checkpoints", "--group", GROUP]);
        assert!(rows.iter().all(|r| r["via"] == "checkpoints-topic"), "{rows:?}");
        upstream(&rows)
    };
    let deadline = Instant::now() + LONG;
    while from_topic(&site) != at_checkpoint {
        assert!(Instant::now() < deadline, "the checkpoint never reached b's checkpoints topic");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The replicator stops first (so no later checkpoint covers what follows), the group
    // consumes and commits 700 more on a, then the site is lost: its store and its broker.
    let mut run = site.run.take().unwrap();
    assert!(run.terminate(Duration::from_secs(15)).success(), "{}", run.output());
    let (since, pos) = consume_on_a(&site.ca, &at_checkpoint, &SINCE);
    let n = since.len();
    read.extend(keys(&since));
    assert_eq!((n, read.len()), (700, 5_021));
    std::fs::remove_dir_all(site.work.path().join("store")).expect("delete the store");
    drop(site.a.take());
    eprintln!("app at {pos:?} on a, {n} records after the checkpoint at {at_checkpoint:?}; site a lost");

    // Only the checkpoints topic on b is left: it still says where the checkpoint was.
    assert_eq!(upstream(&site.json(&["checkpoints", "--group", GROUP])), at_checkpoint);
    site.failover("checkpoints-topic");
    let want: BTreeSet<String> = (0..RECORDS).map(|i| format!("k-{i}")).filter(|k| !read.contains(k)).collect();
    let got = read_on_b(&site.cb, site.remote(), &want);
    let (lost, duplicates) = lost_and_duplicates(&got, &want);
    println!(
        "site lost: app read {} on b after failover: {lost} lost, {duplicates} duplicates; it had consumed N = {n} on a since the last checkpoint",
        got.len()
    );
    assert_eq!(lost, 0, "lost after failover");
    assert!(duplicates <= n, "{duplicates} duplicates > {n} consumed since the checkpoint");
}
