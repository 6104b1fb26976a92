//! Why a cluster cannot be reached, in one line a user can act on. librdkafka reports
//! connection failures in its own terms ("Invalid response size 1213486160 ... increase
//! receive.message.max.bytes", "Connection setup timed out in state SSL_HANDSHAKE", "1/1
//! brokers are down"); [`recognise`] turns its log and error texts into a [`Cause`], and a
//! [`ConnectionProblem`] displays as `cluster '<alias>' (<host:port>): <cause>; <fix>`.
//!
//! The last problem of each cluster is kept process-wide ([`note`], [`recent`]), so that the
//! same line appears in `run`'s log, `/readyz`, `status` and `topics`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What went wrong connecting to a broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The client speaks TLS; the port does not (a plaintext listener, or not Kafka at all).
    TlsOnPlaintextPort,
    /// The port speaks TLS; the client does not.
    PlaintextOnTlsPort,
    /// The port answers HTTP.
    HttpPort,
    /// The port answers something that is not the Kafka protocol.
    NotKafka,
    /// The broker closed the connection right after it was set up: it wants SASL.
    SaslRequired,
    /// The broker refused the credentials.
    AuthenticationFailed,
    /// The broker's certificate is not signed by a trusted CA.
    CertificateNotTrusted,
    /// The host name does not resolve.
    HostNotFound,
    /// Nothing listens on the port.
    ConnectionRefused,
    /// No answer within the connection setup timeout.
    TimedOut,
}

/// What to change when an Event Hubs namespace refuses an Entra ID token that Entra issued.
pub fn entra_refused_fix(a: &str) -> String {
    format!(
        "clusters.{a} signs in with Entra ID and the namespace refused the token: check that \
         clusters.{a}.event_hubs.namespace names the namespace bootstrap_servers reaches (the \
         token's audience is https://<namespace>) and that the identity has the Azure Event Hubs \
         Data Sender (target) or Data Receiver (source) role on it"
    )
}

impl Cause {
    /// The cause, as the middle of the line.
    pub fn describe(self) -> &'static str {
        match self {
            Cause::TlsOnPlaintextPort => "TLS is configured but the port does not speak TLS",
            Cause::PlaintextOnTlsPort => "the port speaks TLS but TLS is not configured",
            Cause::HttpPort => "the port answers HTTP, not Kafka",
            Cause::NotKafka => "the port does not speak the Kafka protocol",
            Cause::SaslRequired => "the broker closed the connection: it requires SASL",
            Cause::AuthenticationFailed => "authentication failed",
            Cause::CertificateNotTrusted => "TLS certificate not trusted",
            Cause::HostNotFound => "host name not found",
            Cause::ConnectionRefused => "connection refused (nothing listens on the port)",
            Cause::TimedOut => "no answer (connection timed out)",
        }
    }

    /// A short stable name (`status --json`).
    pub fn code(self) -> &'static str {
        match self {
            Cause::TlsOnPlaintextPort => "tls_on_plaintext_port",
            Cause::PlaintextOnTlsPort => "plaintext_on_tls_port",
            Cause::HttpPort => "http_port",
            Cause::NotKafka => "not_kafka",
            Cause::SaslRequired => "sasl_required",
            Cause::AuthenticationFailed => "authentication_failed",
            Cause::CertificateNotTrusted => "certificate_not_trusted",
            Cause::HostNotFound => "host_not_found",
            Cause::ConnectionRefused => "connection_refused",
            Cause::TimedOut => "timed_out",
        }
    }

    /// What to change, for cluster `a` (an Event Hubs namespace when `event_hubs`: TLS is
    /// always on there, so only its endpoint can be wrong).
    pub fn fix(self, a: &str, event_hubs: bool) -> String {
        match self {
            Cause::TlsOnPlaintextPort if event_hubs => format!(
                "point clusters.{a}.bootstrap_servers at the namespace's Kafka endpoint (port \
                 9093), or leave it out to use the one its connection string names: an Event \
                 Hubs namespace always speaks TLS"
            ),
            Cause::TlsOnPlaintextPort => format!(
                "point clusters.{a}.bootstrap_servers at the brokers' TLS listener (Event Hubs: \
                 port 9093), or remove clusters.{a}.tls if the cluster is plaintext"
            ),
            Cause::PlaintextOnTlsPort => format!(
                "add `tls: {{}}` to clusters.{a} (with `ca_file` for a private CA), or point \
                 bootstrap_servers at the plaintext listener"
            ),
            Cause::HttpPort | Cause::NotKafka => format!(
                "check the port in clusters.{a}.bootstrap_servers: it must be a Kafka listener \
                 (usually 9092; Event Hubs 9093), not a web or other service"
            ),
            Cause::SaslRequired => format!(
                "add clusters.{a}.sasl (mechanism, username, password) as the brokers require"
            ),
            Cause::AuthenticationFailed if crate::entra::cell::of_cluster(a).is_some() => {
                entra_refused_fix(a)
            }
            Cause::AuthenticationFailed => format!(
                "check the credentials of clusters.{a}: the Event Hubs connection string \
                 (SharedAccessKeyName and SharedAccessKey of a policy of that namespace) or \
                 sasl.username and sasl.password"
            ),
            Cause::CertificateNotTrusted => format!(
                "set clusters.{a}.tls.ca_file to the PEM file of the CA that signed the brokers' \
                 certificate (or add that CA to the system trust store)"
            ),
            Cause::HostNotFound => format!(
                "check the host name in clusters.{a}.bootstrap_servers (a typo? DNS or VPN?)"
            ),
            Cause::ConnectionRefused => format!(
                "check the port in clusters.{a}.bootstrap_servers and that the brokers are up"
            ),
            Cause::TimedOut => format!(
                "check clusters.{a}.bootstrap_servers, that the brokers are up, and that no \
                 firewall drops the connection"
            ),
        }
    }
}

/// One cluster's connection problem: displays as one line naming the cluster, the broker,
/// the cause and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionProblem {
    /// The cluster's alias.
    pub alias: String,
    /// The broker (`host:port`) librdkafka named, when it named one.
    pub broker: Option<String>,
    /// What went wrong.
    pub cause: Cause,
    /// Whether the cluster is an Event Hubs namespace (the fix depends on it).
    pub event_hubs: bool,
}

impl std::fmt::Display for ConnectionProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cluster '{}'", self.alias)?;
        if let Some(b) = &self.broker {
            write!(f, " ({b})")?;
        }
        let (cause, fix) = (
            self.cause.describe(),
            self.cause.fix(&self.alias, self.event_hubs),
        );
        write!(f, ": {cause}; {fix}")
    }
}

impl ConnectionProblem {
    /// The problem librdkafka's `text` (a log line or an error reason) reveals on cluster
    /// `alias` (an Event Hubs namespace when `event_hubs`), if it reveals one.
    pub fn recognise(alias: &str, event_hubs: bool, text: &str) -> Option<ConnectionProblem> {
        recognise(text).map(|cause| ConnectionProblem {
            alias: alias.to_string(),
            broker: broker_of(text),
            cause,
            event_hubs,
        })
    }
}

/// The cause librdkafka's `text` reveals, if any.
pub fn recognise(text: &str) -> Option<Cause> {
    if let Some(size) = invalid_response_size(text) {
        return Some(classify_size(size));
    }
    let t = text.to_ascii_lowercase();
    let has = |s: &str| t.contains(s);
    // A plaintext client (no `ssl://` in the broker's name) whose first request is answered by
    // closing the connection: a TLS listener (or a broker older than Kafka 0.10).
    let closed_at_first_request =
        has("disconnected") && has("in state apiversion_query") && !has("ssl://");
    if has("connecting to a ssl listener?") || closed_at_first_request {
        Some(Cause::PlaintextOnTlsPort)
    } else if has("certificate verify failed") || has("certificate could not be verified") {
        Some(Cause::CertificateNotTrusted)
    } else if (has("ssl handshake failed")
        && (has("wrong version number")
            || has("plaintext broker listener")
            || has("packet length too long")
            || has("record layer failure")
            || has("unexpected eof")))
        || has("timed out in state ssl_handshake")
    {
        Some(Cause::TlsOnPlaintextPort)
    } else if has("sasl authentication error") || has("authentication failed") {
        Some(Cause::AuthenticationFailed)
    } else if has("broker might require sasl authentication") {
        Some(Cause::SaslRequired)
    } else if has("failed to resolve") {
        Some(Cause::HostNotFound)
    } else if has("connection refused") {
        Some(Cause::ConnectionRefused)
    } else if has("connection setup timed out") || has("connection timed out") {
        Some(Cause::TimedOut)
    } else {
        None
    }
}

/// `N` of librdkafka's "Invalid response size N": the first four bytes the port answered,
/// read as a Kafka length.
fn invalid_response_size(text: &str) -> Option<i32> {
    let rest = &text[text.find("Invalid response size ")? + "Invalid response size ".len()..];
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().ok()
}

fn classify_size(size: i32) -> Cause {
    let b = size.to_be_bytes();
    if &b == b"HTTP" {
        Cause::HttpPort
    } else if (0x14..=0x17).contains(&b[0]) && b[1] == 3 {
        // A TLS record header: content type (alert, handshake, ...), then version 3.x.
        Cause::PlaintextOnTlsPort
    } else {
        Cause::NotKafka
    }
}

/// The `host:port` of the broker a librdkafka text is about: `[thrd:...]: ` is skipped, then
/// the text starts with the broker's name, `[proto://]host:port/<id|bootstrap>: `.
pub fn broker_of(text: &str) -> Option<String> {
    let mut t = text.trim_start();
    if t.starts_with("[thrd:") {
        t = &t[t.find("]: ")? + 3..];
    }
    let name = &t[..t.find(": ")?];
    let name = name.split_once("://").map_or(name, |(_, rest)| rest);
    let (hostport, _id) = name.rsplit_once('/')?;
    let (host, port) = hostport.rsplit_once(':')?;
    (!host.is_empty() && !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()))
        .then(|| hostport.to_string())
}

/// How long a noted problem counts as current.
pub const CURRENT_FOR: Duration = Duration::from_secs(30);

/// The last problem of each cluster, and when it was last seen and last logged.
static BOARD: Mutex<Option<HashMap<String, Noted>>> = Mutex::new(None);

struct Noted {
    problem: ConnectionProblem,
    seen: Instant,
    logged: Instant,
}

/// Notes `p` as its cluster's current problem; returns whether it should be logged now: a new
/// or different problem at once, the same one again at most every [`CURRENT_FOR`].
pub fn note(p: &ConnectionProblem) -> bool {
    note_at(p, Instant::now())
}

fn note_at(p: &ConnectionProblem, now: Instant) -> bool {
    let mut guard = BOARD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let map = guard.get_or_insert_with(HashMap::new);
    match map.get_mut(&p.alias) {
        Some(n) if n.problem.cause == p.cause && now.duration_since(n.logged) < CURRENT_FOR => {
            n.seen = now;
            n.problem = p.clone();
            false
        }
        _ => {
            map.insert(
                p.alias.clone(),
                Noted {
                    problem: p.clone(),
                    seen: now,
                    logged: now,
                },
            );
            true
        }
    }
}

/// The problem of cluster `alias` seen within the last [`CURRENT_FOR`], if any.
pub fn recent(alias: &str) -> Option<ConnectionProblem> {
    let guard = BOARD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let n = guard.as_ref()?.get(alias)?;
    (n.seen.elapsed() <= CURRENT_FOR).then(|| n.problem.clone())
}

/// Whether `e` ("broker transport failure", "all broker connections are down") says less than
/// the problem of cluster `alias` already logged: then it needs no warning of its own.
pub fn already_named(alias: &str, e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode as Code;
    matches!(
        e.rdkafka_error_code(),
        Some(Code::AllBrokersDown | Code::BrokerTransportFailure)
    ) && recent(alias).is_some()
}

#[cfg(test)]
#[path = "diagnose_tests.rs"]
mod tests;
