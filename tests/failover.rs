//! Failover exactness on real tansu brokers with the real `hubmirror run` (flow a → b, all
//! groups, checkpoints every second) and CLI; an rdkafka client plays the consumer group `app`.
//! Every record, on a and on b, is alone in its batch (tansu 0.6.0 cannot fetch from inside a
//! batch; see the README's tansu caveats).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use support::hubmirror::{run_to_end, Running, Workdir};
use support::kafka::{self, Rec};
use support::tansu::{free_port, Tansu};

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

/// Hubmirror first, so it is killed before its brokers.
struct Site {
    run: Option<Running>,
    work: Workdir,
    topology: PathBuf,
    /// `orders` on b: the remote name of a's `orders`.
    remote: &'static str,
    ca: ClientConfig,
    cb: ClientConfig,
    a: Option<Tansu>,
    b: Tansu,
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
        let topology = work.topology(&topology(policy, &a, &b, "./store", ""));
        let remote = ["a.orders", "orders"][usize::from(policy == "identity")];
        let (run, a) = (None, Some(a));
        Site {
            run,
            work,
            topology,
            remote,
            ca,
            cb,
            a,
            b,
        }
    }

    fn start_run(&mut self) {
        self.run = Some(Running::start(&self.topology, &[]));
    }

    /// Polls `checkpoints --group app --json` until its upstream offsets are `pos`.
    fn checkpoint_at(&self, pos: &Pos) {
        let started = Instant::now();
        let check = || upstream(&json(&self.topology, CHECKPOINTS)) == *pos;
        wait_until(&format!("a checkpoint at {pos:?}"), check);
        eprintln!("checkpoint at {pos:?} after {:?}", started.elapsed());
    }

    /// `failover ... --execute --json`: a committed row per partition of `pos` (the group's
    /// offsets on a), each answered `via`.
    fn failover(&self, via: &str, pos: &Pos) {
        let rows = json(&self.topology, FAILOVER);
        assert_eq!(upstream(&rows), *pos, "{rows:?}");
        for r in &rows {
            assert!(r["committed"] == true && r["via"] == via, "{r}");
            assert_eq!(r["target_topic"], self.remote, "{r}");
        }
    }
}

/// `hubmirror <command> --json -c <topology>`, which must exit 0: its array.
fn json(topology: &Path, command: &str) -> Vec<Value> {
    let c = topology.to_string_lossy().into_owned();
    let args: Vec<&str> = command.split(' ').collect();
    let out = run_to_end(&[&args[..], &["--json", "-c", &c]].concat(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hubmirror {args:?}: {stdout}{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

fn topology(policy: &str, a: &Tansu, b: &Tansu, store: &str, extra: &str) -> String {
    format!(
        r#"clusters:
  a: {{ bootstrap_servers: "{a}", client: {{ batch.num.messages: "1" }} }}
  b: {{ bootstrap_servers: "{b}", client: {{ batch.num.messages: "1" }} }}
flows: [{{ source: a, target: b, topics: [orders], groups: [".*"] }}]
replication: {{ policy: {policy}, checkpoints_interval: 1s, refresh_topics_interval: 1s }}
store: {{ path: {store} }}
{extra}"#,
        a = a.listener(),
        b = b.listener(),
    )
}

/// Calls `done` every 200 ms until it says yes; panics after [`LONG`] naming `what`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {LONG:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// partition → upstream_offset of `checkpoints`, `translate` or `failover` rows.
fn upstream(rows: &[Value]) -> Pos {
    let row = |r: &Value| (num(r, "partition") as i32, num(r, "upstream_offset"));
    rows.iter().map(row).collect()
}

/// Field `k` of a JSON row, a number (-1 when it is not).
fn num(r: &Value, k: &str) -> i64 {
    r[k].as_i64().unwrap_or(-1)
}

fn key_of(r: &Rec) -> String {
    String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned()
}

fn keys(recs: &[Rec]) -> BTreeSet<String> {
    recs.iter().map(key_of).collect()
}

/// Keys `<prefix>-i` for `i < n` not in `read`.
fn unread(prefix: &str, n: usize, read: &BTreeSet<String>) -> BTreeSet<String> {
    let all = (0..n).map(|i| format!("{prefix}-{i}"));
    all.filter(|k| !read.contains(k)).collect()
}

/// Records `<prefix>-i` for `i < n` on partition `i % partitions` of `orders` on an empty a,
/// each alone in its batch: checks that record `i` is at offset `i / partitions` and that a
/// fetch starting at an odd offset in the middle gets exactly that record.
fn produce(cfg: &ClientConfig, prefix: &str, n: usize, partitions: i32) {
    let started = Instant::now();
    let parts = partitions as usize;
    let rec = |i: usize| {
        (
            (i % parts) as i32,
            format!("{prefix}-{i}").into_bytes(),
            vec![0; 20],
        )
    };
    let records: Vec<_> = (0..n).map(rec).collect();
    let offsets = kafka::produce_fast_one_per_batch(cfg, "orders", &records);
    assert_eq!(
        offsets,
        (0..n).map(|i| (i / parts) as i64).collect::<Vec<_>>()
    );
    let at = (n / parts / 2) | 1;
    for p in 0..parts {
        let r = kafka::first_record_from(cfg, "orders", p as i32, at as i64);
        assert_eq!(key_of(&r), format!("{prefix}-{}", at * parts + p), "{r:?}");
    }
    eprintln!(
        "produced {n} records on a, one per batch, in {:?}",
        started.elapsed()
    );
}

/// A member of `app` on a consumes exactly `count[p]` records of each partition `p`, from
/// `from[p]` on (checked: nothing skipped), commits exactly after them and leaves. Returns the
/// records and the group's new offsets.
fn consume_on_a(cfg: &ClientConfig, from: &Pos, count: &[i64]) -> (Vec<Rec>, Pos) {
    let consumer = kafka::group_consumer(cfg, GROUP, &["orders"]);
    let mut read: BTreeMap<i32, Vec<Rec>> = BTreeMap::new();
    let deadline = Instant::now() + LONG;
    let have = |read: &BTreeMap<i32, Vec<Rec>>, p: i32| read.get(&p).map_or(0, Vec::len) as i64;
    while (0..count.len()).any(|p| have(&read, p as i32) < count[p]) {
        assert!(Instant::now() < deadline, "app consumed only {read:?}");
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let r = Rec::from(&m.expect("consume"));
        let done = have(&read, r.partition);
        if done < count[r.partition as usize] {
            let next = from.get(&r.partition).unwrap_or(&0) + done;
            assert_eq!(r.offset, next, "app reads orders/{} in order", r.partition);
            read.entry(r.partition).or_default().push(r);
        }
    }
    let pos: Pos = read
        .iter()
        .map(|(p, rs)| (*p, rs.last().unwrap().offset + 1))
        .collect();
    let mut tpl = TopicPartitionList::new();
    for (p, o) in &pos {
        tpl.add_partition_offset("orders", *p, Offset::Offset(*o))
            .unwrap();
    }
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    (read.into_values().flatten().collect(), pos)
}

/// A new member of `app` on b reads `topic` until it has every key in `want`, then 2 s more;
/// or until nothing came for 20 s (the caller counts what is missing).
fn read_on_b(cfg: &ClientConfig, topic: &str, want: &BTreeSet<String>) -> Vec<Rec> {
    let consumer = kafka::group_consumer(cfg, GROUP, &[topic]);
    let (mut last, mut quiet_until, mut missing) = (Instant::now(), None, want.clone());
    let mut got = Vec::new();
    while quiet_until.is_none_or(|q| Instant::now() < q) && last.elapsed() < IDLE {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let r = Rec::from(&m.expect("consume"));
            missing.remove(&key_of(&r));
            got.push(r);
            last = Instant::now();
        }
        if quiet_until.is_none() && missing.is_empty() {
            quiet_until = Some(Instant::now() + Duration::from_secs(2));
        }
    }
    got
}

/// (lost, duplicates): keys of `want` never read; reads of keys not wanted, and of wanted
/// keys beyond their first.
fn lost_and_duplicates(got: &[Rec], want: &BTreeSet<String>) -> (usize, usize) {
    let keys = keys(got);
    let lost = want.difference(&keys).count();
    (lost, got.len() - keys.intersection(want).count())
}

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
    let metrics = format!("metrics: {{ listen: 127.0.0.1:{} }}\n", free_port());
    let a = site.a.as_ref().unwrap();
    let text = topology("default", a, &site.b, "./no-store", &metrics);
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
    let mut site = Site::new("identity", 2, true);
    produce(&site.ca, "a", N, 2);
    // A local producer writes b-0, b-1, ... to `orders` on b, one per batch, while the copies
    // of a's records arrive, until they all did.
    let stop = Arc::new(AtomicBool::new(false));
    let (cb, halt) = (site.cb.clone(), stop.clone());
    let local = std::thread::spawn(move || {
        kafka::produce_one_per_batch_until(&cb, "orders", 2, "b", &halt)
    });
    site.start_run();
    let (probe, mut copies) = (kafka::group_consumer(&site.cb, "probe", &["orders"]), 0);
    wait_until("every copy on b", || {
        while let Some(m) = probe.poll(Duration::from_millis(100)) {
            copies += usize::from(key_of(&Rec::from(&m.expect("consume"))).starts_with("a-"));
        }
        copies >= N
    });
    drop(probe);
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
