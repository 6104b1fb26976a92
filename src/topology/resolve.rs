//! [`RawTopology`] → [`Topology`]: defaults, semantic checks (aliases, regexes, durations,
//! exactly-one-of), secret files. Every error points at the key or value it is about.

use std::net::SocketAddr;
use std::time::Duration;

use regex::Regex;

use super::clusters::cluster;
use super::ctx::Ctx;
use super::error::TopologyError;
use super::locate::{child, item};
use super::model::{
    Flow, Metrics, OnDataLoss, Oversize, Policy, Replication, StartFrom, Store, Topology,
    DEFAULT_TOPIC_CONFIGS_EXCLUDE,
};
use super::raw::{RawFlow, RawReplication, RawTopology};
use super::start_from;

/// Resolves the whole raw topology.
pub(crate) fn resolve(raw: RawTopology, ctx: &Ctx<'_>) -> Result<Topology, TopologyError> {
    if raw.clusters.is_empty() {
        return Err(ctx.invalid_key(
            "clusters",
            "`clusters` is empty: define at least one cluster by alias".to_string(),
        ));
    }
    let mut clusters = std::collections::BTreeMap::new();
    for (alias, rc) in raw.clusters {
        let c = cluster(&alias, rc, ctx)?;
        clusters.insert(alias, c);
    }
    if raw.flows.is_empty() {
        return Err(ctx.invalid_key(
            "flows",
            "`flows` is empty: add at least one `- source: A  target: B  topics: [...]`"
                .to_string(),
        ));
    }
    let name = deployment_name(raw.name.as_deref(), ctx)?;
    let known: Vec<&str> = clusters.keys().map(String::as_str).collect();
    let mut flows: Vec<Flow> = Vec::new();
    for (i, rf) in raw.flows.into_iter().enumerate() {
        let mut f = flow(&item("flows", i), rf, &known, ctx)?;
        f.group = flow_group(name.as_deref(), &f.source, &f.target);
        if let Some(j) = flows
            .iter()
            .position(|g| g.source == f.source && g.target == f.target)
        {
            return Err(ctx.invalid_key(
                &item("flows", i),
                format!(
                    "flows[{i}] repeats {} → {} (flows[{j}]); merge their topic lists into one flow",
                    f.source, f.target
                ),
            ));
        }
        flows.push(f);
    }
    Ok(Topology {
        file: ctx.file.to_path_buf(),
        name,
        clusters,
        flows,
        replication: replication(&raw.replication, ctx)?,
        store: Store {
            path: ctx.file_path(raw.store.path.as_deref().unwrap_or("./hubmirror-data")),
        },
        metrics: Metrics {
            listen: listen(raw.metrics.listen.as_deref(), ctx)?,
        },
    })
}

fn flow(p: &str, raw: RawFlow, known: &[&str], ctx: &Ctx<'_>) -> Result<Flow, TopologyError> {
    let alias = |key: &str, v: Option<String>| -> Result<String, TopologyError> {
        let path = child(p, key);
        let v = v.ok_or_else(|| TopologyError::MissingKey {
            at: ctx.loc(ctx.index.key(p)),
            key: key.to_string(),
            parent: p.to_string(),
            hint: format!("; name one of the clusters: {}", known.join(", ")),
        })?;
        if !known.contains(&v.as_str()) {
            return Err(ctx.invalid_at(
                &path,
                format!(
                    "{path}: unknown cluster `{v}`; the clusters are: {}",
                    known.join(", ")
                ),
            ));
        }
        Ok(v)
    };
    let source = alias("source", raw.source)?;
    let target = alias("target", raw.target)?;
    if source == target {
        return Err(ctx.invalid_at(
            &child(p, "target"),
            format!(
                "{p}: source and target are both `{source}`; a flow copies between two clusters"
            ),
        ));
    }
    let topics_path = child(p, "topics");
    let topics = match raw.topics {
        None => {
            return Err(TopologyError::MissingKey {
                at: ctx.loc(ctx.index.key(p)),
                key: "topics".to_string(),
                parent: p.to_string(),
                hint: "; list the topic regexes to replicate, e.g. `topics: [\"orders\\\\..*\"]`"
                    .to_string(),
            })
        }
        Some(t) if t.is_empty() => {
            return Err(ctx.invalid_at(
                &topics_path,
                format!("{topics_path} is empty: list at least one topic regex (`.*` for all)"),
            ))
        }
        Some(t) => t,
    };
    let oversize = match raw
        .oversize
        .as_deref()
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("fail") => Oversize::Fail,
        Some("skip") => Oversize::Skip,
        Some("dead_letter") => Oversize::DeadLetter,
        Some(other) => {
            let path = child(p, "oversize");
            return Err(ctx.invalid_at(
                &path,
                format!("{path} `{other}` is not known; use `fail`, `skip` or `dead_letter`"),
            ));
        }
    };
    let dead_letter_topic = match raw.dead_letter_topic {
        Some(t) if oversize != Oversize::DeadLetter => {
            let path = child(p, "dead_letter_topic");
            return Err(ctx.invalid_at(
                &path,
                format!(
                    "{path} `{t}` is only used with `oversize: dead_letter`; set that, or remove \
                     the key"
                ),
            ));
        }
        Some(t) if !valid_topic_name(t.trim()) => {
            let path = child(p, "dead_letter_topic");
            return Err(ctx.invalid_at(
                &path,
                format!("{path} `{t}` is not a valid topic name (1-249 of a-z A-Z 0-9 . _ -)"),
            ));
        }
        Some(t) => t.trim().to_string(),
        None => format!("hubmirror.dead-letter.{target}.internal"),
    };
    let on_data_loss = match raw
        .on_data_loss
        .as_deref()
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("fail") => OnDataLoss::Fail,
        Some("continue") => OnDataLoss::Continue,
        Some(other) => {
            let path = child(p, "on_data_loss");
            return Err(ctx.invalid_at(
                &path,
                format!("{path} `{other}` is not known; use `fail` or `continue`"),
            ));
        }
    };
    let start_from = match raw.start_from.as_deref() {
        None => StartFrom::Earliest,
        Some(v) => start_from::parse(v).map_err(|why| {
            let path = child(p, "start_from");
            ctx.invalid_at(&path, format!("{path} {why}"))
        })?,
    };
    Ok(Flow {
        start_from,
        oversize,
        dead_letter_topic,
        on_data_loss,
        topics: ctx.regexes(&topics_path, &topics)?,
        topics_exclude: ctx.regexes(&child(p, "topics_exclude"), &raw.topics_exclude)?,
        groups: ctx.regexes(&child(p, "groups"), &raw.groups)?,
        groups_exclude: ctx.regexes(&child(p, "groups_exclude"), &raw.groups_exclude)?,
        group: String::new(),
        source,
        target,
    })
}

/// The consumer group a flow commits its progress in (see [`Flow::group`]).
fn flow_group(name: Option<&str>, source: &str, target: &str) -> String {
    match name {
        Some(n) => format!("hubmirror-{n}-{source}-{target}"),
        None => format!("hubmirror-{source}-{target}"),
    }
}

/// `name:`: `[a-z0-9][a-z0-9._-]*`, at most 64 characters (it becomes part of group ids).
fn deployment_name(v: Option<&str>, ctx: &Ctx<'_>) -> Result<Option<String>, TopologyError> {
    let Some(v) = v.map(str::trim) else {
        return Ok(None);
    };
    let valid = !v.is_empty()
        && v.len() <= 64
        && v.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if !valid {
        return Err(ctx.invalid_at(
            "name",
            format!(
                "name `{v}` is not a valid deployment name; use 1 to 64 characters of lower-case \
                 letters, digits, `.`, `_` and `-`, starting with a letter or digit, e.g. \
                 `prod` or `staging-eu`"
            ),
        ));
    }
    Ok(Some(v.to_string()))
}

fn replication(raw: &RawReplication, ctx: &Ctx<'_>) -> Result<Replication, TopologyError> {
    let p = |k: &str| child("replication", k);
    let policy = match raw
        .policy
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("default") => Policy::Default,
        Some("identity") => Policy::Identity,
        Some(other) => {
            return Err(ctx.invalid_at(
                &p("policy"),
                format!("replication.policy `{other}` is not known; use `default` or `identity`"),
            ))
        }
    };
    let separator = raw.separator.clone().unwrap_or_else(|| ".".to_string());
    if separator.is_empty()
        || !separator
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(ctx.invalid_at(
            &p("separator"),
            "replication.separator must be non-empty and use only letters, digits, `.`, `_`, `-` \
             (it becomes part of topic names)"
                .to_string(),
        ));
    }
    let positive = |key: &str, v: Option<&str>, default: Duration| {
        let d = ctx.duration(&p(key), v, default)?;
        if d.is_zero() {
            return Err(ctx.invalid_at(&p(key), format!("replication.{key} must be more than 0s")));
        }
        Ok(d)
    };
    Ok(Replication {
        policy,
        separator,
        create_topics: ctx.boolean(&p("create_topics"), raw.create_topics.as_deref(), true)?,
        refresh_topics_interval: positive(
            "refresh_topics_interval",
            raw.refresh_topics_interval.as_deref(),
            Duration::from_secs(30),
        )?,
        heartbeats_interval: ctx.duration(
            &p("heartbeats_interval"),
            raw.heartbeats_interval.as_deref(),
            Duration::from_secs(1),
        )?,
        checkpoints_interval: positive(
            "checkpoints_interval",
            raw.checkpoints_interval.as_deref(),
            Duration::from_secs(5),
        )?,
        sync_group_offsets: ctx.boolean(
            &p("sync_group_offsets"),
            raw.sync_group_offsets.as_deref(),
            false,
        )?,
        static_membership: ctx.boolean(
            &p("static_membership"),
            raw.static_membership.as_deref(),
            false,
        )?,
        sync_topic_configs: ctx.boolean(
            &p("sync_topic_configs"),
            raw.sync_topic_configs.as_deref(),
            true,
        )?,
        topic_configs_exclude: topic_configs_exclude(raw, ctx)?,
    })
}

/// MirrorMaker 2's default exclusions (exact names), then the file's regexes.
fn topic_configs_exclude(raw: &RawReplication, ctx: &Ctx<'_>) -> Result<Vec<Regex>, TopologyError> {
    let defaults = DEFAULT_TOPIC_CONFIGS_EXCLUDE
        .iter()
        .map(|name| regex::escape(name))
        .collect::<Vec<_>>();
    let mut out = ctx.regexes("replication.topic_configs_exclude", &defaults)?;
    out.extend(ctx.regexes(
        "replication.topic_configs_exclude",
        &raw.topic_configs_exclude,
    )?);
    Ok(out)
}

fn listen(v: Option<&str>, ctx: &Ctx<'_>) -> Result<SocketAddr, TopologyError> {
    let v = v.unwrap_or("127.0.0.1:9464").trim();
    v.parse().map_err(|_| {
        ctx.invalid_at(
            "metrics.listen",
            format!(
                "metrics.listen `{v}` is not an IP address and port; write e.g. `127.0.0.1:9464`, \
                 `0.0.0.0:9464` or `[::1]:9464`"
            ),
        )
    })
}

/// Kafka's topic-name rule: 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn valid_topic_name(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 249
        && t != "."
        && t != ".."
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}
