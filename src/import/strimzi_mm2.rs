//! Strimzi `KafkaMirrorMaker2`: `spec.clusters[]` become clusters, each `spec.mirrors[]` a flow,
//! the connectors' `config` the `replication:` keys (or notes).

use std::collections::{BTreeMap, BTreeSet};

use super::common::{self, check_regexes, mm2_setting, regex_list, shown, Applied};
use super::model::{Flow, Imported};
use super::strimzi::{self, deployment_note, Ctx};
use super::yaml::Node;
use super::ImportError;

/// The connectors of a mirror.
const CONNECTORS: [&str; 3] = [
    "sourceConnector",
    "checkpointConnector",
    "heartbeatConnector",
];

/// The mirror keys read for topics and groups.
const PATTERNS: [&str; 6] = [
    "topicsPattern",
    "topicsExcludePattern",
    "topicsBlacklistPattern",
    "groupsPattern",
    "groupsExcludePattern",
    "groupsBlacklistPattern",
];

/// Imports the `spec` of a `KafkaMirrorMaker2` called `name`.
pub(crate) fn import(ctx: &Ctx, spec: &Node, name: &str) -> Result<Imported, ImportError> {
    let mut t = Imported {
        what: format!("KafkaMirrorMaker2 {name}"),
        ..Imported::default()
    };
    let fix = if spec.get("target").is_some() {
        "list the clusters as `clusters: [{alias, bootstrapServers, ...}]` with \
         mirrors[].sourceCluster/targetCluster (the kafka.strimzi.io/v1 layout with spec.target \
         is not read)"
    } else {
        "list the clusters: `clusters: [{alias: source, bootstrapServers: host:port}, ...]`"
    };
    let clusters = spec.require("clusters", fix)?;
    let mut aliases: BTreeMap<String, String> = BTreeMap::new();
    for item in clusters.items()? {
        let raw = item.req_str("alias", "name the cluster, e.g. `alias: source`")?;
        let alias = common::alias(raw);
        if aliases.values().any(|a| *a == alias) {
            return Err(item.require("alias", "")?.error(format!(
                "a second cluster named `{alias}`; give each cluster a distinct alias"
            )));
        }
        let mut c = strimzi::cluster(ctx, &item, &alias, &["alias"])?;
        if alias != raw {
            c.notes.push(format!(
                "alias {raw} is written {alias} (hubmirror aliases are [a-z][a-z0-9_-]*): under \
                 the default policy remote topics are named {alias}.<topic>, not {raw}.<topic>"
            ));
        }
        aliases.insert(raw.to_string(), alias);
        t.clusters.push(c);
    }
    if aliases.is_empty() {
        return Err(clusters.error("is empty; list at least two clusters"));
    }
    let mirrors = spec.require(
        "mirrors",
        "list the directions: `mirrors: [{sourceCluster: a, targetCluster: b, topicsPattern: ...}]`",
    )?;
    let items = mirrors.items()?;
    if items.is_empty() {
        return Err(mirrors.error("is empty; list at least one mirror"));
    }
    let mut beating: BTreeSet<String> = BTreeSet::new();
    for m in &items {
        let flow = mirror(&mut t, m, &aliases)?;
        if m.get("heartbeatConnector").is_some() {
            beating.insert(flow.source.clone());
        }
        t.flows.push(flow);
    }
    for f in &t.flows {
        if !beating.contains(&f.source) {
            if let Some(c) = t
                .clusters
                .iter_mut()
                .find(|c| c.alias == f.source && c.heartbeats.is_none())
            {
                c.heartbeats = Some(false);
                c.notes.push(
                    "heartbeats off: no mirror from this cluster has a heartbeatConnector"
                        .to_string(),
                );
            }
        }
    }
    for (key, n) in spec.entries()? {
        match key.as_str() {
            "clusters" | "mirrors" => {}
            "connectCluster" => t.notes.push(format!(
                "not carried over: {}: hubmirror needs no Kafka Connect cluster",
                shown(&n.path, &n.shown())
            )),
            _ => t.notes.push(deployment_note(&key, &n)),
        }
    }
    Ok(t)
}

/// One `spec.mirrors[]` entry → a flow; its connectors' settings go to `t.replication`.
fn mirror(
    t: &mut Imported,
    m: &Node,
    aliases: &BTreeMap<String, String>,
) -> Result<Flow, ImportError> {
    let known: Vec<&str> = aliases.keys().map(String::as_str).collect();
    let side = |key: &str| -> Result<String, ImportError> {
        let n = m.require(key, "name one of spec.clusters[].alias")?;
        let raw = n.str()?;
        aliases.get(raw).cloned().ok_or_else(|| {
            n.error(format!(
                "`{raw}` is not an alias of spec.clusters (aliases: {}); use one of them",
                known.join(", ")
            ))
        })
    };
    let mut flow = Flow {
        source: side("sourceCluster")?,
        target: side("targetCluster")?,
        ..Flow::default()
    };
    if flow.source == flow.target {
        return Err(m
            .require("targetCluster", "")?
            .error("is the sourceCluster; mirror between two clusters"));
    }
    let list = |key: &str| -> Result<Option<Vec<String>>, ImportError> {
        let Some(n) = m.get(key) else { return Ok(None) };
        let list = regex_list(n.str()?);
        check_regexes(&list).map_err(|e| n.error(e))?;
        Ok(Some(list))
    };
    flow.topics = list("topicsPattern")?.unwrap_or_else(|| {
        flow.notes
            .push("no topicsPattern: every topic, as MirrorMaker 2 does".to_string());
        vec![".*".to_string()]
    });
    let exclude = list("topicsExcludePattern")?.or(list("topicsBlacklistPattern")?);
    flow.topics_exclude = exclude.unwrap_or_else(|| {
        flow.notes
            .push("topics_exclude: MirrorMaker 2's default topics.exclude".to_string());
        common::MM2_TOPICS_EXCLUDE
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    if m.get("checkpointConnector").is_some() {
        flow.groups = list("groupsPattern")?.unwrap_or_else(|| vec![".*".to_string()]);
        let exclude = list("groupsExcludePattern")?.or(list("groupsBlacklistPattern")?);
        flow.groups_exclude = exclude.unwrap_or_else(|| {
            common::MM2_GROUPS_EXCLUDE
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
    } else {
        flow.notes
            .push("no checkpointConnector: no consumer groups are checkpointed".to_string());
    }
    for key in CONNECTORS {
        let Some(conn) = m.get(key) else { continue };
        connector(t, &mut flow, &conn)?;
    }
    for (key, n) in m.entries()? {
        let read = ["sourceCluster", "targetCluster"].contains(&key.as_str())
            || PATTERNS.contains(&key.as_str())
            || CONNECTORS.contains(&key.as_str());
        if !read {
            flow.notes.push(format!(
                "not carried over: {}: no hubmirror key for it",
                shown(&n.path, &n.shown())
            ));
        }
    }
    Ok(flow)
}

/// A connector's `tasksMax`, `config` and the rest.
fn connector(t: &mut Imported, flow: &mut Flow, conn: &Node) -> Result<(), ImportError> {
    for (key, n) in conn.entries()? {
        if key != "config" {
            let why = match key.as_str() {
                "tasksMax" => "hubmirror has no tasks: run more instances of the topology to share the partitions",
                _ => "hubmirror has no connectors",
            };
            flow.notes.push(format!(
                "not carried over: {}: {why}",
                shown(&n.path, &n.shown())
            ));
            continue;
        }
        for (setting, v) in n.entries()? {
            let value = v.shown();
            match mm2_setting(&mut t.replication, flow, &setting, &value).map_err(|e| v.error(e))? {
                Applied::Done => {}
                Applied::Note(note) => flow.notes.push(note.replacen(&setting, &v.path, 1)),
                Applied::Unknown => flow.notes.push(format!(
                    "not carried over: {}: no hubmirror key for it",
                    shown(&v.path, &value)
                )),
            }
        }
    }
    Ok(())
}
