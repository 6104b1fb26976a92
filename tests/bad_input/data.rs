//! Data hubmirror cannot take as it is: an oversize record stops `run` with exit 1 naming it, a
//! corrupt store is refused and left alone, malformed `hubmirror.*` headers are foreign data.

use super::*;

use std::path::{Path, PathBuf};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

fn keys(recs: &[Rec]) -> Vec<String> {
    let key = |r: &Rec| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
    recs.iter().map(key).collect()
}

#[test]
fn an_oversize_record_stops_run_with_exit_1_naming_it_and_how_to_go_on() {
    // Every `oversize` policy, through the emulator: tests/event_hubs_hardening.rs.
    let (a, b) = (Tansu::start(), Tansu::start());
    let ca = kafka::plain(&a.listener());
    kafka::create_topic(&ca, "t", 1);
    let rec = |k: &str, size| (0, k.as_bytes().to_vec(), vec![b'x'; size]);
    kafka::produce_batched(&ca, "t", &[rec("k0", 10), rec("k1", 20_000), rec("k2", 10)]);
    let work = Workdir::new();
    let limit = kafka_pair(&a, &b, true).client("b", "message.max.bytes", "10000");
    let mut run = Running::start(&limit.write(&work), &[]);
    let record = "record at topic 't' partition 0 offset 1 on cluster 'a' is 20002 bytes";
    run_fails(
        &mut run,
        &[record, "message.max.bytes 10000", "set `oversize: skip`"],
    );
    assert_eq!(
        keys(&read(&b, "a.t", 1)),
        ["k0"],
        "nothing from the oversize record on"
    );
}

/// Each file of `dir`: name, length and hash.
fn snapshot(dir: &Path) -> Vec<(String, usize, u64)> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("ls").path())
        .collect();
    files.sort();
    let file = |p: PathBuf| {
        let bytes = std::fs::read(&p).unwrap_or_default();
        let mut h = DefaultHasher::new();
        bytes.hash(&mut h);
        (p.display().to_string(), bytes.len(), h.finish())
    };
    files.into_iter().map(file).collect()
}

#[test]
fn a_corrupt_store_is_refused_with_exit_1_naming_the_path_and_left_alone() {
    let work = Workdir::new();
    let topo = TopologyBuilder::new()
        .cluster("a", "localhost:1")
        .cluster("b", "localhost:2")
        .flow("a", "b", &["t"])
        .store("./data")
        .write(&work);
    let data = work.path().join("data");
    let store = format!("hubmirror: store.path: store {}: ", data.display());
    let fix = "move it away or point store.path elsewhere";
    // A store whose data file was overwritten: sled reads it as empty (and rewrites it).
    drop(hubmirror::store::Store::open(&data).expect("a fresh store"));
    std::fs::write(data.join("db"), vec![0x5a; 4096]).expect("overwrite db");
    let names = |s: Vec<(String, usize, u64)>| s.into_iter().map(|f| f.0).collect::<Vec<_>>();
    let before = names(snapshot(&data));
    run_fails(
        &mut Running::start(&topo, &[]),
        &[&store, "could not read back", fix],
    );
    assert_eq!(names(snapshot(&data)), before, "no file added or removed");
    // A sled directory of garbage: refused before sled writes anything.
    std::fs::remove_dir_all(&data).expect("rm");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(data.join("conf"), "not sled's\n").expect("conf");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(data.join("db"), garbage).expect("db");
    let before = snapshot(&data);
    let corrupt = "corrupt data (sled found damaged files)";
    run_fails(&mut Running::start(&topo, &[]), &[&store, corrupt, fix]);
    assert_eq!(snapshot(&data), before, "left as it was");
}

type Headers<'a> = Vec<(&'a str, Option<&'a [u8]>)>;

/// Produces `(key, headers)` records to partition 0 of `topic`, in order, each with `app: kept`.
fn produce_with_headers(cfg: &rdkafka::ClientConfig, topic: &str, records: &[(&str, Headers)]) {
    let producer: FutureProducer = cfg
        .clone()
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for (key, headers) in records {
        let app = Header {
            key: "app",
            value: Some("kept"),
        };
        let h = headers
            .iter()
            .fold(OwnedHeaders::new().insert(app), |h, (key, value)| {
                h.insert(Header { key, value: *value })
            });
        let rec = FutureRecord::to(topic)
            .partition(0)
            .key(*key)
            .payload("v")
            .headers(h);
        rt.block_on(producer.send(rec, MINUTE)).expect("delivered");
    }
}

#[test]
fn malformed_hubmirror_headers_are_foreign_data_replicated_with_fresh_headers() {
    let (a, b) = (Tansu::start(), Tansu::start());
    let ca = kafka::plain(&a.listener());
    kafka::create_topic(&ca, "t", 1);
    let (origin, hops, source) = ("hubmirror.origin", "hubmirror.hops", "hubmirror.source");
    let records: Vec<(&str, Headers)> = vec![
        ("hops-not-utf8", vec![(hops, Some(&[0xff, 0xfe, 0x00]))]),
        ("origin-empty", vec![(origin, Some(b""))]),
        ("source-garbage", vec![(source, Some(b"\x00//garbage/-1"))]),
        (
            "not-aliases",
            vec![(origin, Some(b"Not An Alias!")), (hops, Some(b"X,,Y"))],
        ),
        ("origin-null", vec![(origin, None)]),
        ("loop-origin", vec![(origin, Some(b"b"))]),
        (
            "loop-hops",
            vec![(origin, Some(&[0xc3])), (hops, Some(b"c,b"))],
        ),
        ("plain", vec![]),
    ];
    produce_with_headers(&ca, "t", &records);
    let work = Workdir::new();
    let mut run = Running::start(&kafka_pair(&a, &b, true).write(&work), &[]);
    let copies = read(&b, "a.t", 6);
    let mut expected: Vec<&str> = records.iter().map(|r| r.0).collect();
    expected.retain(|k| !k.starts_with("loop"));
    assert_eq!(
        keys(&copies),
        expected,
        "each foreign record once, in order; the loops not"
    );
    for (r, offset) in copies.iter().zip([0, 1, 2, 3, 4, 7]) {
        let ours = r
            .headers
            .iter()
            .filter(|(k, _)| k.starts_with("hubmirror."));
        assert_eq!(ours.count(), 3, "{r:?}");
        let fresh = (
            Some("a".into()),
            Some("b".into()),
            Some(format!("a/t/0/{offset}")),
        );
        assert_eq!(
            (r.header(origin), r.header(hops), r.header(source)),
            fresh,
            "{r:?}"
        );
        assert_eq!(r.header("app").as_deref(), Some("kept"), "{r:?}");
    }
    let loops = ["topic=\"t\"", "reason=\"loop\""];
    assert_eq!(
        metric_at_least(&work, "hubmirror_records_skipped_total", &loops, 2.0),
        2.0
    );
    run.stop_cleanly();
}
