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
    let mut aliases: BTreeMap<String, String> = BTreeMap::new();
    let v1_target = match spec.get("clusters") {
        Some(clusters) => {
            for item in clusters.items()? {
                add_cluster(ctx, &mut t, &mut aliases, &item, true)?;
            }
            if aliases.is_empty() {
                return Err(clusters.error("is empty; list at least two clusters"));
            }
            None
        }
        // The kafka.strimzi.io/v1 layout: spec.target, and each mirror's source.
        None => {
            let fix = "list the clusters: `clusters: [{alias: source, bootstrapServers: \
                       host:port}, ...]` (or, kafka.strimzi.io/v1, `target:` and mirrors[].source)";
            let target = spec
                .get("target")
                .ok_or_else(|| spec.missing("clusters", fix))?;
            Some(add_cluster(ctx, &mut t, &mut aliases, &target, true)?)
        }
    };
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
        if let (Some(_), Some(source)) = (&v1_target, m.get("source")) {
            add_cluster(ctx, &mut t, &mut aliases, &source, false)?;
        }
        let flow = mirror(&mut t, m, &aliases, v1_target.as_deref())?;
        if m.get("heartbeatConnector").is_some() {
            beating.insert(flow.source.clone());
        }
        let same = t
            .flows
            .iter_mut()
            .find(|f| f.source == flow.source && f.target == flow.target);
        match same {
            Some(f) => merge(f, flow, &m.path),
            None => t.flows.push(flow),
        }
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
            "clusters" | "mirrors" | "target" => {}
            "connectCluster" => t.notes.push(format!(
                "not carried over: {}: hubmirror needs no Kafka Connect cluster",
                shown(&n.path, &n.shown())
            )),
            _ => t.notes.push(deployment_note(&key, &n)),
        }
    }
    Ok(t)
}

/// Adds the Strimzi cluster `item` under its alias (lower-cased if need be) and returns the
/// alias; a second cluster with an alias already taken is an error when `unique`, else skipped
/// (v1: mirrors from one source each name it).
fn add_cluster(
    ctx: &Ctx,
    t: &mut Imported,
    aliases: &mut BTreeMap<String, String>,
    item: &Node,
    unique: bool,
) -> Result<String, ImportError> {
    let raw = item.req_str("alias", "name the cluster, e.g. `alias: source`")?;
    let alias = common::alias(raw);
    if aliases.values().any(|a| *a == alias) {
        if !unique {
            return Ok(alias);
        }
        return Err(item.require("alias", "")?.error(format!(
            "a second cluster named `{alias}`; give each cluster a distinct alias"
        )));
    }
    let mut c = strimzi::cluster(ctx, item, &alias, &["alias"])?;
    if alias != raw {
        c.notes.push(format!(
            "alias {raw} is written {alias} (hubmirror aliases are [a-z][a-z0-9_-]*): under \
             the default policy remote topics are named {alias}.<topic>, not {raw}.<topic>"
        ));
    }
    aliases.insert(raw.to_string(), alias.clone());
    t.clusters.push(c);
    Ok(alias)
}

/// Folds `extra` (the mirror at `path`) into `f`, the flow of the same direction: hubmirror has
/// one flow per direction.
fn merge(f: &mut Flow, extra: Flow, path: &str) {
    let excludes_differ =
        f.topics_exclude != extra.topics_exclude || f.groups_exclude != extra.groups_exclude;
    f.notes.push(format!(
        "{path} has the same direction: its patterns are merged into this flow{}",
        if excludes_differ {
            "; the exclusions of both now apply to every topic and group of it"
        } else {
            ""
        }
    ));
    for (to, from) in [
        (&mut f.topics, extra.topics),
        (&mut f.topics_exclude, extra.topics_exclude),
        (&mut f.groups, extra.groups),
        (&mut f.groups_exclude, extra.groups_exclude),
    ] {
        for re in from {
            if !to.contains(&re) {
                to.push(re);
            }
        }
    }
    f.notes.extend(extra.notes);
}

/// One `spec.mirrors[]` entry → a flow; its connectors' settings go to `t.replication`.
fn mirror(
    t: &mut Imported,
    m: &Node,
    aliases: &BTreeMap<String, String>,
    v1_target: Option<&str>,
) -> Result<Flow, ImportError> {
    let known: Vec<&str> = aliases.keys().map(String::as_str).collect();
    let side = |key: &str| -> Result<String, ImportError> {
        if let Some(target) = v1_target {
            return match key {
                "targetCluster" => Ok(target.to_string()),
                _ => {
                    let source = m.require("source", "give the mirror its source cluster")?;
                    let raw = source.req_str("alias", "name the cluster")?;
                    Ok(aliases
                        .get(raw)
                        .cloned()
                        .unwrap_or_else(|| common::alias(raw)))
                }
            };
        }
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
        let read = ["sourceCluster", "targetCluster", "source"].contains(&key.as_str())
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
