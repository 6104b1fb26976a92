//! `hubmirror status`: per flow, the daemon's live figures (state, records/s, replication
//! latency — asked of the running `hubmirror run` over its HTTP listener) and the age of the
//! newest heartbeat on the target (read from the cluster, so it works without the daemon) and
//! the instances in the flow's consumer group with the partitions each owns (read from the
//! group on the source, `fleet`); per cluster, the upstream clusters and their hop counts, read
//! off the replicated heartbeat topics. The text rendering is `render`'s.

mod fleet;
mod render;

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
use fleet::InstanceLine;
pub(crate) use render::table;

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
    /// The name of the instance that answered there.
    daemon_instance: Option<String>,
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
    /// The flow's consumer group on the source, shared by every instance of the topology.
    group: String,
    /// The group's state on the source (`Stable`, `PreparingRebalance`, `Empty`, `Dead`, ...);
    /// `null` when the source could not be read.
    group_state: Option<String>,
    /// Why the group could not be described, when the source answered otherwise.
    group_error: Option<String>,
    /// The instances in the group, sorted by name, with the partitions each owns.
    instances: Vec<InstanceLine>,
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
    let _tokens = match crate::entra::Tokens::in_background(&t) {
        Ok(tokens) => tokens,
        Err(e) => {
            super::fatal_line(args.common.log_format, &format!("hubmirror: {e}"));
            return ExitCode::from(EXIT_FAILURE);
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
        print!("{}", render::render(&status));
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
    // Per flow, from clusters that answered: the newest heartbeat on the target and the group
    // on the source, every flow at the same time.
    let read: Vec<(Option<i64>, fleet::Fleet)> = std::thread::scope(|s| {
        let reading: Vec<_> = t
            .flows
            .iter()
            .map(|f| {
                let (target_up, source_up) = (reachable(&f.target), reachable(&f.source));
                let topic = naming.remote_topic(&f.source, naming::HEARTBEATS_TOPIC);
                let age = s.spawn(move || target_up.then(|| heartbeat_age(t, f, &topic)).flatten());
                let group = s.spawn(move || {
                    if source_up {
                        fleet::read(t, f, SETUP_TIMEOUT)
                    } else {
                        fleet::Fleet::default()
                    }
                });
                (age, group)
            })
            .collect();
        reading
            .into_iter()
            .map(|(age, group)| (age.join().ok().flatten(), group.join().unwrap_or_default()))
            .collect()
    });
    let flows = t
        .flows
        .iter()
        .zip(read)
        .map(|(f, (age, group))| {
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
                group: f.group.clone(),
                group_state: group.state,
                group_error: group.error,
                instances: group.instances,
            }
        })
        .collect();
    Status {
        daemon_running: daemon.is_some(),
        daemon_instance: daemon.as_ref().and_then(|d| {
            d.values()
                .map(|r| r.instance.clone())
                .find(|i| !i.is_empty())
        }),
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
