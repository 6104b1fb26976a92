//! The benchmark's Rust client (see `bench/run.py`), two subcommands:
//!
//! - `consume`: the ceiling. A plain rdkafka `BaseConsumer` (librdkafka defaults unless `--set`,
//!   no group protocol: every partition assigned at the beginning) reads `--count` records and
//!   prints `{"records","bytes","extra","first_at","vmhwm_kib"}` (bytes = key + value,
//!   first_at = when the first record arrived, seconds since the epoch). With `--expect-exact`
//!   it keeps reading for `--grace-ms` after the count and fails if more arrive (duplicates).
//! - `latency`: a reader on the target (assigned at the beginning, `fetch.wait.max.ms=5`) starts
//!   first; then a producer (`linger.ms=5`) writes a steady `--rate` records/s for `--seconds`
//!   to the source. Each value carries the produce instant (µs since the epoch, bytes 0..8) and
//!   a sequence number (bytes 8..16); the record timestamp is the ms wall clock at produce. The
//!   reader stops when every record arrived or `--drain-seconds` after the producer finished,
//!   then prints latency percentiles (ms) from the µs payload (`p50_ms`...) and from the record
//!   timestamps (`ts_p50_ms`...), the worst latency of each second of the run, and how many
//!   records are missing or duplicated.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde_json::json;

#[derive(Parser)]
#[command(about = "hubmirror benchmark client")]
enum Cmd {
    /// Read `count` records of a topic from the beginning (the consume-only ceiling).
    Consume(ConsumeArgs),
    /// Produce a steady rate to the source, measure when each record is visible on the target.
    Latency(LatencyArgs),
}

#[derive(Args)]
struct ConsumeArgs {
    #[arg(long)]
    bootstrap: String,
    #[arg(long)]
    topic: String,
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    #[arg(long)]
    count: u64,
    /// After `count`, keep reading `grace_ms` and fail if more records arrive.
    #[arg(long)]
    expect_exact: bool,
    #[arg(long, default_value_t = 1000)]
    grace_ms: u64,
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Extra librdkafka setting KEY=VALUE (repeatable).
    #[arg(long = "set", value_parser = key_value)]
    settings: Vec<(String, String)>,
}

#[derive(Args)]
struct LatencyArgs {
    #[arg(long)]
    source: String,
    #[arg(long)]
    target: String,
    #[arg(long)]
    topic: String,
    #[arg(long)]
    remote: String,
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// How long the reader waits for stragglers after the producer finished.
    #[arg(long, default_value_t = 30)]
    drain_seconds: u64,
    /// The reader's fetch.wait.max.ms.
    #[arg(long, default_value = "5")]
    fetch_wait_ms: String,
    /// The producer's linger.ms (librdkafka's default; at 1 ms tansu 0.6 slows down by the
    /// second under 10,000 records/s).
    #[arg(long, default_value = "5")]
    linger_ms: String,
}

type Res<T> = Result<T, String>;

fn main() {
    let started = Instant::now();
    let result = match Cmd::parse() {
        Cmd::Consume(a) => consume(&a, started),
        Cmd::Latency(a) => latency(&a),
    };
    if let Err(e) = result {
        eprintln!("bench_client: {e}");
        std::process::exit(1);
    }
}

fn key_value(s: &str) -> Res<(String, String)> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got '{s}'"))
}

/// A consumer with every partition of `topic` assigned at the beginning (no group protocol).
fn reader(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    extra: &[(String, String)],
) -> Res<BaseConsumer> {
    let group = format!("bench-client-{}-{}", std::process::id(), now_us());
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false");
    for (k, v) in extra {
        cfg.set(k, v);
    }
    let consumer: BaseConsumer = cfg.create().map_err(|e| format!("consumer: {e}"))?;
    // Learn the leaders first: assigned before that, librdkafka retries the start-offset lookup
    // only after 500 ms.
    consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| format!("metadata of '{topic}': {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .map_err(|e| format!("assign: {e}"))?;
    }
    consumer.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
    Ok(consumer)
}

fn consume(a: &ConsumeArgs, started: Instant) -> Res<()> {
    let consumer = reader(&a.bootstrap, &a.topic, a.partitions, &a.settings)?;
    let deadline = started + Duration::from_secs(a.timeout);
    let grace = a.expect_exact.then(|| Duration::from_millis(a.grace_ms));
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut first: Option<f64> = None;
    let mut reached: Option<Instant> = None;
    loop {
        let now = Instant::now();
        match (reached, grace) {
            (Some(_), None) => break,
            (Some(at), Some(g)) if now >= at + g => break,
            (None, _) if now >= deadline => {
                println!("{}", json!({"records": records, "bytes": bytes}));
                return Err(format!(
                    "timed out after {} s: read {records} of {} records of '{}'",
                    a.timeout, a.count, a.topic
                ));
            }
            _ => {}
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                records += 1;
                bytes += (m.key_len() + m.payload_len()) as u64;
                if first.is_none() {
                    first = Some(now_us() as f64 / 1e6);
                }
                if records == a.count {
                    reached = Some(Instant::now());
                }
            }
            Some(Err(e)) => eprintln!("bench_client: consume error: {e}"),
            None => {}
        }
    }
    let extra = records - a.count;
    println!(
        "{}",
        json!({"records": records, "bytes": bytes, "extra": extra, "first_at": first,
               "vmhwm_kib": vmhwm_kib()})
    );
    // Exit without librdkafka's teardown (it can wait out an in-flight fetch, up to
    // fetch.wait.max.ms), so the process ends when the records are read.
    std::mem::forget(consumer);
    if extra > 0 {
        return Err(format!(
            "expected exactly {} records in '{}', read {records} ({extra} more)",
            a.count, a.topic
        ));
    }
    Ok(())
}

/// This process's peak RSS (`VmHWM` of /proc/self/status). Unlike `ru_maxrss` it does not
/// include the memory of the parent that forked it before `exec`.
fn vmhwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Counts failed deliveries.
struct Delivery {
    errors: AtomicU64,
}

impl ClientContext for Delivery {}

impl ProducerContext for Delivery {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            if self.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                eprintln!("bench_client: delivery failed: {e}");
            }
        }
    }
}

/// What the producer thread reports.
struct Produced {
    sent: u64,
    errors: u64,
    seconds: f64,
}

fn latency(a: &LatencyArgs) -> Res<()> {
    if a.size < 16 {
        return Err("--size must be at least 16 (timestamp and sequence number)".into());
    }
    let total = a.rate * a.seconds;
    let fetch_wait = [("fetch.wait.max.ms".to_string(), a.fetch_wait_ms.clone())];
    let consumer = reader(&a.target, &a.remote, a.partitions, &fetch_wait)?;
    // Let the reader resolve its start offsets and issue its first fetches before any load, so
    // it is never behind a partition that is being written (tansu can starve such a fetcher).
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_secs(2) {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(50)) {
            return Err(format!("'{}' is not empty before the load", a.remote));
        }
    }

    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let (source, topic, linger) = (a.source.clone(), a.topic.clone(), a.linger_ms.clone());
        let (rate, size, partitions, done) = (a.rate, a.size, a.partitions, done.clone());
        std::thread::spawn(move || {
            let r = produce(&source, &topic, &linger, partitions, rate, total, size);
            done.store(true, Ordering::Release);
            r
        })
    };

    let mut seen = vec![false; total as usize];
    let (mut unique, mut duplicates, mut foreign) = (0u64, 0u64, 0u64);
    let mut lat_us: Vec<f64> = Vec::with_capacity(total as usize);
    let mut lat_ts_us: Vec<f64> = Vec::with_capacity(total as usize);
    // The worst latency of the records produced in each second of the run (by sequence number).
    let mut worst_by_second = vec![0f64; a.seconds as usize];
    let mut finished_at: Option<Instant> = None;
    let drain = Duration::from_secs(a.drain_seconds);
    while unique < total {
        if finished_at.is_none() && done.load(Ordering::Acquire) {
            finished_at = Some(Instant::now());
        }
        if finished_at.is_some_and(|t| t.elapsed() >= drain) {
            break;
        }
        let m = match consumer.poll(Duration::from_millis(20)) {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                eprintln!("bench_client: target read error: {e}");
                continue;
            }
            None => continue,
        };
        let now = now_us();
        let v = m.payload().unwrap_or_default();
        if v.len() < 16 {
            foreign += 1;
            continue;
        }
        let sent_us = u64::from_le_bytes(v[0..8].try_into().expect("8 bytes"));
        let seq = u64::from_le_bytes(v[8..16].try_into().expect("8 bytes"));
        match seen.get_mut(seq as usize) {
            Some(s) if *s => duplicates += 1,
            Some(s) => {
                *s = true;
                unique += 1;
                let us = now as f64 - sent_us as f64;
                lat_us.push(us);
                if let Some(w) = worst_by_second.get_mut((seq / a.rate) as usize) {
                    *w = w.max(us / 1000.0);
                }
                if let Some(ts) = m.timestamp().to_millis() {
                    lat_ts_us.push(now as f64 - (ts as f64) * 1000.0);
                }
            }
            None => foreign += 1,
        }
    }
    let produced = producer
        .join()
        .map_err(|_| "producer thread panicked".to_string())??;
    // Nearest-rank percentile of µs samples, in ms with µs precision.
    let pct = |v: &[f64], q: f64| -> Option<f64> {
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len().max(1)) - 1;
        v.get(i).map(|us| us.round() / 1000.0)
    };
    lat_us.sort_by(f64::total_cmp);
    lat_ts_us.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({
            "sent": produced.sent,
            "produce_errors": produced.errors,
            "produce_seconds": produced.seconds,
            "count": unique,
            "missing": total - unique,
            "duplicates": duplicates,
            "foreign": foreign,
            "p50_ms": pct(&lat_us, 0.50),
            "p99_ms": pct(&lat_us, 0.99),
            "p999_ms": pct(&lat_us, 0.999),
            "max_ms": pct(&lat_us, 1.0),
            "ts_p50_ms": pct(&lat_ts_us, 0.50),
            "ts_p99_ms": pct(&lat_ts_us, 0.99),
            "ts_p999_ms": pct(&lat_ts_us, 0.999),
            "ts_max_ms": pct(&lat_ts_us, 1.0),
            "worst_ms_by_second": worst_by_second.iter().map(|ms| ms.round()).collect::<Vec<_>>(),
            "vmhwm_kib": vmhwm_kib(),
        })
    );
    Ok(())
}

/// Produces `total` records at `rate`/s, paced in 1 ms ticks against a start instant.
fn produce(
    source: &str,
    topic: &str,
    linger_ms: &str,
    partitions: i32,
    rate: u64,
    total: u64,
    size: usize,
) -> Res<Produced> {
    let producer: BaseProducer<Delivery> = ClientConfig::new()
        .set("bootstrap.servers", source)
        .set("linger.ms", linger_ms)
        .create_with_context(Delivery {
            errors: AtomicU64::new(0),
        })
        .map_err(|e| format!("producer: {e}"))?;
    // Connect and learn the topic's leaders before the clock starts.
    producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| format!("metadata of '{topic}': {e}"))?;
    let mut value = vec![0u8; size];
    for (i, b) in value.iter_mut().enumerate().skip(16) {
        *b = (i * 131 % 251) as u8;
    }
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        // Everything due by the end of the current 1 ms tick.
        let due =
            ((start.elapsed().as_micros() as u64 * rate) / 1_000_000 + rate / 1000).min(total);
        while sent < due {
            let us = now_us();
            value[0..8].copy_from_slice(&us.to_le_bytes());
            value[8..16].copy_from_slice(&sent.to_le_bytes());
            let mut rec = BaseRecord::<(), [u8]>::to(topic)
                .payload(&value[..])
                .partition((sent % partitions as u64) as i32)
                .timestamp((us / 1000) as i64);
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        rec = r;
                        producer.poll(Duration::from_millis(1));
                    }
                    Err((e, _)) => return Err(format!("produce: {e}")),
                }
            }
            sent += 1;
        }
        producer.poll(Duration::ZERO);
        let next_tick = Duration::from_millis(start.elapsed().as_millis() as u64 + 1);
        if let Some(d) = next_tick.checked_sub(start.elapsed()) {
            std::thread::sleep(d);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    producer
        .flush(Duration::from_secs(30))
        .map_err(|e| format!("flush: {e}"))?;
    Ok(Produced {
        sent,
        errors: producer.context().errors.load(Ordering::Relaxed),
        seconds,
    })
}
