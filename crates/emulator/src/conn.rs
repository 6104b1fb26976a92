//! One client connection: TLS handshake, then the SASL exchange (only ApiVersions, SaslHandshake
//! and SaslAuthenticate are allowed before it succeeds), then the relay to the upstream broker.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::api;
use super::auth::{self, Mechanism, Session};
use super::error::{ConnError, AUTH_TIMEOUT, TLS_HANDSHAKE_TIMEOUT};
use super::frame::{self, FrameError};
use super::versions;
use super::{relay, Shared, MAX_REQUEST_BYTES};

/// How long connecting to the upstream broker may take.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one client until it leaves, breaks a rule, `shutdown` is cancelled or a network cut
/// cancels `cut`, and logs why the connection ended. Ending drops the client's connection and
/// the upstream one with it, whatever was in flight on them.
pub(crate) async fn handle(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    cut: CancellationToken,
) {
    let _ = tcp.set_nodelay(true);
    let result = tokio::select! {
        _ = shutdown.cancelled() => Ok(()),
        _ = cut.cancelled() => {
            shared.cut.count_closed();
            info!("connection closed by a network cut");
            return;
        }
        result = run(tcp, acceptor, &shared) => result,
    };
    match result {
        Ok(()) => debug!("connection closed"),
        Err(ConnError::Frame(FrameError::TooLarge { size, limit })) => {
            warn!(
                size,
                limit, "request over the size limit: not forwarded, connection closed"
            )
        }
        Err(ConnError::AuthFailed(reason)) => {
            warn!(%reason, "SASL authentication failed: connection closed")
        }
        Err(ConnError::SessionExpired) => {
            info!("session expired without re-authentication: connection closed")
        }
        Err(e) if e.is_disconnect() => debug!(error = %e, "connection ended"),
        Err(e) => warn!(error = %e, "connection closed"),
    }
}

async fn run(tcp: TcpStream, acceptor: TlsAcceptor, shared: &Shared) -> Result<(), ConnError> {
    let peer = tcp.peer_addr().ok().map(|a| a.ip());
    let mut client = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .map_err(|_| ConnError::TlsTimeout)?
        .map_err(ConnError::Tls)?;
    let session = tokio::time::timeout(AUTH_TIMEOUT, authenticate(&mut client, shared))
        .await
        .map_err(|_| ConnError::AuthTimeout)??;
    let Some(session) = session else {
        return Ok(());
    };
    let upstream_err = |reason: String| ConnError::UpstreamConnect {
        upstream: shared.upstream.clone(),
        reason,
    };
    let upstream = tokio::time::timeout(
        UPSTREAM_CONNECT_TIMEOUT,
        TcpStream::connect(&shared.upstream),
    )
    .await
    .map_err(|_| upstream_err(format!("timed out after {UPSTREAM_CONNECT_TIMEOUT:?}")))?
    .map_err(|e| upstream_err(e.to_string()))?;
    let _ = upstream.set_nodelay(true);
    relay::run(client, upstream, shared, peer, session).await
}

/// Where a connection is in the SASL exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SaslState {
    /// Nothing yet.
    Start,
    /// SaslHandshake v1 done: a SaslAuthenticate request for this mechanism comes next.
    Handshaken(Mechanism),
    /// SaslHandshake v0 done: the PLAIN token comes next as a bare frame.
    RawToken,
}

/// Runs the pre-authentication exchange. `Ok(Some(session))` once authenticated, `Ok(None)`
/// if the client left; errors close the connection (after the response that explains them,
/// if any).
async fn authenticate<S>(client: &mut S, shared: &Shared) -> Result<Option<Session>, ConnError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut state = SaslState::Start;
    loop {
        let Some(frame) = frame::read_frame(client, MAX_REQUEST_BYTES).await? else {
            return Ok(None);
        };
        if state == SaslState::RawToken {
            return match auth::check_plain(shared, &frame.raw()[4..]) {
                Ok(cs) => {
                    info!(
                        key_name = %cs.key_name,
                        entity_path = cs.entity_path.as_deref(),
                        "authenticated (SASL handshake v0)"
                    );
                    send(client, &[0, 0, 0, 0]).await?;
                    Ok(Some(Session::plain(cs.key_name)))
                }
                // Kafka closes without a response when a bare token is refused.
                Err(reason) => Err(ConnError::AuthFailed(reason.into())),
            };
        }
        let peek = frame.peek()?;
        match ApiKey::try_from(peek.api_key) {
            Ok(ApiKey::ApiVersions) => {
                let versions = versions::advertised(versions::upstream_versions(shared).await?);
                send(client, &api::api_versions(&frame, peek, versions)?).await?;
            }
            Ok(ApiKey::SaslHandshake) => {
                if state != SaslState::Start {
                    return Err(ConnError::SaslState("second SaslHandshake"));
                }
                let name = api::sasl_handshake_mechanism(&frame)?;
                let chosen = auth::choose(shared, name.as_str(), peek.api_version);
                let answer = api::sasl_handshake(peek, chosen.is_some(), &auth::enabled(shared))?;
                send(client, &answer).await?;
                let Some(mechanism) = chosen else {
                    info!(mechanism = %name, version = peek.api_version, "SASL mechanism not enabled");
                    return Err(ConnError::Mechanism);
                };
                state = if peek.api_version == 0 {
                    SaslState::RawToken
                } else {
                    SaslState::Handshaken(mechanism)
                };
            }
            Ok(ApiKey::SaslAuthenticate) => {
                let SaslState::Handshaken(mechanism) = state else {
                    let refusal = (ResponseError::IllegalSaslState, "SaslHandshake first");
                    send(client, &api::sasl_authenticate(peek, Some(refusal), 0)?).await?;
                    return Err(ConnError::SaslState(
                        "SaslAuthenticate before SaslHandshake",
                    ));
                };
                let (answer, outcome) = auth::authenticate(shared, mechanism, &frame, peek, None)?;
                send(client, &answer).await?;
                return match outcome {
                    Ok(accepted) => Ok(Some(Session::new(mechanism, accepted))),
                    Err(reason) => Err(ConnError::AuthFailed(reason)),
                };
            }
            _ => {
                return Err(ConnError::Unauthenticated {
                    api_key: peek.api_key,
                    api_version: peek.api_version,
                })
            }
        }
    }
}

/// Writes a whole frame and flushes it out of the TLS layer.
async fn send<S: AsyncWrite + Unpin>(client: &mut S, bytes: &[u8]) -> Result<(), ConnError> {
    client.write_all(bytes).await.map_err(FrameError::Io)?;
    client.flush().await.map_err(FrameError::Io)?;
    Ok(())
}
