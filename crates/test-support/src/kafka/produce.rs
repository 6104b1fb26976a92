//! Producers of test records: batched (`linger.ms=5`), as applications produce.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use super::runtime;

/// The test record number `i`: key `k<i>`, value `v<i>-...`, one header, timestamp base + i.
pub fn test_record(i: usize, partitions: i32, ts_base: i64) -> (i32, String, String, i64) {
    let partition = (i % partitions as usize) as i32;
    (
        partition,
        format!("k{i}"),
        format!("v{i}-{}", "x".repeat(i % 50)),
        ts_base + i as i64,
    )
}

/// Produces records `range` of [`test_record`] to `topic`, each with header `app-id: <i>`,
/// and waits until all are acknowledged.
pub fn produce_test_records(
    cfg: &ClientConfig,
    topic: &str,
    partitions: i32,
    range: std::ops::Range<usize>,
    ts_base: i64,
) {
    let producer = producer(cfg, &[("linger.ms", "5")]);
    let rt = runtime();
    rt.block_on(async {
        let mut futs = Vec::with_capacity(range.len());
        for i in range {
            let (p, k, v, ts) = test_record(i, partitions, ts_base);
            let id = i.to_string();
            let mut rec = FutureRecord::to(topic)
                .partition(p)
                .key(&k)
                .payload(&v)
                .timestamp(ts)
                .headers(OwnedHeaders::new().insert(Header {
                    key: "app-id",
                    value: Some(&id),
                }));
            loop {
                match producer.send_result(rec) {
                    Ok(f) => {
                        futs.push(f);
                        break;
                    }
                    Err((e, back)) => {
                        assert!(format!("{e}").contains("Queue full"), "produce: {e}");
                        rec = back;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
        }
        for f in futs {
            f.await.expect("delivery future").expect("delivered");
        }
    });
}

/// Produces records with keys `<prefix>-<i>` to `topic` (partition `partitions[i % len]`) at
/// about `per_second` for `duration`, batched, and waits for every acknowledgement. Returns how
/// many it sent.
pub fn produce_for(
    cfg: &ClientConfig,
    topic: &str,
    partitions: &[i32],
    prefix: &str,
    per_second: usize,
    duration: Duration,
) -> usize {
    let producer = producer(cfg, &[("linger.ms", "5")]);
    let rt = runtime();
    rt.block_on(async {
        let start = Instant::now();
        let mut futs = Vec::new();
        let mut i = 0usize;
        while start.elapsed() < duration {
            // Pace: records due by now.
            let due = (start.elapsed().as_secs_f64() * per_second as f64) as usize;
            while i < due {
                let (k, v) = (format!("{prefix}-{i}"), format!("payload {prefix} {i}"));
                let rec = FutureRecord::to(topic)
                    .partition(partitions[i % partitions.len()])
                    .key(&k)
                    .payload(&v);
                futs.push(
                    producer
                        .send_result(rec)
                        .map_err(|(e, _)| e)
                        .expect("enqueue"),
                );
                i += 1;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for f in futs {
            f.await.expect("delivery future").expect("delivered");
        }
        i
    })
}

/// Produces `(partition, key, value)` records to `topic` the way applications do: batched
/// (`linger.ms=5`: many records per record batch), idempotent (retries never reorder), all
/// acknowledged before it returns. Returns each record's offset in input order, after checking
/// that the offsets rise per partition in input order.
pub fn produce_batched(
    cfg: &ClientConfig,
    topic: &str,
    records: &[(i32, Vec<u8>, Vec<u8>)],
) -> Vec<i64> {
    let producer = producer(cfg, &[("linger.ms", "5"), ("enable.idempotence", "true")]);
    let rt = runtime();
    let offsets: Vec<(i32, i64)> = rt.block_on(async {
        let mut futs = Vec::with_capacity(records.len());
        for (p, k, v) in records {
            let mut rec = FutureRecord::to(topic).partition(*p).key(k).payload(v);
            loop {
                match producer.send_result(rec) {
                    Ok(f) => break futs.push(f),
                    Err((e, back)) => {
                        assert!(format!("{e}").contains("Queue full"), "produce: {e}");
                        rec = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(futs.len());
        for f in futs {
            let d = f.await.expect("delivery future").expect("delivered");
            out.push((d.partition, d.offset));
        }
        out
    });
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for &(p, o) in &offsets {
        let before = last.insert(p, o);
        assert!(
            before.is_none_or(|b| b < o),
            "{topic}/{p}: offset {o} after {before:?}"
        );
    }
    offsets.into_iter().map(|(_, o)| o).collect()
}

/// Produces records `<prefix>-0`, `<prefix>-1`, ... (partition `i % partitions`) to `topic`
/// until `stop` is set, batched: rounds of up to 50 records (several per record batch), each
/// round acknowledged before the next; returns how many it produced.
pub fn produce_until(
    cfg: &ClientConfig,
    topic: &str,
    partitions: i32,
    prefix: &str,
    stop: &std::sync::atomic::AtomicBool,
) -> usize {
    const ROUND: usize = 50;
    let producer = producer(cfg, &[("linger.ms", "5"), ("enable.idempotence", "true")]);
    let rt = runtime();
    rt.block_on(async {
        let mut i = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let mut round = Vec::with_capacity(ROUND);
            for _ in 0..ROUND {
                let (k, v) = (format!("{prefix}-{i}"), format!("local {i}"));
                let p = (i % partitions as usize) as i32;
                let rec = FutureRecord::to(topic).partition(p).key(&k).payload(&v);
                round.push(
                    producer
                        .send_result(rec)
                        .map_err(|(e, _)| e)
                        .expect("enqueue"),
                );
                i += 1;
            }
            for f in round {
                f.await.expect("delivery future").expect("delivered");
            }
        }
        i
    })
}

/// A producer for `cfg` with `settings` on top.
fn producer(cfg: &ClientConfig, settings: &[(&str, &str)]) -> FutureProducer {
    let mut cfg = cfg.clone();
    for (k, v) in settings {
        cfg.set(*k, *v);
    }
    cfg.create().expect("producer")
}
