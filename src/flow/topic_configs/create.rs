//! Creating a remote topic with its source topic's settings. A target that refuses some of
//! them at creation (INVALID_CONFIG or POLICY_VIOLATION; Event Hubs takes only a few) gets the
//! topic without the refused ones: each config is tried alone in a validate-only request to
//! learn which, and if the target still refuses, the topic is created bare. Refused configs
//! are reported once (see [`ConfigSync`]).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;

use super::select::Settings;
use super::ConfigSync;
use crate::cluster::alter_configs::ConfigOp;
use crate::cluster::ClusterContext;

/// How long one CreateTopics request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates `remote` (the copy of source topic `topic`) with `partitions` partitions on
/// cluster `target`, with the source's settings when `sync` is given. An existing topic is
/// fine. The error is a complete sentence naming the topic and the cluster.
pub async fn create(
    admin: &AdminClient<ClusterContext>,
    sync: Option<&ConfigSync>,
    (topic, remote): (&str, &str),
    partitions: i32,
    target: &str,
) -> Result<(), String> {
    let configs = match sync {
        None => Settings::new(),
        Some(s) => match s.desired(&[topic.to_string()]).await {
            Ok(mut d) => d.remove(topic).unwrap_or_default(),
            Err(e) => {
                tracing::warn!(topic = remote, cluster = %target, "creating the topic without its source's configs (they follow on a later refresh): {e}");
                Settings::new()
            }
        },
    };
    let fail = |code: RDKafkaErrorCode| {
        format!(
            "cannot create target topic '{remote}' on cluster '{target}': {code}; \
             create it with {partitions} partitions or allow topic creation"
        )
    };
    let mut accepted = configs.clone();
    let mut refused = Settings::new();
    let created = match try_create(admin, (remote, target), partitions, &accepted, false).await? {
        Ok(created) => created,
        Err(code) if refuses_config(code) && !configs.is_empty() => {
            for (k, v) in &configs {
                let alone = Settings::from([(k.clone(), v.clone())]);
                if let Ok(Err(c)) =
                    try_create(admin, (remote, target), partitions, &alone, true).await
                {
                    if refuses_config(c) {
                        refused.insert(k.clone(), v.clone());
                    }
                }
            }
            accepted.retain(|k, _| !refused.contains_key(k));
            let again = try_create(admin, (remote, target), partitions, &accepted, false).await?;
            match again {
                Ok(created) => created,
                Err(code) if !refuses_config(code) || accepted.is_empty() => {
                    return Err(fail(code))
                }
                Err(_) => {
                    refused.extend(std::mem::take(&mut accepted));
                    try_create(admin, (remote, target), partitions, &accepted, false)
                        .await?
                        .map_err(fail)?
                }
            }
        }
        Err(code) => return Err(fail(code)),
    };
    if !created {
        // Another instance (or someone else) created it first: its configs are theirs.
        return Ok(());
    }
    let names: Vec<&str> = accepted.keys().map(String::as_str).collect();
    tracing::info!(topic = remote, cluster = %target, partitions, configs = %names.join(","), "created target topic");
    if let Some(s) = sync {
        s.synced(topic, accepted.len() as u64);
        s.lock().copied.insert(topic.to_string(), configs.clone());
        for (k, v) in refused {
            s.refused(
                topic,
                remote,
                ConfigOp::Set(k, v),
                "refused when the topic was created (INVALID_CONFIG or POLICY_VIOLATION)",
            );
        }
    }
    Ok(())
}

/// Whether a CreateTopics error is about the topic's configs.
fn refuses_config(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::InvalidConfig | RDKafkaErrorCode::PolicyViolation
    )
}

/// One CreateTopics request. Outer error: the request failed as a whole (a sentence); inner:
/// the broker's answer for the topic: `Ok(true)` created (or would be, validate-only),
/// `Ok(false)` it exists already.
async fn try_create(
    admin: &AdminClient<ClusterContext>,
    (remote, target): (&str, &str),
    partitions: i32,
    configs: &Settings,
    validate_only: bool,
) -> Result<Result<bool, RDKafkaErrorCode>, String> {
    let mut new = NewTopic::new(remote, partitions, TopicReplication::Fixed(-1));
    for (k, v) in configs {
        new = new.set(k, v);
    }
    let opts = AdminOptions::new()
        .operation_timeout(Some(REQUEST_TIMEOUT))
        .validate_only(validate_only);
    let results = admin
        .create_topics([&new], &opts)
        .await
        .map_err(|e| format!("cannot create target topic '{remote}' on cluster '{target}': {e}"))?;
    let mut created = true;
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => created = false,
            Err((_, code)) => return Ok(Err(code)),
        }
    }
    Ok(Ok(created))
}
