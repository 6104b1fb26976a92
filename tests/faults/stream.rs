//! The stream: a background producer at a fixed rate, batching as applications do.

use super::*;

/// Unacknowledged records the stream allows before it waits (about a second of records): a
/// frozen source blocks the stream instead of piling up a backlog that would then be measured
/// as hubmirror's recovery.
pub(crate) const STREAM_MAX_IN_FLIGHT: i64 = 2_000;

/// The stream produces the records due in ticks of this length (each tick's records go out in
/// a few batches per partition, `linger.ms=5`).
pub(crate) const STREAM_TICK: Duration = Duration::from_millis(10);

/// What the stream's producer thread and its delivery callback share.
#[derive(Default)]
pub(crate) struct StreamState {
    /// The next fresh record number: every record numbered from here on is produced later.
    pub(crate) next: AtomicU64,
    /// Records handed to the producer and not yet reported.
    pub(crate) in_flight: AtomicI64,
    /// Record numbers the source acknowledged.
    pub(crate) acked: Mutex<Vec<u64>>,
    pub(crate) acked_count: AtomicU64,
    /// Record numbers whose produce failed: sent again by the stream thread.
    pub(crate) retry: Mutex<Vec<u64>>,
    /// Failed produce attempts so far, and the last error.
    pub(crate) failures: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
    /// Set by the thread when it returns.
    pub(crate) done: AtomicBool,
}

pub(crate) struct StreamContext(Arc<StreamState>);

impl ClientContext for StreamContext {}

impl ProducerContext for StreamContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, number: usize) {
        let s = &self.0;
        match result {
            Ok(_) => {
                s.acked.lock().expect("acked").push(number as u64);
                s.acked_count.fetch_add(1, Ordering::SeqCst);
            }
            Err((e, _)) => {
                s.failures.fetch_add(1, Ordering::SeqCst);
                *s.last_error.lock().expect("last error") = Some(e.to_string());
                s.retry.lock().expect("retry").push(number as u64);
            }
        }
        s.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Record `number` of the stream `prefix`: its key and partition.
pub(crate) fn stream_key(prefix: &str, number: u64) -> String {
    format!("{prefix}-{number}")
}

pub(crate) fn stream_partition(number: u64) -> i32 {
    (number % PARTITIONS as u64) as i32
}

/// The number of a stream record from its key, when it is one of `prefix`'s.
pub(crate) fn stream_number(prefix: &str, key: &[u8]) -> Option<u64> {
    std::str::from_utf8(key)
        .ok()?
        .strip_prefix(prefix)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

/// A background thread producing `<prefix>-<n>` records to [`TOPIC`] at a fixed rate.
pub(crate) struct Stream {
    state: Arc<StreamState>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    limit: Option<u64>,
}

/// What a stream produced, once stopped.
pub(crate) struct StreamOutcome {
    /// The record numbers the source acknowledged: "sent".
    pub(crate) acked: Vec<u64>,
    /// Produce attempts that failed (and were retried).
    pub(crate) failures: u64,
    /// Records never acknowledged (none unless the source stayed away after the stop).
    pub(crate) unacked: i64,
    pub(crate) last_error: Option<String>,
}

impl Stream {
    /// Starts producing at `per_second` records/s, `limit` records at most (then it waits until
    /// all are acknowledged), batched (`linger.ms=5`), idempotent; a record whose produce fails
    /// is produced again until acknowledged.
    pub(crate) fn start(
        cfg: &ClientConfig,
        prefix: &str,
        per_second: u64,
        limit: Option<u64>,
    ) -> Stream {
        let state = Arc::new(StreamState::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut cfg = cfg.clone();
        cfg.set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "0")
            .set("request.timeout.ms", "60000")
            .set("reconnect.backoff.max.ms", "500");
        let thread = {
            let (state, stop, prefix) = (state.clone(), stop.clone(), prefix.to_string());
            std::thread::Builder::new()
                .name(format!("stream-{prefix}"))
                .spawn(move || produce_stream(cfg, &prefix, per_second, limit, &state, &stop))
                .expect("stream thread")
        };
        Stream {
            state,
            stop,
            thread: Some(thread),
            limit,
        }
    }

    /// The number the next fresh record will get: records from here on are produced after now.
    pub(crate) fn next_number(&self) -> u64 {
        self.state.next.load(Ordering::SeqCst)
    }

    pub(crate) fn acked(&self) -> u64 {
        self.state.acked_count.load(Ordering::SeqCst)
    }

    /// Whether a limited stream produced all its records.
    pub(crate) fn finished(&self) -> bool {
        self.limit
            .is_some_and(|l| self.state.next.load(Ordering::SeqCst) >= l)
    }

    /// Stops producing fresh records, waits until everything produced is acknowledged (at
    /// most two minutes), and returns what was acknowledged.
    pub(crate) fn stop(mut self) -> StreamOutcome {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("stream thread panicked");
        }
        let s = &self.state;
        StreamOutcome {
            acked: std::mem::take(&mut *s.acked.lock().expect("acked")),
            failures: s.failures.load(Ordering::SeqCst),
            unacked: s.in_flight.load(Ordering::SeqCst)
                + s.retry.lock().expect("retry").len() as i64,
            last_error: s.last_error.lock().expect("last error").clone(),
        }
    }

    /// Waits until a limited stream has produced every record and all are acknowledged.
    pub(crate) fn wait_finished(&self, timeout: Duration) {
        wait_for("the stream finished and acknowledged", timeout, || {
            self.state.done.load(Ordering::SeqCst).then_some(())
        });
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

pub(crate) fn produce_stream(
    cfg: ClientConfig,
    prefix: &str,
    per_second: u64,
    limit: Option<u64>,
    state: &Arc<StreamState>,
    stop: &AtomicBool,
) {
    let producer: ThreadedProducer<StreamContext> = cfg
        .create_with_context(StreamContext(state.clone()))
        .expect("stream producer");
    let payload = "x".repeat(64);
    let send = |number: u64| {
        let key = stream_key(prefix, number);
        let value = format!("{key} {payload}");
        state.in_flight.fetch_add(1, Ordering::SeqCst);
        let mut record = BaseRecord::with_opaque_to(TOPIC, number as usize)
            .partition(stream_partition(number))
            .key(&key)
            .payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => return,
                Err((e, back)) => {
                    assert!(format!("{e}").contains("Queue full"), "stream produce: {e}");
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    };
    let resend_failed = || {
        let failed = std::mem::take(&mut *state.retry.lock().expect("retry"));
        for number in failed {
            send(number);
        }
    };
    // Pace against (since, count): `count` records were due at `since`.
    let (mut since, mut count) = (Instant::now(), 0u64);
    let mut next = 0u64;
    while !stop.load(Ordering::SeqCst) {
        resend_failed();
        if let Some(limit) = limit {
            if next >= limit {
                if state.acked_count.load(Ordering::SeqCst) >= limit {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        }
        let mut due = count + (since.elapsed().as_secs_f64() * per_second as f64) as u64;
        // Blocked (the source is frozen): go on at the same rate, without a burst to catch up.
        if due > next + per_second / 5 {
            (since, count) = (Instant::now(), next);
            due = next;
        }
        if let Some(limit) = limit {
            due = due.min(limit);
        }
        while next < due && state.in_flight.load(Ordering::SeqCst) < STREAM_MAX_IN_FLIGHT {
            send(next);
            next += 1;
            state.next.store(next, Ordering::SeqCst);
        }
        std::thread::sleep(STREAM_TICK);
    }
    // Everything produced must be acknowledged: failed records are produced again.
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline
        && (state.in_flight.load(Ordering::SeqCst) > 0
            || !state.retry.lock().expect("retry").is_empty())
    {
        resend_failed();
        std::thread::sleep(Duration::from_millis(10));
    }
    state.done.store(true, Ordering::SeqCst);
}
