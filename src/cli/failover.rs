//! `hubmirror failover --group G --from A --to B [--execute] [--json]`: move consumer group G
//! from cluster A to cluster B.
//!
//! The plan is `translate`'s rows ([`plan`](super::plan)) with, for each, G's current committed
//! offset on B and G's state there (`describe_group`: state, member count). Without
//! `--execute` the plan is printed and nothing changes (a dry run, like
//! `kafka-consumer-groups.sh --reset-offsets` without `--execute`).
//!
//! With `--execute`, when G has no active members on B, the planned offsets of the rows that
//! have one are committed for G on B in one OffsetCommit — and nothing else: no other group,
//! topic or partition is touched; rows without a translation are left out and reported. When G
//! has active members on B (their commits would overwrite the plan), or the commit is refused
//! for that reason, nothing is committed and the exit code is 3.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use serde::Serialize;

use super::error::CommandError;
use super::offsets::CLUSTER_TIMEOUT;
use super::opt::FailoverArgs;
use super::plan::{self, Plan, Row};
use super::status::table;
use super::translate::{cells, dash, header, notes, row_notes, to_json};
use crate::checkpoint::{self, CheckpointError, GroupDescription};
use crate::cluster::client_config;
use crate::topology;

/// One element of `failover --json`: the translate row and the group on the target.
#[derive(Debug, Serialize)]
struct Line {
    #[serde(flatten)]
    row: Row,
    /// G's committed offset on the target topic's partition now (before any commit).
    current_offset: Option<i64>,
    /// G's state on the target (`Empty`, `Stable`, … `Dead` when unknown there).
    group_state: String,
    /// G's member count on the target.
    members: usize,
    /// Whether this row's offset was committed (always false in a dry run).
    committed: bool,
}

/// Runs `hubmirror failover`.
pub fn execute(args: &FailoverArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn run(args: &FailoverArgs) -> Result<(), CommandError> {
    let mv = &args.r#move;
    let t = topology::load(&args.common.config)?;
    let _tokens = crate::entra::Tokens::in_background(&t)?;
    let plan = plan::plan(&t, mv)?;
    let to = &t.clusters[&mv.to];
    super::topics::list_topics(to, CLUSTER_TIMEOUT)?;
    let group = checkpoint::describe_group(client_config(to), &mv.group, CLUSTER_TIMEOUT)
        .map_err(|e| CommandError::cluster(to, &e))?;
    let wanted: Vec<&str> = plan.rows.iter().map(|r| r.target_topic.as_str()).collect();
    let current: BTreeMap<(String, i32), i64> = checkpoint::committed_offsets(
        client_config(to),
        &mv.group,
        |topic| wanted.contains(&topic),
        CLUSTER_TIMEOUT,
    )
    .map_err(|e| CommandError::cluster(to, &e))?
    .into_iter()
    .map(|(topic, partition, offset)| ((topic, partition), offset))
    .collect();
    let mut lines: Vec<Line> = plan
        .rows
        .iter()
        .map(|r| Line {
            row: r.clone(),
            current_offset: current.get(&(r.target_topic.clone(), r.partition)).copied(),
            group_state: group.state.clone(),
            members: group.members,
            committed: false,
        })
        .collect();

    let outcome = if !args.execute {
        Outcome::DryRun
    } else if group.is_active() {
        Outcome::Refused(refusal(&mv.group, &mv.to, &group))
    } else {
        let offsets: Vec<(String, i32, i64)> = plan
            .rows
            .iter()
            .filter_map(|r| Some((r.target_topic.clone(), r.partition, r.downstream_offset?)))
            .collect();
        match checkpoint::commit_group_offsets(
            client_config(to),
            &mv.group,
            &offsets,
            CLUSTER_TIMEOUT,
        ) {
            Ok(()) => {
                lines
                    .iter_mut()
                    .for_each(|l| l.committed = l.row.downstream_offset.is_some());
                Outcome::Committed(offsets.len())
            }
            Err(CheckpointError::GroupActive { state, members, .. }) => {
                let now = GroupDescription {
                    state,
                    members,
                    ..group.clone()
                };
                Outcome::Refused(refusal(&mv.group, &mv.to, &now))
            }
            Err(e) => return Err(CommandError::cluster(to, &e)),
        }
    };
    if mv.json {
        println!("{}", to_json(&lines)?);
    } else {
        print!("{}", render(&plan, &lines, &group, mv, &outcome));
    }
    match outcome {
        Outcome::Refused(why) => Err(CommandError::Refused(why)),
        _ => Ok(()),
    }
}

/// What `--execute` did.
enum Outcome {
    /// No `--execute`: nothing committed.
    DryRun,
    /// This many offsets committed.
    Committed(usize),
    /// Nothing committed, for this reason.
    Refused(String),
}

fn refusal(group: &str, to: &str, g: &GroupDescription) -> String {
    format!(
        "refused: consumer group '{group}' has {} active member(s) on '{to}' (state {}); its \
         offsets there can only be moved while it has none — stop its consumers on '{to}' and \
         run this again. Nothing was committed.",
        g.members, g.state
    )
}

fn render(
    plan: &Plan,
    lines: &[Line],
    g: &GroupDescription,
    mv: &super::opt::Move,
    outcome: &Outcome,
) -> String {
    let mut out = notes(plan);
    let unknown =
        g.state == "Dead" && g.members == 0 && lines.iter().all(|l| l.current_offset.is_none());
    let _ = writeln!(
        out,
        "consumer group '{}' on '{}': {}state {}, {} member(s)",
        mv.group,
        mv.to,
        if unknown { "not known there yet, " } else { "" },
        g.state,
        g.members
    );
    let mut rows = vec![header(&["CURRENT-OFFSET", "NEW-OFFSET", "AGAIN"])];
    rows.extend(lines.iter().map(|l| {
        let r = &l.row;
        let extra = [
            dash(l.current_offset),
            dash(r.downstream_offset),
            dash(r.records_again),
        ];
        cells(r, &extra)
    }));
    out.push_str(&table(&rows));
    out.push_str(&row_notes(&plan.rows));
    let _ = match outcome {
        Outcome::DryRun => writeln!(
            out,
            "\ndry run: nothing was committed; add --execute to commit NEW-OFFSET for '{}' on '{}'",
            mv.group, mv.to
        ),
        Outcome::Committed(0) => {
            writeln!(out, "\nnothing to commit: no partition has a translation")
        }
        Outcome::Committed(n) => writeln!(
            out,
            "\ncommitted {n} offset(s) for consumer group '{}' on '{}'{}",
            mv.group,
            mv.to,
            match lines.len() - n {
                0 => String::new(),
                left => format!("; {left} partition(s) without a translation were left out"),
            }
        ),
        Outcome::Refused(_) => writeln!(out, "\nnothing was committed"),
    };
    out
}
