//! The librdkafka client context of every client hubmirror creates: routes librdkafka's logs
//! and errors to `tracing` under the cluster's alias, and reports errors that no retry can fix
//! (authentication, fatal idempotence errors) to the supervisor, which stops the run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tokio::sync::mpsc;

use super::diagnose::{self, Cause, ConnectionProblem};
use super::stats::ConsumerStats;

pub use super::reader::{end_reader, ReaderContext};

/// An error on a cluster that stops the run. It displays as one line: the cluster, what failed,
/// librdkafka's reason and, where there is one, what to change ([`FatalClusterError::fix`]).
#[derive(Debug, Clone)]
pub struct FatalClusterError {
    /// The cluster's alias.
    pub alias: String,
    /// What failed, e.g. "authentication failed".
    pub what: &'static str,
    /// librdkafka's reason, with any secret of the cluster removed.
    pub reason: String,
    /// The recognised connection problem, when there is one: then the error displays as its
    /// one line (cluster, cause, broker, fix) instead of `what: reason`.
    pub problem: Option<ConnectionProblem>,
}

/// [`FatalClusterError::what`] of a refused authentication.
pub const AUTHENTICATION_FAILED: &str = "authentication failed";
/// [`FatalClusterError::what`] of a server certificate that no trusted CA signed.
pub const CERTIFICATE_NOT_TRUSTED: &str = "TLS certificate not trusted";
/// [`FatalClusterError::what`] when no bootstrap broker can be reached.
pub const CANNOT_CONNECT: &str = "cannot connect";

impl FatalClusterError {
    /// What the user should change, for the failures that have one obvious fix.
    pub fn fix(&self) -> Option<String> {
        let a = &self.alias;
        match self.what {
            AUTHENTICATION_FAILED if crate::entra::cell::of_cluster(a).is_some() => {
                Some(diagnose::entra_refused_fix(a))
            }
            AUTHENTICATION_FAILED => Some(format!(
                "check the credentials of clusters.{a}: the Event Hubs connection string \
                 (SharedAccessKeyName and SharedAccessKey of a policy of that namespace) or \
                 sasl.username and sasl.password"
            )),
            CERTIFICATE_NOT_TRUSTED => Some(format!(
                "set clusters.{a}.tls.ca_file to the PEM file of the CA that signed the brokers' \
                 certificate (or add that CA to the system trust store)"
            )),
            CANNOT_CONNECT => Some(format!(
                "check clusters.{a}.bootstrap_servers and that its brokers are up and reachable"
            )),
            _ => None,
        }
    }
}

impl std::fmt::Display for FatalClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(p) = &self.problem {
            return write!(f, "{p}");
        }
        write!(
            f,
            "cluster '{}': {}: {}",
            self.alias, self.what, self.reason
        )?;
        match self.fix() {
            Some(fix) => write!(f, "; {fix}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for FatalClusterError {}

/// How often the generic "no broker reachable" warning (a failure no recogniser names) is
/// repeated per cluster while it lasts: librdkafka reports every failed attempt.
const UNREACHABLE_WARN_EVERY: Duration = diagnose::CURRENT_FOR;

/// When each cluster's generic warning was last logged (by any client).
static UNREACHABLE_WARNED: Mutex<Option<HashMap<String, Instant>>> = Mutex::new(None);

/// Whether the generic warning of `alias` is due now (and notes it as given).
fn unreachable_warning_due(alias: &str, now: Instant) -> bool {
    let mut guard = UNREACHABLE_WARNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let map = guard.get_or_insert_with(HashMap::new);
    match map.get(alias) {
        Some(last) if now.duration_since(*last) < UNREACHABLE_WARN_EVERY => false,
        _ => {
            map.insert(alias.to_string(), now);
            true
        }
    }
}

/// librdkafka's log text without its `[thrd:...]: ` prefix.
pub fn strip_thread(msg: &str) -> &str {
    match msg.strip_prefix("[thrd:").and_then(|r| r.split_once("]: ")) {
        Some((_, rest)) => rest,
        None => msg,
    }
}

/// Whether a librdkafka log line is noise for users: the warning that a property hubmirror
/// sets on purpose (`enable.gapless.guarantee`) is experimental.
fn is_noise(fac: &str, msg: &str) -> bool {
    (fac == "CONFWARN" && msg.contains("is experimental"))
        // A periodic commit that meets a rebalance: the next one (or the handover) commits.
        || (fac == "COMMITFAIL"
            && msg.contains("join-state wait-")
            && (msg.contains("generation id is not valid") || msg.contains("rebalance")))
}

/// Client context shared by the consumer, producer and admin clients of one cluster.
#[derive(Clone)]
pub struct ClusterContext {
    alias: Arc<str>,
    /// Strings that must never be logged (password, connection string, shared access key).
    secrets: Arc<[String]>,
    fatal: mpsc::UnboundedSender<FatalClusterError>,
    /// Where statistics go (flow consumers only).
    stats: Option<Arc<ConsumerStats>>,
    /// A flow's own producer: a gap-less guarantee failure restarts the flow, not the process.
    flow_producer: bool,
    /// The cluster is an Event Hubs namespace: its connection problems' fixes fit one.
    event_hubs: bool,
}

impl ClusterContext {
    /// A context for cluster `alias`; fatal errors go to `fatal`. `secrets` are redacted from
    /// anything librdkafka says before it is logged or reported.
    pub fn new(
        alias: &str,
        secrets: Vec<String>,
        fatal: mpsc::UnboundedSender<FatalClusterError>,
    ) -> Self {
        let secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        ClusterContext {
            alias: alias.into(),
            secrets: secrets.into(),
            fatal,
            stats: None,
            flow_producer: false,
            event_hubs: false,
        }
    }

    /// The same context, for an Event Hubs namespace when `event_hubs`: the fixes its connection
    /// problems name never suggest turning TLS off (it is always on there).
    pub fn on_event_hubs(mut self, event_hubs: bool) -> Self {
        self.event_hubs = event_hubs;
        self
    }

    /// The same context, sending librdkafka's statistics to `stats`.
    pub fn with_stats(mut self, stats: Arc<ConsumerStats>) -> Self {
        self.stats = Some(stats);
        self
    }

    /// The same context for a flow's own producer: a fatal "gap-less guarantee" error (the
    /// target refused a batch for good, e.g. POLICY_VIOLATION when throttled past the request
    /// timeout) fails that flow's deliveries, and the flow restarts with a new producer;
    /// it does not stop the process.
    pub fn for_flow_producer(mut self) -> Self {
        self.flow_producer = true;
        self
    }

    /// The cluster's alias.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// `text` with every secret, and anything that looks like a JWT (an Entra ID token), replaced
    /// by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        super::redact::jwts(&out)
    }

    fn report(&self, what: &'static str, reason: &str) {
        let reason = self.redact(strip_thread(reason));
        // Failures of the connection display as the same line as everywhere else; other
        // fatal errors keep librdkafka's reason.
        let cause = match what {
            AUTHENTICATION_FAILED => Some(Cause::AuthenticationFailed),
            CERTIFICATE_NOT_TRUSTED => Some(Cause::CertificateNotTrusted),
            _ => None,
        };
        let problem = cause.map(|cause| ConnectionProblem {
            alias: self.alias.to_string(),
            broker: diagnose::broker_of(&reason),
            cause,
            event_hubs: self.event_hubs,
        });
        let _ = self.fatal.send(FatalClusterError {
            alias: self.alias.to_string(),
            what,
            reason,
            problem,
        });
    }

    /// Notes a recognised connection problem (for `/readyz`) and logs its line when it is new
    /// or was last logged a while ago. An untrusted certificate stops the run (no retry fixes
    /// it); the rest is retried by librdkafka.
    fn problem(&self, p: ConnectionProblem, reason: &str) {
        if p.cause == Cause::CertificateNotTrusted {
            return self.report(CERTIFICATE_NOT_TRUSTED, reason);
        }
        if diagnose::note(&p) {
            tracing::warn!(
                cluster = &*self.alias,
                "{p} (retrying; repeated at most every {} s)",
                diagnose::CURRENT_FOR.as_secs()
            );
        }
    }

    /// The problem `text` reveals on this cluster, secrets removed.
    pub fn recognise(&self, text: &str) -> Option<ConnectionProblem> {
        ConnectionProblem::recognise(
            &self.alias,
            self.event_hubs,
            &self.redact(strip_thread(text)),
        )
    }
}

impl ClientContext for ClusterContext {
    crate::cluster::oauth::entra_token_callback!();

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        let msg = self.redact(strip_thread(log_message));
        let cluster = &*self.alias;
        // A recognised connection failure is logged once as its own line (see `problem`).
        let level = match self.recognise(&msg) {
            Some(p) if p.cause != Cause::AuthenticationFailed => {
                self.problem(p, &msg);
                RDKafkaLogLevel::Debug
            }
            Some(_) => RDKafkaLogLevel::Debug,
            None if is_noise(fac, &msg) => RDKafkaLogLevel::Debug,
            None => level,
        };
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(cluster, fac, "librdkafka: {msg}"),
            RDKafkaLogLevel::Warning => tracing::warn!(cluster, fac, "librdkafka: {msg}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::debug!(cluster, fac, "librdkafka: {msg}")
            }
            RDKafkaLogLevel::Debug => tracing::trace!(cluster, fac, "librdkafka: {msg}"),
        }
    }

    fn stats_raw(&self, statistics: &[u8]) {
        if let Some(stats) = &self.stats {
            stats.update(statistics);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        let recognised = self.recognise(reason);
        match code {
            Some(RDKafkaErrorCode::Authentication)
            | Some(RDKafkaErrorCode::SaslAuthenticationFailed)
                if crate::entra::cell::of_cluster(&self.alias)
                    .is_some_and(|c| c.expired_while_unreachable()) =>
            {
                // The token source is retrying its authority; librdkafka reconnects with the
                // next token.
                tracing::warn!(
                    cluster = &*self.alias,
                    "the Entra ID token expired while its authority cannot be reached; the \
                     namespace refuses it until a new one is fetched: {}",
                    self.redact(strip_thread(reason))
                )
            }
            Some(RDKafkaErrorCode::Authentication)
            | Some(RDKafkaErrorCode::SaslAuthenticationFailed) => {
                self.report(AUTHENTICATION_FAILED, reason)
            }
            Some(RDKafkaErrorCode::Fatal) if self.flow_producer && is_gapless_failure(reason) => {
                tracing::warn!(
                    cluster = &*self.alias,
                    "the target refused a batch; the flow restarts its producer to keep order: {}",
                    self.redact(reason)
                )
            }
            Some(RDKafkaErrorCode::Fatal) => self.report("fatal client error", reason),
            // An untrusted certificate will not fix itself; other failures librdkafka retries
            // for as long as it takes: one line per cluster and cause now and then.
            _ if recognised.is_some() => {
                if let Some(p) = recognised {
                    self.problem(p, reason);
                }
            }
            Some(
                RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::Resolve
                | RDKafkaErrorCode::AllBrokersDown,
            ) => {
                // "1/1 brokers are down" adds nothing to a problem already named.
                if diagnose::recent(&self.alias).is_some() {
                    tracing::debug!(cluster = &*self.alias, "{}", self.redact(reason));
                } else if unreachable_warning_due(&self.alias, Instant::now()) {
                    tracing::warn!(
                        cluster = &*self.alias,
                        "cluster '{}': no broker reachable ({}); check clusters.{}.bootstrap_servers \
                         and that its brokers are up and reachable (retrying; repeated at most every {} s)",
                        self.alias,
                        // "1/1 brokers are down" (or "0/1" while one reconnects) says nothing.
                        if code == Some(RDKafkaErrorCode::AllBrokersDown) {
                            "all brokers are down".to_string()
                        } else {
                            self.redact(strip_thread(reason))
                        },
                        self.alias,
                        UNREACHABLE_WARN_EVERY.as_secs()
                    );
                } else {
                    tracing::debug!(cluster = &*self.alias, "{}", self.redact(reason));
                }
            }
            _ => tracing::warn!(cluster = &*self.alias, "{}", self.redact(reason)),
        }
    }
}

impl ConsumerContext for ClusterContext {}

/// Whether librdkafka's fatal-error text is the idempotent producer's gap-less guarantee
/// (`enable.gapless.guarantee`): a batch failed for good and later ones were not written.
fn is_gapless_failure(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    r.contains("gap-less") || r.contains("gapless")
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
