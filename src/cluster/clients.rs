//! Building librdkafka clients for a cluster: [`super::client_config`] gives the connection
//! settings; this adds each role's defaults underneath the user's raw `client:` settings
//! (a key the user set is never overridden).

use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::ClientContext;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, ProducerContext, ThreadedProducer};
use rdkafka::ClientConfig;
use tokio::sync::mpsc;

use super::context::{ClusterContext, FatalClusterError, ReaderContext};
use super::stats::STATS_INTERVAL_MS;
use crate::topology::Cluster;

/// Producer settings tuned for replication: ordered, idempotent, acknowledged by all replicas,
/// with a bounded local queue so a slow target pushes back instead of growing memory.
const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("linger.ms", "5"),
    // 16 MiB of queued records at most; `send` reports QueueFull beyond that (a flow keeps
    // at most 65,536 records in flight anyway: see `flow::board`).
    ("queue.buffering.max.kbytes", "16384"),
    ("queue.buffering.max.messages", "100000"),
];

/// How long the group coordinator waits for a silent flow consumer before giving its partitions
/// to the other instances (librdkafka's default is 45 s; Kafka accepts 6 s and up by default).
/// A source's `client: {session.timeout.ms: ...}` overrides it.
pub const SESSION_TIMEOUT_MS: u64 = 10_000;

/// The session timeout of `source`'s flow consumers: the source's `client:` setting, else
/// Event Hubs' recommended 30 s on a namespace, else [`SESSION_TIMEOUT_MS`].
pub fn session_timeout(source: &Cluster) -> Duration {
    let event_hubs = source.event_hubs.is_some().then(|| {
        super::event_hubs_consumer_defaults()
            .iter()
            .find(|(k, _)| *k == "session.timeout.ms")
            .and_then(|(_, v)| v.parse::<u64>().ok())
    });
    let ms = source
        .client
        .get("session.timeout.ms")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .or(event_hubs.flatten())
        .unwrap_or(SESSION_TIMEOUT_MS);
    Duration::from_millis(ms)
}

/// Consumer settings: offsets are committed by the flow only after the target acknowledged.
const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("auto.offset.reset", "earliest"),
    ("enable.partition.eof", "false"),
    // librdkafka waits up to 500 ms for a fetch to fill; a replicator wants records promptly.
    ("fetch.wait.max.ms", "100"),
    ("isolation.level", "read_committed"),
];

/// The client context for `cluster`, reporting fatal errors to `fatal`.
pub fn context(
    cluster: &Cluster,
    fatal: mpsc::UnboundedSender<FatalClusterError>,
) -> ClusterContext {
    ClusterContext::new(&cluster.alias, super::secrets(cluster), fatal)
        .on_event_hubs(cluster.event_hubs.is_some())
}

/// A consumer for `cluster` in group `group_id`; partitions are assigned by the flow.
pub fn consumer(
    cluster: &Cluster,
    group_id: &str,
    ctx: ClusterContext,
) -> Result<StreamConsumer<ClusterContext>, KafkaError> {
    let mut cfg = super::client_config(cluster);
    super::drop_producer_settings(&mut cfg);
    consumer_from(cfg, cluster, group_id, ctx)
}

fn consumer_from<C: ConsumerContext + 'static>(
    mut cfg: ClientConfig,
    cluster: &Cluster,
    group_id: &str,
    ctx: C,
) -> Result<StreamConsumer<C>, KafkaError> {
    set_defaults(&mut cfg, &[("group.id", group_id)]);
    set_defaults(&mut cfg, CONSUMER_DEFAULTS);
    if cluster.event_hubs.is_some() {
        set_defaults(&mut cfg, super::event_hubs_consumer_defaults());
    }
    super::oauth::create(&cfg, ctx)
}

/// A flow's source consumer: [`consumer`] in the flow's group as instance `instance` (its
/// `client.id`; with `static_membership`, its `group.instance.id` too), with cooperative-sticky
/// assignment (the group coordinator shares the partitions out among the instances and moves as
/// few as possible), plus statistics every second (watermarks for the lag metric, response
/// progress for `/readyz`, proofs of membership).
pub fn flow_consumer<C: ConsumerContext + 'static>(
    cluster: &Cluster,
    group_id: &str,
    (instance, static_membership): (&str, bool),
    ctx: C,
) -> Result<StreamConsumer<C>, KafkaError> {
    let mut cfg = super::client_config(cluster);
    super::drop_producer_settings(&mut cfg);
    if static_membership {
        set_defaults(&mut cfg, &[("group.instance.id", instance)]);
    }
    let session = session_timeout(cluster).as_millis();
    // Also the rebalance timeout: how long the coordinator waits for every member to rejoin (a
    // member handing partitions over takes at most 10 s). Brokers that do not expire a dead
    // member while a rebalance waits for it (tansu) hold the group that long; librdkafka's
    // default is 5 minutes. librdkafka wants it at least the session timeout.
    let rebalance = session.max(30_000);
    set_defaults(
        &mut cfg,
        &[
            ("session.timeout.ms", &session.to_string()),
            ("max.poll.interval.ms", &rebalance.to_string()),
            ("client.id", instance),
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("heartbeat.interval.ms", "1000"),
            ("statistics.interval.ms", STATS_INTERVAL_MS),
            // Out of range (retention deleted what the flow had not copied yet) is an error the
            // flow handles by its `on_data_loss`, never a silent jump.
            ("auto.offset.reset", "error"),
            // Prefetch: librdkafka's defaults (100,000 records per partition, 64 MiB) can hold
            // hundreds of MB for many partitions; this keeps the target busy all the same...
            ("queued.min.messages", "20000"),
            ("queued.max.messages.kbytes", "32768"),
            // ...provided fetching resumes promptly once the queue is below those marks
            // (librdkafka's default waits 1 s, which halves throughput at these sizes).
            ("fetch.queue.backoff.ms", "10"),
            // A record reaches the target within a few ms of its arrival: a broker that looks at
            // an idle partition again only now and then within the max wait (tansu sleeps half
            // the remaining wait between looks) would otherwise add up to that much.
            ("fetch.wait.max.ms", "10"),
        ],
    );
    consumer_from(cfg, cluster, group_id, ctx)
}

/// A reader of `cluster`'s partitions from a given offset to their end, committing nothing
/// (a flow reads its target's tail with it before resuming).
pub fn tail_reader(cluster: &Cluster) -> Result<BaseConsumer<ReaderContext>, KafkaError> {
    let mut cfg = super::client_config(cluster);
    super::drop_producer_settings(&mut cfg);
    if cluster.event_hubs.is_some() {
        set_defaults(&mut cfg, super::event_hubs_consumer_defaults());
    }
    // Answer at once when there is nothing more: the end is what the reader waits for.
    set_defaults(&mut cfg, &[("fetch.wait.max.ms", "10")]);
    super::context::end_reader(cfg, "hubmirror-tail-reader")
}

/// A producer for `cluster` (heartbeats, checkpoints).
pub fn producer(
    cluster: &Cluster,
    ctx: ClusterContext,
) -> Result<FutureProducer<ClusterContext>, KafkaError> {
    producer_with(cluster, ctx, &[])
}

/// A flow's own target producer: [`producer`] that writes nothing after a batch that failed
/// for good (`enable.gapless.guarantee`), so that restarting the flow resumes in order, and
/// that gives a record up once it has waited `message_timeout` (librdkafka retries throttling,
/// timeouts and lost connections until then): a flow sets it to half its source's session
/// timeout. An instance stops handing records over once it has not heard from its group
/// coordinator for that long, so whatever it queued is written or dropped before the
/// coordinator can give its partitions to another instance (a session timeout after the last
/// word); and librdkafka times records out before sending them, so a process frozen past it
/// never sends what it queued before. Delivery reports go to `ctx`
/// (the flow's delivery board), on the producer's polling thread.
pub fn flow_producer<C: ProducerContext + 'static>(
    cluster: &Cluster,
    ctx: C,
    message_timeout: Duration,
) -> Result<ThreadedProducer<C>, KafkaError> {
    producer_with(
        cluster,
        ctx,
        &[
            (
                "message.timeout.ms",
                &message_timeout.as_millis().to_string(),
            ),
            ("enable.gapless.guarantee", "true"),
        ],
    )
}

/// A producer for a flow's dead-letter topic on `cluster` (the source): it takes records as
/// large as the source holds (`message.max.bytes` up to librdkafka's 1,000,000,000 maximum).
pub fn dead_letter_producer(
    cluster: &Cluster,
    ctx: ClusterContext,
) -> Result<FutureProducer<ClusterContext>, KafkaError> {
    producer_with(cluster, ctx, &[("message.max.bytes", "1000000000")])
}

/// A producer with `role` settings, the cluster's `compression`, then [`PRODUCER_DEFAULTS`],
/// each under the user's `client:` settings.
fn producer_with<C: ClientContext, P: FromClientConfigAndContext<C> + super::oauth::Native>(
    cluster: &Cluster,
    ctx: C,
    role: &[(&str, &str)],
) -> Result<P, KafkaError> {
    let mut cfg = super::client_config(cluster);
    set_defaults(&mut cfg, role);
    set_defaults(
        &mut cfg,
        &[("compression.type", cluster.compression.as_str())],
    );
    set_defaults(&mut cfg, PRODUCER_DEFAULTS);
    super::oauth::create(&cfg, ctx)
}

/// The largest record (key + value + headers) hubmirror's producer sends to `cluster`:
/// librdkafka's `message.max.bytes` (1,000,000 unless set under `client:`; Event Hubs takes
/// requests up to 1,046,528 bytes).
pub fn max_record_bytes(cluster: &Cluster) -> usize {
    cluster
        .client
        .get("message.max.bytes")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1_000_000)
}

/// An admin client for `cluster` (topic creation).
pub fn admin(
    cluster: &Cluster,
    ctx: ClusterContext,
) -> Result<AdminClient<ClusterContext>, KafkaError> {
    super::oauth::create(&super::client_config(cluster), ctx)
}

/// Sets each key that is not set yet.
fn set_defaults(cfg: &mut ClientConfig, defaults: &[(&str, &str)]) {
    for (k, v) in defaults {
        if cfg.get(k).is_none() {
            cfg.set(*k, *v);
        }
    }
}
