//! Where consumer group G, at its position on cluster `from`, resumes on cluster `to`: the rows
//! `translate` prints and `failover` commits.
//!
//! Each topic G has offsets for on `from` is moved one of two ways:
//! - **forward** (failover) — a flow `from → to` replicates the topic: G's committed offset U
//!   is translated exactly by the daemon or the store into the offset of the copy of the
//!   record at U in the remote topic on `to`;
//! - **backward** (failback) — the topic is the remote topic of a flow `to → from`: G's offset
//!   on the copy is mapped back ([`Store::reverse`](crate::store::Store::reverse)) to the
//!   record on `to` right after the last one G read.
//!
//! When `from` cannot be reached (the site is lost), the store is missing, or G has no offsets
//! there, forward moves use the latest checkpoints instead: the store's, else those on the
//! `<from>.checkpoints.internal` topic on `to`. A forward row the store cannot translate
//! (`Unknown`, e.g. a store recreated after a loss) takes its checkpoint when the checkpoint
//! is at or below G's position (it may re-deliver what G read since, never lose).
//!
//! Under identity both ways the topic holds both sides' records, interleaved differently on
//! each side: the row resumes at the first record on `to` that G has not processed (of either
//! side), and `records_again` counts the records after it that G did process.

use serde::Serialize;

use super::checkpoints_topic::{merge_newest, topic_checkpoints};
use super::direction::{Direction, Way};
use super::error::CommandError;
use super::offsets::{unreadable, OffsetSource, OffsetsError, Via, CLUSTER_TIMEOUT};
use super::opt::Move;
use crate::checkpoint;
use crate::cluster::client_config;
use crate::naming::Naming;
use crate::store::{PartitionKey, StoredCheckpoint, Translation};
use crate::topology::{Flow, Topology};

/// One (group, topic, partition) to move: an element of the `--json` array.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The consumer group.
    pub group: String,
    /// The topic on `from`, where the group is now.
    pub source_topic: String,
    /// The partition, the same on both sides.
    pub partition: i32,
    /// The group's offset on `from` (a checkpoint's, when taken from one).
    pub upstream_offset: i64,
    /// The topic on `to`.
    pub target_topic: String,
    /// Where the group resumes on `to`; `null` when it cannot be said (see `note`).
    pub downstream_offset: Option<i64>,
    /// What answered.
    pub via: Via,
    /// Why there is no translation, or where it came from when it is not exact.
    pub note: Option<String>,
    /// How many records from `downstream_offset` on the group already processed on `from`
    /// and will see again; `null` when it cannot be said (no translation, or a row from the
    /// latest checkpoints alone: records the group read after its checkpoint come again too).
    pub records_again: Option<i64>,
}

/// The rows and how they were obtained.
#[derive(Debug)]
pub struct Plan {
    /// Sorted by source topic and partition.
    pub rows: Vec<Row>,
    /// Lines for humans: what answered and why (the first says `via: ...`).
    pub notes: Vec<String>,
}

/// Computes the plan for moving `mv.group` from `mv.from` to `mv.to`.
pub fn plan(t: &Topology, mv: &Move) -> Result<Plan, CommandError> {
    let dir = Direction::resolve(t, mv)?;
    let naming = Naming::from_replication(&t.replication);
    let from = &t.clusters[&mv.from];
    let mut notes = Vec::new();
    // G's offsets on `from`; when it is gone, only checkpoints can say where G was.
    let committed = match super::topics::list_topics(from, CLUSTER_TIMEOUT) {
        Ok(_) => Some(
            checkpoint::committed_offsets(
                client_config(from),
                &mv.group,
                |topic| dir.way(&naming, topic).is_some(),
                CLUSTER_TIMEOUT,
            )
            .map_err(|e| CommandError::cluster(from, &e))?,
        ),
        Err(e) if dir.forward.is_some() => {
            notes.push(format!("{e}: using the latest checkpoints"));
            None
        }
        Err(e) => return Err(e.into()),
    };
    // Opened after the cluster reads, so that a store opened here (rather than asked of the
    // daemon) is kept from a `hubmirror run` starting now for as short a time as possible.
    let (source, mut sync_notes) = synced(t, &dir, committed.is_some())?;
    let mut rows = Vec::new();
    match (committed, &source) {
        (None, _) => {}
        (Some(_), None) if dir.forward.is_some() => notes.push(format!(
            "no store at {}: using the latest checkpoints",
            t.store.path.display()
        )),
        (Some(_), None) => {
            let (path, addr) = (t.store.path.clone(), t.metrics.listen);
            return Err(OffsetsError::NoStore { path, addr }.into());
        }
        (Some(committed), Some(src)) => {
            notes.push(src.describe());
            notes.append(&mut sync_notes);
            if committed.is_empty() {
                notes.push(format!(
                    "group '{}' has no committed offsets on '{}' for the topics these flows move",
                    mv.group, mv.from
                ));
            }
            for (topic, partition, offset) in committed {
                if let Some(way) = dir.way(&naming, &topic) {
                    let at = (topic, partition, offset);
                    rows.push(translated(src, &naming, mv, way, at)?);
                }
            }
        }
    }
    let Some(fwd) = dir.forward else {
        notes.extend(sync_notes);
        return Ok(Plan { rows, notes });
    };
    if rows.is_empty() {
        let cps = latest_checkpoints(t, fwd, &mv.group, source.as_ref())?;
        notes.retain(|n| !n.starts_with("via:"));
        notes.insert(0, via_line(fwd, &cps, source.as_ref()));
        rows = cps
            .iter()
            .map(|(c, via)| checkpoint_row(c, *via, None))
            .collect();
    } else if rows.iter().any(|r| r.note.as_deref() == Some(UNKNOWN)) {
        let cps = latest_checkpoints(t, fwd, &mv.group, source.as_ref())?;
        fill_unknown(&mut rows, &cps);
        let from_checkpoints: Vec<(StoredCheckpoint, Via)> = cps
            .into_iter()
            .filter(|(c, _)| {
                rows.iter().any(|r| {
                    r.note
                        .as_deref()
                        .is_some_and(|n| n.starts_with(FROM_CHECKPOINT))
                        && (&r.source_topic, r.partition) == (&c.source_topic, c.partition)
                })
            })
            .collect();
        let filled = from_checkpoints.len();
        if filled == rows.len() {
            notes.retain(|n| !n.starts_with("via:"));
            notes.insert(0, via_line(fwd, &from_checkpoints, source.as_ref()));
        } else if filled > 0 {
            notes.push(format!(
                "{} for {filled} partition(s) the store has no mapping for",
                via_line(fwd, &from_checkpoints, source.as_ref())
            ));
        }
    }
    // What could not be read, when the branch above did not say it already.
    notes.extend(sync_notes);
    Ok(Plan { rows, notes })
}

/// The daemon, the store or (neither) a temporary store rebuilt from the segments topics,
/// having read the segments topics of the flows between the two clusters — skipping the one
/// on `from` when `from` cannot be reached — and the lines saying what could not be read.
fn synced(
    t: &Topology,
    dir: &Direction<'_>,
    from_reachable: bool,
) -> Result<(Option<OffsetSource>, Vec<String>), CommandError> {
    let flows: Vec<&Flow> = [dir.forward, dir.backward]
        .into_iter()
        .flatten()
        .filter(|f| from_reachable || dir.backward.is_none_or(|b| b.target != f.target))
        .collect();
    let mut notes = Vec::new();
    let source = match OffsetSource::open(t)? {
        Some(src) => {
            for f in &flows {
                if let Err(e) = src.sync(t, f) {
                    notes.push(unreadable(t, f, &e));
                }
            }
            Some(src)
        }
        None => OffsetSource::rebuilt(t, &flows, &mut notes)?,
    };
    Ok((source, notes))
}

/// The note of a forward row the store has no mapping for.
const UNKNOWN: &str = "the store has no mapping for this offset (the store is newer than the \
                       record's copy, or the flow never copied this partition)";
/// The note of a forward row beyond what the flow has copied.
const NOT_YET: &str = "not replicated yet: wait for the flow to catch up";
/// The note of a backward row on a partition the store knows nothing of.
const NO_MAPPING: &str = "the store has no mapping for this partition";

/// The row of G's committed offset `at` = (topic, partition, offset) on `from`, translated by
/// `src` the `way` the topic moves.
fn translated(
    src: &OffsetSource,
    naming: &Naming,
    mv: &Move,
    way: Way,
    at: (String, i32, i64),
) -> Result<Row, CommandError> {
    let (topic, partition, offset) = at;
    let (target_topic, downstream, note, again) = match way {
        Way::Forward { back } => {
            let key = PartitionKey::new(&mv.from, &mv.to, &topic, partition);
            let (translation, again) = match back {
                Some(back) => {
                    let r = src.both_ways(&key, &back, offset)?;
                    (r.translation, r.again)
                }
                None => (src.translate(&key, offset)?, 0),
            };
            let (d, note) = match translation {
                Translation::Exact(d) => (Some(d), (again > 0).then(|| both_ways_note(again))),
                Translation::NotYetReplicated => (None, Some(NOT_YET.to_string())),
                Translation::Unknown => (None, Some(UNKNOWN.to_string())),
            };
            let again = d.map(|_| again);
            (naming.remote_topic(&mv.from, &topic), d, note, again)
        }
        Way::Backward(original) => {
            let key = PartitionKey::new(&mv.to, &mv.from, &original, partition);
            let d = src.reverse(&key, offset)?;
            let note = d.is_none().then(|| NO_MAPPING.to_string());
            (original, d, note, d.map(|_| 0))
        }
    };
    Ok(Row {
        group: mv.group.clone(),
        source_topic: topic,
        partition,
        upstream_offset: offset,
        target_topic,
        downstream_offset: downstream,
        via: src.via(),
        note,
        records_again: again,
    })
}

/// The note of a both-ways row that resumes before records the group already processed.
fn both_ways_note(again: i64) -> String {
    format!(
        "the topic flows both ways: resumes at the first record here the group has not \
         processed; {again} record(s) after it were processed and will be read again"
    )
}

/// The latest checkpoints of `group` for `flow`, each with what gave it: the daemon's or the
/// store's, and those on the checkpoints topic on the flow's target where they are newer (with
/// several instances, each store holds only what its instance emitted). When the topic cannot
/// be read, the store's alone; with none there either, the error.
fn latest_checkpoints(
    t: &Topology,
    flow: &Flow,
    group: &str,
    source: Option<&OffsetSource>,
) -> Result<Vec<(StoredCheckpoint, Via)>, CommandError> {
    let mut held = Vec::new();
    if let Some(src) = source {
        let mut cps = src.checkpoints(Some(group))?;
        cps.retain(|c| c.source == flow.source && c.target == flow.target);
        held.extend(cps.into_iter().map(|c| (c, src.via())));
    }
    match topic_checkpoints(t, flow, Some(group)) {
        Ok(cps) => {
            merge_newest(&mut held, cps);
        }
        Err(e) if held.is_empty() => return Err(e),
        Err(e) => tracing::debug!("the store's checkpoints only: {e}"),
    }
    held.sort_by(|(a, _), (b, _)| {
        (&a.source_topic, a.partition).cmp(&(&b.source_topic, b.partition))
    });
    Ok(held)
}

/// `via: ...` for rows taken from the checkpoints `cps`.
fn via_line(flow: &Flow, cps: &[(StoredCheckpoint, Via)], source: Option<&OffsetSource>) -> String {
    let topic = format!(
        "{} on '{}'",
        checkpoint::checkpoints_topic(&flow.source),
        flow.target
    );
    let from_topic = cps
        .iter()
        .filter(|(_, v)| *v == Via::CheckpointsTopic)
        .count();
    match source {
        Some(src) if from_topic == 0 && !cps.is_empty() => {
            format!("{} (its latest checkpoints)", src.describe())
        }
        Some(src) if from_topic < cps.len() => format!(
            "{} (its latest checkpoints, and {from_topic} newer ones from {topic})",
            src.describe()
        ),
        _ => format!("via: checkpoints-topic ({topic})"),
    }
}

fn checkpoint_row(c: &StoredCheckpoint, via: Via, note: Option<String>) -> Row {
    Row {
        group: c.group.clone(),
        source_topic: c.source_topic.clone(),
        partition: c.partition,
        upstream_offset: c.upstream_offset,
        target_topic: c.remote_topic.clone(),
        downstream_offset: Some(c.downstream_offset),
        via,
        note,
        records_again: None,
    }
}

/// The start of the note of a row given its checkpoint.
const FROM_CHECKPOINT: &str = "from the checkpoint at upstream offset";

/// Gives rows the store could not translate their checkpoint, when it is at or below the
/// group's offset.
fn fill_unknown(rows: &mut [Row], cps: &[(StoredCheckpoint, Via)]) {
    for row in rows
        .iter_mut()
        .filter(|r| r.note.as_deref() == Some(UNKNOWN))
    {
        let cp = cps
            .iter()
            .find(|(c, _)| c.source_topic == row.source_topic && c.partition == row.partition);
        if let Some((c, via)) = cp.filter(|(c, _)| c.upstream_offset <= row.upstream_offset) {
            let again = row.upstream_offset - c.upstream_offset;
            let note = format!(
                "{FROM_CHECKPOINT} {} (up to {again} record(s) again)",
                c.upstream_offset
            );
            *row = Row {
                upstream_offset: row.upstream_offset,
                records_again: Some(again),
                ..checkpoint_row(c, *via, Some(note))
            };
        }
    }
}
