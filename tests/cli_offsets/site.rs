//! The scene of the offset commands' tests: two brokers, the flow a → b run until every record
//! is on b, and group `app` on a having read part of `orders`; the commands run against it, and
//! what a group reads when it resumes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hubmirror::checkpoint::{committed_offsets, describe_group};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;

use crate::support::hubmirror::{run_to_end, Running, Workdir};
use crate::support::kafka::{self, Rec};
use crate::support::tansu::Tansu;
use crate::support::topology::TopologyBuilder;
use crate::support::wait_for;

pub(crate) const RECORDS: usize = 1_000;
const PARTITIONS: i32 = 2;
pub(crate) const READ_ON_A: usize = 321;
pub(crate) const GROUP: &str = "app";
const T: Duration = Duration::from_secs(15);
pub(crate) const LONG: Duration = Duration::from_secs(90);
/// The topics of a failover a → b, and of a failback b → a.
pub(crate) const FORWARD: (&str, &str) = ("orders", "a.orders");
pub(crate) const BACKWARD: (&str, &str) = ("a.orders", "orders");

/// Two brokers, the flow a → b (default policy) run until every record is on b, and group
/// `app` on a having consumed and committed exactly [`READ_ON_A`] records.
pub(crate) struct Site {
    pub(crate) a: Option<Tansu>,
    /// Kept running for the whole test.
    _b: Tansu,
    pub(crate) work: Workdir,
    topology: PathBuf,
    run: Option<Running>,
    pub(crate) cfg_a: ClientConfig,
    pub(crate) cfg_b: ClientConfig,
    /// Keys `app` read on a.
    pub(crate) read_on_a: BTreeSet<String>,
    /// `app`'s committed offset on a, by partition (partitions it read from).
    positions: BTreeMap<i64, i64>,
    /// `hubmirror.source` of each copy on b, by (partition, offset).
    copies: BTreeMap<(i64, i64), String>,
}

pub(crate) fn setup() -> Site {
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

pub(crate) fn keys(recs: &[Rec]) -> BTreeSet<String> {
    let key = |r: &Rec| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
    recs.iter().map(key).collect()
}

/// `--group app --from <from> --to <to>` after `command`.
pub(crate) fn mv<'a>(command: &'a str, from: &'a str, to: &'a str) -> Vec<&'a str> {
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
    pub(crate) fn json(&self, args: &[&str]) -> Vec<Value> {
        let (code, stdout, stderr) = self.cli(&[args, &["--json"]].concat());
        assert_eq!(code, Some(0), "hubmirror {args:?}: {stderr}");
        serde_json::from_str::<Vec<Value>>(&stdout).expect("a JSON array")
    }

    /// Runs a command that must exit `code`: stdout and stderr together.
    pub(crate) fn expect(&self, args: &[&str], code: i32) -> String {
        let (got, out, err) = self.cli(args);
        assert_eq!(got, Some(code), "hubmirror {args:?}: {err}");
        out + &err
    }

    pub(crate) fn stop_run(&mut self) {
        let mut run = self.run.take().expect("running");
        assert!(run.terminate(Duration::from_secs(15)).success());
    }

    /// `translate --json` a → b, once every row has a translation.
    pub(crate) fn translated(&self, via: &str) -> Rows {
        wait_for("every partition translated", LONG, || {
            let r = rows(&self.json(&mv("translate", "a", "b")), via, FORWARD);
            r.values().all(|(_, d)| d.is_some()).then_some(r)
        })
    }
}

/// partition → (upstream_offset, downstream_offset) of rows that all came `via`, from
/// `topics.0` to `topics.1`.
pub(crate) type Rows = BTreeMap<i64, (i64, Option<i64>)>;

pub(crate) fn rows(elements: &[Value], via: &str, topics: (&str, &str)) -> Rows {
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
pub(crate) fn assert_next_unread(site: &Site, rows: &Rows) {
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
pub(crate) fn wait_active(cfg: &ClientConfig, active: bool) {
    wait_for(&format!("app active: {active}"), LONG, || {
        let members = describe_group(cfg.clone(), GROUP, T)
            .expect("describe")
            .members;
        ((members > 0) == active).then_some(())
    })
}

/// `app`'s committed offsets on `a.orders`.
pub(crate) fn committed(cfg: &ClientConfig) -> Vec<(String, i32, i64)> {
    committed_offsets(cfg.clone(), GROUP, |t| t == "a.orders", T).expect("committed offsets")
}

/// A new consumer of `app` on `topic` reads until it has every key of `0..RECORDS` not in
/// `read`, and 2 s more: (records read, lost, duplicates).
pub(crate) fn resume(
    cfg: &ClientConfig,
    topic: &str,
    read: &BTreeSet<String>,
) -> (usize, usize, usize) {
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
pub(crate) fn execute<'a>(from: &'a str, to: &'a str) -> Vec<&'a str> {
    [mv("failover", from, to), vec!["--execute"]].concat()
}
