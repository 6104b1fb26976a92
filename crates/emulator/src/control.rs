//! Runtime controls of a running emulator (throttle windows) and what it counted (held and
//! refused Produce requests, record batches per compression codec).
//!
//! Event Hubs throttles by delaying requests, not by rejecting them; a Produce request delayed
//! past its timeout fails with POLICY_VIOLATION. The emulator models that with a *throttle
//! window*: while it is open, Produce requests that expect a response are held before being
//! forwarded, for at most half of the request's own `timeout_ms`. Half, so that the emulator's
//! answer reaches the client before the client's own timer for the request (which librdkafka
//! sets from the same `request.timeout.ms`) fires and turns the outcome into a timeout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kafka_protocol::messages::ProduceRequest;
use tokio::sync::Notify;

/// A record batch's compression codec (`attributes & 0x7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// No compression (0).
    None = 0,
    /// gzip (1).
    Gzip = 1,
    /// snappy (2).
    Snappy = 2,
    /// lz4 (3).
    Lz4 = 3,
    /// zstd (4).
    Zstd = 4,
}

impl Compression {
    /// Every codec, in attribute order (the index into [`EmulatorStats::batches_by_codec`]).
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
}

/// What an emulator counted since it started (a restarted emulator starts from zero).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmulatorStats {
    /// Produce requests held by a throttle window and forwarded once it closed.
    pub produce_requests_delayed: u64,
    /// Produce requests held by a throttle window for half their timeout and answered with
    /// POLICY_VIOLATION (their connection closed).
    pub produce_requests_rejected: u64,
    /// Record batches of forwarded Produce requests, by codec: index 0 none, 1 gzip, 2 snappy,
    /// 3 lz4, 4 zstd (see [`Compression`] and [`EmulatorStats::batches`]).
    pub batches_by_codec: [u64; 5],
    /// Client connections closed by network cuts ([`super::Emulator::cut_connections_for`]).
    pub connections_cut: u64,
    /// TCP connections accepted and closed at once, before TLS, while a network cut's window
    /// was open.
    pub connections_refused: u64,
}

impl EmulatorStats {
    /// Forwarded record batches compressed with `codec`.
    pub fn batches(&self, codec: Compression) -> u64 {
        self.batches_by_codec[codec as usize]
    }
}

/// The shared control state and counters (lives in `Shared`).
#[derive(Debug)]
pub(crate) struct Control {
    /// The origin of `throttle_until`.
    epoch: Instant,
    /// End of the throttle window in nanoseconds after `epoch`; 0 when none was ever set.
    throttle_until: AtomicU64,
    /// Wakes held requests when the window changes (so that ending it early releases them).
    changed: Notify,
    delayed: AtomicU64,
    rejected: AtomicU64,
    batches: [AtomicU64; 5],
}

/// What a throttle window did to a Produce request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// No window was open: forward at once.
    Pass,
    /// Held this long, then the window closed: forward.
    Released(Duration),
    /// Held this long (half the request's timeout) and the window is still open: refuse.
    Expired(Duration),
}

impl Default for Control {
    fn default() -> Self {
        Control {
            epoch: Instant::now(),
            throttle_until: AtomicU64::new(0),
            changed: Notify::new(),
            delayed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            batches: Default::default(),
        }
    }
}

impl Control {
    /// Opens a throttle window until `until`, replacing any open one; an instant not in the
    /// future ends the window.
    pub(crate) fn throttle_until(&self, until: Instant) {
        let nanos = until.saturating_duration_since(self.epoch).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX).max(1);
        self.throttle_until.store(nanos, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// The end of the throttle window, if one is open at `now`.
    fn open_until(&self, now: Instant) -> Option<Instant> {
        match self.throttle_until.load(Ordering::SeqCst) {
            0 => None,
            nanos => {
                let until = self.epoch + Duration::from_nanos(nanos);
                (until > now).then_some(until)
            }
        }
    }

    /// Holds a Produce request with `timeout_ms` while a throttle window is open, for at most
    /// `timeout_ms / 2`, and counts the outcome. Without an open window it returns at once.
    pub(crate) async fn hold(&self, timeout_ms: i32) -> Hold {
        // The fast path of every Produce request: no window was ever opened.
        if self.throttle_until.load(Ordering::Relaxed) == 0 {
            return Hold::Pass;
        }
        let start = Instant::now();
        let limit = start + Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0) / 2);
        let mut waited = false;
        loop {
            // Registered before the state is read, so that no change can be missed.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = Instant::now();
            let Some(until) = self.open_until(now) else {
                if !waited {
                    return Hold::Pass;
                }
                self.delayed.fetch_add(1, Ordering::Relaxed);
                return Hold::Released(now - start);
            };
            if now >= limit {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                return Hold::Expired(now - start);
            }
            let wake = tokio::time::Instant::from_std(until.min(limit));
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = &mut changed => {}
            }
            waited = true;
        }
    }

    /// Counts the record batches of a forwarded Produce request by codec.
    pub(crate) fn count_batches(&self, request: &ProduceRequest) {
        let mut counts = [0u64; 5];
        for topic in &request.topic_data {
            for partition in &topic.partition_data {
                if let Some(records) = &partition.records {
                    tally_batches(records, &mut counts);
                }
            }
        }
        for (slot, n) in self.batches.iter().zip(counts) {
            if n > 0 {
                slot.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// A snapshot of the counters.
    pub(crate) fn stats(&self) -> EmulatorStats {
        let mut batches_by_codec = [0; 5];
        for (out, slot) in batches_by_codec.iter_mut().zip(&self.batches) {
            *out = slot.load(Ordering::Relaxed);
        }
        EmulatorStats {
            produce_requests_delayed: self.delayed.load(Ordering::Relaxed),
            produce_requests_rejected: self.rejected.load(Ordering::Relaxed),
            batches_by_codec,
            ..EmulatorStats::default()
        }
    }
}

/// Adds the batches in `records` (batches back to back) to `counts`, by codec. Only the headers
/// are read: `baseOffset i64, batchLength i32, partitionLeaderEpoch i32, magic i8, crc u32,
/// attributes i16` for v2 batches (`offset i64, size i32, crc u32, magic i8, attributes i8` for
/// legacy v0/v1 messages). Stops at anything malformed or cut short.
fn tally_batches(mut records: &[u8], counts: &mut [u64; 5]) {
    const LENGTH_END: usize = 12;
    while let Some(len) = records.get(8..LENGTH_END) {
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        let Ok(len) = usize::try_from(len) else {
            return;
        };
        let Some(batch) = records.get(..LENGTH_END + len) else {
            return;
        };
        let codec = match batch.get(16) {
            Some(2) => batch.get(21..23).map(|a| a[1] & 0x7),
            Some(0 | 1) => batch.get(17).map(|a| a & 0x7),
            _ => None,
        };
        let Some(codec) = codec else {
            return;
        };
        if let Some(slot) = counts.get_mut(usize::from(codec)) {
            *slot += 1;
        }
        records = &records[batch.len()..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};

    /// A v2 batch header with `codec` and `payload` bytes after the 61-byte header.
    fn batch(codec: u8, payload: usize) -> Vec<u8> {
        let mut b = vec![0u8; 61 + payload];
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[16] = 2;
        b[22] = codec | 0x10; // a transactional bit besides the codec
        b
    }

    #[test]
    fn counts_batches_back_to_back_and_stops_at_garbage() {
        let mut records = batch(1, 10);
        records.extend(batch(3, 0));
        records.extend(batch(1, 100));
        records.extend(batch(0, 5));
        let mut counts = [0; 5];
        tally_batches(&records, &mut counts);
        assert_eq!(counts, [1, 2, 0, 1, 0]);

        // A cut-short batch is not counted; neither is an unknown magic.
        let mut cut = batch(4, 10);
        cut.truncate(40);
        let mut counts = [0; 5];
        tally_batches(&cut, &mut counts);
        assert_eq!(counts, [0; 5]);
        let mut odd = batch(4, 0);
        odd[16] = 7;
        tally_batches(&odd, &mut counts);
        assert_eq!(counts, [0; 5]);

        // A legacy v1 message.
        let mut legacy = vec![0u8; 30];
        legacy[8..12].copy_from_slice(&18i32.to_be_bytes());
        legacy[16] = 1;
        legacy[17] = 2;
        tally_batches(&legacy, &mut counts);
        assert_eq!(counts, [0, 0, 1, 0, 0]);
    }

    #[test]
    fn counts_every_partition_of_a_request() {
        let control = Control::default();
        let part = |i, b: Vec<u8>| {
            PartitionProduceData::default()
                .with_index(i)
                .with_records(Some(Bytes::from(b)))
        };
        let request = ProduceRequest::default().with_topic_data(vec![TopicProduceData::default()
            .with_partition_data(vec![
                part(0, batch(1, 3)),
                part(1, [batch(4, 0), batch(4, 0)].concat()),
                PartitionProduceData::default().with_index(2),
            ])]);
        control.count_batches(&request);
        control.count_batches(&request);
        let stats = control.stats();
        assert_eq!(stats.batches_by_codec, [0, 2, 0, 0, 4]);
        assert_eq!(stats.batches(Compression::Zstd), 4);
        assert_eq!(stats.batches(Compression::None), 0);
    }

    #[tokio::test]
    async fn holds_until_the_window_closes_or_half_the_timeout() {
        let control = Control::default();
        assert_eq!(control.hold(1000).await, Hold::Pass);

        control.throttle_until(Instant::now() + Duration::from_millis(150));
        match control.hold(10_000).await {
            Hold::Released(d) => assert!(d >= Duration::from_millis(100), "{d:?}"),
            other => panic!("{other:?}"),
        }

        control.throttle_until(Instant::now() + Duration::from_secs(60));
        let started = Instant::now();
        match control.hold(400).await {
            Hold::Expired(d) => assert!(d >= Duration::from_millis(200), "{d:?}"),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5));

        // Ending the window early releases a held request at once.
        let stop = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            control.throttle_until(Instant::now());
        };
        let (held, ()) = tokio::join!(control.hold(60_000), stop);
        assert!(matches!(held, Hold::Released(d) if d < Duration::from_secs(5)));
        assert_eq!(control.hold(1000).await, Hold::Pass);

        let stats = control.stats();
        assert_eq!(
            (
                stats.produce_requests_delayed,
                stats.produce_requests_rejected
            ),
            (2, 1)
        );
    }
}
