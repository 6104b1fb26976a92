//! `hubmirror topics [--json]`: per flow, the source topics the flow would replicate now (the
//! running flow's rule: no metadata error, at least one partition, `Naming::flow_copies`),
//! their remote names, and whether each remote topic exists on the target with enough partitions.
//!
//! Each cluster is listed once, with one metadata request of at most [`METADATA_TIMEOUT`]. A
//! cluster that refuses authentication, does not trust-verify, or whose bootstrap brokers are all
//! down fails the command at once (exit 1, one line naming the cluster and the cause) instead of
//! waiting for the timeout: an inspection command should answer, not retry.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};
use serde::Serialize;

use super::opt::TopicsArgs;
use super::{EXIT_CONFIG, EXIT_FAILURE};
use crate::cluster::context::CANNOT_CONNECT;
use crate::cluster::{self, clients, Cause, ClusterContext, ConnectionProblem, FatalClusterError};
use crate::naming::Naming;
use crate::topology::{self, Cluster, Topology};

/// How long listing one cluster's topics may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// The topics of one cluster that can be served: name → partition count.
pub type TopicList = BTreeMap<String, i32>;

/// Whether the remote topic can take the source topic's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// Present with at least as many partitions as the source topic.
    Exists,
    /// Absent (created by `run` when `create_topics` is on).
    Missing,
    /// Present with fewer partitions: `run` adds the missing ones when `create_topics` is on
    /// (where the target allows it); meanwhile the partitions it has flow.
    FewerPartitions,
}

/// One (flow, source topic): an element of the `--json` array, a row of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub source: String,
    pub target: String,
    pub source_topic: String,
    pub partitions: i32,
    pub remote_topic: String,
    pub target_state: TargetState,
    /// The remote topic's partition count; `null` when it is missing.
    pub target_partitions: Option<i32>,
}

/// Runs `topics`: exit 0 with the tables (or JSON) on stdout; 2 on a topology error; 1 when a
/// cluster cannot be listed, or (after the tables, one stderr line each) when a target cannot
/// take a topic: fewer partitions, or missing while `create_topics` is false.
pub fn execute(args: &TopicsArgs) -> ExitCode {
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
    let mut listed: BTreeMap<&str, TopicList> = BTreeMap::new();
    for alias in t.flows.iter().flat_map(|f| [&f.source, &f.target]) {
        if listed.contains_key(alias.as_str()) {
            continue;
        }
        match list_topics(&t.clusters[alias], METADATA_TIMEOUT) {
            Ok(topics) => listed.insert(alias, topics),
            Err(e) => {
                super::fatal_line(args.common.log_format, &format!("hubmirror: {e}"));
                return ExitCode::from(EXIT_FAILURE);
            }
        };
    }
    let rows = rows(&t, &listed);
    if args.json {
        match serde_json::to_string_pretty(&rows) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("hubmirror: cannot encode JSON: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        }
    } else {
        print!("{}", render(&t, &rows));
    }
    let problems = cannot_take(&t, &rows);
    for p in &problems {
        eprintln!("hubmirror: {p}");
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    }
}

/// One line per row whose target cannot take the source topic's records as it is: a remote
/// topic with fewer partitions, or a missing one that `run` will not create.
pub fn cannot_take(t: &Topology, rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| {
            let (flow, remote) = (
                format!("flow {} -> {}", r.source, r.target),
                &r.remote_topic,
            );
            match r.target_state {
                TargetState::Exists => None,
                TargetState::Missing if t.replication.create_topics => None,
                TargetState::Missing => Some(format!(
                    "{flow}: topic '{remote}' is missing on '{}' and replication.create_topics is \
                     false: create it with {} partition(s), or set create_topics: true",
                    r.target, r.partitions
                )),
                TargetState::FewerPartitions if t.replication.create_topics => None,
                TargetState::FewerPartitions => Some(format!(
                    "{flow}: topic '{remote}' on '{}' has {} partition(s), fewer than the {} of \
                     '{}' on '{}' and replication.create_topics is false: add partitions to it, \
                     or set create_topics: true (the partitions it has flow meanwhile)",
                    r.target,
                    r.target_partitions.unwrap_or(0),
                    r.partitions,
                    r.source_topic,
                    r.source
                )),
            }
        })
        .collect()
}

/// The rows of every flow, in flow order then topic name order.
pub fn rows(t: &Topology, listed: &BTreeMap<&str, TopicList>) -> Vec<Row> {
    let naming = Naming::from_replication(&t.replication);
    let mut out = Vec::new();
    for f in &t.flows {
        let source = &listed[f.source.as_str()];
        let hb = t.clusters[&f.target].heartbeats;
        for (topic, &partitions) in source.iter().filter(|(n, _)| naming.flow_copies(f, n, hb)) {
            let remote_topic = naming.remote_topic(&f.source, topic);
            let target_partitions = listed[f.target.as_str()].get(&remote_topic).copied();
            let target_state = match target_partitions {
                None => TargetState::Missing,
                Some(n) if n >= partitions => TargetState::Exists,
                Some(_) => TargetState::FewerPartitions,
            };
            let (source, target) = (f.source.clone(), f.target.clone());
            let source_topic = topic.clone();
            out.push(Row {
                source,
                target,
                source_topic,
                partitions,
                remote_topic,
                target_state,
                target_partitions,
            });
        }
    }
    out
}

/// One table per flow, like kafka-consumer-groups.sh: a header row, columns aligned.
pub fn render(t: &Topology, rows: &[Row]) -> String {
    let mut out = String::new();
    for f in &t.flows {
        let sep = if out.is_empty() { "" } else { "\n" };
        let _ = writeln!(out, "{sep}FLOW {} -> {}", f.source, f.target);
        let header = ["SOURCE-TOPIC", "PARTITIONS", "REMOTE-TOPIC", "ON-TARGET"].map(String::from);
        let of_flow = rows
            .iter()
            .filter(|r| r.source == f.source && r.target == f.target);
        let table: Vec<[String; 4]> = std::iter::once(header)
            .chain(of_flow.map(Row::cells))
            .collect();
        let mut widths = [0; 4];
        for (c, w) in widths.iter_mut().enumerate() {
            *w = table
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0);
        }
        for row in &table {
            let mut line = String::new();
            for (cell, w) in row.iter().zip(widths) {
                let _ = write!(line, "{cell:<w$}  ");
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    out
}

impl Row {
    /// The row's table cells.
    fn cells(&self) -> [String; 4] {
        let state = match (self.target_state, self.target_partitions) {
            (TargetState::Exists, _) => "exists".to_string(),
            (TargetState::Missing, _) => "missing".to_string(),
            (TargetState::FewerPartitions, n) => {
                format!(
                    "fewer partitions ({} < {})",
                    n.unwrap_or(0),
                    self.partitions
                )
            }
        };
        let (topic, remote) = (self.source_topic.clone(), self.remote_topic.clone());
        [topic, self.partitions.to_string(), remote, state]
    }
}

/// Lists the topics of `cluster` that can be served (no error, at least one partition), with one
/// metadata request of at most `timeout`. Fails early, naming the cluster, on an authentication
/// or TLS trust failure or when every bootstrap broker is down, with the recognised cause
/// ([`crate::cluster::ConnectionProblem`]) when there is one.
pub fn list_topics(cluster: &Cluster, timeout: Duration) -> Result<TopicList, FatalClusterError> {
    list_topics_with(cluster, timeout, None)
}

/// [`list_topics`], connection setup (TCP, TLS, SASL) limited to `setup_timeout` when given
/// (`status` answers within seconds whatever is down).
pub fn list_topics_with(
    cluster: &Cluster,
    timeout: Duration,
    setup_timeout: Option<Duration>,
) -> Result<TopicList, FatalClusterError> {
    let fail = |what: &'static str, reason: String, problem: Option<ConnectionProblem>| {
        FatalClusterError {
            alias: cluster.alias.clone(),
            what,
            reason,
            problem,
        }
    };
    let (fatal_tx, mut fatal_rx) = tokio::sync::mpsc::unbounded_channel();
    let ctx = ListContext {
        inner: clients::context(cluster, fatal_tx),
        problem: Mutex::new(None),
        all_down: AtomicBool::new(false),
    };
    let mut cfg = cluster::client_config(cluster);
    if let Some(t) = setup_timeout {
        cfg.set(
            "socket.connection.setup.timeout.ms",
            t.as_millis().to_string(),
        );
    }
    let producer: BaseProducer<ListContext> = cluster::oauth::create(&cfg, ctx)
        .map_err(|e| fail("cannot create a client", e.to_string(), None))?;
    let producer = Arc::new(producer);
    let (done_tx, done_rx) = std_mpsc::channel();
    let p = producer.clone();
    // The request blocks; this thread serves librdkafka's error events meanwhile (and may leave
    // the request behind on an early failure: the command exits right after).
    std::thread::spawn(move || {
        let _ = done_tx.send(p.client().fetch_metadata(None, timeout));
    });
    let ctx = producer.context().clone();
    let problem = || lock(&ctx.problem).clone();
    loop {
        producer.poll(Duration::from_millis(50));
        match done_rx.try_recv() {
            Ok(Ok(md)) => {
                return Ok(md
                    .topics()
                    .iter()
                    .filter(|t| t.error().is_none() && !t.partitions().is_empty())
                    .map(|t| (t.name().to_string(), t.partitions().len() as i32))
                    .collect())
            }
            Ok(Err(e)) => {
                let reason = ctx.inner.redact(&e.to_string());
                await_cause(&producer);
                return Err(fail("cannot list topics", reason, problem()));
            }
            Err(std_mpsc::TryRecvError::Disconnected) => {
                return Err(fail("cannot list topics", "request lost".into(), problem()))
            }
            Err(std_mpsc::TryRecvError::Empty) => {}
        }
        if let Ok(fatal) = fatal_rx.try_recv() {
            return Err(fatal);
        }
        let definitive = problem().filter(|p| {
            matches!(
                p.cause,
                Cause::AuthenticationFailed | Cause::CertificateNotTrusted
            )
        });
        if definitive.is_some() || ctx.all_down.load(Ordering::Relaxed) {
            await_cause(&producer);
            let reason = "no broker reachable".to_string();
            return Err(fail(CANNOT_CONNECT, reason, problem()));
        }
    }
}

/// Gives librdkafka a moment to tell why the request failed or every broker is down (its
/// log line may come after the event), unless a cause is known already.
fn await_cause(producer: &BaseProducer<ListContext>) {
    let grace = std::time::Instant::now() + Duration::from_millis(500);
    while lock(&producer.context().problem).is_none() && std::time::Instant::now() < grace {
        producer.poll(Duration::from_millis(50));
    }
}

/// The cluster's context (redaction, fatal errors), plus what `topics` needs to stop early:
/// the last recognised connection problem and whether all brokers are down. librdkafka's own
/// log lines stay at debug level: the command's one error line says it all.
struct ListContext {
    inner: ClusterContext,
    /// The last connection problem librdkafka's texts revealed.
    problem: Mutex<Option<ConnectionProblem>>,
    /// Set when librdkafka reports that every known broker is down.
    all_down: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ClientContext for ListContext {
    crate::cluster::oauth::entra_token_callback!();

    fn log(&self, _level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match self.inner.recognise(log_message) {
            Some(p) => *lock(&self.problem) = Some(p),
            None => self.inner.log(RDKafkaLogLevel::Debug, fac, log_message),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed) => {
                self.inner.error(error, reason)
            }
            Some(RDKafkaErrorCode::AllBrokersDown) => self.all_down.store(true, Ordering::Relaxed),
            _ => match self.inner.recognise(reason) {
                Some(p) => *lock(&self.problem) = Some(p),
                None => tracing::debug!(
                    cluster = self.inner.alias(),
                    "{}",
                    self.inner.redact(reason)
                ),
            },
        }
    }
}

impl ProducerContext for ListContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_the_flow_rule_and_render_aligned() {
        let text = "clusters:\n  a: {bootstrap_servers: 'x:1'}\n  b: {bootstrap_servers: 'y:1'}\n\
                    flows:\n  - {source: a, target: b, topics: ['orders.*']}\n";
        let t = topology::parse(std::path::Path::new("t.yaml"), text).expect("valid");
        let list = |l: &[(&str, i32)]| l.iter().map(|(n, p)| (n.to_string(), *p)).collect();
        let a = list(&[
            ("orders1", 2),
            ("orders2", 1),
            ("orders3", 3),
            ("other", 1),
            ("orders.internal", 1),
        ]);
        let listed = BTreeMap::from([("a", a), ("b", list(&[("a.orders1", 2), ("a.orders3", 1)]))]);
        let rows = rows(&t, &listed);
        let json = serde_json::to_value(&rows).expect("json");
        assert_eq!(json[2]["target_state"], "fewer_partitions");
        assert_eq!(json[2]["target_partitions"], 1);
        assert_eq!(json[1]["target_partitions"], serde_json::Value::Null);
        assert_eq!(
            render(&t, &rows),
            "FLOW a -> b\n\
             SOURCE-TOPIC  PARTITIONS  REMOTE-TOPIC  ON-TARGET\n\
             orders1       2           a.orders1     exists\n\
             orders2       1           a.orders2     missing\n\
             orders3       3           a.orders3     fewer partitions (1 < 3)\n"
        );
    }
}
