//! Work done once per flow however many instances run, by the instance the source cluster's
//! group coordinator gave the partition to: checkpoints and group offset sync per partition,
//! heartbeats by the owner of `heartbeats` partition 0. On real tansu brokers.
//!
//! Until the flows call `FlowStatus::own`, the tasks are driven here in-process with statuses
//! the tests mark as the group would.

use hubmirror_test_support as support;

mod store_setup;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hubmirror::checkpoint::{self, commit_group_offsets, committed_offsets, Checkpoint};
use hubmirror::cluster::context::{end_reader, ReaderContext};
use hubmirror::cluster::{self, clients, ClusterContext};
use hubmirror::heartbeat::{self, EmitterClients, EmitterConfig, Heartbeat};
use hubmirror::metrics::Metrics;
use hubmirror::naming::Naming;
use hubmirror::shutdown::CancellationToken;
use hubmirror::status::FlowStatus;
use hubmirror::store::Store;
use hubmirror::topology::{self, Topology};
use rdkafka::admin::AdminClient;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use store_setup::{copied, key};
use support::hubmirror::Workdir;
use support::kafka;
use support::tansu::{free_port, Tansu};
use support::topology::TopologyBuilder;
use support::wait_for;

const T: Duration = Duration::from_secs(15);
const W: Duration = Duration::from_secs(60);
const GROUP: &str = "app";

/// The topology a → b (`orders`, groups `.*`, checkpoints every second, group offset sync).
fn write_topology(work: &Workdir, a: &Tansu, b: &Tansu) -> Topology {
    let text = TopologyBuilder::new()
        .tansu("a", a)
        .tansu("b", b)
        .flow("a", "b", &["orders"])
        .flow_set("groups", r#"[".*"]"#)
        .replication("checkpoints_interval", "1s")
        .replication("sync_group_offsets", "true")
        .store(work.path().join("unused").to_str().expect("utf-8 path"))
        .metrics(&format!("127.0.0.1:{}", free_port()))
        .yaml();
    let path = work.path().join("topology.yaml");
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

/// Every (upstream, downstream) checkpoint of `partition` written to `a.checkpoints.internal`
/// on b, in order.
fn checkpoint_history(cb: &ClientConfig, partition: i32, expected: usize) -> Vec<(i64, i64)> {
    kafka::read_all(cb, "a.checkpoints.internal", expected, W)
        .iter()
        .filter_map(|r| Checkpoint::decode(r.key.as_deref()?, r.value.as_deref()?).ok())
        .filter(|c| c.group == GROUP && c.partition == partition)
        .map(|c| (c.upstream_offset, c.downstream_offset))
        .collect()
}

/// The latest checkpoint of `partition` in the checkpoints topic.
fn latest(t: &Topology, partition: i32) -> Option<(i64, i64)> {
    checkpoint::read_latest(
        cluster::client_config(&t.clusters["b"]),
        "a.checkpoints.internal",
        T,
    )
    .ok()?
    .into_iter()
    .map(|r| r.checkpoint)
    .find(|c| c.group == GROUP && c.partition == partition)
    .map(|c| (c.upstream_offset, c.downstream_offset))
}

/// Checkpoints and group offset sync by each partition's owner only; when a partition moves,
/// its new owner starts from the last checkpoint the previous one emitted, never behind it.
#[test]
fn checkpoints_are_emitted_by_the_owner_and_never_go_back_when_a_partition_moves() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    kafka::create_topic(&ca, "orders", 2);
    kafka::create_topic(&cb, "a.orders", 2);
    let recs: Vec<(i32, Vec<u8>, Vec<u8>)> = (0..120)
        .map(|i: i32| (i % 2, format!("k{i}").into_bytes(), b"v".to_vec()))
        .collect();
    kafka::produce_batched(&ca, "orders", &recs);
    let work = Workdir::new();
    let t = write_topology(&work, &a, &b);
    // Instance A found partition 0's copies 10 further on than instance B did (a partition
    // copied twice): B alone would translate 30 to 35, below A's checkpoint at 40.
    let open = |name: &str| Store::open(&work.path().join(name)).expect("store");
    let (store_a, store_b) = (open("a"), open("b"));
    store_a.record(&key(0), &copied(0..60, 10)).expect("record");
    store_b.record(&key(0), &copied(0..60, 5)).expect("record");
    for s in [&store_a, &store_b] {
        s.record(&key(1), &copied(0..60, 0)).expect("record");
    }
    let commit = |p: i32, o: i64| {
        commit_group_offsets(ca.clone(), GROUP, &[("orders".to_string(), p, o)], T).expect("commit")
    };
    commit(0, 30);
    commit(1, 5);

    let (status_a, status_b) = (FlowStatus::new("a", "b"), FlowStatus::new("a", "b"));
    status_a.own("orders", [0]);
    status_b.own("orders", [1]);
    let setup = |store: &Store, status: &Arc<FlowStatus>| {
        let (producer, admin) = clients_of(&t, "b");
        checkpoint::task::CheckpointSetup {
            flow: t.flows[0].clone(),
            naming: Naming::from_replication(&t.replication),
            interval: t.replication.checkpoints_interval,
            create_topics: true,
            write_to_target: true,
            sync_group_offsets: true,
            source_config: cluster::client_config(&t.clusters["a"]),
            target_config: cluster::client_config(&t.clusters["b"]),
            producer,
            admin,
            store: store.clone(),
            reverse: None,
            metrics: Arc::new(Metrics::new()),
            status: status.clone(),
        }
    };
    let rt = support::multi_thread_runtime();
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let task_a = rt.spawn(checkpoint::task::run(
        setup(&store_a, &status_a),
        stop_a.clone(),
    ));
    rt.spawn(checkpoint::task::run(
        setup(&store_b, &status_b),
        stop_b.clone(),
    ));

    wait_for("each owner's checkpoint", W, || {
        let seen = (latest(&t, 0), latest(&t, 1));
        (seen == (Some((30, 40)), Some((5, 5))))
            .then_some(())
            .ok_or(seen)
    });
    let held = |s: &Store, p| {
        s.checkpoint(&key(p), GROUP)
            .expect("store")
            .map(|c| c.upstream_offset)
    };
    assert_eq!(
        (held(&store_a, 0), held(&store_a, 1)),
        (Some(30), None),
        "A owns 0 only"
    );
    assert_eq!(
        (held(&store_b, 0), held(&store_b, 1)),
        (None, Some(5)),
        "B owns 1 only"
    );
    // The idle group on b: each partition synced by its owner.
    let on_b = || -> Vec<(i32, i64)> {
        let cfg = cluster::client_config(&t.clusters["b"]);
        let got = committed_offsets(cfg, GROUP, |t| t == "a.orders", T).expect("committed");
        let mut got: Vec<(i32, i64)> = got.into_iter().map(|(_, p, o)| (p, o)).collect();
        got.sort_unstable();
        got
    };
    wait_for("the group synced on b", W, || {
        let got = on_b();
        (got == vec![(0, 40), (1, 5)]).then_some(()).ok_or(got)
    });

    // A goes away; B gets partition 0. Two rounds of B later (p1 moved to 6, then 7: the second
    // round began after the first was written, so after B owned partition 0) B has seen the
    // group at 30 on partition 0 and emitted nothing for it: 35 would have gone back.
    stop_a.cancel();
    rt.block_on(task_a).expect("A stopped");
    status_b.own("orders", [0]);
    for p1 in [6, 7] {
        commit(1, p1);
        wait_for("B's round", W, || {
            (latest(&t, 1) == Some((p1, p1))).then_some(())
        });
    }
    commit(0, 45);
    wait_for("B's checkpoint of partition 0", W, || {
        let seen = latest(&t, 0);
        (seen == Some((45, 50))).then_some(()).ok_or(seen)
    });
    assert_eq!(checkpoint_history(&cb, 0, 5), vec![(30, 40), (45, 50)]);
    stop_b.cancel();
}

/// Counts the heartbeats in `heartbeats` on a cluster per target alias, reading on from where
/// it stopped: records of one partition come in order, so once a heartbeat is counted, every
/// one written before it is too.
struct Beats {
    reader: BaseConsumer<ReaderContext>,
    seen: BTreeMap<String, usize>,
}

impl Beats {
    fn new(cfg: &ClientConfig) -> Beats {
        let reader = end_reader(cfg.clone(), "test-heartbeats-reader").expect("reader");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("heartbeats", 0, Offset::Beginning)
            .expect("partition");
        reader.assign(&tpl).expect("assign");
        Beats {
            reader,
            seen: BTreeMap::new(),
        }
    }

    /// Heartbeats of `target` counted after reading what has arrived.
    fn count(&mut self, target: &str) -> usize {
        loop {
            match self.reader.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let h = Heartbeat::decode(m.key().expect("key"), m.payload().expect("value"));
                    *self.seen.entry(h.expect("heartbeat").target).or_default() += 1;
                }
                Some(Err(KafkaError::PartitionEOF(_))) | None => break,
                Some(Err(e)) => panic!("reading heartbeats: {e}"),
            }
        }
        self.seen.get(target).copied().unwrap_or(0)
    }
}

/// The flow a → b writes heartbeats only while its instance owns `heartbeats` partition 0 in
/// the flow's group; an instance that does not still creates the topic. A second emitter that
/// is not gated (key a → c) is the clock: so many of its heartbeats, so many intervals.
#[test]
fn heartbeats_are_emitted_by_the_owner_of_partition_0_only() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let ca = kafka::plain(&a.listener());
    let work = Workdir::new();
    let t = write_topology(&work, &a, &b);
    let emitter = |target: &str| {
        let (producer, admin) = clients_of(&t, "a");
        let cfg = EmitterConfig {
            source: "a".into(),
            target: target.into(),
            interval: Duration::from_millis(200),
            create_topics: true,
            looked: CancellationToken::new(),
        };
        (cfg, EmitterClients { producer, admin })
    };
    let rt = support::multi_thread_runtime();
    let stop = CancellationToken::new();
    let status = FlowStatus::new("a", "b");
    let (cfg, c) = emitter("b");
    let metrics = Arc::new(Metrics::new());
    rt.spawn(heartbeat::emit(
        cfg,
        c,
        Some(status.clone()),
        metrics.clone(),
        stop.clone(),
    ));
    wait_for(
        "the heartbeats topic, created by an instance that does not own it",
        W,
        || kafka::topic_names(&ca).contains("heartbeats").then_some(()),
    );
    let (cfg, c) = emitter("c");
    rt.spawn(heartbeat::emit(cfg, c, None, metrics, stop.clone()));
    let mut beats = Beats::new(&ca);
    let clock_at = |beats: &mut Beats, n: usize| {
        wait_for("the clock's heartbeats", W, || {
            (beats.count("c") >= n).then_some(())
        })
    };
    clock_at(&mut beats, 5);
    assert_eq!(beats.count("b"), 0, "not the owner: nothing");
    status.own("heartbeats", [0]);
    wait_for("the owner's heartbeats", W, || {
        (beats.count("b") >= 3).then_some(())
    });
    status.disown("heartbeats", [0]);
    // One tick may have been under way: two clock beats later, anything sent has landed.
    let now = beats.count("c");
    clock_at(&mut beats, now + 2);
    let gave_up = beats.count("b");
    let now = beats.count("c");
    clock_at(&mut beats, now + 5);
    assert_eq!(
        beats.count("b"),
        gave_up,
        "no heartbeat once the partition is gone"
    );
    stop.cancel();
}
