//! `hubmirror status`: per flow, the daemon's live figures (state, records/s, replication
//! latency — asked of the running `hubmirror run` over its HTTP listener) and the age of the
//! newest heartbeat on the target (read from the cluster, so it works without the daemon); per
//! cluster, the upstream clusters and their hop counts, read off the replicated heartbeat topics.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use super::daemon_client;
use super::opt::StatusArgs;
use super::topics::list_topics_with;
use super::{EXIT_CONFIG, EXIT_FAILURE};
use crate::cluster::client_config;
use crate::heartbeat;
use crate::naming::{self, Naming};
use crate::status::{now_ms, FlowReport, PartitionLag};
use crate::topology::{self, Topology};

/// How long listing one cluster's topics may take (clusters are asked at the same time).
const TIMEOUT: Duration = Duration::from_secs(4);
/// How long setting up one connection (TCP, TLS, SASL) may take: a TLS client on a plaintext
/// port hears nothing until then.
const SETUP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long reading the heartbeats of one flow may take (only from a reachable target).
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(3);

/// `status --json`.
#[derive(Debug, Serialize)]
struct Status {
    /// Whether `hubmirror run` answered on `metrics.listen`.
    daemon_running: bool,
    flows: Vec<FlowLine>,
    clusters: Vec<ClusterLine>,
}

#[derive(Debug, Serialize)]
struct FlowLine {
    source: String,
    target: String,
    /// The daemon's state of the flow, or `not_running`.
    state: String,
    /// Whether the flow is ready (`/readyz`); `null` when the daemon is not running.
    ready: Option<bool>,
    records_replicated: Option<u64>,
    records_per_second: Option<f64>,
    /// Age of the newest heartbeat of this flow on the target, ms.
    heartbeat_age_ms: Option<i64>,
    /// Heartbeat timestamp → target acknowledgement, ms (from the daemon).
    replication_latency_ms: Option<i64>,
    /// Per source partition: records not yet replicated (from the daemon).
    lag: Vec<PartitionLag>,
    /// Why the flow is not ready, when the daemon says it is not.
    not_ready: Option<String>,
}

#[derive(Debug, Serialize)]
struct ClusterLine {
    alias: String,
    /// Whether the cluster answered.
    reachable: bool,
    /// Why the cluster could not be read, if it could not: one line naming the cluster, the
    /// cause and the fix.
    error: Option<String>,
    /// The recognised cause (`tls_on_plaintext_port`, `plaintext_on_tls_port`, `http_port`,
    /// `not_kafka`, `sasl_required`, `authentication_failed`, `certificate_not_trusted`,
    /// `host_not_found`, `connection_refused`, `timed_out`), when there is one.
    cause: Option<&'static str>,
    upstream: Vec<Upstream>,
}

#[derive(Debug, Serialize)]
struct Upstream {
    cluster: String,
    hops: u32,
}

/// Runs `hubmirror status`.
pub fn execute(args: &StatusArgs) -> ExitCode {
    let t = match topology::load(&args.common.config) {
        Ok(t) => t,
        Err(e) => {
            super::fatal_line(args.common.log_format, &e.to_string());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let status = collect(&t);
    let unreachable = status.clusters.iter().any(|c| c.error.is_some());
    if args.json {
        match serde_json::to_string_pretty(&status) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("hubmirror status: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        }
    } else {
        print!("{}", render(&status));
    }
    if unreachable {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

/// Asks the daemon and every cluster at the same time, each with a short deadline, then reads
/// the heartbeats of the flows whose target answered.
fn collect(t: &Topology) -> Status {
    let naming = Naming::new(t.replication.policy, &t.replication.separator);
    let (daemon, listed) = std::thread::scope(|s| {
        let daemon = s.spawn(|| daemon_flows(t.metrics.listen));
        let listing: Vec<_> = t
            .clusters
            .values()
            .map(|c| s.spawn(move || list_topics_with(c, TIMEOUT, Some(SETUP_TIMEOUT))))
            .collect();
        let listed: Vec<_> = listing
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Ok(Default::default())))
            .collect();
        (daemon.join().ok().flatten(), listed)
    });
    let mut clusters = Vec::new();
    for (alias, topics) in t.clusters.keys().zip(listed) {
        clusters.push(match topics {
            Ok(names) => {
                let up = heartbeat::upstream_clusters(&naming, names.keys().map(String::as_str));
                ClusterLine {
                    alias: alias.clone(),
                    reachable: true,
                    error: None,
                    cause: None,
                    upstream: up
                        .into_iter()
                        .map(|(cluster, hops)| Upstream { cluster, hops })
                        .collect(),
                }
            }
            Err(e) => ClusterLine {
                alias: alias.clone(),
                reachable: false,
                error: Some(e.to_string()),
                cause: e.problem.as_ref().map(|p| p.cause.code()),
                upstream: Vec::new(),
            },
        });
    }
    let reachable = |alias: &str| clusters.iter().any(|c| c.alias == alias && c.reachable);
    let ages: Vec<Option<i64>> = std::thread::scope(|s| {
        let reading: Vec<_> = t
            .flows
            .iter()
            .map(|f| {
                let go = reachable(&f.target);
                let topic = naming.remote_topic(&f.source, naming::HEARTBEATS_TOPIC);
                s.spawn(move || go.then(|| heartbeat_age(t, f, &topic)).flatten())
            })
            .collect();
        reading
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect()
    });
    let flows = t
        .flows
        .iter()
        .zip(ages)
        .map(|(f, age)| {
            let live = daemon
                .as_ref()
                .and_then(|d| d.get(&(f.source.clone(), f.target.clone())));
            FlowLine {
                source: f.source.clone(),
                target: f.target.clone(),
                state: match live {
                    Some(r) => serde_json::to_value(r.state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    None => "not_running".into(),
                },
                ready: live.map(|r| r.not_ready.is_none()),
                records_replicated: live.map(|r| r.records_replicated),
                records_per_second: live.map(|r| r.records_per_second),
                heartbeat_age_ms: age.or(live.and_then(|r| r.heartbeat_age_ms)),
                replication_latency_ms: live.and_then(|r| r.replication_latency_ms),
                lag: live.map(|r| r.lag.clone()).unwrap_or_default(),
                not_ready: live.and_then(|r| r.not_ready.clone()),
            }
        })
        .collect();
    Status {
        daemon_running: daemon.is_some(),
        flows,
        clusters,
    }
}

/// The age of the newest heartbeat of flow `f` in `topic` on its target, ms.
fn heartbeat_age(t: &Topology, f: &topology::Flow, topic: &str) -> Option<i64> {
    let cfg = client_config(&t.clusters[&f.target]);
    heartbeat::latest_heartbeats(cfg, topic, HEARTBEAT_TIMEOUT)
        .ok()?
        .into_iter()
        .find(|h| h.source == f.source && h.target == f.target)
        .map(|h| (now_ms() - h.timestamp_ms).max(0))
}

/// The running daemon's `/status`, by (source, target); `None` when nothing answers (or the
/// answer cannot be used).
fn daemon_flows(addr: SocketAddr) -> Option<HashMap<(String, String), FlowReport>> {
    let reports: Vec<FlowReport> = daemon_client::get_json(addr, "/status").ok()??;
    Some(
        reports
            .into_iter()
            .map(|r| ((r.source.clone(), r.target.clone()), r))
            .collect(),
    )
}

fn render(s: &Status) -> String {
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
