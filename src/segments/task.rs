//! The segments work of one flow S→T in the daemon: the publisher every [`PUBLISH_INTERVAL`],
//! and the follower on a thread of its own.
//!
//! Stopping: the follower stops with the shutdown token. The publisher stops publishing then,
//! waits for `flows_done` (the daemon cancels it once every flow has drained and recorded its
//! last batches) and publishes one last time, within [`FINAL_ROUND`]. Whatever is still
//! unpublished after a crash is published by this instance's next start (the marks are in
//! its store), and the partition's next owner records the copies it finds past the committed
//! offset itself.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use tokio::time::MissedTickBehavior;

use super::{follow, Merger, Publisher, SegmentsError, PUBLISH_INTERVAL};
use crate::cluster::ClusterContext;
use crate::metrics::Metrics;
use crate::naming::Naming;
use crate::shutdown::CancellationToken;
use crate::status::FlowStatus;
use crate::store::Store;
use crate::topology::Flow;

/// How long the last publication at shutdown may take.
pub const FINAL_ROUND: Duration = Duration::from_secs(3);

/// What the segments work of one flow uses.
pub struct SegmentsSetup {
    /// The flow.
    pub flow: Flow,
    /// Remote topic names (a publication names the remote topic its offsets are in).
    pub naming: Naming,
    /// This instance's name (in every publication, for logs).
    pub instance: String,
    /// The store: what to publish, where to merge.
    pub store: Store,
    /// T's shared producer: writes the publications.
    pub producer: FutureProducer<ClusterContext>,
    /// T's shared admin client: creates the segments topic.
    pub admin: Arc<AdminClient<ClusterContext>>,
    /// Connection settings of T (`cluster::client_config`), for the follower.
    pub target_config: ClientConfig,
    /// `replication.create_topics`: create the segments topic on T when it is missing.
    pub create_topics: bool,
    /// The flow's status: which partitions this instance owns.
    pub status: Arc<FlowStatus>,
    /// Where counts go.
    pub metrics: Arc<Metrics>,
}

/// Runs the flow's publisher and follower until `shutdown`, then publishes once more after
/// `flows_done` (see the module documentation).
pub async fn run(setup: SegmentsSetup, shutdown: CancellationToken, flows_done: CancellationToken) {
    let mut config = setup.target_config.clone();
    crate::cluster::drop_producer_settings(&mut config);
    let merger = Merger::new(
        &setup.flow.source,
        &setup.flow.target,
        setup.naming.clone(),
        setup.store.clone(),
        Some(setup.metrics.clone()),
    );
    let stop = shutdown.clone();
    let follower = tokio::task::spawn_blocking(move || follow(config, merger, stop));
    let mut p = Rounds {
        publisher: Publisher::new(&setup),
        setup,
        problems: HashMap::new(),
    };
    tracing::info!(flow = %p.setup.flow.name(), topic = %p.publisher.topic(),
        "publishing this instance's segments every {} and reading every instance's",
        humantime::format_duration(PUBLISH_INTERVAL));
    let mut ticker = tokio::time::interval(PUBLISH_INTERVAL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = p.round() => {}
        }
    }
    flows_done.cancelled().await;
    if tokio::time::timeout(FINAL_ROUND, p.round()).await.is_err() {
        tracing::warn!(flow = %p.setup.flow.name(),
            "the last segments were not published within {FINAL_ROUND:?}; this instance \
             publishes them when it starts again");
    }
    let _ = follower.await;
}

/// The publisher and its problem log.
struct Rounds {
    setup: SegmentsSetup,
    publisher: Publisher,
    /// Ongoing problems by kind: the message logged when the episode began.
    problems: HashMap<&'static str, String>,
}

impl Rounds {
    async fn round(&mut self) {
        let (s, t) = (&self.setup.flow.source, &self.setup.flow.target);
        match self.publisher.round().await {
            Ok(n) => {
                if n > 0 {
                    self.setup
                        .metrics
                        .segments_published
                        .with_label_values(&[s.as_str(), t.as_str()])
                        .inc_by(n as u64);
                }
                for (kind, was) in self.problems.drain() {
                    tracing::info!(flow = %self.setup.flow.name(), kind,
                        "publishing segments works again (was: {was})");
                }
            }
            Err(e) => {
                let kind = match &e {
                    SegmentsError::Topic(_) => "segments_topic",
                    SegmentsError::Store(_) => "segments_store",
                    _ => "segments_delivery",
                };
                self.setup
                    .metrics
                    .errors
                    .with_label_values(&[s.as_str(), t.as_str(), kind])
                    .inc();
                if let Entry::Vacant(v) = self.problems.entry(kind) {
                    tracing::error!(flow = %self.setup.flow.name(),
                        "cannot publish segments: {e}; retrying every {} (logged once until it \
                         works again)", humantime::format_duration(PUBLISH_INTERVAL));
                    v.insert(e.to_string());
                }
            }
        }
    }
}
