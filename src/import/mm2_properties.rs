//! A MirrorMaker 2 `connect-mirror-maker.properties`: `clusters = A, B`, `A.bootstrap.servers`,
//! security per cluster, `A->B.enabled` flows, and the connector settings (global or `A->B.`).
//! Passwords become `${VAR}` references.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::common::{self, boolean, mm2_setting, regex_list, shown, Applied};
use super::mm2_clusters::cluster;
use super::mm2_input::Input;
use super::model::{Flow, Imported};
use super::properties;
use super::ImportError;

/// Whether `text` looks like MM2 properties (a `clusters` key or a `->` flow key).
pub(crate) fn looks_like(text: &str) -> bool {
    let p = properties::parse(text);
    p.contains_key("clusters") || p.keys().any(|k| k.contains("->"))
}

/// Imports properties `text` read from `file`.
pub(crate) fn import(file: &Path, text: &str) -> Result<Imported, ImportError> {
    let mut input = Input {
        file,
        props: properties::parse(text),
        used: BTreeSet::new(),
    };
    let Some(list) = input.get("clusters") else {
        return Err(input.error(
            "clusters",
            "missing; list the cluster aliases, e.g. `clusters = source, target`",
        ));
    };
    let raw_aliases = regex_list(&list);
    if raw_aliases.len() < 2 {
        return Err(input.error(
            "clusters",
            "needs at least two aliases, e.g. `clusters = source, target`",
        ));
    }
    let mut t = Imported {
        what: "MirrorMaker 2 properties".to_string(),
        ..Imported::default()
    };
    let mut aliases = BTreeMap::new();
    for raw in &raw_aliases {
        let c = cluster(&mut input, raw)?;
        aliases.insert(raw.clone(), c.alias.clone());
        t.clusters.push(c);
    }
    for a in &raw_aliases {
        for b in raw_aliases.iter().filter(|b| *b != a) {
            let prefix = format!("{a}->{b}");
            let key = format!("{prefix}.enabled");
            let enabled = match input.get(&key) {
                Some(v) => boolean(&v).map_err(|e| input.error(&key, e))?,
                None => false,
            };
            if enabled {
                let f = flow(&mut input, &mut t, &prefix, &aliases[a], &aliases[b])?;
                t.flows.push(f);
            }
        }
    }
    if t.flows.is_empty() {
        let example = format!("{}->{}.enabled = true", raw_aliases[0], raw_aliases[1]);
        return Err(input.error(
            "clusters",
            format!("no flow is enabled; add e.g. `{example}`"),
        ));
    }
    let mut heartbeats_off = BTreeSet::new();
    for a in &raw_aliases {
        let froms: Vec<&Flow> = t.flows.iter().filter(|f| f.source == aliases[a]).collect();
        let mut all_off = !froms.is_empty();
        for f in froms {
            let prefix = format!(
                "{a}->{}",
                aliases
                    .iter()
                    .find(|(_, v)| **v == f.target)
                    .map_or("", |(k, _)| k.as_str())
            );
            all_off &= !input.flag(&prefix, "emit.heartbeats.enabled", true)?;
        }
        if all_off {
            heartbeats_off.insert(aliases[a].clone());
        }
    }
    for c in t
        .clusters
        .iter_mut()
        .filter(|c| heartbeats_off.contains(&c.alias))
    {
        c.heartbeats = Some(false);
        c.notes
            .push("heartbeats off: emit.heartbeats.enabled=false".to_string());
    }
    rest(&mut input, &mut t, &raw_aliases)?;
    Ok(t)
}

/// The flow `prefix` (`A->B`): topics, groups and their exclusions.
fn flow(
    input: &mut Input,
    t: &mut Imported,
    prefix: &str,
    source: &str,
    target: &str,
) -> Result<Flow, ImportError> {
    let mut f = Flow {
        source: source.into(),
        target: target.into(),
        ..Flow::default()
    };
    f.topics = input.list(prefix, "topics", &[".*"], &mut f.notes)?;
    f.topics_exclude = match input.has(prefix, "topics.blacklist") {
        true => input.list(prefix, "topics.blacklist", &[], &mut f.notes)?,
        false => input.list(
            prefix,
            "topics.exclude",
            &common::MM2_TOPICS_EXCLUDE,
            &mut f.notes,
        )?,
    };
    if input.flag(prefix, "emit.checkpoints.enabled", true)? {
        f.groups = input.list(prefix, "groups", &[".*"], &mut f.notes)?;
        f.groups_exclude = match input.has(prefix, "groups.blacklist") {
            true => input.list(prefix, "groups.blacklist", &[], &mut f.notes)?,
            false => input.list(
                prefix,
                "groups.exclude",
                &common::MM2_GROUPS_EXCLUDE,
                &mut f.notes,
            )?,
        };
    } else {
        f.notes
            .push("emit.checkpoints.enabled=false: no consumer groups are checkpointed".into());
    }
    let scoped: Vec<String> = input
        .props
        .keys()
        .filter(|k| k.starts_with(&format!("{prefix}.")) && !input.used.contains(*k))
        .cloned()
        .collect();
    for key in scoped {
        let setting = &key[prefix.len() + 1..];
        apply(input, t, &mut f, &key, setting)?;
    }
    Ok(f)
}

/// One connector setting `key` (`setting` without its flow prefix) → the topology or a note.
fn apply(
    input: &mut Input,
    t: &mut Imported,
    f: &mut Flow,
    key: &str,
    setting: &str,
) -> Result<(), ImportError> {
    let value = input.get(key).unwrap_or_default();
    let scoped = key.contains("->");
    let mut scratch = Flow::default();
    let flow = if scoped { &mut *f } else { &mut scratch };
    let note = match mm2_setting(&mut t.replication, flow, setting, &value)
        .map_err(|e| input.error(key, e))?
    {
        Applied::Done => return Ok(()),
        Applied::Note(n) => n.replacen(setting, key, 1),
        Applied::Unknown => format!(
            "not carried over: {}: no hubmirror key for it",
            shown(key, &value)
        ),
    };
    if scoped {
        f.notes.push(note);
    } else {
        t.replication.notes.push(note);
    }
    Ok(())
}

/// Top-level connector settings, and the cluster settings nobody read, as notes.
fn rest(input: &mut Input, t: &mut Imported, raw_aliases: &[String]) -> Result<(), ImportError> {
    let keys: Vec<String> = input
        .props
        .keys()
        .filter(|k| !input.used.contains(*k))
        .cloned()
        .collect();
    for key in keys {
        let owner = raw_aliases
            .iter()
            .find(|a| key.starts_with(&format!("{a}.")));
        match owner {
            Some(a) if !key.contains("->") => {
                let value = input.get(&key).unwrap_or_default();
                let alias = common::alias(a);
                if let Some(c) = t.cluster_mut(&alias) {
                    c.notes.push(format!(
                        "not carried over: {}: no hubmirror key; if librdkafka has this setting, put it under `client:`",
                        shown(&key, &value)
                    ));
                }
            }
            _ if key.contains("->") => {
                let value = input.get(&key).unwrap_or_default();
                t.notes.push(format!(
                    "not carried over: {}: that flow is not enabled (`A->B.enabled = true`, both aliases in `clusters`)",
                    shown(&key, &value)
                ));
            }
            _ => {
                let mut scratch = Flow::default();
                apply(input, t, &mut scratch, &key, &key.clone())?;
            }
        }
    }
    Ok(())
}
