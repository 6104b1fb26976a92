//! The application: records produced on a (batched), and the consumer group `app` reading on a
//! and, after failover, on b; what it read, lost and read twice.

use super::*;

pub(crate) fn key_of(r: &Rec) -> String {
    String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned()
}

pub(crate) fn keys(recs: &[Rec]) -> BTreeSet<String> {
    recs.iter().map(key_of).collect()
}

/// Keys `<prefix>-i` for `i < n` not in `read`.
pub(crate) fn unread(prefix: &str, n: usize, read: &BTreeSet<String>) -> BTreeSet<String> {
    let all = (0..n).map(|i| format!("{prefix}-{i}"));
    all.filter(|k| !read.contains(k)).collect()
}

/// Records `<prefix>-i` for `i < n` on partition `i % partitions` of `orders` on an empty a,
/// batched: checks that record `i` is at offset `i / partitions` and that a fetch starting at
/// an odd offset in the middle (inside a batch) gets exactly that record.
pub(crate) fn produce(cfg: &ClientConfig, prefix: &str, n: usize, partitions: i32) {
    let started = Instant::now();
    produce_range(cfg, prefix, 0..n, partitions);
    let parts = partitions as usize;
    let at = (n / parts / 2) | 1;
    for p in 0..parts {
        let r = kafka::first_record_from(cfg, "orders", p as i32, at as i64);
        assert_eq!(key_of(&r), format!("{prefix}-{}", at * parts + p), "{r:?}");
    }
    eprintln!(
        "produced {n} records on a, batched, in {:?}",
        started.elapsed()
    );
}

/// Records `<prefix>-i` for `i` in `range` on partition `i % partitions` of `orders` on a
/// holding records `0..range.start` already, batched; checks that record `i` lands at offset
/// `i / partitions`.
pub(crate) fn produce_range(
    cfg: &ClientConfig,
    prefix: &str,
    range: Range<usize>,
    partitions: i32,
) {
    let parts = partitions as usize;
    let rec = |i: usize| {
        (
            (i % parts) as i32,
            format!("{prefix}-{i}").into_bytes(),
            vec![0; 20],
        )
    };
    let records: Vec<_> = range.clone().map(rec).collect();
    let offsets = kafka::produce_batched(cfg, "orders", &records);
    assert_eq!(
        offsets,
        range.map(|i| (i / parts) as i64).collect::<Vec<_>>()
    );
}

/// A member of `app` on a consumes exactly `count[p]` records of each partition `p`, from
/// `from[p]` on (checked: nothing skipped), commits exactly after them and leaves. Returns the
/// records and the group's new offsets.
pub(crate) fn consume_on_a(cfg: &ClientConfig, from: &Pos, count: &[i64]) -> (Vec<Rec>, Pos) {
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
pub(crate) fn read_on_b(cfg: &ClientConfig, topic: &str, want: &BTreeSet<String>) -> Vec<Rec> {
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
pub(crate) fn lost_and_duplicates(got: &[Rec], want: &BTreeSet<String>) -> (usize, usize) {
    let keys = keys(got);
    let lost = want.difference(&keys).count();
    (lost, got.len() - keys.intersection(want).count())
}
