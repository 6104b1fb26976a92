//! `checkpoints`, `translate` and `failover` on real tansu brokers through the real binary:
//! translation through the daemon and through the store gives the same rows, pointing at the
//! copies of the next unread records; failover resumes a group on the target exactly (0 lost,
//! 0 duplicates), is refused (exit 3) while the group is active there and changes nothing as a
//! dry run; failing back resumes it on the source with nothing lost; with the store deleted and
//! the source broker gone, the checkpoints topic on the target answers.
//!
//! Source records are produced batched, and hubmirror batches its copies, so the group resumes
//! from offsets in the middle of record batches on both sides.

use hubmirror_test_support as support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hubmirror::checkpoint::{committed_offsets, describe_group, Checkpoint};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use support::hubmirror::{run_to_end, Running, Workdir};
use support::kafka::{self, Rec};
use support::tansu::Tansu;
use support::topology::TopologyBuilder;
use support::wait_for;

const RECORDS: usize = 1_000;
const PARTITIONS: i32 = 2;
const READ_ON_A: usize = 321;
const GROUP: &str = "app";
const T: Duration = Duration::from_secs(15);
const LONG: Duration = Duration::from_secs(90);
/// The topics of a failover a → b, and of a failback b → a.
const FORWARD: (&str, &str) = ("orders", "a.orders");
const BACKWARD: (&str, &str) = ("a.orders", "orders");

/// Two brokers, the flow a → b (default policy) run until every record is on b, and group
/// `app` on a having consumed and committed exactly [`READ_ON_A`] records.
struct Site {
    a: Option<Tansu>,
    /// Kept running for the whole test.
    _b: Tansu,
    work: Workdir,
    topology: PathBuf,
    run: Option<Running>,
    cfg_a: ClientConfig,
    cfg_b: ClientConfig,
    /// Keys `app` read on a.
    read_on_a: BTreeSet<String>,
    /// `app`'s committed offset on a, by partition (partitions it read from).
    positions: BTreeMap<i64, i64>,
    /// `hubmirror.source` of each copy on b, by (partition, offset).
    copies: BTreeMap<(i64, i64), String>,
}

fn setup() -> Site {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (cfg_a, cfg_b) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&cfg_a, "orders", PARTITIONS);
    let records: Vec<(i32, Vec<u8>, Vec<u8>)> = (0..RECORDS)
        .map(|i| (i as i32 % PARTITIONS, key(i).into_bytes(), vec![b'v'; 10]))
        .collect();
    kafka::produce_batched(&cfg_a, "orders", &records);
    let work = Workdir::new();
    let topology = TopologyBuilder::new()
        .tansu("a", &a)
        .tansu("b", &b)
        .flow("a", "b", &["orders"])
        .replication("refresh_topics_interval", "2s")
        .store("./store")
        .write(&work);
    let run = Running::start(&topology, &[]);
    let copies = kafka::read_all(&cfg_b, "a.orders", RECORDS, LONG);
    assert_eq!(copies.len(), RECORDS, "every record mirrored once");
    let copies = copies.iter().map(|r| {
        (
            (r.partition.into(), r.offset),
            r.header("hubmirror.source").unwrap(),
        )
    });
    let copies = copies.collect();
    let (read, positions) = consume_on_a(&cfg_a);
    eprintln!("app read {READ_ON_A} records on a; its offsets: {positions:?}");
    let (read_on_a, run, _b) = (keys(&read), Some(run), b);
    Site {
        a: Some(a),
        _b,
        work,
        topology,
        run,
        cfg_a,
        cfg_b,
        read_on_a,
        positions,
        copies,
    }
}

/// `app` consumes the first 160 records of partition 0 and 161 of partition 1 of `orders` on
/// a (as a member of the group), commits exactly there and leaves: the records and the offsets.
fn consume_on_a(cfg: &ClientConfig) -> (Vec<Rec>, BTreeMap<i64, i64>) {
    let quota = |p: i32| (READ_ON_A as i64 / 2 + i64::from(p)) as usize;
    let consumer = kafka::group_consumer(cfg, GROUP, &["orders"]);
    let mut read: BTreeMap<i32, Vec<Rec>> = BTreeMap::new();
    let deadline = Instant::now() + LONG;
    while (0..PARTITIONS).any(|p| read.get(&p).map_or(0, Vec::len) < quota(p)) {
        assert!(Instant::now() < deadline, "app read only {read:?} on a");
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let r = Rec::from(&m.expect("consume"));
            let of_partition = read.entry(r.partition).or_default();
            if of_partition.len() < quota(r.partition) {
                of_partition.push(r);
            }
        }
    }
    let positions: BTreeMap<i64, i64> = (0..PARTITIONS)
        .map(|p| (p.into(), quota(p) as i64))
        .collect();
    let mut tpl = TopicPartitionList::new();
    for (p, o) in &positions {
        tpl.add_partition_offset("orders", *p as i32, Offset::Offset(*o))
            .unwrap();
    }
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    (read.into_values().flatten().collect(), positions)
}

fn key(i: usize) -> String {
    format!("k{i}")
}

fn keys(recs: &[Rec]) -> BTreeSet<String> {
    let key = |r: &Rec| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
    recs.iter().map(key).collect()
}

/// `--group app --from <from> --to <to>` after `command`.
fn mv<'a>(command: &'a str, from: &'a str, to: &'a str) -> Vec<&'a str> {
    vec![command, "--group", GROUP, "--from", from, "--to", to]
}

impl Site {
    /// `hubmirror <args> -c <topology>`: exit code, stdout, stderr.
    fn cli(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let topology = self.topology.to_string_lossy().into_owned();
        let out = run_to_end(&[args, &["-c", &topology]].concat(), &[]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        eprintln!("$ hubmirror {}\n{stdout}{stderr}", args.join(" "));
        (out.status.code(), stdout, stderr)
    }

    /// A command with `--json` that must exit 0: its array.
    fn json(&self, args: &[&str]) -> Vec<Value> {
        let (code, stdout, stderr) = self.cli(&[args, &["--json"]].concat());
        assert_eq!(code, Some(0), "hubmirror {args:?}: {stderr}");
        serde_json::from_str::<Vec<Value>>(&stdout).expect("a JSON array")
    }

    /// Runs a command that must exit `code`: stdout and stderr together.
    fn expect(&self, args: &[&str], code: i32) -> String {
        let (got, out, err) = self.cli(args);
        assert_eq!(got, Some(code), "hubmirror {args:?}: {err}");
        out + &err
    }

    fn stop_run(&mut self) {
        let mut run = self.run.take().expect("running");
        assert!(run.terminate(Duration::from_secs(15)).success());
    }

    /// `translate --json` a → b, once every row has a translation.
    fn translated(&self, via: &str) -> Rows {
        wait_for("every partition translated", LONG, || {
            let r = rows(&self.json(&mv("translate", "a", "b")), via, FORWARD);
            r.values().all(|(_, d)| d.is_some()).then_some(r)
        })
    }
}

/// partition → (upstream_offset, downstream_offset) of rows that all came `via`, from
/// `topics.0` to `topics.1`.
type Rows = BTreeMap<i64, (i64, Option<i64>)>;

fn rows(elements: &[Value], via: &str, topics: (&str, &str)) -> Rows {
    let row = |e: &Value| {
        let fixed = [
            &e["via"],
            &e["group"],
            &e["source_topic"],
            &e["target_topic"],
        ];
        assert_eq!(
            fixed,
            [via, GROUP, topics.0, topics.1].map(Value::from).each_ref()
        );
        let n = |k: &str| e[k].as_i64();
        (
            n("partition").unwrap(),
            (n("upstream_offset").unwrap(), n("downstream_offset")),
        )
    };
    elements.iter().map(row).collect()
}

/// The rows are `app`'s offsets on a, each pointing at the copy of the next record it had not
/// read there (or at the end of the partition).
fn assert_next_unread(site: &Site, rows: &Rows) {
    let ups: BTreeMap<i64, i64> = rows.iter().map(|(p, (u, _))| (*p, *u)).collect();
    assert_eq!(ups, site.positions, "one row per partition app read");
    for (p, (u, d)) in rows {
        let d = d.expect("translated");
        match site.copies.get(&(*p, d)) {
            Some(source) => assert_eq!(source, &format!("a/orders/{p}/{u}"), "copy at {p}/{d}"),
            None => assert_eq!(*u as usize, RECORDS / 2, "{p}/{d} is past the end"),
        }
    }
}

/// Waits until `app` has (`true`) or has no (`false`) members on the cluster.
fn wait_active(cfg: &ClientConfig, active: bool) {
    wait_for(&format!("app active: {active}"), LONG, || {
        let members = describe_group(cfg.clone(), GROUP, T)
            .expect("describe")
            .members;
        ((members > 0) == active).then_some(())
    })
}

/// `app`'s committed offsets on `a.orders`.
fn committed(cfg: &ClientConfig) -> Vec<(String, i32, i64)> {
    committed_offsets(cfg.clone(), GROUP, |t| t == "a.orders", T).expect("committed offsets")
}

/// A new consumer of `app` on `topic` reads until it has every key of `0..RECORDS` not in
/// `read`, and 2 s more: (records read, lost, duplicates).
fn resume(cfg: &ClientConfig, topic: &str, read: &BTreeSet<String>) -> (usize, usize, usize) {
    let want: BTreeSet<String> = (0..RECORDS)
        .map(key)
        .filter(|k| !read.contains(k))
        .collect();
    let consumer = kafka::group_consumer(cfg, GROUP, &[topic]);
    let (deadline, mut quiet_until) = (Instant::now() + LONG, None);
    let mut got: Vec<Rec> = Vec::new();
    while quiet_until.is_none_or(|q| Instant::now() < q) {
        assert!(Instant::now() < deadline, "only {} records", got.len());
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            got.push(Rec::from(&m.expect("consume")));
        }
        if quiet_until.is_none() && want.is_subset(&keys(&got)) {
            quiet_until = Some(Instant::now() + Duration::from_secs(2));
        }
    }
    let got_keys = keys(&got);
    let lost = want.difference(&got_keys).count();
    (
        got.len(),
        lost,
        got.len() - got_keys.intersection(&want).count(),
    )
}

/// `failover ... --execute` from `from` to `to`.
fn execute<'a>(from: &'a str, to: &'a str) -> Vec<&'a str> {
    [mv("failover", from, to), vec!["--execute"]].concat()
}

#[test]
fn translate_then_failover_and_failback_resume_exactly() {
    let mut site = setup();
    // (a) While `run` runs: through the daemon, once the store has caught up.
    let live = site.translated("daemon");
    assert_next_unread(&site, &live);
    let out = site.expect(&mv("translate", "a", "b"), 0);
    assert!(out.starts_with("via: daemon") && out.contains("DOWNSTREAM-OFFSET"));
    assert!(
        site.json(&["checkpoints"]).is_empty(),
        "no flow checkpoints groups here"
    );

    // (e) A dry run prints the plan and commits nothing on b.
    let out = site.expect(&mv("failover", "a", "b"), 0);
    assert!(
        out.contains("NEW-OFFSET") && out.contains("dry run"),
        "{out}"
    );
    let plan = site.json(&mv("failover", "a", "b"));
    assert!(plan
        .iter()
        .all(|e| e["current_offset"].is_null() && e["committed"] == false));
    assert!(
        committed(&site.cfg_b).is_empty(),
        "the dry run committed nothing"
    );

    // (d) Refused while the group is active on b; b's offsets stay as its member left them.
    let active = kafka::group_consumer(&site.cfg_b, GROUP, &["a.orders"]);
    kafka::poll_records(&active, 5, LONG);
    active.commit_consumer_state(CommitMode::Sync).unwrap();
    wait_active(&site.cfg_b, true);
    let before = committed(&site.cfg_b);
    assert!(site.expect(&execute("a", "b"), 3).contains("active member"));
    assert_eq!(committed(&site.cfg_b), before, "nothing changed on b");
    drop(active);

    // (b) After `run` stopped: through the store, the same rows.
    site.stop_run();
    assert_eq!(
        site.translated("store"),
        live,
        "the store and the daemon agree"
    );

    // (c) Failover: the group on b reads exactly what it had not read on a.
    wait_active(&site.cfg_b, false);
    let done = site.json(&execute("a", "b"));
    assert!(done.iter().all(|e| e["committed"] == true));
    assert!(
        done.iter().any(|e| e["current_offset"].is_i64()),
        "(d)'s offsets were there"
    );
    let (n, lost, dups) = resume(&site.cfg_b, "a.orders", &site.read_on_a);
    eprintln!("failover a -> b: {n} records read on b, {lost} lost, {dups} duplicates");
    assert_eq!((n, lost, dups), (RECORDS - READ_ON_A, 0, 0));

    // (g) 100 more on b (committed), then fail back: a consumer on a reads the rest, 0 lost.
    wait_active(&site.cfg_b, false);
    let on_b = kafka::group_consumer(&site.cfg_b, GROUP, &["a.orders"]);
    let more = keys(&kafka::poll_records(&on_b, 100, LONG));
    on_b.commit_consumer_state(CommitMode::Sync).unwrap();
    drop(on_b);
    assert!(more.is_disjoint(&site.read_on_a));
    wait_active(&site.cfg_b, false);
    let back = rows(&site.json(&execute("b", "a")), "store", BACKWARD);
    assert!(
        !back.is_empty() && back.values().all(|(_, d)| d.is_some()),
        "{back:?}"
    );
    let read: BTreeSet<String> = site.read_on_a.union(&more).cloned().collect();
    let (n, lost, dups) = resume(&site.cfg_a, "orders", &read);
    eprintln!("failback b -> a: {n} records read on a, {lost} lost, {dups} duplicates");
    assert_eq!(lost, 0);
}

#[test]
fn without_store_and_source_the_checkpoints_topic_answers() {
    let mut site = setup();
    site.translated("daemon");
    site.stop_run();
    let exact = site.translated("store");
    assert_next_unread(&site, &exact);

    // What `run` writes when it checkpoints `app`: an older checkpoint, then the latest.
    let topic = "a.checkpoints.internal";
    if !kafka::topic_names(&site.cfg_b).iter().any(|t| t == topic) {
        kafka::create_topic(&site.cfg_b, topic, 1);
    }
    let mut records = Vec::new();
    for back in [7, 0] {
        for (p, (u, d)) in &exact {
            let back = back.min(*u);
            let cp = Checkpoint {
                group: GROUP.into(),
                topic: "a.orders".into(),
                partition: *p as i32,
                upstream_offset: u - back,
                downstream_offset: d.unwrap() - back,
                metadata: String::new(),
            };
            records.push((0, cp.encode_key().unwrap(), cp.encode_value().unwrap()));
        }
    }
    kafka::produce_batched(&site.cfg_b, topic, &records);

    // The site is lost: its store and its broker.
    let store = site.work.path().join("store");
    std::fs::remove_dir_all(&store).expect("delete the store");
    drop(site.a.take());

    let out = site.expect(&mv("translate", "a", "b"), 0);
    assert!(out.starts_with("via: checkpoints-topic"), "{out}");
    let fallback = site.json(&mv("translate", "a", "b"));
    let fallback = rows(&fallback, "checkpoints-topic", FORWARD);
    assert_eq!(
        fallback, exact,
        "the latest checkpoints give the same answer"
    );
    let cps = site.json(&["checkpoints", "--group", GROUP]);
    assert_eq!(cps.len(), exact.len());
    for c in &cps {
        let (u, d) = exact[&c["partition"].as_i64().unwrap()];
        let want = serde_json::json!({"source": "a", "target": "b", "source_topic": "orders",
            "upstream_offset": u, "target_topic": "a.orders", "downstream_offset": d,
            "via": "checkpoints-topic"});
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(&c[k], v, "{k} of {c}");
        }
        assert!(c["age_ms"].as_i64().is_some(), "{c}");
    }

    // Failover from the checkpoints: the group on b reads exactly what it had not read.
    let done = site.json(&execute("a", "b"));
    assert!(done.iter().all(|e| e["committed"] == true));
    let (n, lost, dups) = resume(&site.cfg_b, "a.orders", &site.read_on_a);
    eprintln!("failover from checkpoints: {n} records read on b, {lost} lost, {dups} duplicates");
    assert_eq!((n, lost, dups), (RECORDS - READ_ON_A, 0, 0));
    assert!(
        !store.exists(),
        "the inspection commands never create the store"
    );
}

#[test]
fn usage_errors_exit_2_and_unreachable_clusters_exit_1_naming_them() {
    let work = Workdir::new();
    let (pa, pb) = (support::tansu::free_port(), support::tansu::free_port());
    let topology = TopologyBuilder::new()
        .cluster("a", &format!("127.0.0.1:{pa}"))
        .cluster("b", &format!("127.0.0.1:{pb}"))
        .set(
            "b",
            "sasl",
            "{mechanism: PLAIN, username: u, password: s3cr3t-pw}",
        )
        .cluster("c", &format!("127.0.0.1:{pa}"))
        .flow("a", "b", &["orders"])
        .store("./store")
        .write(&work);
    let c = topology.to_string_lossy().into_owned();
    let cli = |args: &[&str]| {
        let out = run_to_end(&[args, &["-c", &c]].concat(), &[]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let all = err.clone() + &String::from_utf8_lossy(&out.stdout);
        eprintln!("$ hubmirror {}\n{all}", args.join(" "));
        assert!(!all.contains("s3cr3t-pw"), "a secret was printed");
        (out.status.code(), err)
    };
    let (code, err) = cli(&mv("translate", "a", "c"));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("'a' and 'c'") && err.contains("a -> b"),
        "{err}"
    );
    let (code, err) = cli(&mv("translate", "x", "b"));
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown cluster alias 'x'"), "{err}");
    // a is down, so the checkpoints on b are needed; b is down too. Failing back needs b;
    // `checkpoints` without a store needs b.
    for args in [
        mv("translate", "a", "b"),
        mv("failover", "b", "a"),
        vec!["checkpoints"],
    ] {
        let (code, err) = cli(&args);
        assert_eq!(code, Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        let refused = format!("hubmirror: cluster 'b' (127.0.0.1:{pb}): connection refused");
        assert!(err.starts_with(&refused), "{err}");
    }
    std::fs::write(&topology, "clusters: [").unwrap();
    assert_eq!(cli(&["checkpoints"]).0, Some(2));
    assert!(!work.path().join("store").exists(), "never created");
}
