//! Topic discovery for one flow: which source topics it replicates now and whether their remote
//! topics exist on the target (creating them when allowed). A topic whose remote topic can take
//! it becomes a [`Route`]; the consume loop subscribes the flow's group to the routed topics, and
//! the group coordinator shares their partitions out among the instances. A topic that cannot be
//! served (target missing, fewer partitions) is reported once and retried on every refresh; the
//! other topics keep flowing. [`discover`] is the task that refreshes, for one run of the flow.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::consumer::Consumer;
use rdkafka::metadata::Metadata;
use rdkafka::producer::Producer;
use tokio::sync::mpsc;

use super::group::FlowConsumer;
use super::route::Route;
use super::topic_configs::ConfigSync;
use super::FlowError;
use crate::cluster::ClusterContext;
use crate::metrics::Metrics;
use crate::naming::Naming;
use crate::shutdown::CancellationToken;
use crate::status::{FlowState, FlowStatus};
use crate::store::{PartitionKey, Store};
use crate::topology::Flow;

/// How long one metadata or offsets request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The clients discovery talks through.
pub struct DiscoveryClients {
    /// The flow's source consumer (metadata, log start offsets).
    pub consumer: Arc<FlowConsumer>,
    /// The target's producer (target metadata).
    pub producer: super::FlowProducer,
    /// The target's admin client (topic creation).
    pub admin: Arc<AdminClient<ClusterContext>>,
}

/// Discovery state of one flow.
pub struct Discovery {
    flow: Flow,
    naming: Naming,
    create_topics: bool,
    /// Whether heartbeats topics are copied (off when the target has `heartbeats: false`).
    heartbeats_to_target: bool,
    clients: DiscoveryClients,
    metrics: Arc<Metrics>,
    /// Source topics already routed, with their partition count.
    routed: HashMap<String, i32>,
    /// Source topics that cannot be served now, with the reason last logged.
    blocked: HashMap<String, String>,
    /// Topic config sync, when `replication.sync_topic_configs` is on.
    configs: Option<Arc<ConfigSync>>,
}

impl Discovery {
    /// Discovery for `flow`.
    pub fn new(
        flow: Flow,
        naming: Naming,
        create_topics: bool,
        heartbeats_to_target: bool,
        clients: DiscoveryClients,
        metrics: Arc<Metrics>,
    ) -> Self {
        Discovery {
            flow,
            naming,
            create_topics,
            heartbeats_to_target,
            clients,
            metrics,
            routed: HashMap::new(),
            blocked: HashMap::new(),
            configs: None,
        }
    }

    /// Copies the source topics' configs onto their remote topics (at creation and in
    /// [`Discovery::sync_configs`]).
    pub fn with_config_sync(mut self, sync: Arc<ConfigSync>) -> Self {
        self.configs = Some(sync);
        self
    }

    /// Syncs the configs of the routed topics whose partition 0 this instance owns (so that
    /// with several instances each topic is synced by one).
    pub async fn sync_configs(&self, status: &FlowStatus) {
        let Some(sync) = &self.configs else { return };
        let mut topics: Vec<(String, String)> = (self.routed.keys())
            .filter(|t| status.owns(t, 0))
            .map(|t| (t.clone(), self.naming.remote_topic(&self.flow.source, t)))
            .collect();
        topics.sort();
        sync.sync(&topics).await;
    }

    /// Looks at both clusters once and returns the routes that are new or changed (partitions
    /// added).
    pub async fn refresh(&mut self) -> Result<Vec<Arc<Route>>, FlowError> {
        let source_md = self.source_metadata().await?;
        let mut wanted: Vec<(String, i32)> = source_md
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .filter(|t| {
                let hb = self.heartbeats_to_target;
                self.naming.flow_copies(&self.flow, t.name(), hb)
            })
            .map(|t| (t.name().to_string(), t.partitions().len() as i32))
            .filter(|(name, n)| self.routed.get(name) != Some(n))
            .collect();
        wanted.sort();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }

        let target_md = self.target_metadata().await?;
        let mut out = Vec::new();
        for (topic, partitions) in wanted {
            let remote = self.naming.remote_topic(&self.flow.source, &topic);
            match self
                .ensure_target(&target_md, (&topic, &remote), partitions)
                .await
            {
                Ok(()) => {
                    if let Some(reason) = self.blocked.remove(&topic) {
                        tracing::info!(flow = %self.flow.name(), topic, remote, "topic recovered (was: {reason})");
                    }
                    let route = Arc::new(Route::new(
                        &self.metrics,
                        &self.flow.source,
                        &self.flow.target,
                        &topic,
                        &remote,
                        partitions,
                        self.naming.is_heartbeats(&topic),
                    ));
                    self.routed.insert(topic, partitions);
                    out.push(route);
                }
                Err(reason) => {
                    if self.blocked.get(&topic) != Some(&reason) {
                        tracing::error!(flow = %self.flow.name(), topic, "{reason}; the flow's other topics keep flowing, retrying on the next refresh");
                        self.metrics
                            .errors
                            .with_label_values(&[
                                &self.flow.source,
                                &self.flow.target,
                                "target_topic",
                            ])
                            .inc();
                        self.blocked.insert(topic, reason);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Drops the store's segments that lie wholly below each routed partition's log start on
    /// the source (retention deleted those records; no group can be positioned there).
    /// Returns how many segments went.
    pub async fn prune(&self, store: &Store) -> Result<usize, FlowError> {
        let routed: Vec<(String, i32)> = self.routed.iter().map(|(t, n)| (t.clone(), *n)).collect();
        let consumer = self.clients.consumer.clone();
        let starts = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for (topic, partitions) in routed {
                for p in 0..partitions {
                    let (low, _) = consumer.fetch_watermarks(&topic, p, REQUEST_TIMEOUT)?;
                    out.push((topic.clone(), p, low));
                }
            }
            Ok::<_, rdkafka::error::KafkaError>(out)
        })
        .await
        .map_err(FlowError::join)?
        .map_err(|e| FlowError::Source {
            what: "reading log start offsets".into(),
            source: e,
        })?;
        let mut pruned = 0;
        for (topic, partition, low) in starts {
            let key = PartitionKey::new(&self.flow.source, &self.flow.target, &topic, partition);
            pruned += store.prune(&key, low)?;
        }
        Ok(pruned)
    }

    /// Checks (or creates) `remote` on the target with at least `partitions` partitions.
    /// The error is a complete sentence naming the topic and the cluster.
    async fn ensure_target(
        &self,
        md: &Metadata,
        (topic, remote): (&str, &str),
        partitions: i32,
    ) -> Result<(), String> {
        let target = &self.flow.target;
        if let Some(t) = md
            .topics()
            .iter()
            .find(|t| t.name() == remote && t.error().is_none())
        {
            let have = t.partitions().len() as i32;
            return if have >= partitions {
                Ok(())
            } else {
                let noun = if have == 1 { "partition" } else { "partitions" };
                Err(format!(
                    "target topic '{remote}' on cluster '{target}' has {have} {noun} but the source has {partitions}: \
                     refusing to re-partition; add partitions to '{remote}' on '{target}'"
                ))
            };
        }
        if !self.create_topics {
            return Err(format!(
                "target topic '{remote}' is missing on cluster '{target}' and replication.create_topics is false: \
                 create it with {partitions} partitions"
            ));
        }
        // topic config sync (issue 17): creation with the source's configs.
        super::topic_configs::create(
            &self.clients.admin,
            self.configs.as_deref(),
            (topic, remote),
            partitions,
            target,
        )
        .await
    }

    async fn source_metadata(&self) -> Result<Metadata, FlowError> {
        let consumer = self.clients.consumer.clone();
        tokio::task::spawn_blocking(move || consumer.fetch_metadata(None, REQUEST_TIMEOUT))
            .await
            .map_err(FlowError::join)?
            .map_err(|e| FlowError::Source {
                what: "listing topics".into(),
                source: e,
            })
    }

    async fn target_metadata(&self) -> Result<Metadata, FlowError> {
        let producer = self.clients.producer.clone();
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, REQUEST_TIMEOUT))
            .await
            .map_err(FlowError::join)?
            .map_err(|e| FlowError::Target {
                what: "listing topics".into(),
                source: e,
            })
    }
}

/// How long a flow's first topic listing waits for its heartbeats emitter to look for (or
/// create) `heartbeats`.
pub(super) const HEARTBEATS_WAIT: Duration = Duration::from_secs(5);

/// Lists topics every `interval` (sooner after a failure), forwards new partitions, and prunes
/// the store below the source's log start. Returns (and stops the run) only on an error no
/// retry fixes.
///
/// After a start the refreshes come sooner — 1 s, 2 s, 4 s, … apart until they reach
/// `interval` — so that topics other flows of this process create while starting (the remote
/// topics of a flow the other way) flow within seconds rather than one whole interval later.
pub(super) async fn discover(
    mut discovery: Discovery,
    (interval, looked): (Duration, Option<CancellationToken>),
    tx: mpsc::Sender<Vec<Arc<Route>>>,
    (status, store): (Arc<FlowStatus>, Store),
    token: CancellationToken,
) -> Result<(), FlowError> {
    if let Some(looked) = looked {
        tokio::select! {
            _ = token.cancelled() => return Ok(()),
            _ = looked.cancelled() => {}
            _ = tokio::time::sleep(HEARTBEATS_WAIT) => {}
        }
    }
    let mut backoff = Duration::from_millis(500);
    let mut settling = Duration::from_secs(1);
    loop {
        let wait = match discovery.refresh().await {
            Ok(routes) => {
                if !routes.is_empty() && tx.send(routes).await.is_err() {
                    return Ok(());
                }
                backoff = Duration::from_millis(500);
                if status.state() == FlowState::Starting {
                    status.set_state(FlowState::Running);
                }
                discovery.sync_configs(&status).await;
                match discovery.prune(&store).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::debug!("pruned {n} store segments below the source's log start")
                    }
                    Err(e) => tracing::debug!("pruning the store skipped this round: {e}"),
                }
                let wait = settling.min(interval);
                settling = settling.saturating_mul(2);
                wait
            }
            Err(e) if !e.is_transient() => {
                token.cancel();
                return Err(e);
            }
            Err(e) => {
                tracing::warn!("topic discovery failed, retrying in {backoff:?}: {e}");
                let wait = backoff;
                backoff = (backoff * 2).min(interval);
                wait
            }
        };
        tokio::select! {
            _ = token.cancelled() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
