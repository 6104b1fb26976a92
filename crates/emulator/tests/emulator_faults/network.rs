//! Network faults against a real tansu broker: a cut (every connection closed, new ones refused
//! for a while) and the emulator stopped and started again on the same address while its
//! broker keeps running. A running rdkafka producer recovers from both by itself, losing and
//! duplicating nothing.

use std::time::{Duration, Instant};

use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;

use super::{block_on, init_logs};
use crate::support::emulator::{EventHubsEmulator, RawClient};
use crate::support::kafka;

/// A producer with librdkafka's defaults for retries, timeouts and reconnect backoff, like an
/// application's; sends at once.
fn producer(cfg: &ClientConfig) -> FutureProducer {
    cfg.clone()
        .set("linger.ms", "0")
        .create()
        .expect("producer")
}

/// Enqueues records `<prefix>-<i>` for `i` in `range` (partition `i % partitions`).
fn enqueue(
    producer: &FutureProducer,
    topic: &str,
    partitions: i32,
    prefix: &str,
    range: std::ops::Range<usize>,
) -> Vec<DeliveryFuture> {
    range
        .map(|i| {
            let key = format!("{prefix}-{i}");
            let partition = i32::try_from(i).expect("index") % partitions;
            let record = FutureRecord::to(topic)
                .partition(partition)
                .key(&key)
                .payload(&key);
            producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("enqueue")
        })
        .collect()
}

/// Waits until every record is acknowledged, or panics at `timeout`; returns how long it took.
fn wait_delivered(futures: Vec<DeliveryFuture>, timeout: Duration, what: &str) -> Duration {
    let started = Instant::now();
    let results =
        block_on(async { tokio::time::timeout(timeout, futures::future::join_all(futures)).await })
            .unwrap_or_else(|_| panic!("{what}: not all acknowledged within {timeout:?}"));
    for (i, result) in results.into_iter().enumerate() {
        let delivery = result.expect("delivery future");
        if let Err((e, _)) = delivery {
            panic!("{what}: record {i} failed: {e}");
        }
    }
    started.elapsed()
}

/// Asserts that none of `n` enqueued records is acknowledged before `until` (polled).
fn assert_held_until(producer: &FutureProducer, n: i32, until: Instant) {
    while Instant::now() < until {
        let waiting = producer.in_flight_count();
        assert!(waiting >= n, "only {waiting} of {n} records still waiting");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_cut_closes_connections_refuses_new_ones_then_the_producer_delivers_everything() {
    init_logs();
    let eh = EventHubsEmulator::start();
    let cfg = eh.client_config();
    kafka::create_topic(&cfg, "cut", 1);
    let producer = producer(&cfg);
    let before = enqueue(&producer, "cut", 1, "before", 0..5);
    wait_delivered(before, Duration::from_secs(60), "before the cut");
    // An authenticated connection besides the producer's, to watch being closed.
    let mut raw = block_on(RawClient::connect_authenticated(&eh));
    let stats_before = eh.stats();

    let window = Duration::from_secs(4);
    let window_end = Instant::now() + window;
    eh.cut_connections_for(window);
    block_on(raw.assert_closed());
    let refused = block_on(RawClient::try_connect(&eh));
    assert!(
        refused.is_err(),
        "a new connection must be refused during the window"
    );
    assert!(Instant::now() < window_end, "checked within the window");
    // The raw connection and the producer's broker connection at least (each connection's
    // task counts itself as it closes: polled).
    let deadline = Instant::now() + Duration::from_secs(3);
    let stats = loop {
        let stats = eh.stats();
        if stats.connections_cut >= stats_before.connections_cut + 2 || Instant::now() >= deadline {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    println!("cut: {stats_before:?} -> {stats:?}");
    assert!(
        stats.connections_cut >= stats_before.connections_cut + 2,
        "{stats:?}"
    );
    assert!(stats.connections_refused > stats_before.connections_refused);

    // Produced during the window: held by the producer until it reconnects.
    let during = enqueue(&producer, "cut", 1, "during", 0..20);
    assert_held_until(
        &producer,
        20,
        window_end
            .checked_sub(Duration::from_millis(500))
            .expect("end"),
    );
    let took = wait_delivered(during, Duration::from_secs(60), "after the cut");
    println!("records produced during the cut delivered {took:?} from 500 ms before its end");
    // New connections work again.
    block_on(RawClient::connect_authenticated(&eh));

    let records = kafka::read_all(&cfg, "cut", 25, Duration::from_secs(60));
    println!(
        "{}",
        kafka::assert_exactly_once(&records, &[("before", 5), ("during", 20)], "cut")
    );
}

#[test]
fn a_producer_delivers_what_it_produced_while_the_emulator_was_stopped() {
    init_logs();
    let mut eh = EventHubsEmulator::start();
    let cfg = eh.client_config();
    kafka::create_topic(&cfg, "restart", 2);
    let producer = producer(&cfg);
    let before = enqueue(&producer, "restart", 2, "before", 0..10);
    wait_delivered(before, Duration::from_secs(60), "before the stop");
    let bootstrap = eh.bootstrap();
    let ca = std::fs::read(eh.ca_file()).expect("ca");

    eh.stop_emulator();
    assert!(!eh.emulator_running());
    assert!(
        std::net::TcpStream::connect(&bootstrap).is_err(),
        "the port stops accepting"
    );
    let stopped = enqueue(&producer, "restart", 2, "stopped", 0..20);
    // Stopped for a while: the producer fails to reconnect and backs off.
    assert_held_until(&producer, 20, Instant::now() + Duration::from_secs(2));

    eh.start_emulator_again();
    assert!(eh.emulator_running());
    assert_eq!(eh.bootstrap(), bootstrap, "same address");
    assert_eq!(std::fs::read(eh.ca_file()).expect("ca"), ca, "same CA");
    let took = wait_delivered(stopped, Duration::from_secs(90), "after the restart");
    println!("records produced while stopped delivered {took:?} after the restart");
    let after = enqueue(&producer, "restart", 2, "after", 0..5);
    wait_delivered(after, Duration::from_secs(60), "after the restart");

    let records = kafka::read_all(&cfg, "restart", 35, Duration::from_secs(60));
    println!(
        "{}",
        kafka::assert_exactly_once(
            &records,
            &[("before", 10), ("stopped", 20), ("after", 5)],
            "restart"
        )
    );
    // Stopping and starting twice more works too (and stopping twice is harmless).
    eh.stop_emulator();
    eh.stop_emulator();
    eh.start_emulator_again();
    eh.start_emulator_again();
    let last = enqueue(&producer, "restart", 2, "last", 0..2);
    wait_delivered(last, Duration::from_secs(60), "after two more restarts");
}
