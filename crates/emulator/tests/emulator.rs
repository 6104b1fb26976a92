//! The Event Hubs emulator against a real tansu broker: librdkafka through TLS and SASL PLAIN,
//! refused credentials, the 1 MB request limit, and the raw protocol rules before authentication
//! (spoken directly, in `emulator/raw.rs`).

use hubmirror_test_support as support;

#[path = "emulator/raw.rs"]
mod raw;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, FutureProducer, FutureRecord, Producer, ProducerContext};
use rdkafka::util::Timeout;
use rdkafka::ClientConfig;

use support::emulator::EventHubsEmulator;
use support::kafka;
use support::{block_on, init_logs};

/// Every error librdkafka reported through the error callback: code and text.
type Seen = Vec<(Option<RDKafkaErrorCode>, String)>;

/// Records every error librdkafka reports through the error callback.
#[derive(Clone, Default)]
struct Errors(Arc<Mutex<Seen>>);

impl Errors {
    fn find(&self, code: RDKafkaErrorCode) -> Option<String> {
        let seen = self.0.lock().expect("errors lock");
        seen.iter()
            .find(|(c, _)| *c == Some(code))
            .map(|(_, text)| text.clone())
    }

    fn all(&self) -> Vec<String> {
        let seen = self.0.lock().expect("errors lock");
        seen.iter().map(|(_, t)| t.clone()).collect()
    }
}

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        let text = format!("{error}: {reason}");
        let code = error.rdkafka_error_code();
        self.0.lock().expect("errors lock").push((code, text));
    }
}

impl ProducerContext for Errors {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// Polls a producer configured with `cfg` until librdkafka reports `code`, or panics.
fn wait_for_error(cfg: &ClientConfig, code: RDKafkaErrorCode, timeout: Duration) -> String {
    let errors = Errors::default();
    let producer: BaseProducer<Errors> = cfg.create_with_context(errors.clone()).expect("producer");
    let deadline = Instant::now() + timeout;
    // Ask for metadata so that the client connects now; it fails while authentication fails.
    let metadata = producer
        .client()
        .fetch_metadata(None, Duration::from_secs(2));
    assert!(
        metadata.is_err(),
        "metadata must not be served to a refused client"
    );
    loop {
        if let Some(text) = errors.find(code) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no {code:?} within {timeout:?}; errors seen: {:?}",
            errors.all()
        );
        producer.poll(Duration::from_millis(100));
    }
}

#[test]
fn produces_and_consumes_through_the_emulator_with_verified_tls() {
    init_logs();
    let eh = EventHubsEmulator::start();
    let cfg = eh.client_config();
    // Default endpoint identification (https) stays on: the certificate must name 127.0.0.1.
    assert!(cfg.get("ssl.endpoint.identification.algorithm").is_none());

    let admin: AdminClient<DefaultClientContext> = cfg.create().expect("admin");
    let created = block_on(admin.create_topics(
        [&NewTopic::new("orders", 3, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ))
    .expect("create_topics");
    assert_eq!(created, vec![Ok("orders".to_string())]);

    kafka::produce_test_records(&cfg, "orders", 3, 0..100, 1_700_000_000_000);
    let records = kafka::read_all(&cfg, "orders", 100, Duration::from_secs(60));
    assert_eq!(records.len(), 100, "every record read back once");
    let counts = kafka::count_by_key(&records);
    for i in 0..100 {
        assert_eq!(counts.get(format!("k{i}").as_bytes()), Some(&1), "k{i}");
    }
    for r in &records {
        let i: usize = String::from_utf8_lossy(&r.key.clone().expect("key")[1..])
            .parse()
            .expect("key number");
        let (partition, _, value, ts) = kafka::test_record(i, 3, 1_700_000_000_000);
        assert_eq!(r.partition, partition);
        assert_eq!(r.value.as_deref(), Some(value.as_bytes()));
        assert_eq!(r.timestamp, Some(ts));
        assert_eq!(r.header("app-id"), Some(i.to_string()), "headers survive");
    }
}

#[test]
fn wrong_shared_access_key_is_an_authentication_error() {
    init_logs();
    let eh = EventHubsEmulator::start();
    let right = eh.connection_string();
    let wrong = right.replace(
        support::emulator::KEY,
        "V3JvbmdXcm9uZ1dyb25nV3JvbmdXcm9uZ1dyb25nIQ==",
    );
    assert_ne!(wrong, right);
    let cfg = eh.client_config_with("$ConnectionString", &wrong);
    let text = wait_for_error(
        &cfg,
        RDKafkaErrorCode::Authentication,
        Duration::from_secs(30),
    );
    assert!(text.contains("Invalid SASL PLAIN credentials"), "{text}");
    assert!(
        !text.contains(support::emulator::KEY),
        "the key is never echoed"
    );
}

#[test]
fn wrong_username_is_an_authentication_error() {
    init_logs();
    let eh = EventHubsEmulator::start();
    let cfg = eh.client_config_with("RootManageSharedAccessKey", &eh.connection_string());
    let text = wait_for_error(
        &cfg,
        RDKafkaErrorCode::Authentication,
        Duration::from_secs(30),
    );
    assert!(text.contains("Invalid SASL PLAIN credentials"), "{text}");
}

#[test]
fn untrusted_server_certificate_fails_the_handshake() {
    init_logs();
    let eh = EventHubsEmulator::start();
    let mut cfg = eh.client_config();
    // The system trust store does not know the emulator's CA.
    cfg.remove("ssl.ca.location");
    let text = wait_for_error(&cfg, RDKafkaErrorCode::SSL, Duration::from_secs(30));
    assert!(text.contains("certificate verify failed"), "{text}");
}

#[test]
fn requests_over_the_size_limit_close_the_connection() {
    init_logs();
    let eh = EventHubsEmulator::start();
    let cfg = eh.client_config();
    kafka::create_topic(&cfg, "big", 1);
    let producer: FutureProducer = cfg
        .clone()
        // librdkafka would refuse the large record itself with its 1 MB default.
        .set("message.max.bytes", "4000000")
        .set("batch.size", "4000000")
        .set("linger.ms", "0")
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer");
    let send = |size: usize, key: &str| -> Result<(), KafkaError> {
        let payload = vec![b'x'; size];
        let size_header = size.to_string();
        let headers = OwnedHeaders::new().insert(Header {
            key: "size",
            value: Some(&size_header),
        });
        let record = FutureRecord::to("big")
            .key(key)
            .payload(&payload)
            .headers(headers);
        block_on(producer.send(record, Timeout::Never))
            .map(|_| ())
            .map_err(|(e, _)| e)
    };

    let small = send(900 * 1024, "small");
    assert!(small.is_ok(), "a 900 KiB record is delivered: {small:?}");
    let started = Instant::now();
    let large = send(1_200_000, "large");
    let error = large.expect_err("a 1.2 MB record must not be delivered");
    println!(
        "1.2 MB record failed after {:?}: {error}",
        started.elapsed()
    );
    assert_eq!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageTimedOut),
        "{error}"
    );
    producer.flush(Duration::from_secs(5)).expect("flush");

    let records = kafka::read_all(&cfg, "big", 1, Duration::from_secs(30));
    let keys: Vec<_> = records.iter().map(|r| r.key.clone()).collect();
    assert_eq!(
        keys,
        vec![Some(b"small".to_vec())],
        "only the small record arrived"
    );
    assert_eq!(records[0].value.as_ref().map(Vec::len), Some(900 * 1024));
}

/// Like Event Hubs, asking for a topic by name creates nothing unless the request allows it:
/// a consumer (librdkafka consumers never allow it) gets "unknown topic" for a missing topic,
/// which still does not exist afterwards, and the metadata of an existing one as usual.
#[test]
fn metadata_naming_a_missing_topic_does_not_create_it() {
    init_logs();
    let eh = EventHubsEmulator::start();
    let cfg = eh.client_config();
    kafka::create_topic(&cfg, "present", 3);
    let consumer: BaseConsumer = cfg
        .clone()
        .set("group.id", "md")
        .create()
        .expect("consumer");
    let timeout = Duration::from_secs(10);
    for _ in 0..3 {
        let md = consumer
            .fetch_metadata(Some("missing"), timeout)
            .expect("metadata");
        let t = md.topics().first().expect("an answer for the topic");
        assert_eq!(
            (t.name(), t.error().map(RDKafkaErrorCode::from)),
            ("missing", Some(RDKafkaErrorCode::UnknownTopicOrPartition))
        );
    }
    let md = consumer
        .fetch_metadata(Some("present"), timeout)
        .expect("metadata");
    let t = md.topics().first().expect("an answer for the topic");
    assert_eq!(
        (t.name(), t.error(), t.partitions().len()),
        ("present", None, 3)
    );
    // Listing all topics is relayed as it is: the broker's own list.
    let names = kafka::topic_names(&cfg);
    assert!(names.iter().any(|n| n == "present"), "{names:?}");
    assert!(!names.iter().any(|n| n == "missing"), "created: {names:?}");
}

#[test]
fn refused_create_topics_gets_policy_violation() {
    init_logs();
    let eh = EventHubsEmulator::start_with(true);
    let admin: AdminClient<DefaultClientContext> = eh.client_config().create().expect("admin");
    let created = block_on(admin.create_topics(
        [&NewTopic::new("refused", 1, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ))
    .expect("create_topics answered");
    assert_eq!(
        created,
        vec![Err((
            "refused".to_string(),
            RDKafkaErrorCode::PolicyViolation
        ))]
    );
    // Nothing reached the broker. (Clients of the broker's own listener are redirected to the
    // emulator by the advertised address, so ask through the emulator.)
    let consumer: BaseConsumer = eh.client_config().create().expect("consumer");
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    assert!(
        md.topics().iter().all(|t| t.name() != "refused"),
        "the refused topic does not exist on the broker"
    );
}
