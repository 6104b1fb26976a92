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
use super::remote::{self, Remote};
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
    /// Source topics already routed: their partition count, and how many of them flow (fewer
    /// when the remote topic has fewer partitions).
    routed: HashMap<String, (i32, i32)>,
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
    /// added on either side). `status`: which source partitions this instance owns (the owner
    /// of partition 0 of a source topic adds partitions to its remote topic).
    pub async fn refresh(&mut self, status: &FlowStatus) -> Result<Vec<Arc<Route>>, FlowError> {
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
            // Routed whole: nothing to look at. Routed in part: the target may have grown.
            .filter(|(name, n)| self.routed.get(name) != Some(&(*n, *n)))
            .collect();
        wanted.sort();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }

        let target_md = self.target_metadata().await?;
        let (admin, target, flow) = (
            self.clients.admin.clone(),
            self.flow.target.clone(),
            self.flow.name(),
        );
        let configs = self.configs.clone();
        let remote_side = Remote {
            admin: &admin,
            target: &target,
            flow: &flow,
            configs: configs.as_deref(),
        };
        let mut out = Vec::new();
        for (topic, partitions) in wanted {
            let remote = self.naming.remote_topic(&self.flow.source, &topic);
            let have = target_md
                .topics()
                .iter()
                .find(|t| t.name() == remote && t.error().is_none())
                .map(|t| t.partitions().len() as i32);
            let routed_before = self
                .routed
                .get(&topic)
                .is_some_and(|(n, _)| *n == partitions);
            let grows = remote::may_grow(routed_before, status.owns(&topic, 0));
            let plan = remote::plan(have, partitions, self.create_topics, grows);
            let outcome = remote_side.apply(plan, (&topic, &remote), partitions).await;
            let served = self.report(&topic, &remote, outcome);
            let Some(writable) = served else { continue };
            if self.routed.get(&topic) == Some(&(partitions, writable)) {
                continue;
            }
            let mut route = Route::new(
                &self.metrics,
                &self.flow.source,
                &self.flow.target,
                &topic,
                &remote,
                partitions,
                self.naming.is_heartbeats(&topic),
            );
            route.writable = writable;
            self.routed.insert(topic, (partitions, writable));
            out.push(Arc::new(route));
        }
        Ok(out)
    }

    /// Logs what changed about `topic` (one line per new reason, one when it recovers); the
    /// number of its partitions that flow, `None` when none does.
    fn report(&mut self, topic: &str, remote: &str, outcome: remote::Outcome) -> Option<i32> {
        let flow = self.flow.name();
        let (writable, reason, loud) = match outcome {
            Ok(remote::Served { writable, short }) => match short {
                None => (Some(writable), None, false),
                Some(s) => (Some(writable), Some(s.reason), s.loud),
            },
            Err(reason) => (None, Some(reason), true),
        };
        match reason {
            None => {
                if let Some(was) = self.blocked.remove(topic) {
                    tracing::info!(flow = %flow, topic, remote, "topic recovered (was: {was})");
                }
            }
            // Quiet (another instance adds the partitions): not worth a line, nor replacing a
            // reason already logged (it would be logged again when it comes back).
            Some(reason) if !loud => tracing::debug!(flow = %flow, topic, "{reason}"),
            Some(reason) if self.blocked.get(topic) != Some(&reason) => {
                let rest = if writable.is_some() {
                    "retrying on the next refresh"
                } else {
                    "the flow's other topics keep flowing, retrying on the next refresh"
                };
                tracing::error!(flow = %flow, topic, "{reason}; {rest}");
                self.metrics
                    .errors
                    .with_label_values(&[&self.flow.source, &self.flow.target, "target_topic"])
                    .inc();
                self.blocked.insert(topic.to_string(), reason);
            }
            Some(_) => {}
        }
        writable
    }

    /// Drops the store's segments that lie wholly below each routed partition's log start on
    /// the source (retention deleted those records; no group can be positioned there).
    /// Returns how many segments went.
    pub async fn prune(&self, store: &Store) -> Result<usize, FlowError> {
        let routed: Vec<(String, i32)> = self
            .routed
            .iter()
            .map(|(t, (n, _))| (t.clone(), *n))
            .collect();
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
        let wait = match discovery.refresh(&status).await {
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
