//! `hubmirror translate --group G --from A --to B [--json]`: where group G, at its position on
//! cluster A, should resume on cluster B — one row per (group, topic, partition), computed by
//! [`plan`](super::plan) (exact translation by the daemon or the store; the latest checkpoints
//! when A or the store is gone; backwards through the store when failing back).
//!
//! Changes nothing anywhere. Exit 0 with the rows (partitions without a translation included,
//! `-` / `null`); 2 for a topology error, an unknown alias or clusters no flow links; 1 when a
//! cluster needed cannot be reached, or the daemon or the store fails.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::error::CommandError;
use super::opt::TranslateArgs;
use super::plan::{self, Plan, Row};
use super::status::table;
use crate::topology;

/// Runs `hubmirror translate`.
pub fn execute(args: &TranslateArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn run(args: &TranslateArgs) -> Result<(), CommandError> {
    let t = topology::load(&args.common.config)?;
    let _tokens = crate::entra::Tokens::in_background(&t)?;
    let plan = plan::plan(&t, &args.r#move)?;
    if args.r#move.json {
        println!("{}", to_json(&plan.rows)?);
    } else {
        print!("{}", render(&plan));
    }
    Ok(())
}

/// `value` as pretty JSON.
pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, CommandError> {
    serde_json::to_string_pretty(value)
        .map_err(|e| CommandError::Usage(format!("cannot encode JSON: {e}")))
}

/// The plan's notes, the table (AGAIN: how many records from the new position on the group
/// already processed, `-` when unknown), and one line per row without a translation (or with
/// a translation that is not exact).
fn render(plan: &Plan) -> String {
    let mut out = notes(plan);
    let mut rows = vec![header(&["DOWNSTREAM-OFFSET", "AGAIN"])];
    rows.extend(
        plan.rows
            .iter()
            .map(|r| cells(r, &[dash(r.downstream_offset), dash(r.records_again)])),
    );
    out.push_str(&table(&rows));
    out.push_str(&row_notes(&plan.rows));
    out
}

/// The plan's notes, one per line (the first says what answered).
pub(super) fn notes(plan: &Plan) -> String {
    plan.notes.iter().fold(String::new(), |mut out, n| {
        let _ = writeln!(out, "{n}");
        out
    })
}

/// The header row: the columns every row has, then `extra`.
pub(super) fn header(extra: &[&str]) -> Vec<String> {
    [
        "GROUP",
        "SOURCE-TOPIC",
        "PARTITION",
        "UPSTREAM-OFFSET",
        "TARGET-TOPIC",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

/// A row's cells, then `extra`.
pub(super) fn cells(r: &Row, extra: &[String]) -> Vec<String> {
    let mut out = vec![
        r.group.clone(),
        r.source_topic.clone(),
        r.partition.to_string(),
        r.upstream_offset.to_string(),
        r.target_topic.clone(),
    ];
    out.extend_from_slice(extra);
    out
}

/// An offset, or `-`.
pub(super) fn dash(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// `note: topic/partition: why`, for every row that has a note.
pub(super) fn row_notes(rows: &[Row]) -> String {
    let mut out = String::new();
    let missing = rows
        .iter()
        .filter(|r| r.downstream_offset.is_none())
        .count();
    if missing > 0 {
        let _ = writeln!(
            out,
            "\n{missing} partition(s) have no translation (-): failover leaves them out (the \
             group keeps its offset there, or starts from auto.offset.reset)"
        );
    }
    for r in rows {
        if let Some(n) = &r.note {
            let _ = writeln!(out, "note: {}/{}: {n}", r.source_topic, r.partition);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::offsets::Via;
    use super::*;

    #[test]
    fn renders_rows_aligned_with_dashes_and_notes() {
        let row = |p, d: Option<i64>, note: Option<&str>| Row {
            group: "app".into(),
            source_topic: "orders".into(),
            partition: p,
            upstream_offset: 107,
            target_topic: "a.orders".into(),
            downstream_offset: d,
            via: Via::Store,
            note: note.map(String::from),
            records_again: d.map(|_| 0),
        };
        let plan = Plan {
            rows: vec![
                row(0, Some(1107), None),
                row(1, None, Some("not replicated yet")),
            ],
            notes: vec!["via: store (/s)".into()],
        };
        assert_eq!(
            render(&plan),
            "via: store (/s)\n\
             GROUP  SOURCE-TOPIC  PARTITION  UPSTREAM-OFFSET  TARGET-TOPIC  DOWNSTREAM-OFFSET  AGAIN\n\
             app    orders        0          107              a.orders      1107               0\n\
             app    orders        1          107              a.orders      -                  -\n\
             \n\
             1 partition(s) have no translation (-): failover leaves them out (the group keeps \
             its offset there, or starts from auto.offset.reset)\n\
             note: orders/1: not replicated yet\n"
        );
        let json = serde_json::to_value(&plan.rows).expect("json");
        assert_eq!(json[0]["via"], "store");
        assert_eq!(json[1]["downstream_offset"], serde_json::Value::Null);
        assert_eq!(json[0]["records_again"], 0);
        assert_eq!(json[1]["records_again"], serde_json::Value::Null);
    }
}
