//! `hubmirror checkpoints [--group G] [--json]`: the latest checkpoint of each (group, topic,
//! partition), one row each — from the running daemon, else the store at `store.path`, else
//! (no store: the site's disk is lost) the `<source>.checkpoints.internal` topic of every flow on
//! its target (clusters with `checkpoints: false` have none). The checkpoints topic is read
//! beside the daemon or the store too, and its newer checkpoints win: with several instances
//! each store holds what its own instance emitted, the topic what every instance emitted, so
//! the answer is the same whichever store is asked. Each row's `via` says where it came from.
//!
//! Exit 0 with the rows (none is not an error); 2 for a topology error; 1 when the daemon or
//! the store fails, or a target to read a checkpoints topic from cannot be reached.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde::Serialize;

use super::checkpoints_topic::{merge_newest, topic_checkpoints};
use super::error::CommandError;
use super::offsets::{OffsetSource, Via};
use super::opt::CheckpointsArgs;
use super::status::table;
use super::translate::to_json;
use crate::checkpoint::checkpoints_topic;
use crate::status::now_ms;
use crate::store::StoredCheckpoint;
use crate::topology::{self, Topology};

/// One element of `checkpoints --json`.
#[derive(Debug, Serialize)]
struct Line {
    group: String,
    /// The flow's source alias.
    source: String,
    /// The flow's target alias.
    target: String,
    source_topic: String,
    partition: i32,
    /// The group's committed offset on the source when the checkpoint was taken.
    upstream_offset: i64,
    /// The topic's name on the target.
    target_topic: String,
    /// Where the group resumes on the target.
    downstream_offset: i64,
    /// How old the checkpoint is, ms (`null` when its record carries no timestamp).
    age_ms: Option<i64>,
    /// What answered.
    via: Via,
}

impl Line {
    fn new(c: StoredCheckpoint, via: Via, now: i64) -> Line {
        Line {
            age_ms: (c.timestamp_ms > 0).then(|| (now - c.timestamp_ms).max(0)),
            group: c.group,
            source: c.source,
            target: c.target,
            source_topic: c.source_topic,
            partition: c.partition,
            upstream_offset: c.upstream_offset,
            target_topic: c.remote_topic,
            downstream_offset: c.downstream_offset,
            via,
        }
    }
}

/// Runs `hubmirror checkpoints`.
pub fn execute(args: &CheckpointsArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn run(args: &CheckpointsArgs) -> Result<(), CommandError> {
    let t = topology::load(&args.common.config)?;
    let _tokens = crate::entra::Tokens::in_background(&t)?;
    let (checkpoints, via_lines) = collect(&t, args.group.as_deref())?;
    let now = now_ms();
    let mut lines: Vec<Line> = checkpoints
        .into_iter()
        .map(|(c, via)| Line::new(c, via, now))
        .collect();
    lines.sort_by(|a, b| {
        let key = |l: &Line| (l.group.clone(), l.source.clone(), l.target.clone());
        (key(a), &a.source_topic, a.partition).cmp(&(key(b), &b.source_topic, b.partition))
    });
    if args.json {
        println!("{}", to_json(&lines)?);
    } else {
        print!("{}", render(&via_lines, &lines));
    }
    Ok(())
}

/// A checkpoint and what gave it.
type Sourced = (StoredCheckpoint, Via);

/// The checkpoints (each with what gave it) and the lines saying where they came from.
///
/// From the daemon or the store when there is one, merged with each flow's checkpoints topic
/// (newer ones win): with several instances, each store holds the checkpoints its own
/// instance emitted, for the partitions it owned, and the topic those of every instance — so
/// the rows are the same whichever instance's store is asked. A flow the store holds no
/// checkpoint of (a store created after the flow had copied records, e.g. a lost one that
/// `run` recreated, or an instance that never owned its partitions) is read from its topic
/// alone, as `translate` and `failover` do.
fn collect(t: &Topology, group: Option<&str>) -> Result<(Vec<Sourced>, Vec<String>), CommandError> {
    let Some(src) = OffsetSource::open(t)? else {
        let (cps, line) = from_topics(t, group)?;
        let cps = cps
            .into_iter()
            .map(|c| (c, Via::CheckpointsTopic))
            .collect();
        return Ok((cps, vec![line]));
    };
    let via = src.via();
    let mut all: Vec<Sourced> = src
        .checkpoints(group)?
        .into_iter()
        .map(|c| (c, via))
        .collect();
    let mut lines = vec![src.describe()];
    for flow in &t.flows {
        if !t.clusters[&flow.target].checkpoints {
            continue;
        }
        let held = all
            .iter()
            .any(|(c, _)| c.source == flow.source && c.target == flow.target);
        let topic = checkpoints_topic(&flow.source);
        let what = format!("flow {} -> {}", flow.source, flow.target);
        match topic_checkpoints(t, flow, group) {
            Ok(cps) => match merge_newest(&mut all, cps) {
                0 => {}
                _ if !held => lines.push(format!(
                    "via: checkpoints-topic for {what}: the store has none of its checkpoints \
                     (it is newer than the flow's history, or its instance never owned the \
                     flow's partitions); read {topic} on '{}'",
                    flow.target
                )),
                n => lines.push(format!(
                    "via: checkpoints-topic for {n} checkpoint(s) of {what} newer than the \
                     store's (emitted by another instance); read {topic} on '{}'",
                    flow.target
                )),
            },
            Err(e) if held => lines.push(format!(
                "{what}: {topic} on '{}' cannot be read ({e}): only the checkpoints this \
                 instance emitted",
                flow.target
            )),
            Err(e) => lines.push(format!(
                "{what}: the store has none of its checkpoints, and {topic} on '{}' cannot be \
                 read: {e}",
                flow.target
            )),
        }
    }
    Ok((all, lines))
}

/// Every flow's checkpoints topic (no store): the checkpoints and the `via:` line.
fn from_topics(
    t: &Topology,
    group: Option<&str>,
) -> Result<(Vec<StoredCheckpoint>, String), CommandError> {
    let mut all = Vec::new();
    let mut read = Vec::new();
    for flow in &t.flows {
        if !t.clusters[&flow.target].checkpoints {
            continue;
        }
        all.extend(topic_checkpoints(t, flow, group)?);
        read.push(format!(
            "{} on '{}'",
            checkpoints_topic(&flow.source),
            flow.target
        ));
    }
    let line = format!(
        "via: checkpoints-topic (no store at {}; read {})",
        t.store.path.display(),
        if read.is_empty() {
            "nothing: every target has checkpoints: false".to_string()
        } else {
            read.join(", ")
        }
    );
    Ok((all, line))
}

fn render(via_lines: &[String], lines: &[Line]) -> String {
    let mut out = via_lines.iter().fold(String::new(), |mut out, l| {
        let _ = writeln!(out, "{l}");
        out
    });
    if lines.is_empty() {
        let _ = writeln!(out, "no checkpoints");
        return out;
    }
    let mut rows = vec![[
        "GROUP",
        "SOURCE",
        "TARGET",
        "SOURCE-TOPIC",
        "PARTITION",
        "UPSTREAM-OFFSET",
        "TARGET-TOPIC",
        "DOWNSTREAM-OFFSET",
        "AGE",
    ]
    .map(String::from)
    .to_vec()];
    for l in lines {
        rows.push(vec![
            l.group.clone(),
            l.source.clone(),
            l.target.clone(),
            l.source_topic.clone(),
            l.partition.to_string(),
            l.upstream_offset.to_string(),
            l.target_topic.clone(),
            l.downstream_offset.to_string(),
            l.age_ms.map_or_else(|| "-".into(), age),
        ]);
    }
    out.push_str(&table(&rows));
    out
}

/// `850ms`, `12.3s`, `4m05s`, `2h07m`.
fn age(ms: i64) -> String {
    match ms {
        ..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_well() {
        assert_eq!(age(850), "850ms");
        assert_eq!(age(12_345), "12.3s");
        assert_eq!(age(245_000), "4m05s");
        assert_eq!(age(7_620_000), "2h07m");
    }

    #[test]
    fn json_has_the_spec_fields() {
        let c = StoredCheckpoint {
            source: "a".into(),
            target: "b".into(),
            group: "app".into(),
            source_topic: "orders".into(),
            partition: 2,
            remote_topic: "a.orders".into(),
            upstream_offset: 10,
            downstream_offset: 12,
            metadata: String::new(),
            timestamp_ms: 1_000,
        };
        let line = Line::new(c, Via::CheckpointsTopic, 4_000);
        let v = serde_json::to_value(&line).expect("json");
        for k in [
            "group",
            "source",
            "target",
            "source_topic",
            "partition",
            "upstream_offset",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(v["target_topic"], "a.orders");
        assert_eq!(v["downstream_offset"], 12);
        assert_eq!(v["age_ms"], 3_000);
        assert_eq!(v["via"], "checkpoints-topic");
    }
}
