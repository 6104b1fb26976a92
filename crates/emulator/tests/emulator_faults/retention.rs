//! Retention emulation against a real tansu broker (which cannot delete records): after
//! `expire_before`, a partition behaves like a log whose older records were deleted, to
//! librdkafka and on the wire, while the topic's other partitions are untouched.

use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::{block_on, init_logs};
use crate::support::emulator::{EventHubsEmulator, RawClient};
use crate::support::kafka::{self, Rec};

const TOPIC: &str = "expiring";
/// Records per partition.
const N: i64 = 10;
/// The emulated log start of partition 0.
const LOG_START: i64 = 4;

/// A consumer assigned to `TOPIC` at `(partition, offset)` pairs.
fn assigned(cfg: &ClientConfig, reset: &str, at: &[(i32, Offset)]) -> BaseConsumer {
    let consumer: BaseConsumer = cfg
        .clone()
        .set("group.id", format!("retention-{reset}"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", reset)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for (partition, offset) in at {
        tpl.add_partition_offset(TOPIC, *partition, *offset)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    consumer
}

/// Polls until `done` says so (given the records and errors so far), or panics at `timeout`.
fn poll_until(
    consumer: &BaseConsumer,
    timeout: Duration,
    done: impl Fn(&[Rec], &[KafkaError]) -> bool,
) -> (Vec<Rec>, Vec<KafkaError>) {
    let deadline = Instant::now() + timeout;
    let (mut records, mut errors) = (Vec::new(), Vec::new());
    while !done(&records, &errors) {
        assert!(
            Instant::now() < deadline,
            "within {timeout:?}: {records:?} {errors:?}"
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => records.push(Rec::from(&m)),
            Some(Err(e)) => errors.push(e),
            None => {}
        }
    }
    (records, errors)
}

fn offsets(records: &[Rec], partition: i32) -> Vec<i64> {
    records
        .iter()
        .filter(|r| r.partition == partition)
        .map(|r| r.offset)
        .collect()
}

/// A Fetch of `TOPIC` partitions 0 and 1 at `offset`, answered at once.
fn fetch_request(offset: i64) -> FetchRequest {
    let part = |p| {
        FetchPartition::default()
            .with_partition(p)
            .with_fetch_offset(offset)
            .with_partition_max_bytes(1 << 20)
    };
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(100)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![part(0), part(1)])])
}

/// `(partition, error, log start, has records)` of a Fetch response.
fn summary(response: &FetchResponse) -> Vec<(i32, i16, i64, bool)> {
    response.responses[0]
        .partitions
        .iter()
        .map(|p| {
            let has_records = p.records.as_ref().is_some_and(|r| !r.is_empty());
            (
                p.partition_index,
                p.error_code,
                p.log_start_offset,
                has_records,
            )
        })
        .collect()
}

#[test]
fn expired_records_are_out_of_range_and_the_log_start_is_reported() {
    init_logs();
    let eh = EventHubsEmulator::start();
    let cfg = eh.client_config();
    kafka::create_topic(&cfg, TOPIC, 2);
    // Batched, the last record of each partition alone in its batch: tansu answers
    // ListOffsets(latest) with the last batch's base offset + 1 (see the README's caveats),
    // which is then the log end the assertions below expect.
    let records: Vec<(i32, Vec<u8>, Vec<u8>)> = (0..N)
        .flat_map(|i| [0, 1].map(|p| (p, format!("p{p}-{i}").into_bytes(), b"v".to_vec())))
        .collect();
    let (all_but_last, last) = records.split_at(records.len() - 2);
    kafka::produce_batched(&cfg, TOPIC, all_but_last);
    kafka::produce_batched(&cfg, TOPIC, last);

    eh.expire_before(TOPIC, 0, LOG_START);

    // Watermarks (ListOffsets EARLIEST and LATEST).
    let probe: BaseConsumer = cfg.create().expect("probe");
    let timeout = Duration::from_secs(10);
    assert_eq!(
        probe.fetch_watermarks(TOPIC, 0, timeout).expect("p0"),
        (LOG_START, N)
    );
    assert_eq!(
        probe.fetch_watermarks(TOPIC, 1, timeout).expect("p1"),
        (0, N)
    );

    // Below the log start with auto.offset.reset=error: an error and no records for
    // partition 0; partition 1, fetched in the same requests, is read whole.
    let consumer = assigned(
        &cfg,
        "error",
        &[(0, Offset::Offset(2)), (1, Offset::Offset(0))],
    );
    let (got, errors) = poll_until(&consumer, Duration::from_secs(30), |r, e| {
        !e.is_empty() && offsets(r, 1).len() == N as usize
    });
    println!("errors: {errors:?}");
    assert_eq!(
        offsets(&got, 0),
        Vec::<i64>::new(),
        "nothing of partition 0"
    );
    assert_eq!(offsets(&got, 1), (0..N).collect::<Vec<_>>());
    let codes: Vec<_> = errors.iter().map(KafkaError::rdkafka_error_code).collect();
    assert!(
        codes.iter().all(|c| matches!(
            c,
            Some(RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange)
        )),
        "{errors:?}"
    );
    drop(consumer);

    // At the log start: read from there.
    let consumer = assigned(&cfg, "error", &[(0, Offset::Offset(LOG_START))]);
    let (got, errors) = poll_until(&consumer, Duration::from_secs(30), |r, _| {
        r.len() == (N - LOG_START) as usize
    });
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(offsets(&got, 0), (LOG_START..N).collect::<Vec<_>>());
    assert_eq!(got[0].key.as_deref(), Some(&b"p0-4"[..]));
    drop(consumer);

    // From the beginning, and below the log start with auto.offset.reset=earliest: both start
    // at the log start.
    for at in [Offset::Beginning, Offset::Offset(1)] {
        let consumer = assigned(&cfg, "earliest", &[(0, at)]);
        let (got, _) = poll_until(&consumer, Duration::from_secs(30), |r, _| !r.is_empty());
        assert_eq!(got[0].offset, LOG_START, "from {at:?}");
    }

    // On the wire: one Fetch for both partitions below the log start, then at it. Version 11:
    // kafka-protocol cannot decode tansu's v12 answers (a tagged field v12 does not define).
    let (below, at) = block_on(async {
        let mut c = RawClient::connect_authenticated(&eh).await;
        let id = c.send(ApiKey::Fetch, 11, &fetch_request(2)).await;
        let below: FetchResponse = c.recv(ApiKey::Fetch, 11, id).await;
        let id = c.send(ApiKey::Fetch, 11, &fetch_request(LOG_START)).await;
        let at: FetchResponse = c.recv(ApiKey::Fetch, 11, id).await;
        (below, at)
    });
    assert_eq!(
        summary(&below),
        vec![(0, 1, LOG_START, false), (1, 0, 0, true)]
    );
    assert_eq!(summary(&at), vec![(0, 0, LOG_START, true), (1, 0, 0, true)]);
}
