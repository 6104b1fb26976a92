//! [`Stream`]: a steady background producer at a fixed rate, batched as applications produce,
//! whose every record says which it is: key `<prefix>-<partition>-<seq>`, `seq` counting from 0
//! in each partition. [`super::Ledger`] reads the copies back by that key.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};

/// Unacknowledged records the stream allows before it waits: a source that stops answering
/// blocks the stream instead of piling up a backlog.
const MAX_IN_FLIGHT: i64 = 2_000;
/// The stream produces the records due in ticks of this length (several per record batch).
const TICK: Duration = Duration::from_millis(10);
/// How long [`Stream::stop`] waits for the last acknowledgements.
const DRAIN: Duration = Duration::from_secs(120);

/// The key of record `seq` of `partition` in stream `prefix`.
pub fn stream_key(prefix: &str, partition: i32, seq: u64) -> String {
    format!("{prefix}-{partition}-{seq}")
}

/// `(prefix, partition, seq)` of a stream record's key, when it is one.
pub fn parse_stream_key(key: &[u8]) -> Option<(String, i32, u64)> {
    let key = std::str::from_utf8(key).ok()?;
    let mut parts = key.rsplitn(3, '-');
    let seq = parts.next()?.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    let prefix = parts.next()?;
    Some((prefix.to_string(), partition, seq))
}

/// What a stopped [`Stream`] produced: every record `0..n` of each partition, acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub prefix: String,
    /// partition → records produced to it (`seq` 0 to n - 1).
    pub per_partition: BTreeMap<i32, u64>,
}

impl Sent {
    /// Records produced in all.
    pub fn total(&self) -> u64 {
        self.per_partition.values().sum()
    }
}

/// What the producer thread and its delivery callback share.
#[derive(Default)]
struct State {
    /// partition → the seq its next record gets.
    next: Mutex<BTreeMap<i32, u64>>,
    in_flight: AtomicI64,
    acked: AtomicU64,
    /// Delivery errors (none expected: idempotent, no delivery timeout).
    errors: Mutex<Vec<String>>,
}

struct Context(Arc<State>);

impl ClientContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.0.acked.fetch_add(1, Ordering::SeqCst);
            }
            Err((e, _)) => self.0.errors.lock().expect("errors").push(e.to_string()),
        }
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A background thread producing `<prefix>-<partition>-<seq>` records to a topic at a fixed
/// rate, round-robin over the given partitions: batched (`linger.ms=5`), idempotent, without a
/// delivery timeout (a record is retried until the source acknowledges it, never reordered).
pub struct Stream {
    prefix: String,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Stream {
    /// Starts producing `per_second` records/s to `partitions` of `topic` (which exists).
    pub fn start(
        cfg: &ClientConfig,
        topic: &str,
        partitions: &[i32],
        prefix: &str,
        per_second: u64,
    ) -> Stream {
        assert!(!partitions.is_empty(), "a stream needs partitions");
        let state = Arc::new(State::default());
        state
            .next
            .lock()
            .expect("next")
            .extend(partitions.iter().map(|p| (*p, 0)));
        let stop = Arc::new(AtomicBool::new(false));
        let mut cfg = cfg.clone();
        cfg.set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "0")
            .set("reconnect.backoff.max.ms", "500");
        let producer: ThreadedProducer<Context> = cfg
            .create_with_context(Context(state.clone()))
            .expect("stream producer");
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            let (topic, prefix) = (topic.to_string(), prefix.to_string());
            let partitions = partitions.to_vec();
            std::thread::Builder::new()
                .name(format!("stream-{prefix}"))
                .spawn(move || {
                    let pace = Pace {
                        topic: &topic,
                        prefix: &prefix,
                        partitions: &partitions,
                        per_second,
                    };
                    pace.run(&producer, &state, &stop);
                })
                .expect("stream thread")
        };
        Stream {
            prefix: prefix.to_string(),
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// partition → the seq of its next record: every record from there on is produced after
    /// now (a mark to wait for on the target).
    pub fn marks(&self) -> BTreeMap<i32, u64> {
        self.state.next.lock().expect("next").clone()
    }

    /// Records the source acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.state.acked.load(Ordering::SeqCst)
    }

    /// Stops producing, waits until everything produced is acknowledged, and returns it;
    /// panics when the source refused a record or did not acknowledge everything in 2 min.
    pub fn stop(mut self) -> Sent {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("stream thread panicked");
        }
        let errors = self.state.errors.lock().expect("errors").clone();
        assert!(
            errors.is_empty(),
            "stream {}: the source refused records: {errors:?}",
            self.prefix
        );
        let unacked = self.state.in_flight.load(Ordering::SeqCst);
        assert_eq!(
            unacked, 0,
            "stream {}: records never acknowledged",
            self.prefix
        );
        let per_partition = self.marks();
        let total: u64 = per_partition.values().sum();
        assert_eq!(
            total,
            self.acked(),
            "stream {}: acknowledgements",
            self.prefix
        );
        Sent {
            prefix: self.prefix.clone(),
            per_partition,
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The producer thread's settings.
struct Pace<'a> {
    topic: &'a str,
    prefix: &'a str,
    partitions: &'a [i32],
    per_second: u64,
}

impl Pace<'_> {
    fn run(&self, producer: &ThreadedProducer<Context>, state: &State, stop: &AtomicBool) {
        let payload = "x".repeat(64);
        // Pace against (since, count): `count` records were due at `since`.
        let (mut since, mut count, mut i) = (Instant::now(), 0u64, 0u64);
        while !stop.load(Ordering::SeqCst) {
            let mut due = count + (since.elapsed().as_secs_f64() * self.per_second as f64) as u64;
            // Blocked (in-flight limit): go on at the same rate, without a burst to catch up.
            if due > i + self.per_second / 5 {
                (since, count, due) = (Instant::now(), i, i);
            }
            while i < due && state.in_flight.load(Ordering::SeqCst) < MAX_IN_FLIGHT {
                let partition = self.partitions[(i % self.partitions.len() as u64) as usize];
                let mut next = state.next.lock().expect("next");
                let seq = next.get(&partition).copied().unwrap_or(0);
                let key = stream_key(self.prefix, partition, seq);
                let value = format!("{key} {payload}");
                state.in_flight.fetch_add(1, Ordering::SeqCst);
                let mut record = BaseRecord::to(self.topic)
                    .partition(partition)
                    .key(&key)
                    .payload(&value);
                loop {
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((e, back)) => {
                            assert!(format!("{e}").contains("Queue full"), "stream: {e}");
                            record = back;
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                }
                next.insert(partition, seq + 1);
                i += 1;
            }
            std::thread::sleep(TICK);
        }
        let deadline = Instant::now() + DRAIN;
        while state.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            producer.poll(Duration::from_millis(10));
        }
        let _ = producer.flush(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_prefix_partition_and_seq() {
        let key = stream_key("a-b", 5, 42);
        assert_eq!(key, "a-b-5-42");
        assert_eq!(
            parse_stream_key(key.as_bytes()),
            Some(("a-b".into(), 5, 42))
        );
        assert_eq!(parse_stream_key(b"k17"), None);
        assert_eq!(parse_stream_key(b"x-y-z"), None);
    }
}
