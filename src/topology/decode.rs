//! Parsed document → [`RawTopology`] through serde, turning serde's errors (unknown field,
//! missing field, wrong type) into positioned [`TopologyError`]s that never echo a value.

use serde_json::Value;
use serde_path_to_error::Segment;

use super::ctx::Ctx;
use super::error::TopologyError;
use super::locate::{child, item, Index};
use super::raw::RawTopology;

/// Deserializes the whole document.
pub(crate) fn decode(value: &Value, ctx: &Ctx<'_>) -> Result<RawTopology, TopologyError> {
    if value.is_null() {
        return Err(ctx.invalid_at(
            "",
            "the topology is empty: it needs at least `clusters:` and `flows:`".to_string(),
        ));
    }
    no_lists_for_mappings(value, ctx)?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let segments: Vec<&Segment> = e.path().iter().collect();
        let message = e.inner().to_string();
        translate(value, &segments, &message, ctx.index, ctx)
    })
}

/// serde's derived structs also accept a list, field by field (`tls: [x]` would set `ca_file`):
/// refuse lists wherever a mapping belongs. (Other wrong shapes are left to serde.)
fn no_lists_for_mappings(root: &Value, ctx: &Ctx<'_>) -> Result<(), TopologyError> {
    let list = |path: &str, v: &Value| -> Result<(), TopologyError> {
        if !v.is_array() {
            return Ok(());
        }
        if path.is_empty() {
            return Err(ctx.invalid_at(
                "",
                "the top level must be a mapping with `clusters:` and `flows:`, found a list"
                    .to_string(),
            ));
        }
        Err(TopologyError::WrongType {
            at: ctx.loc(ctx.index.value(path)),
            path: path.to_string(),
            expected: "a mapping".to_string(),
            found: "a list".to_string(),
        })
    };
    list("", root)?;
    for key in ["clusters", "replication", "store", "metrics"] {
        if let Some(v) = root.get(key) {
            list(key, v)?;
        }
    }
    if let Some(Value::Object(clusters)) = root.get("clusters") {
        for (alias, c) in clusters {
            let p = child("clusters", alias);
            list(&p, c)?;
            for key in ["tls", "sasl", "event_hubs", "client"] {
                if let Some(v) = c.get(key) {
                    list(&child(&p, key), v)?;
                }
            }
        }
    }
    if let Some(Value::Array(flows)) = root.get("flows") {
        for (i, f) in flows.iter().enumerate() {
            list(&item("flows", i), f)?;
        }
    }
    Ok(())
}

/// The path string of `segments` (`flows[0].topics`).
fn path_of(segments: &[&Segment]) -> String {
    let mut path = String::new();
    for s in segments {
        path = match s {
            Segment::Seq { index } => item(&path, *index),
            Segment::Map { key } | Segment::Enum { variant: key } => child(&path, key),
            Segment::Unknown => break,
        };
    }
    path
}

/// The node at `segments`, if it exists.
fn lookup<'v>(root: &'v Value, segments: &[&Segment]) -> Option<&'v Value> {
    let mut v = root;
    for s in segments {
        v = match s {
            Segment::Seq { index } => v.get(*index)?,
            Segment::Map { key } | Segment::Enum { variant: key } => v.get(key.as_str())?,
            Segment::Unknown => return None,
        };
    }
    Some(v)
}

/// What kind of YAML node a value is, for messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "an empty value",
        Value::Bool(_) | Value::Number(_) | Value::String(_) => "a single value",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// serde's `expected ...` wording → ours.
fn expected_kind(serde_expected: &str) -> String {
    let e = serde_expected.trim();
    if e.starts_with("struct ") || e == "a map" {
        "a mapping".to_string()
    } else if e == "a sequence" {
        "a list".to_string()
    } else if e == "a string" {
        "a single value (a string)".to_string()
    } else {
        e.to_string()
    }
}

fn translate(
    root: &Value,
    segments: &[&Segment],
    message: &str,
    index: &Index,
    ctx: &Ctx<'_>,
) -> TopologyError {
    let path = path_of(segments);
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // `unknown field `x`, expected `a` or `b`` / `expected one of `a`, `b`` / `there are no fields`
        let (key, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let expected = tail
            .split_once("expected ")
            .map(|(_, e)| e.trim_start_matches("one of "))
            .unwrap_or("nothing")
            .replace(" or ", ", ")
            .replace('`', "");
        let parent = path_of(&segments[..segments.len().saturating_sub(1)]);
        return TopologyError::UnknownKey {
            at: ctx.loc(index.key(&path)),
            key: key.to_string(),
            parent,
            expected,
        };
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let key = rest.trim_end_matches('`').to_string();
        return TopologyError::MissingKey {
            at: ctx.loc(index.key(&path)),
            hint: hint_for_missing(&path, &key),
            key,
            parent: path,
        };
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let expected = rest.split_once(", expected ").map_or("", |(_, e)| e);
        let found = lookup(root, segments).map_or("something else", kind);
        if path.is_empty() {
            return ctx.invalid_at(
                "",
                format!(
                    "the top level must be a mapping with `clusters:` and `flows:`, found {found}"
                ),
            );
        }
        return TopologyError::WrongType {
            at: ctx.loc(index.value(&path)),
            path,
            expected: expected_kind(expected),
            found: found.to_string(),
        };
    }
    // Anything else serde can say (lengths, custom messages) carries no value of ours.
    ctx.invalid_at(&path, format!("{}: {message}", display_path(&path)))
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "the top level"
    } else {
        path
    }
}

fn hint_for_missing(parent: &str, key: &str) -> String {
    match (parent, key) {
        ("", "clusters") => "; add `clusters:` with at least one cluster by alias".to_string(),
        ("", "flows") => {
            "; add `flows:` with at least one `- source: A  target: B  topics: [...]`".to_string()
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::topology::locate;

    fn err(text: &str) -> String {
        let file = Path::new("t.yaml");
        let (v, ix) = locate::parse(file, text).expect("yaml");
        let ctx = Ctx::new(file, &ix, &|_| None);
        decode(&v, &ctx).map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_point_at_the_key() {
        assert_eq!(
            err("clusters: {}\nflows: []\nfoo: 1\n"),
            "t.yaml:3:1: unknown key `foo` at the top level (expected one of: name, clusters, flows, \
             replication, store, metrics)"
        );
        assert_eq!(
            err("clusters:\n  onprem:\n    bootstrap_servers: x\n    fo: 1\nflows: []\n"),
            "t.yaml:4:5: unknown key `fo` in clusters.onprem (expected one of: \
             bootstrap_servers, tls, sasl, client, event_hubs, heartbeats, checkpoints, \
             compression)"
        );
    }

    #[test]
    fn missing_and_wrong_types() {
        assert_eq!(
            err("clusters: {}\n"),
            "t.yaml:1:1: missing key `flows` at the top level; add `flows:` with at least one \
             `- source: A  target: B  topics: [...]`"
        );
        assert_eq!(
            err("clusters:\n  a:\n    bootstrap_servers: [x]\nflows: []\n"),
            "t.yaml:3:24: `clusters.a.bootstrap_servers` must be a single value (a string), \
             found a list"
        );
        assert_eq!(
            err("clusters: {}\nflows:\n  - topics: secret-looking\n"),
            "t.yaml:3:13: `flows[0].topics` must be a list, found a single value"
        );
        assert_eq!(
            err("- a\n"),
            "t.yaml:1:1: the top level must be a mapping with `clusters:` and `flows:`, found a list"
        );
        assert!(err("").starts_with("t.yaml:1:1: the topology is empty"));
        assert_eq!(
            err("clusters:\n  a:\n    bootstrap_servers: x\n    tls: [ca.pem]\nflows: []\n"),
            "t.yaml:4:10: `clusters.a.tls` must be a mapping, found a list"
        );
        assert_eq!(
            err("clusters: {}\nflows: [[a, b, c]]\n"),
            "t.yaml:2:9: `flows[0]` must be a mapping, found a list"
        );
    }
}
