//! `hubmirror status` as text: aligned tables of the flows, their instances, their lag and the
//! clusters, then what is wrong in one line each.

use super::fleet::partitions_text;
use super::Status;

pub(super) fn render(s: &Status) -> String {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let mut rows = vec![[
        "SOURCE",
        "TARGET",
        "STATE",
        "READY",
        "RECORDS",
        "RECORDS/S",
        "HEARTBEAT-AGE",
        "LATENCY",
    ]
    .map(String::from)
    .to_vec()];
    for f in &s.flows {
        rows.push(vec![
            f.source.clone(),
            f.target.clone(),
            f.state.clone(),
            opt(f.ready.map(|r| if r { "yes" } else { "no" }.to_string())),
            opt(f.records_replicated.map(|n| n.to_string())),
            opt(f.records_per_second.map(|r| format!("{r:.1}"))),
            opt(f.heartbeat_age_ms.map(|ms| format!("{ms}ms"))),
            opt(f.replication_latency_ms.map(|ms| format!("{ms}ms"))),
        ]);
    }
    let mut out = table(&rows);
    for reason in s.flows.iter().filter_map(|f| f.not_ready.as_deref()) {
        out.push_str(&format!("not ready: {reason}\n"));
    }
    out.push_str(&instances(s));
    let mut lag_rows = vec![["SOURCE", "TARGET", "TOPIC", "PARTITION", "LAG"]
        .map(String::from)
        .to_vec()];
    for f in &s.flows {
        for l in &f.lag {
            lag_rows.push(vec![
                f.source.clone(),
                f.target.clone(),
                l.topic.clone(),
                l.partition.to_string(),
                l.lag.to_string(),
            ]);
        }
    }
    if lag_rows.len() > 1 {
        out.push('\n');
        out.push_str(&table(&lag_rows));
    }
    out.push('\n');
    let mut rows = vec![["CLUSTER", "REACHABLE", "UPSTREAM", "HOPS"]
        .map(String::from)
        .to_vec()];
    for c in &s.clusters {
        let reachable = if c.reachable { "yes" } else { "no" }.to_string();
        if c.upstream.is_empty() {
            rows.push(vec![
                c.alias.clone(),
                reachable.clone(),
                "-".into(),
                "-".into(),
            ]);
        }
        for u in &c.upstream {
            let (cluster, hops) = (u.cluster.clone(), u.hops.to_string());
            rows.push(vec![c.alias.clone(), reachable.clone(), cluster, hops]);
        }
    }
    out.push_str(&table(&rows));
    for e in s.clusters.iter().filter_map(|c| c.error.as_deref()) {
        out.push_str(&format!("{e}\n"));
    }
    if !s.daemon_running {
        out.push_str(
            "\n(hubmirror run is not answering on metrics.listen: live figures unavailable)\n",
        );
    }
    out
}

/// Per flow, the instances in its group and the partitions each owns; a flow whose group has no
/// member shows one row without an instance; flows whose group was not read are left out.
fn instances(s: &Status) -> String {
    let mut rows = vec![[
        "SOURCE",
        "TARGET",
        "GROUP",
        "STATE",
        "INSTANCE",
        "HOST",
        "PARTITIONS",
    ]
    .map(String::from)
    .to_vec()];
    let dash = || "-".to_string();
    for f in &s.flows {
        let Some(state) = &f.group_state else {
            continue;
        };
        let flow = [
            f.source.clone(),
            f.target.clone(),
            f.group.clone(),
            state.clone(),
        ];
        if f.instances.is_empty() {
            rows.push([flow.to_vec(), vec![dash(), dash(), dash()]].concat());
        }
        for i in &f.instances {
            let host = if i.host.is_empty() {
                dash()
            } else {
                i.host.clone()
            };
            let partitions = partitions_text(i.partitions.as_deref());
            rows.push([flow.to_vec(), vec![i.instance.clone(), host, partitions]].concat());
        }
    }
    let mut out = String::new();
    if rows.len() > 1 {
        out.push('\n');
        out.push_str(&table(&rows));
    }
    let unknown = s
        .flows
        .iter()
        .flat_map(|f| &f.instances)
        .any(|i| i.partitions.is_none());
    if unknown {
        out.push_str(
            "(?: the source cluster did not report that member's assignment: a rebalance is \
             under way, or the broker does not keep assignments)\n",
        );
    }
    for e in s.flows.iter().filter_map(|f| f.group_error.as_deref()) {
        out.push_str(&format!("{e}\n"));
    }
    out
}

/// Rows as aligned columns, like kafka-consumer-groups.sh.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
