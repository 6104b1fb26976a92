//! Counting keys: a consumer thread reading a topic from the beginning.

use super::*;

#[derive(Default)]
pub(crate) struct CounterState {
    /// (partition, offset) → stream record number, for every stream record read: a record read
    /// twice by the consumer (after a reconnect) is still counted once.
    pub(crate) seen: Mutex<HashMap<(i32, i64), u64>>,
    /// The highest stream record number read; -1 before the first.
    pub(crate) highest: AtomicI64,
    /// Records read (stream records or not).
    pub(crate) records: AtomicU64,
}

/// Reads `topic` from the beginning in a background thread and counts the stream's keys.
pub(crate) struct KeyCounter {
    pub(crate) state: Arc<CounterState>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) thread: Option<JoinHandle<()>>,
    pub(crate) what: String,
}

impl KeyCounter {
    /// Starts reading `topic` (waiting for it to exist) with the client settings `cfg`.
    pub(crate) fn start(cfg: &ClientConfig, topic: &str, prefix: &str, what: &str) -> KeyCounter {
        let state = Arc::new(CounterState {
            highest: AtomicI64::new(-1),
            ..CounterState::default()
        });
        let stop = Arc::new(AtomicBool::new(false));
        let mut cfg = cfg.clone();
        cfg.set(
            "group.id",
            format!("faults-counter-{}-{what}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .set("reconnect.backoff.max.ms", "500");
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            let (topic, prefix) = (topic.to_string(), prefix.to_string());
            std::thread::Builder::new()
                .name(format!("count-{what}"))
                .spawn(move || count_keys(cfg, &topic, &prefix, &state, &stop))
                .expect("counter thread")
        };
        KeyCounter {
            state,
            stop,
            thread: Some(thread),
            what: what.to_string(),
        }
    }

    /// Whether a stream record numbered `first` or higher was read.
    pub(crate) fn saw_from(&self, first: u64) -> bool {
        self.state.highest.load(Ordering::SeqCst) >= first as i64
    }

    pub(crate) fn records(&self) -> u64 {
        self.state.records.load(Ordering::SeqCst)
    }

    /// Copies read per stream record number.
    pub(crate) fn counts(&self) -> HashMap<u64, usize> {
        let mut counts = HashMap::new();
        for n in self.state.seen.lock().expect("seen").values() {
            *counts.entry(*n).or_default() += 1;
        }
        counts
    }

    /// Waits until every record of `numbers` was read (at most `timeout`), then until nothing
    /// new arrives for a second; returns the copies read per record number.
    pub(crate) fn wait_for_all(&self, numbers: &[u64], timeout: Duration) -> HashMap<u64, usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let counts = self.counts();
            let missing = numbers.iter().filter(|n| !counts.contains_key(n)).count();
            if missing == 0 {
                break;
            }
            if Instant::now() >= deadline {
                eprintln!(
                    "{}: {missing} of {} records still missing after {timeout:?}",
                    self.what,
                    numbers.len()
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // Anything else already written (copies beyond the first) is read by now or soon.
        let settle_deadline = Instant::now() + Duration::from_secs(10);
        let mut before = self.records();
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let now = self.records();
            if now == before || Instant::now() >= settle_deadline {
                break;
            }
            before = now;
        }
        self.counts()
    }
}

impl Drop for KeyCounter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) fn count_keys(
    cfg: ClientConfig,
    topic: &str,
    prefix: &str,
    state: &CounterState,
    stop: &AtomicBool,
) {
    let consumer: BaseConsumer = cfg.create().expect("counter consumer");
    let partitions = loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            if let Some(t) = md.topics().first() {
                if t.error().is_none() && !t.partitions().is_empty() {
                    break t.partitions().len() as i32;
                }
            }
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
        state.records.fetch_add(1, Ordering::SeqCst);
        if let Some(n) = m.key().and_then(|k| stream_number(prefix, k)) {
            let first = state
                .seen
                .lock()
                .expect("seen")
                .insert((m.partition(), m.offset()), n)
                .is_none();
            if first {
                state.highest.fetch_max(n as i64, Ordering::SeqCst);
            }
        }
    }
}
