//! An emulator of the Azure Event Hubs Kafka endpoint, in front of a real Kafka-API broker.
//!
//! It behaves like the service where hubmirror can tell the difference: TLS only, SASL `PLAIN`
//! with the username `$ConnectionString` and a connection string as the password, and connections
//! closed when a request exceeds [`MAX_REQUEST_BYTES`]. With [`EmulatorConfig::entra`] it also
//! plays Microsoft Entra ID: token endpoints (client secret, workload identity, managed
//! identity) on their own HTTP port, SASL `OAUTHBEARER` with the tokens they issue, sessions
//! that end when the token expires unless re-authenticated, and optionally no local (SAS)
//! authentication at all. After authentication every request is
//! relayed byte for byte to the upstream broker (tansu in tests and the demo), which must
//! advertise the emulator's address so that clients come back through it.
//!
//! A running emulator can throttle like the service ([`Emulator::throttle_for`]: Produce
//! requests are delayed, and refused with POLICY_VIOLATION when delayed past half their
//! timeout) and reports what it saw ([`Emulator::stats`]: held and refused Produce requests,
//! record batches per compression codec). Fault tests can also cut the network
//! ([`Emulator::cut_connections_for`]: every connection closed, new ones refused for a while)
//! and emulate retention ([`Emulator::expire_before`]: a partition's older records reported as
//! deleted, which the upstream broker cannot do). Consumer groups are described with each
//! member's client id, host and assignment, which tansu leaves out.
//!
//! # Layout
//!
//! - `tls`: the CA and server certificate (generated or reused) and the rustls config.
//! - `sasl`: `PLAIN` payload and connection-string parsing, the credential check.
//! - `auth`: the SASL rules (mechanisms, PLAIN and OAUTHBEARER checks) for first
//!   authentications and re-authentications.
//! - `entra`: Microsoft Entra ID: signing key, token endpoints (HTTP), OAUTHBEARER tokens.
//! - `reauth`: sessions on live connections: re-authentication (KIP-368) and expiry.
//! - `frame`: length-prefixed Kafka frames, header peeking, response encoding.
//! - `versions`: the upstream broker's API versions and what the emulator advertises.
//! - `api`: the answers the emulator gives itself (ApiVersions, SASL, refused CreateTopics and
//!   Produce requests).
//! - `control`: throttle windows and the counters behind [`Emulator::stats`].
//! - `cut`: network cuts (the token connections watch, the refusal window).
//! - `metadata`: Metadata requests that name topics never create them unless they allow it.
//! - `retention`: emulated log starts, Fetch and ListOffsets responses rewritten for them.
//! - `groups`: DescribeGroups answers filled in with each member's client id, host and
//!   assignment, as a Kafka coordinator gives them (the upstream broker may not).
//! - `error`: why a connection was closed, and the time limits involved.
//! - `conn`: one client connection: TLS, SASL state machine, then `relay`.
//! - `relay`: authenticated traffic, client ↔ upstream, responses kept in request order.

mod api;
mod auth;
mod configs;
mod conn;
mod control;
mod cut;
mod entra;
mod error;
mod frame;
mod groups;
mod metadata;
mod reauth;
mod relay;
mod retention;
mod sasl;
mod tls;
mod versions;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::api_versions_response::ApiVersion;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn, Instrument};

pub use control::{Compression, EmulatorStats};
pub use entra::{
    EntraApp, EntraConfig, EntraStats, TokenIssuer, DEFAULT_NAMESPACE, DEFAULT_TENANT,
};
pub use tls::TlsError;

/// Requests larger than this (the frame length, in bytes) make Event Hubs close the connection.
pub const MAX_REQUEST_BYTES: usize = 1_046_528;

/// How an [`Emulator`] listens, where it relays to and which credentials it accepts.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// Address to listen on; port 0 picks a free port (see [`Emulator::local_addr`]).
    pub listen: SocketAddr,
    /// `host:port` of the upstream Kafka-API broker (tansu), plain TCP.
    pub upstream: String,
    /// The `SharedAccessKeyName` clients must present, e.g. `RootManageSharedAccessKey`.
    pub key_name: String,
    /// The `SharedAccessKey` clients must present. Secret: never printed by `Debug`.
    pub key: String,
    /// Directory for `ca.pem` (what clients trust), the CA key and the server certificate.
    /// An existing CA there is reused, so clients keep trusting restarted emulators.
    pub cert_dir: PathBuf,
    /// Host names or IP addresses added to the server certificate besides `localhost` and
    /// `127.0.0.1`.
    pub extra_hosts: Vec<String>,
    /// Answer every CreateTopics request with POLICY_VIOLATION instead of relaying it, like a
    /// namespace where topic creation through the Kafka admin API is not available.
    pub refuse_create_topics: bool,
    /// Play Microsoft Entra ID too: token endpoints on their own HTTP port, SASL OAUTHBEARER
    /// on the Kafka listener (see [`EntraConfig`]). `None`: PLAIN only, as before.
    pub entra: Option<EntraConfig>,
}

impl fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("listen", &self.listen)
            .field("upstream", &self.upstream)
            .field("key_name", &self.key_name)
            .field("key", &"***")
            .field("cert_dir", &self.cert_dir)
            .field("extra_hosts", &self.extra_hosts)
            .field("refuse_create_topics", &self.refuse_create_topics)
            .field("entra", &self.entra)
            .finish()
    }
}

/// Why an emulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The certificates could not be generated, read or written, or rustls rejected them.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from the configuration.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// What every connection task shares.
pub(crate) struct Shared {
    /// `host:port` of the upstream broker.
    pub(crate) upstream: String,
    /// The credentials clients must present.
    pub(crate) credentials: sasl::Credentials,
    /// See [`EmulatorConfig::refuse_create_topics`].
    pub(crate) refuse_create_topics: bool,
    /// The upstream broker's API versions, asked once on first need: the broker may start after
    /// the emulator (it must advertise the emulator's address, known only once bound).
    pub(crate) upstream_versions: tokio::sync::OnceCell<Vec<ApiVersion>>,
    /// Throttle windows and counters, changed and read through [`Emulator`].
    pub(crate) control: control::Control,
    /// Network cuts, see [`Emulator::cut_connections_for`].
    pub(crate) cut: cut::Cut,
    /// Emulated log starts, see [`Emulator::expire_before`].
    pub(crate) retention: retention::Retention,
    /// What the emulator learnt of consumer-group members, for DescribeGroups.
    pub(crate) groups: Arc<groups::Book>,
    /// The Entra ID side, when configured.
    pub(crate) entra: Option<Arc<entra::Entra>>,
}

/// A running emulator. Stopping it is the job of the [`CancellationToken`] given to
/// [`Emulator::start`]; [`Emulator::stopped`] waits until every connection is closed.
pub struct Emulator {
    local_addr: SocketAddr,
    ca_file: PathBuf,
    key_name: String,
    key: String,
    /// The accept loop; it returns once cancelled and every connection task has ended.
    server: JoinHandle<()>,
    /// The Entra ID HTTP endpoints, when configured; they return once cancelled.
    entra_server: Option<JoinHandle<()>>,
    /// What the connection tasks share, for the runtime controls and counters.
    shared: Arc<Shared>,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("local_addr", &self.local_addr)
            .field("ca_file", &self.ca_file)
            .field("key_name", &self.key_name)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Binds, generates (or reuses from `cert_dir`) the CA and server certificate, and starts
    /// serving in a tokio task until `shutdown` is cancelled.
    pub async fn start(
        config: EmulatorConfig,
        shutdown: CancellationToken,
    ) -> Result<Emulator, EmulatorError> {
        let material = tls::prepare(&config.cert_dir, &config.extra_hosts)?;
        let acceptor = TlsAcceptor::from(material.server_config);
        let bind_err = |source| EmulatorError::Bind {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        let (entra, entra_listener) = match &config.entra {
            None => (None, None),
            Some(ec) => {
                let bind_err = |source| EmulatorError::Bind {
                    addr: ec.listen,
                    source,
                };
                let http = TcpListener::bind(ec.listen).await.map_err(bind_err)?;
                let addr = http.local_addr().map_err(bind_err)?;
                (Some(Arc::new(entra::Entra::new(ec, addr))), Some(http))
            }
        };
        let shared = Arc::new(Shared {
            upstream: config.upstream.clone(),
            credentials: sasl::Credentials::new(&config.key_name, &config.key),
            refuse_create_topics: config.refuse_create_topics,
            upstream_versions: tokio::sync::OnceCell::new(),
            control: control::Control::default(),
            cut: cut::Cut::default(),
            retention: retention::Retention::default(),
            groups: Arc::default(),
            entra: entra.clone(),
        });
        info!(
            %local_addr,
            upstream = %config.upstream,
            ca = %material.ca_file.display(),
            refuse_create_topics = config.refuse_create_topics,
            "event hubs emulator listening"
        );
        let entra_server = match (entra, entra_listener) {
            (Some(entra), Some(http)) => {
                info!(
                    authority = %entra.authority,
                    tenant = %entra.tenant_id,
                    namespace = %entra.namespace,
                    local_auth = entra.local_auth,
                    "entra id endpoints listening"
                );
                let task = entra::http::serve(http, entra, shutdown.clone());
                Some(tokio::spawn(task))
            }
            _ => None,
        };
        let server = tokio::spawn(serve(listener, acceptor, shared.clone(), shutdown));
        Ok(Emulator {
            local_addr,
            ca_file: material.ca_file,
            key_name: config.key_name,
            key: config.key,
            server,
            entra_server,
            shared,
        })
    }

    /// The address the emulator listens on (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The PEM file of the CA that signed the server certificate (`ssl.ca.location`).
    pub fn ca_file(&self) -> PathBuf {
        self.ca_file.clone()
    }

    /// A connection string this emulator accepts:
    /// `Endpoint=sb://localhost:<port>/;SharedAccessKeyName=..;SharedAccessKey=..` (the port makes
    /// hubmirror's derived bootstrap point here). Contains the key.
    pub fn connection_string(&self) -> String {
        format!(
            "Endpoint=sb://localhost:{}/;SharedAccessKeyName={};SharedAccessKey={}",
            self.local_addr().port(),
            self.key_name,
            self.key
        )
    }

    /// Throttles like Event Hubs for `duration` from now, replacing any open throttle window
    /// (`Duration::ZERO` ends it). While the window is open, every Produce request that expects
    /// a response (`acks` not 0) is held before being forwarded, blocking the requests behind
    /// it on its connection:
    ///
    /// - if the window closes within half the request's `timeout_ms`, the request is forwarded
    ///   unchanged (counted in [`EmulatorStats::produce_requests_delayed`]);
    /// - otherwise it is answered with POLICY_VIOLATION for every partition and its connection
    ///   is closed, so that nothing pipelined behind it is ever written
    ///   ([`EmulatorStats::produce_requests_rejected`]).
    ///
    /// Half the timeout, so that the answer reaches the client before the client's own timer
    /// for the request (librdkafka sets both from `request.timeout.ms`) turns it into a timeout.
    /// Can be called from any thread.
    pub fn throttle_for(&self, duration: Duration) {
        self.throttle_until(Instant::now() + duration);
    }

    /// Like [`Emulator::throttle_for`], with the end of the window given as an instant (one not
    /// in the future ends the window).
    pub fn throttle_until(&self, until: Instant) {
        if until > Instant::now() {
            info!(window = ?until.saturating_duration_since(Instant::now()), "throttling produce requests");
        }
        self.shared.control.throttle_until(until);
    }

    /// Cuts the network for `duration` from now: every open client connection is closed at
    /// once, together with its upstream connection (requests in flight on it are never
    /// answered), and until the window ends new TCP connections are accepted and closed at
    /// once, before TLS. After the window, connections work normally. A later cut replaces the
    /// window; `Duration::ZERO` only closes the open connections. Counted in
    /// [`EmulatorStats::connections_cut`] and [`EmulatorStats::connections_refused`]. Can be
    /// called from any thread.
    pub fn cut_connections_for(&self, duration: Duration) {
        info!(window = ?duration, "network cut: closing every connection");
        self.shared.cut.cut_for(duration);
    }

    /// Emulates retention for `topic`/`partition`: from now on the partition behaves like a log
    /// whose records before `log_start` were deleted (the upstream broker cannot delete).
    /// ListOffsets answers no offset below `log_start` (EARLIEST gives `log_start`); a Fetch
    /// below `log_start` gets OFFSET_OUT_OF_RANGE for that partition, no records and
    /// `log_start_offset` = `log_start`, while the request's other partitions get the broker's
    /// answer; Fetch at or above `log_start` is relayed with `log_start_offset` raised to it.
    /// A log start never moves back: a lower `log_start` than an earlier call's is ignored.
    /// Applies to every connection, also to those already open. Can be called from any thread.
    pub fn expire_before(&self, topic: &str, partition: i32, log_start: i64) {
        let start = self
            .shared
            .retention
            .expire_before(topic, partition, log_start);
        info!(
            topic,
            partition,
            log_start = start,
            "emulated retention: log start moved"
        );
    }

    /// What the emulator counted since it started: held and refused Produce requests, the
    /// record batches of forwarded Produce requests by compression codec, and connections
    /// closed or refused by network cuts.
    pub fn stats(&self) -> EmulatorStats {
        let mut stats = self.shared.control.stats();
        (stats.connections_cut, stats.connections_refused) = self.shared.cut.counts();
        stats
    }

    /// Waits until the emulator has stopped: the shutdown token was cancelled and every
    /// connection is closed.
    pub async fn stopped(self) {
        if let Err(e) = self.server.await {
            warn!(error = %e, "emulator accept loop ended abnormally");
        }
        if let Some(http) = self.entra_server {
            if let Err(e) = http.await {
                warn!(error = %e, "entra endpoints ended abnormally");
            }
        }
    }
}

/// Accepts connections until `shutdown`, then waits for the connection tasks to end.
async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                // Taken before the window is checked: a cut in between either closes this
                // connection through the token or refuses it through the window.
                let cut = shared.cut.token();
                if shared.cut.refusing(Instant::now()) {
                    shared.cut.count_refused();
                    debug!(%peer, "connection refused: network cut");
                    drop(tcp);
                    continue;
                }
                debug!(%peer, "connection accepted");
                let span = tracing::info_span!("emulator_conn", %peer);
                let task =
                    conn::handle(tcp, acceptor.clone(), shared.clone(), shutdown.clone(), cut);
                tracker.spawn(task.instrument(span));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
    info!("event hubs emulator stopped");
}

#[cfg(test)]
#[path = "lib_tests.rs"]
mod tests;
