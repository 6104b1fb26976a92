//! Heartbeats on real tansu brokers with the real `hubmirror run`: emitted on the source in
//! MM2's format, replicated as `<source>.heartbeats`, reported by `/status`, switched off per
//! cluster, and read back by `heartbeat::latest_heartbeats` (despite tansu's ListOffsets bug).

use hubmirror_test_support as support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hubmirror::heartbeat::{latest_heartbeats, Heartbeat};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use support::hubmirror::{Running, Workdir};
use support::kafka::{self, Rec};
use support::tansu::Tansu;
use support::topology::TopologyBuilder;

fn topology(
    work: &Workdir,
    a: &Tansu,
    b: &Tansu,
    (a_heartbeats, b_heartbeats): (bool, bool),
) -> std::path::PathBuf {
    TopologyBuilder::new()
        .tansu("a", a)
        .set("a", "heartbeats", &a_heartbeats.to_string())
        .tansu("b", b)
        .set("b", "heartbeats", &b_heartbeats.to_string())
        .flow("a", "b", &["data"])
        .replication("heartbeats_interval", "200ms")
        .replication("refresh_topics_interval", "1s")
        .write(work)
}

/// Brokers a and b, `data` on a with 20 records, and a running `a → b`.
fn start(heartbeats: (bool, bool)) -> (Tansu, Tansu, Workdir, Running) {
    let (a, b) = (Tansu::start(), Tansu::start());
    let ca = kafka::plain(&a.listener());
    kafka::create_topic(&ca, "data", 2);
    kafka::produce_test_records(&ca, "data", 2, 0..20, 1_700_000_000_000);
    let work = Workdir::new();
    let run = Running::start(&topology(&work, &a, &b, heartbeats), &[]);
    let copies = kafka::read_all(
        &kafka::plain(&b.listener()),
        "a.data",
        20,
        Duration::from_secs(60),
    );
    assert_eq!(kafka::count_by_key(&copies).len(), 20, "data is mirrored");
    (a, b, work, run)
}

fn decode(r: &Rec) -> Heartbeat {
    let (k, v) = (r.key.as_deref(), r.value.as_deref());
    Heartbeat::decode(k.unwrap_or_default(), v.unwrap_or_default())
        .unwrap_or_else(|e| panic!("{} offset {}: {e}", r.topic, r.offset))
}

/// Decodes heartbeats of `a → b` and checks their timestamps increase (per partition order).
fn check_beats(recs: &[Rec]) -> Vec<i64> {
    let ts: Vec<i64> = recs.iter().map(|r| decode(r).timestamp_ms).collect();
    for r in recs {
        let hb = decode(r);
        assert_eq!((hb.source.as_str(), hb.target.as_str()), ("a", "b"));
        assert_eq!(r.partition, 0);
        assert_eq!(
            r.timestamp,
            Some(hb.timestamp_ms),
            "record timestamp = heartbeat's"
        );
    }
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "increasing: {ts:?}");
    ts
}

fn topic_names(cfg: &ClientConfig) -> Vec<String> {
    let consumer: rdkafka::consumer::BaseConsumer = cfg.create().expect("consumer");
    let md = rdkafka::consumer::Consumer::fetch_metadata(&consumer, None, Duration::from_secs(10))
        .expect("metadata");
    md.topics().iter().map(|t| t.name().to_string()).collect()
}

/// `GET /status` from the daemon, as JSON.
fn status(addr: &str) -> Option<serde_json::Value> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /status HTTP/1.0\r\nHost: test\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (_, body) = text.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

#[test]
fn heartbeats_are_emitted_replicated_and_reported() {
    let (a, b, work, mut run) = start((true, true));
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));

    let on_a = kafka::read_all(&ca, "heartbeats", 5, Duration::from_secs(30));
    let ts_a = check_beats(&on_a);
    let copies = kafka::read_all(&cb, "a.heartbeats", 5, Duration::from_secs(30));
    check_beats(&copies);
    for r in &copies {
        assert_eq!(r.header("hubmirror.origin").as_deref(), Some("a"));
        assert_eq!(r.header("hubmirror.hops").as_deref(), Some("b"));
        let src = r.header("hubmirror.source").unwrap_or_default();
        assert!(src.starts_with("a/heartbeats/0/"), "{src}");
    }
    let gaps: Vec<i64> = ts_a.windows(2).map(|w| w[1] - w[0]).collect();
    println!(
        "{} heartbeats on a, gaps {gaps:?} ms; {} copies on b",
        on_a.len(),
        copies.len()
    );

    // /status: latency and age of the flow's heartbeats, filled within a deadline.
    let addr = work.metrics_addr();
    let deadline = Instant::now() + Duration::from_secs(20);
    let flow = loop {
        let flow = status(&addr).and_then(|s| s.get(0).cloned());
        if let Some(f) = &flow {
            if !f["replication_latency_ms"].is_null() && !f["heartbeat_age_ms"].is_null() {
                break f.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "/status never reported heartbeats: {flow:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        (flow["source"].as_str(), flow["target"].as_str()),
        (Some("a"), Some("b"))
    );
    println!(
        "/status: replication_latency_ms {} heartbeat_age_ms {}",
        flow["replication_latency_ms"], flow["heartbeat_age_ms"]
    );
    let latency = flow["replication_latency_ms"].as_i64().unwrap_or(i64::MAX);
    assert!((0..10_000).contains(&latency), "{flow}");

    run.stop_cleanly();

    // Stopped: the newest heartbeat per key equals the maximum read from the whole topic.
    for (cfg, topic) in [(&ca, "heartbeats"), (&cb, "a.heartbeats")] {
        let all = kafka::read_all(cfg, topic, usize::MAX, Duration::from_secs(3));
        let max = all.iter().map(|r| decode(r).timestamp_ms).max();
        let latest = latest_heartbeats(cfg.clone(), topic, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{topic}: {e}"));
        assert_eq!(latest.len(), 1, "{topic}: {latest:?}");
        assert_eq!(
            Some(latest[0].timestamp_ms),
            max,
            "{topic} ({} records)",
            all.len()
        );
    }
    let none = latest_heartbeats(cb.clone(), "no.such.heartbeats", Duration::from_secs(10));
    assert!(none.expect("missing topic is not an error").is_empty());
}

#[test]
fn latest_heartbeats_reads_past_the_reported_end() {
    // Many heartbeats in one batch: tansu reports the end as the batch's base offset + 1.
    let broker = Tansu::start();
    let cfg = kafka::plain(&broker.listener());
    kafka::create_topic(&cfg, "x.heartbeats", 1);
    let producer: FutureProducer = cfg
        .clone()
        .set("linger.ms", "200")
        .set("batch.num.messages", "100000")
        .create()
        .expect("producer");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (n, base) = (3000i64, 1_700_000_000_000i64);
    let beat = |i: i64| Heartbeat {
        source: if i % 2 == 0 { "x" } else { "y" }.into(),
        target: "z".into(),
        timestamp_ms: base + i,
    };
    rt.block_on(async {
        let mut futs = Vec::new();
        for i in 0..n {
            let hb = beat(i);
            let (k, v) = (hb.encode_key().expect("key"), hb.encode_value());
            let rec = FutureRecord::to("x.heartbeats")
                .partition(0)
                .key(&k)
                .payload(&v);
            futs.push(
                producer
                    .send_result(rec)
                    .map_err(|(e, _)| e)
                    .expect("enqueue"),
            );
        }
        for f in futs {
            f.await.expect("delivery future").expect("delivered");
        }
    });
    let reported = {
        let c: rdkafka::consumer::BaseConsumer = cfg.create().expect("consumer");
        rdkafka::consumer::Consumer::fetch_watermarks(
            &c,
            "x.heartbeats",
            0,
            Duration::from_secs(10),
        )
        .expect("watermarks")
        .1
    };
    println!("{n} records; ListOffsets(latest) reports {reported}");
    let latest = latest_heartbeats(cfg, "x.heartbeats", Duration::from_secs(20)).expect("read");
    assert_eq!(latest, vec![beat(n - 2), beat(n - 1)]);
}

#[test]
fn a_cluster_can_switch_heartbeats_off() {
    let (a, b, _work, mut run) = start((false, true));
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    // Window assertion: 2 s is ten heartbeat intervals and two topic refreshes.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let names = topic_names(&ca);
        assert!(!names.iter().any(|t| t == "heartbeats"), "a: {names:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let names = topic_names(&cb);
    assert!(
        !names.iter().any(|t| t.ends_with("heartbeats")),
        "b: {names:?}"
    );
    run.stop_cleanly();
}

#[test]
fn a_target_with_heartbeats_off_gets_no_heartbeat_copies() {
    let (a, b, _work, mut run) = start((true, false));
    let (ca, cb) = (kafka::plain(&a.listener()), kafka::plain(&b.listener()));
    // a still writes its own heartbeats...
    let beats = kafka::read_all(&ca, "heartbeats", 3, Duration::from_secs(30));
    assert!(beats.len() >= 3, "a writes heartbeats");
    // ...but no copy reaches b during a window of several refreshes.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let names = topic_names(&cb);
        assert!(
            !names.iter().any(|t| t.ends_with("heartbeats")),
            "b: {names:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    run.stop_cleanly();
}
