//! Faults and accounting of the Event Hubs emulator against a real tansu broker: throttling the
//! way the service does it (Produce requests delayed; refused with POLICY_VIOLATION when delayed
//! past half their timeout, and their connection closed), and record batches counted per
//! compression codec. Network cuts and restarts are in `emulator_faults/network.rs`, retention
//! emulation in `emulator_faults/retention.rs`.

use hubmirror_test_support as support;

#[path = "emulator_faults/network.rs"]
mod network;
#[path = "emulator_faults/retention.rs"]
mod retention;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ProduceRequest, ProduceResponse, SaslAuthenticateRequest, SaslAuthenticateResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::ClientConfig;

use hubmirror_emulator::Compression;
use support::emulator::{EventHubsEmulator, RawClient};
use support::kafka;
use support::{block_on, init_logs};

/// A producer that reports the first error of a produce request: no idempotence, no retries,
/// one record per request.
fn producer(cfg: &ClientConfig, settings: &[(&str, &str)]) -> FutureProducer {
    let mut cfg = cfg.clone();
    cfg.set("enable.idempotence", "false")
        .set("message.send.max.retries", "0")
        .set("linger.ms", "0");
    for (k, v) in settings {
        cfg.set(*k, *v);
    }
    cfg.create().expect("producer")
}

/// Produces one record to partition 0 and waits for its delivery report.
fn send(producer: &FutureProducer, topic: &str, key: &str, value: &[u8]) -> Result<(), KafkaError> {
    let record = FutureRecord::to(topic).partition(0).key(key).payload(value);
    block_on(producer.send(record, Timeout::Never))
        .map(|_| ())
        .map_err(|(e, _)| e)
}

/// How many records with `key` `topic` holds, read through the emulator once `expected`
/// records (the ones that must be there) have arrived.
fn count_key(cfg: &ClientConfig, topic: &str, expected: usize, key: &str) -> usize {
    let records = kafka::read_all(cfg, topic, expected, Duration::from_secs(60));
    let counts = kafka::count_by_key(&records);
    counts.get(key.as_bytes()).copied().unwrap_or(0)
}

#[test]
fn produce_throttled_past_half_its_timeout_gets_policy_violation_and_is_not_written() {
    init_logs();
    let eh = EventHubsEmulator::start();
    let cfg = eh.client_config();
    kafka::create_topic(&cfg, "throttled", 1);
    let producer = producer(&cfg, &[("request.timeout.ms", "2000")]);
    // Connected, with metadata, before the window opens.
    send(&producer, "throttled", "warm-up", b"w").expect("warm-up delivered");
    let before = eh.stats();

    eh.throttle_for(Duration::from_secs(5));
    let started = Instant::now();
    let error = send(&producer, "throttled", "refused", b"r")
        .expect_err("a produce throttled past its timeout must fail");
    let took = started.elapsed();
    println!("throttled produce failed after {took:?}: {error}");
    assert_eq!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::PolicyViolation),
        "{error}"
    );
    // Refused after half of request.timeout.ms, long before the window ends.
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_millis(4500),
        "{took:?}"
    );
    let stats = eh.stats();
    assert!(
        stats.produce_requests_rejected > before.produce_requests_rejected,
        "{before:?} -> {stats:?}"
    );
    assert_eq!(
        stats.produce_requests_delayed,
        before.produce_requests_delayed
    );

    // After the window the client reconnects and produces again.
    eh.throttle_for(Duration::ZERO);
    send(&producer, "throttled", "after", b"a").expect("delivered after the window");
    assert_eq!(
        count_key(&cfg, "throttled", 2, "refused"),
        0,
        "the refused record is not in the topic"
    );
    assert_eq!(count_key(&cfg, "throttled", 2, "after"), 1);
}

#[test]
fn produce_throttled_shorter_than_half_its_timeout_is_delayed_then_written() {
    init_logs();
    let eh = EventHubsEmulator::start();
    let cfg = eh.client_config();
    kafka::create_topic(&cfg, "delayed", 1);
    let producer = producer(&cfg, &[("request.timeout.ms", "10000")]);
    send(&producer, "delayed", "warm-up", b"w").expect("warm-up delivered");
    let before = eh.stats();

    eh.throttle_for(Duration::from_secs(1));
    let started = Instant::now();
    send(&producer, "delayed", "held", b"h").expect("a produce held within its timeout succeeds");
    let took = started.elapsed();
    println!("throttled produce delivered after {took:?}");
    assert!(took >= Duration::from_millis(500), "held: {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "released with the window: {took:?}"
    );
    let stats = eh.stats();
    assert!(
        stats.produce_requests_delayed > before.produce_requests_delayed,
        "{before:?} -> {stats:?}"
    );
    assert_eq!(
        stats.produce_requests_rejected,
        before.produce_requests_rejected
    );
    assert_eq!(count_key(&cfg, "delayed", 2, "held"), 1, "written once");
}

/// One record in a v2 batch, uncompressed.
fn batch(key: &str) -> Bytes {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1_700_000_000_000,
        key: Some(Bytes::copy_from_slice(key.as_bytes())),
        value: Some(Bytes::from_static(b"raw")),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: kafka_protocol::records::Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, [&record], &options).expect("encode batch");
    buf.freeze()
}

fn produce_request(topic: &'static str, key: &str, timeout_ms: i32) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(key)))])])
}

/// Two Produce requests pipelined during a long window: the first is refused after half its
/// timeout, then the connection closes without the second ever being read, even though the
/// window is over by then (a relay that kept reading would forward it and answer it).
#[tokio::test(flavor = "multi_thread")]
async fn requests_pipelined_behind_a_refused_produce_are_never_written() {
    init_logs();
    let eh = EventHubsEmulator::start();
    let cfg = eh.client_config();
    let admin_cfg = cfg.clone();
    tokio::task::spawn_blocking(move || kafka::create_topic(&admin_cfg, "pipelined", 1))
        .await
        .expect("create topic");

    let mut c = RawClient::connect(&eh).await;
    assert_eq!(c.handshake(1, "PLAIN").await.error_code, 0);
    let auth = SaslAuthenticateRequest::default().with_auth_bytes(eh.plain_token());
    let id = c.send(ApiKey::SaslAuthenticate, 2, &auth).await;
    let ok: SaslAuthenticateResponse = c.recv(ApiKey::SaslAuthenticate, 2, id).await;
    assert_eq!(ok.error_code, 0);

    eh.throttle_for(Duration::from_secs(60));
    let started = Instant::now();
    let first = c
        .send(
            ApiKey::Produce,
            7,
            &produce_request("pipelined", "first", 2000),
        )
        .await;
    c.send(
        ApiKey::Produce,
        7,
        &produce_request("pipelined", "second", 60_000),
    )
    .await;
    let refused: ProduceResponse = c.recv(ApiKey::Produce, 7, first).await;
    println!("refused after {:?}", started.elapsed());
    assert!(started.elapsed() >= Duration::from_millis(900));
    let partition = &refused.responses[0].partition_responses[0];
    assert_eq!((partition.error_code, partition.base_offset), (44, -1));
    eh.throttle_for(Duration::ZERO);
    c.assert_closed().await;
    assert_eq!(eh.stats().produce_requests_rejected, 1);
    assert_eq!(eh.stats().produce_requests_delayed, 0);

    let counts = tokio::task::spawn_blocking(move || {
        let producer = producer(&cfg, &[]);
        send(&producer, "pipelined", "marker", b"m").expect("marker delivered");
        let records = kafka::read_all(&cfg, "pipelined", 1, Duration::from_secs(60));
        kafka::count_by_key(&records)
    })
    .await
    .expect("read back");
    let keys: Vec<String> = counts
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(
        keys,
        vec!["marker".to_string()],
        "only the marker was written"
    );
}

#[test]
fn record_batches_are_counted_per_codec() {
    init_logs();
    let eh = EventHubsEmulator::start();
    let cfg = eh.client_config();
    kafka::create_topic(&cfg, "codecs", 1);
    // Compressible, so that librdkafka keeps the compressed batch.
    let value = "compress me ".repeat(200);
    let produce = |codec: &str, n: usize| {
        let producer = producer(&cfg, &[("compression.type", codec)]);
        for i in 0..n {
            send(
                &producer,
                "codecs",
                &format!("{codec}-{i}"),
                value.as_bytes(),
            )
            .unwrap_or_else(|e| panic!("{codec} record {i}: {e}"));
        }
    };
    let before = eh.stats();
    produce("gzip", 3);
    let gzip = eh.stats();
    produce("lz4", 2);
    let lz4 = eh.stats();
    println!("{before:?}\n{gzip:?}\n{lz4:?}");

    let moved = |a: &hubmirror_emulator::EmulatorStats,
                 b: &hubmirror_emulator::EmulatorStats,
                 codec: Compression| b.batches(codec) - a.batches(codec);
    assert!(moved(&before, &gzip, Compression::Gzip) >= 3, "{gzip:?}");
    assert_eq!(moved(&before, &gzip, Compression::Lz4), 0);
    assert_eq!(moved(&before, &gzip, Compression::None), 0);
    assert!(moved(&gzip, &lz4, Compression::Lz4) >= 2, "{lz4:?}");
    assert_eq!(moved(&gzip, &lz4, Compression::Gzip), 0);
    assert_eq!(moved(&gzip, &lz4, Compression::None), 0);
    assert_eq!(lz4.batches(Compression::Snappy), 0);
    assert_eq!(lz4.batches(Compression::Zstd), 0);
    assert_eq!(
        kafka::read_all(&cfg, "codecs", 5, Duration::from_secs(60)).len(),
        5
    );
}
