//! Several instances, one translation, on real tansu brokers: the segments each instance's store
//! recorded go through `hubmirror.segments.a.internal` on b, and every store — each instance's, a new
//! empty one, or none at all (the commands) — then translates every offset alike.

use hubmirror_test_support as support;

mod store_setup;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hubmirror::checkpoint::commit_group_offsets;
use hubmirror::cluster::{self, clients, ClusterContext};
use hubmirror::metrics::Metrics;
use hubmirror::naming::Naming;
use hubmirror::segments::{self, task::SegmentsSetup, Merger, Publisher};
use hubmirror::status::FlowStatus;
use hubmirror::store::{Event, Store, Translation};
use hubmirror::topology::{self, Topology};
use rdkafka::admin::AdminClient;
use rdkafka::producer::FutureProducer;
use serde_json::Value;
use store_setup::{copied, key};
use support::hubmirror::{run_to_end, Running, Workdir};
use support::kafka;
use support::tansu::{free_port, Tansu};
use support::topology::TopologyBuilder;
use support::wait_for;

const T: Duration = Duration::from_secs(15);
const W: Duration = Duration::from_secs(60);
const GROUP: &str = "app";

/// The topology a → b (`orders`, groups `.*`, checkpoints every second) with the store at
/// `store` and a metrics port nothing listens on, written to `name` in `work`.
fn write_topology(work: &Workdir, a: &Tansu, b: &Tansu, store: &Path, name: &str) -> Topology {
    let text = TopologyBuilder::new()
        .tansu("a", a)
        .tansu("b", b)
        .flow("a", "b", &["orders"])
        .flow_set("groups", r#"[".*"]"#)
        .replication("checkpoints_interval", "1s")
        .replication("sync_group_offsets", "true")
        .store(store.to_str().expect("utf-8 path"))
        .metrics(&format!("127.0.0.1:{}", free_port()))
        .yaml();
    let path = work.path().join(name);
    std::fs::write(&path, text).expect("write topology");
    topology::load(&path).expect("valid topology")
}

/// The shared producer and admin client of cluster `alias`.
fn clients_of(
    t: &Topology,
    alias: &str,
) -> (
    FutureProducer<ClusterContext>,
    Arc<AdminClient<ClusterContext>>,
) {
    let c = &t.clusters[alias];
    let (fatal, _) = tokio::sync::mpsc::unbounded_channel();
    let producer = clients::producer(c, clients::context(c, fatal.clone())).expect("producer");
    let admin = clients::admin(c, clients::context(c, fatal)).expect("admin");
    (producer, Arc::new(admin))
}

fn segments_setup(
    t: &Topology,
    instance: &str,
    store: &Store,
    status: &Arc<FlowStatus>,
) -> SegmentsSetup {
    let (producer, admin) = clients_of(t, "b");
    SegmentsSetup {
        flow: t.flows[0].clone(),
        naming: Naming::from_replication(&t.replication),
        instance: instance.into(),
        store: store.clone(),
        producer,
        admin,
        target_config: cluster::client_config(&t.clusters["b"]),
        create_topics: true,
        status: status.clone(),
        metrics: Arc::new(Metrics::new()),
    }
}

/// Reads `hubmirror.segments.a.internal` on b into `store`.
fn catch_up(t: &Topology, store: &Store) -> segments::CaughtUp {
    let naming = Naming::from_replication(&t.replication);
    let merger = Merger::new("a", "b", naming, store.clone(), None);
    segments::catch_up(cluster::client_config(&t.clusters["b"]), &merger, T).expect("catch up")
}

/// Every translation of partitions 0 and 1 up to `upto`.
fn translations(store: &Store, upto: i64) -> Vec<(i32, i64, Translation)> {
    [0, 1]
        .into_iter()
        .flat_map(|p| (0..upto).map(move |u| (p, u)))
        .map(|(p, u)| (p, u, store.translate(&key(p), u).expect("translate")))
        .collect()
}

/// `orders` on a (2 partitions, 70 and 10 records) and a store per instance: instance A copied
/// partition 0 up to 40 (skipping offset 20, a loop record) and all of partition 1; then the
/// group gave partition 0 to instance B, which copied 40..70 after 5 local records on b.
fn handover(work: &Workdir) -> (Store, Store, Store) {
    let open = |name: &str| Store::open(&work.path().join(name)).expect("store");
    let (a, b, whole) = (open("store-a"), open("store-b"), open("store-whole"));
    let mut first = copied(0..20, 0);
    first.push(Event::Skipped { upstream: 20 });
    first.extend(copied(21..40, 20));
    let (second, other) = (copied(40..70, 44), copied(0..10, 0));
    a.record(&key(0), &first).expect("record");
    a.record(&key(1), &other).expect("record");
    b.record(&key(0), &second).expect("record");
    for events in [&first, &second] {
        whole.record(&key(0), events).expect("record");
    }
    whole.record(&key(1), &other).expect("record");
    (a, b, whole)
}

/// Instance A and instance B publish what they copied; A, B and a new empty store then
/// translate every offset as one store that had seen everything; and `translate` answers the
/// same from A's store, B's store and no store at all.
#[test]
fn segments_published_by_two_instances_translate_alike_in_every_store() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let ca = kafka::plain(&a.listener());
    kafka::create_topic(&ca, "orders", 2);
    let recs: Vec<(i32, Vec<u8>, Vec<u8>)> = (0..80)
        .map(|i| {
            (
                i32::from(i >= 70),
                format!("k{i}").into_bytes(),
                b"v".to_vec(),
            )
        })
        .collect();
    kafka::produce_batched(&ca, "orders", &recs);
    let work = Workdir::new();
    let t = write_topology(&work, &a, &b, &work.path().join("store-a"), "a.yaml");
    let (store_a, store_b, whole) = handover(&work);
    let want = translations(&whole, 75);
    assert_eq!(
        want[20].2,
        Translation::Exact(20),
        "the skipped record: the next copy"
    );
    assert_eq!(want[40].2, Translation::Exact(44), "B's first copy");
    assert_eq!(want[70].2, Translation::Exact(74));

    let rt = support::multi_thread_runtime();
    let (status_a, status_b) = (FlowStatus::new("a", "b"), FlowStatus::new("a", "b"));
    let mut pub_a = Publisher::new(&segments_setup(&t, "instance-a", &store_a, &status_a));
    let mut pub_b = Publisher::new(&segments_setup(&t, "instance-b", &store_b, &status_b));
    assert_eq!(
        rt.block_on(pub_a.round()).expect("publish"),
        2,
        "one record per partition"
    );
    assert_eq!(rt.block_on(pub_b.round()).expect("publish"), 1);
    assert_eq!(
        rt.block_on(pub_a.round()).expect("publish"),
        0,
        "nothing new"
    );
    assert!(store_a.unpublished().expect("unpublished").is_empty());

    let empty = Store::open(&work.path().join("store-new")).expect("store");
    let read = catch_up(&t, &empty);
    assert_eq!(
        (read.records, read.merged, read.skipped, read.conflicts),
        (3, 3, 0, 0)
    );
    for store in [&store_a, &store_b] {
        assert_eq!(catch_up(&t, store).merged, 3);
    }
    for (name, store) in [("A", &store_a), ("B", &store_b), ("new", &empty)] {
        assert_eq!(translations(store, 75), want, "instance {name}'s store");
    }
    // Read again: nothing new past the positions each store keeps.
    assert_eq!(catch_up(&t, &empty).records, 0);

    // The daily refresh: B owns partition 0 now and publishes all it knows of it.
    status_b.own("orders", [0]);
    pub_b.refresh_now();
    assert_eq!(rt.block_on(pub_b.round()).expect("refresh"), 1);
    assert_eq!(catch_up(&t, &empty).merged, 1);
    assert_eq!(translations(&empty, 75), want);
    drop(rt);

    // `translate` from A's store, B's store and none: the group at 43 on partition 0 and 5 on
    // partition 1 resumes at the same offsets on b.
    let at = [("orders".to_string(), 0, 43), ("orders".to_string(), 1, 5)];
    commit_group_offsets(ca.clone(), GROUP, &at, T).expect("commit");
    // Every handle on the stores goes: the command opens them.
    drop((pub_a, pub_b, store_a, store_b, empty, whole));
    let mut answers = Vec::new();
    for (file, store) in [
        ("a.yaml", "store-a"),
        ("b.yaml", "store-b"),
        ("none.yaml", "lost"),
    ] {
        let path = work.path().join(store);
        write_topology(&work, &a, &b, &path, file);
        let got: BTreeMap<i64, (i64, String)> = translated(&work.path().join(file))
            .into_iter()
            .map(|(p, (d, via))| (p, (d.expect("exact"), via)))
            .collect();
        answers.push(got);
    }
    let offsets = |a: &BTreeMap<i64, (i64, String)>| -> Vec<(i64, i64)> {
        a.iter().map(|(p, (d, _))| (*p, *d)).collect()
    };
    let want = vec![(0, 47), (1, 5)];
    for answer in &answers {
        assert_eq!(offsets(answer), want, "{answers:?}");
    }
    let via = |i: usize| -> Vec<&str> { answers[i].values().map(|(_, v)| v.as_str()).collect() };
    assert_eq!(
        (via(0), via(1), via(2)),
        (
            vec!["store"; 2],
            vec!["store"; 2],
            vec!["segments-topic"; 2]
        )
    );
    assert!(!work.path().join("lost").exists(), "no store is created");
}

/// `translate --json` rows of `GROUP` from a to b: partition → (downstream offset, via).
fn translated(topology: &Path) -> BTreeMap<i64, (Option<i64>, String)> {
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
    ];
    let out = run_to_end(&[&args[..], &[topology.to_str().unwrap()]].concat(), &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_str(&text).expect("json");
    rows.iter()
        .map(|r| {
            let p = r["partition"].as_i64().expect("partition");
            let via = r["via"].as_str().expect("via").to_string();
            (p, (r["downstream_offset"].as_i64(), via))
        })
        .collect()
}

/// `hubmirror run` publishes its segments (the last ones when it stops): the running daemon,
/// the store it leaves, no store at all, and a daemon that recreated a lost store all translate
/// the group exactly.
#[test]
fn run_publishes_its_segments_and_a_lost_store_translates_exactly() {
    const RECORDS: usize = 40;
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&ca, "orders", 1);
    // 5 records of b's own first: the copies are 5 further on.
    kafka::create_topic(&cb, "a.orders", 1);
    let own: Vec<(i32, Vec<u8>, Vec<u8>)> = (0..5).map(|i| (0, vec![i], b"b".to_vec())).collect();
    kafka::produce_batched(&cb, "a.orders", &own);
    let recs: Vec<(i32, Vec<u8>, Vec<u8>)> = (0..RECORDS)
        .map(|i| (0, format!("k{i}").into_bytes(), b"v".to_vec()))
        .collect();
    kafka::produce_batched(&ca, "orders", &recs);
    let work = Workdir::new();
    let topology = TopologyBuilder::new()
        .tansu("a", &a)
        .tansu("b", &b)
        .flow("a", "b", &["orders"])
        .replication("refresh_topics_interval", "1s")
        .replication("heartbeats_interval", "0s")
        .write(&work);
    let mut run = Running::start(&topology, &[]);
    assert_eq!(
        kafka::read_all(&cb, "a.orders", RECORDS + 5, W).len(),
        RECORDS + 5
    );
    let at = [("orders".to_string(), 0, 25)];
    commit_group_offsets(ca.clone(), GROUP, &at, T).expect("commit");
    let exact = |via: &str| BTreeMap::from([(0, (Some(30), via.to_string()))]);
    wait_for("the daemon's translation", W, || {
        let got = translated(&topology);
        (got == exact("daemon")).then_some(()).ok_or(got)
    });
    run.stop_cleanly();
    assert_eq!(translated(&topology), exact("store"));
    assert!(kafka::topic_names(&cb).contains("hubmirror.segments.a.internal"));

    // The store is lost: the segments topic answers, then the store `run` recreates.
    std::fs::remove_dir_all(work.path().join("data")).expect("remove the store");
    assert_eq!(translated(&topology), exact("segments-topic"));
    assert!(
        !work.path().join("data").exists(),
        "the command creates no store"
    );
    let mut run = Running::start(&topology, &[]);
    wait_for("the recreated store's translation", W, || {
        let got = translated(&topology);
        (got == exact("daemon")).then_some(()).ok_or(got)
    });
    run.stop_cleanly();
}
