//! Topic config sync (`replication.sync_topic_configs`): remote topics are created with their
//! source topic's own settings (see [`create`]), and on every topic refresh the changes on the
//! source are applied to the remote topic with IncrementalAlterConfigs ([`ConfigSync::sync`]),
//! by the one instance that owns partition 0 of the source topic in the flow's group.
//!
//! Copied: the configs set on the source topic itself, neither read-only nor sensitive, minus
//! `topic_configs_exclude` (MirrorMaker 2's default exclusions always apply) — see
//! [`select`]. A config copied before that the source no longer sets is deleted on the remote
//! topic; configs set there by someone else are left alone. A config the target refuses
//! (Event Hubs takes `cleanup.policy` and `retention.ms` at creation only and has no
//! AlterConfigs) is reported once per topic and config and skipped until its value on the
//! source changes; the others keep syncing and the records keep flowing.

mod create;
pub mod select;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigEntry, OwnedResourceSpecifier, ResourceSpecifier,
};
use regex::Regex;

use crate::cluster::alter_configs::{self, ConfigOp};
use crate::cluster::ClusterContext;
use crate::metrics::Metrics;

pub use create::create;
use select::Settings;

/// How long one DescribeConfigs or IncrementalAlterConfigs request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Config sync of one flow; shared by the flow's runs, so a refusal is reported once per
/// process.
pub struct ConfigSync {
    source: String,
    target: String,
    exclude: Vec<Regex>,
    source_admin: Arc<AdminClient<ClusterContext>>,
    target_admin: Arc<AdminClient<ClusterContext>>,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Per source topic: the settings last copied (or found in line) on its remote topic.
    copied: HashMap<String, Settings>,
    /// (source topic, config) → the change the target refused; not retried until the
    /// source's value differs.
    refused: HashMap<(String, String), ConfigOp>,
    /// (source topic, config) already reported as refused.
    reported: HashSet<(String, String)>,
}

impl ConfigSync {
    /// Config sync from `source` to `target` (aliases), leaving out configs matching `exclude`.
    pub fn new(
        (source, target): (&str, &str),
        exclude: Vec<Regex>,
        (source_admin, target_admin): (
            Arc<AdminClient<ClusterContext>>,
            Arc<AdminClient<ClusterContext>>,
        ),
        metrics: Arc<Metrics>,
    ) -> Self {
        ConfigSync {
            source: source.to_string(),
            target: target.to_string(),
            exclude,
            source_admin,
            target_admin,
            metrics,
            state: Mutex::new(State::default()),
        }
    }

    /// The settings of each source topic that are copied (exclusions applied).
    pub async fn desired(&self, topics: &[String]) -> Result<HashMap<String, Settings>, String> {
        let described = describe(&self.source_admin, topics).await?;
        Ok(described
            .into_iter()
            .map(|(t, entries)| {
                let s = select::without_excluded(select::topic_settings(&entries), &self.exclude);
                (t, s)
            })
            .collect())
    }

    /// Brings each remote topic of `topics` (source topic, remote topic) in line with its
    /// source. Failures to describe are logged at debug level and retried next refresh.
    pub async fn sync(&self, topics: &[(String, String)]) {
        if topics.is_empty() {
            return;
        }
        let sources: Vec<String> = topics.iter().map(|(t, _)| t.clone()).collect();
        let remotes: Vec<String> = topics.iter().map(|(_, r)| r.clone()).collect();
        let desired = match self.desired(&sources).await {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(cluster = %self.source, "topic config sync skipped this round: {e}");
                return;
            }
        };
        let current = match describe(&self.target_admin, &remotes).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(cluster = %self.target, "topic config sync skipped this round: {e}");
                return;
            }
        };
        for (topic, remote) in topics {
            let (Some(want), Some(have)) = (desired.get(topic), current.get(remote)) else {
                continue;
            };
            let ops = {
                let state = self.lock();
                let ops = select::changes(
                    want,
                    state.copied.get(topic),
                    &select::all_values(have),
                    &select::topic_settings(have),
                );
                // Not retried while the source still asks for what was refused.
                ops.into_iter()
                    .filter(|op| {
                        state.refused.get(&(topic.clone(), op.name().to_string())) != Some(op)
                    })
                    .collect::<Vec<_>>()
            };
            for op in ops {
                self.apply(topic, remote, op).await;
            }
            self.lock().copied.insert(topic.clone(), want.clone());
        }
    }

    /// Applies one change (one request per config, so that a refusal names its config).
    async fn apply(&self, topic: &str, remote: &str, op: ConfigOp) {
        let admin = self.target_admin.clone();
        let (r, o) = (remote.to_string(), op.clone());
        let result = tokio::task::spawn_blocking(move || {
            alter_configs::incremental_alter_topic(&admin, &r, &[o], REQUEST_TIMEOUT)
        })
        .await;
        match result {
            Ok(Ok(())) => {
                self.synced(topic, 1);
                match &op {
                    ConfigOp::Set(n, v) => {
                        tracing::info!(cluster = %self.target, topic = remote, config = %n, value = %v, "set topic config to match the source")
                    }
                    ConfigOp::Delete(n) => {
                        tracing::info!(cluster = %self.target, topic = remote, config = %n, "deleted topic config (back to default on the source)")
                    }
                }
            }
            Ok(Err(e)) => self.refused(topic, remote, op, &e.to_string()),
            Err(e) => tracing::debug!("topic config change not applied: {e}"),
        }
    }

    /// Counts configs copied onto `topic`'s remote topic.
    fn synced(&self, topic: &str, n: u64) {
        self.metrics
            .topic_configs_synced
            .with_label_values(&[&self.source, &self.target, topic])
            .inc_by(n);
    }

    /// Records a refused change; the first refusal of a (topic, config) is logged and counted.
    fn refused(&self, topic: &str, remote: &str, op: ConfigOp, why: &str) {
        let name = op.name().to_string();
        let key = (topic.to_string(), name.clone());
        let first = {
            let mut state = self.lock();
            state.refused.insert(key.clone(), op.clone());
            state.reported.insert(key)
        };
        if !first {
            tracing::debug!(cluster = %self.target, topic = remote, config = %name, "topic config refused again: {why}");
            return;
        }
        self.metrics
            .topic_configs_refused
            .with_label_values(&[&self.source, &self.target, topic])
            .inc();
        let what = match &op {
            ConfigOp::Set(n, v) => format!("`{n}={v}`"),
            ConfigOp::Delete(n) => format!("the deletion of `{n}`"),
        };
        tracing::warn!(
            cluster = %self.target, topic = remote, config = %name,
            "cluster '{}' refused topic config {what} on topic '{remote}': {why}; set it on '{remote}' \
             yourself (on Event Hubs: at creation, or in the Azure portal/ARM) or add `{name}` to \
             replication.topic_configs_exclude; the topic's other configs keep syncing and its records keep flowing",
            self.target
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// DescribeConfigs for `topics` on one cluster: topic → entries (topics the broker could not
/// describe are left out).
async fn describe(
    admin: &AdminClient<ClusterContext>,
    topics: &[String],
) -> Result<HashMap<String, Vec<ConfigEntry>>, String> {
    let specs: Vec<ResourceSpecifier<'_>> =
        topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let opts = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT));
    let results = admin
        .describe_configs(&specs, &opts)
        .await
        .map_err(|e| format!("describing topic configs: {e}"))?;
    Ok(results
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|r| match r.specifier {
            OwnedResourceSpecifier::Topic(t) => Some((t, r.entries)),
            _ => None,
        })
        .collect())
}
