//! [`ConnError`]: why the emulator closed a client connection (or it broke), and the time
//! limits those reasons name.

use std::time::Duration;

use super::auth::Refusal;
use super::frame::FrameError;
use super::versions::UpstreamError;

/// A client that has not finished its TLS handshake by then is dropped.
pub(crate) const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that has not authenticated by then is dropped.
pub(crate) const AUTH_TIMEOUT: Duration = Duration::from_secs(30);
/// After a refused Produce request: how long the upstream responses owed before the refusal
/// may take to arrive.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a connection was closed by the emulator (or broke).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    /// The TLS handshake failed, e.g. the client does not trust the CA.
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    /// The TLS handshake did not finish in time.
    #[error("TLS handshake timed out after {TLS_HANDSHAKE_TIMEOUT:?}")]
    TlsTimeout,
    /// Reading or writing a frame failed, or the client sent an oversize request.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A request other than ApiVersions/SASL arrived before authentication.
    #[error("api key {api_key} v{api_version} before authentication")]
    Unauthenticated {
        /// The API of the request.
        api_key: i16,
        /// Its version.
        api_version: i16,
    },
    /// The client asked for a mechanism that is not enabled.
    #[error("SASL mechanism not enabled")]
    Mechanism,
    /// SASL requests out of order (authenticate before handshake, handshake after success).
    #[error("SASL request out of sequence: {0}")]
    SaslState(&'static str),
    /// The credentials were refused.
    #[error("authentication failed: {0}")]
    AuthFailed(Refusal),
    /// An OAUTHBEARER session reached its token's expiry without re-authentication.
    #[error("session expired without re-authentication")]
    SessionExpired,
    /// No successful authentication in time.
    #[error("not authenticated within {AUTH_TIMEOUT:?}")]
    AuthTimeout,
    /// The upstream broker's API versions are unknown.
    #[error(transparent)]
    UpstreamVersions(#[from] UpstreamError),
    /// The upstream broker is unreachable.
    #[error("cannot connect to upstream {upstream}: {reason}")]
    UpstreamConnect {
        /// `host:port`.
        upstream: String,
        /// The reason.
        reason: String,
    },
    /// The upstream broker closed its side.
    #[error("upstream closed the connection")]
    UpstreamClosed,
    /// After a refused Produce request, the upstream responses owed before it did not arrive.
    #[error(
        "upstream responses owed before a refused produce request not received within {:?}",
        DRAIN_TIMEOUT
    )]
    DrainTimeout,
    /// The upstream broker answered out of order (or a request was misclassified).
    #[error("upstream response for correlation id {got}, expected {expected}")]
    CorrelationMismatch {
        /// The id of the oldest outstanding request.
        expected: i32,
        /// The id in the response.
        got: i32,
    },
}

impl ConnError {
    /// A peer went away: routine, not worth a warning.
    pub(crate) fn is_disconnect(&self) -> bool {
        matches!(
            self,
            ConnError::Frame(FrameError::Io(_) | FrameError::Truncated) | ConnError::UpstreamClosed
        )
    }
}
