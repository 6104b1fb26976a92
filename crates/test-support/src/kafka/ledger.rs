//! [`Ledger`]: a background reader of every partition of a topic from the beginning that notes
//! each [`super::Stream`] record it reads (where, and when it arrived), to count what was lost,
//! copied twice or reordered ([`Tally`]) and how long a partition's records stopped coming.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::stream::{parse_stream_key, Sent};

/// One record read: which stream record it is (when it is one) and when it was read.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `(prefix, source partition, seq)` from the key; `None` for other records.
    pub record: Option<(String, i32, u64)>,
    pub at: Instant,
}

/// Records read, by `(partition, offset)`: a record read twice (after a reconnect) is one.
type Log = BTreeMap<(i32, i64), Seen>;

/// Reads `topic` from the beginning in a background thread; stopped on drop.
pub struct Ledger {
    topic: String,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ledger {
    /// Starts reading `topic` with the client settings `cfg`, once the topic exists (found by
    /// listing every topic: naming a missing one could create it).
    pub fn start(cfg: &ClientConfig, topic: &str) -> Ledger {
        let log = Arc::new(Mutex::new(Log::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut cfg = cfg.clone();
        cfg.set("group.id", format!("test-ledger-{}", std::process::id()))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "100")
            .set("reconnect.backoff.max.ms", "500");
        let thread = {
            let (log, stop, topic) = (log.clone(), stop.clone(), topic.to_string());
            std::thread::Builder::new()
                .name(format!("ledger-{topic}"))
                .spawn(move || read(cfg, &topic, &log, &stop))
                .expect("ledger thread")
        };
        Ledger {
            topic: topic.to_string(),
            log,
            stop,
            thread: Some(thread),
        }
    }

    /// Records read so far (each `(partition, offset)` once).
    pub fn records(&self) -> usize {
        self.log.lock().expect("log").len()
    }

    /// source partition → the highest seq of stream `prefix` read.
    pub fn highest(&self, prefix: &str) -> BTreeMap<i32, u64> {
        let mut out = BTreeMap::new();
        for (p, _, seq) in self.stream_records(prefix) {
            let h = out.entry(p).or_insert(seq);
            *h = (*h).max(seq);
        }
        out
    }

    /// Where the copies of stream `prefix`'s records are: `(source partition, seq)` →
    /// `(partition, offset)` of each copy read, in offset order.
    pub fn copies(&self, prefix: &str) -> BTreeMap<(i32, u64), Vec<(i32, i64)>> {
        let log = self.log.lock().expect("log");
        let mut out: BTreeMap<(i32, u64), Vec<(i32, i64)>> = BTreeMap::new();
        for ((partition, offset), seen) in log.iter() {
            if let Some((pre, p, seq)) = &seen.record {
                if pre == prefix {
                    out.entry((*p, *seq))
                        .or_default()
                        .push((*partition, *offset));
                }
            }
        }
        out
    }

    /// The partitions of `marks` without a record of stream `prefix` read at or past their
    /// mark yet: partition → the highest seq read (`None`: none).
    pub fn behind(&self, prefix: &str, marks: &BTreeMap<i32, u64>) -> BTreeMap<i32, Option<u64>> {
        let highest = self.highest(prefix);
        marks
            .iter()
            .filter(|(p, m)| highest.get(p).is_none_or(|h| h < m))
            .map(|(p, _)| (*p, highest.get(p).copied()))
            .collect()
    }

    /// Waits until, for every partition of `marks`, a record of stream `prefix` with a seq at
    /// or past its mark was read; returns how long that took. Panics after `timeout`.
    pub fn wait_past(
        &self,
        prefix: &str,
        marks: &BTreeMap<i32, u64>,
        timeout: Duration,
    ) -> Duration {
        let started = Instant::now();
        crate::wait_for(
            &format!("{}: records of {prefix} past {marks:?}", self.topic),
            timeout,
            || {
                let behind = self.behind(prefix, marks);
                if behind.is_empty() {
                    Ok(())
                } else {
                    Err(format!("partition → highest seq read: {behind:?}"))
                }
            },
        );
        started.elapsed()
    }

    /// The longest time a source partition of stream `prefix` went without a record read, among
    /// the gaps that overlap `from..to`; and that partition.
    pub fn longest_pause(&self, prefix: &str, from: Instant, to: Instant) -> (Duration, i32) {
        let log = self.log.lock().expect("log");
        let mut arrivals: BTreeMap<i32, Vec<Instant>> = BTreeMap::new();
        for seen in log.values() {
            if let Some((pre, p, _)) = &seen.record {
                if pre == prefix {
                    arrivals.entry(*p).or_default().push(seen.at);
                }
            }
        }
        let mut longest = (Duration::ZERO, -1);
        for (p, mut times) in arrivals {
            times.sort();
            for w in times.windows(2) {
                let gap = w[1] - w[0];
                if w[1] > from && w[0] < to && gap > longest.0 {
                    longest = (gap, p);
                }
            }
        }
        longest
    }

    /// Waits until every record of `sent` was read (at most `timeout`), then until nothing new
    /// arrives for 2 s (at most 15 s more: copies beyond the first are read too), and counts.
    /// The topic must hold the records of `sent` and nothing else.
    pub fn tally(&self, sent: &[&Sent], timeout: Duration) -> Tally {
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.count(sent);
            if t.lost == 0 || Instant::now() >= deadline {
                if t.lost > 0 {
                    eprintln!(
                        "{}: {} records still missing after {timeout:?}",
                        self.topic, t.lost
                    );
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let settle = Instant::now() + Duration::from_secs(15);
        let mut before = self.records();
        loop {
            std::thread::sleep(Duration::from_secs(2));
            let now = self.records();
            if now == before || Instant::now() >= settle {
                break;
            }
            before = now;
        }
        self.count(sent)
    }

    /// Counts what was read against `sent`, now.
    pub fn count(&self, sent: &[&Sent]) -> Tally {
        let log = self.log.lock().expect("log");
        let expected: BTreeMap<(&str, i32), u64> = sent
            .iter()
            .flat_map(|s| {
                s.per_partition
                    .iter()
                    .map(|(p, n)| ((s.prefix.as_str(), *p), *n))
            })
            .collect();
        let mut t = Tally {
            sent: expected.values().sum(),
            ..Tally::default()
        };
        let mut copies: BTreeMap<(String, i32, u64), u64> = BTreeMap::new();
        // (target partition, prefix, source partition) → the last seq read, in offset order.
        let mut last: BTreeMap<(i32, String, i32), u64> = BTreeMap::new();
        for ((partition, _), seen) in log.iter() {
            t.records += 1;
            let Some((prefix, p, seq)) = &seen.record else {
                t.unknown += 1;
                continue;
            };
            let known = expected
                .get(&(prefix.as_str(), *p))
                .is_some_and(|n| seq < n);
            if !known {
                t.unknown += 1;
                continue;
            }
            *copies.entry((prefix.clone(), *p, *seq)).or_default() += 1;
            if partition != p {
                t.misplaced += 1;
            }
            let before = last.insert((*partition, prefix.clone(), *p), *seq);
            if before.is_some_and(|b| b >= *seq) {
                t.out_of_order += 1;
            }
        }
        for ((prefix, p), n) in &expected {
            for seq in 0..*n {
                match copies.get(&(prefix.to_string(), *p, seq)) {
                    None => t.lost += 1,
                    Some(c) => t.duplicated += c - 1,
                }
            }
        }
        t
    }

    /// The stream records of `prefix` read: `(source partition, target partition, seq)`.
    fn stream_records(&self, prefix: &str) -> Vec<(i32, i32, u64)> {
        let log = self.log.lock().expect("log");
        log.iter()
            .filter_map(|((partition, _), seen)| match &seen.record {
                Some((pre, p, seq)) if pre == prefix => Some((*p, *partition, *seq)),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a [`Ledger`] read, against what was sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Records sent.
    pub sent: u64,
    /// Records read (stream records or not).
    pub records: u64,
    /// Sent records never read.
    pub lost: u64,
    /// Copies of sent records beyond the first.
    pub duplicated: u64,
    /// Records read after a record of the same source partition with a seq as high or higher
    /// (in the same partition, in offset order).
    pub out_of_order: u64,
    /// Copies in another partition than their record's.
    pub misplaced: u64,
    /// Records that are none of the sent ones.
    pub unknown: u64,
}

impl Tally {
    /// Panics, naming `what` and the counts, unless every sent record was read exactly once,
    /// in order, in its own partition, and nothing else was.
    pub fn assert_exact(&self, what: &str) {
        let exact = Tally {
            sent: self.sent,
            records: self.sent,
            ..Tally::default()
        };
        assert_eq!(
            *self, exact,
            "{what}: not exactly once and in order: {self}"
        );
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "records {}, lost {}, duplicated {}, out of order {}, misplaced {}, unknown {} \
             ({} read)",
            self.sent,
            self.lost,
            self.duplicated,
            self.out_of_order,
            self.misplaced,
            self.unknown,
            self.records
        )
    }
}

/// The ledger thread: waits for the topic, assigns every partition from the beginning, reads.
fn read(cfg: ClientConfig, topic: &str, log: &Mutex<Log>, stop: &AtomicBool) {
    let consumer: BaseConsumer = cfg.create().expect("ledger consumer");
    let partitions = loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if let Some(n) = partition_count(&consumer, topic) {
            break n;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    while !stop.load(Ordering::SeqCst) {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let record = m.key().and_then(parse_stream_key);
        log.lock().expect("log").insert(
            (m.partition(), m.offset()),
            Seen {
                record,
                at: Instant::now(),
            },
        );
    }
}

/// The partitions of `topic` when it exists, from a listing of every topic.
fn partition_count(consumer: &BaseConsumer, topic: &str) -> Option<i32> {
    let md = consumer.fetch_metadata(None, Duration::from_secs(5)).ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    (t.error().is_none() && !t.partitions().is_empty()).then(|| t.partitions().len() as i32)
}
