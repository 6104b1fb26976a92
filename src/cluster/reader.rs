//! The client context of hubmirror's short-lived readers, and how they are created.

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::context::strip_thread;

/// The context of short-lived readers that read a topic to its end (`enable.partition.eof`):
/// end-of-partition is how they know they are done, not an error worth a log line. Also the
/// context of the other short-lived clients of the inspection commands: librdkafka's log lines
/// stay at debug level (rdkafka's default context would log them as `librdkafka: librdkafka:`).
#[derive(Clone, Copy, Default)]
pub struct ReaderContext;

impl ClientContext for ReaderContext {
    crate::cluster::oauth::entra_token_callback!();

    fn log(&self, _level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        tracing::debug!(fac, "librdkafka: {}", strip_thread(log_message));
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::PartitionEOF) => {}
            // What a short-lived reader fails at is reported by its caller, once, naming the
            // cluster; librdkafka repeats a transport error on every poll.
            _ => tracing::debug!("{reason}"),
        }
    }
}

impl ConsumerContext for ReaderContext {}

/// A consumer that reads topics from the beginning to their end and commits nothing: `config`
/// connects to the cluster; `group` is used unless `config` names one.
pub fn end_reader(
    mut config: rdkafka::ClientConfig,
    group: &str,
) -> Result<rdkafka::consumer::BaseConsumer<ReaderContext>, KafkaError> {
    if config.get("group.id").is_none() {
        config.set("group.id", group);
    }
    config
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest");
    super::oauth::create(&config, ReaderContext)
}
