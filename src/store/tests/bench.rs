//! Micro-benchmarks: print what `record` and `translate` cost and how big the store gets.
//! Timings are printed only (`cargo test --lib store::tests::bench -- --nocapture`), never
//! asserted: they depend on the machine and the build profile.

use std::time::Instant;

use super::{fresh, key, rep, run};
use crate::store::{Event, Translation};

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .expect("ls")
        .map(|e| {
            let e = e.expect("entry");
            let meta = e.metadata().expect("stat");
            if meta.is_dir() {
                dir_size(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

#[test]
fn record_and_translate_costs() {
    let (dir, store) = fresh();
    let batches: Vec<Vec<Event>> = (0..100)
        .map(|b| run(b * 10_000..(b + 1) * 10_000, b * 10_000))
        .collect();
    let started = Instant::now();
    for batch in &batches {
        store.record(&key(), batch).expect("record");
    }
    let recording = started.elapsed();
    let started = Instant::now();
    store.flush().expect("flush");
    let flushing = started.elapsed();
    println!(
        "record: 100 batches of 10,000 contiguous records in {recording:?} ({:?} per batch, {:.1} ns per record); flush {flushing:?}",
        recording / 100,
        recording.as_nanos() as f64 / 1e6,
    );
    let started = Instant::now();
    for u in (0..1_000_000).step_by(10) {
        assert_eq!(
            store.translate(&key(), u).expect("translate"),
            Translation::Exact(u)
        );
    }
    println!(
        "translate, 1 segment: {:?} per call",
        started.elapsed() / 100_000
    );
    println!(
        "size for 1,000,000 records: sled reports {} bytes, the directory holds {} bytes",
        store.size_on_disk().expect("size"),
        dir_size(dir.path())
    );

    // Worst case: every record interleaved with a local write on the target (identity policy
    // with busy local producers): one segment per record.
    let (dir, store) = fresh();
    let started = Instant::now();
    for b in 0..10 {
        let batch: Vec<Event> = (b * 10_000..(b + 1) * 10_000)
            .map(|u| rep(u, 2 * u))
            .collect();
        store.record(&key(), &batch).expect("record");
    }
    let recording = started.elapsed();
    store.flush().expect("flush");
    println!(
        "record, fully interleaved: 10 batches of 10,000 in {recording:?} ({:?} per batch)",
        recording / 10
    );
    let started = Instant::now();
    for u in (0..100_000).step_by(7) {
        assert_eq!(
            store.translate(&key(), u).expect("translate"),
            Translation::Exact(2 * u)
        );
    }
    println!(
        "translate, 100,000 segments: {:?} per call",
        started.elapsed() / (100_000 / 7 + 1)
    );
    println!(
        "size for 100,000 segments: sled reports {} bytes, the directory holds {} bytes",
        store.size_on_disk().expect("size"),
        dir_size(dir.path())
    );
    let started = Instant::now();
    assert_eq!(store.prune(&key(), 99_000).expect("prune"), 99_000);
    println!("prune of 99,000 segments: {:?}", started.elapsed());
}
