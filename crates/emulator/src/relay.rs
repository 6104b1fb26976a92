//! Authenticated traffic: requests go to the upstream broker byte for byte, responses come back
//! byte for byte, in request order.
//!
//! Two loops share the connection. The request loop reads client frames, answers the few the
//! emulator handles itself, forwards the rest, and queues one [`Pending`] entry per expected
//! response. The response loop takes the entries in order and writes either the emulator's own
//! answer or the next upstream response, so answers the emulator makes never overtake earlier
//! upstream responses (Kafka clients may rely on that ordering).
//!
//! Produce requests are decoded once: for `acks` (no response is owed for `acks=0`), for the
//! record batches' codecs (counted in the emulator's stats) and, while a throttle window is
//! open, for `timeout_ms` (see [`super::control`]). A held request blocks the request loop, so
//! nothing behind it on the connection overtakes it. A request held past half its timeout is
//! refused with POLICY_VIOLATION and the connection is closed once every earlier response and
//! the refusal have been written: requests pipelined behind it are never forwarded, like the
//! service whose idempotent-producer sequence check would reject them (forwarding them would
//! leave a gap where the refused batch was).
//!
//! While a log start is set for retention emulation, Fetch and ListOffsets requests are decoded
//! too; those naming such a partition have their upstream response rewritten (see
//! [`super::retention`]). Metadata requests are decoded: one that names topics without allowing
//! their creation goes upstream as a request for all topics and its answer is cut back (see
//! [`super::metadata`]). JoinGroup and SyncGroup requests and JoinGroup and DescribeGroups
//! answers are decoded to describe groups as a Kafka coordinator does (see [`super::groups`]).
//! Other responses are never decoded.
//!
//! SaslHandshake and SaslAuthenticate requests are re-authentications (KIP-368): answered by
//! the emulator in the same queue (see [`super::reauth`]); an OAUTHBEARER session not
//! re-authenticated before its token expires closes the connection then.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::api;
use super::auth::Session;
use super::configs;
use super::control::Hold;
use super::entra;
use super::error::{ConnError, DRAIN_TIMEOUT};
use super::frame::{self, FrameError};
use super::groups;
use super::metadata;
use super::reauth::{self, Reauth, Step};
use super::retention;
use super::versions;
use super::{Shared, MAX_REQUEST_BYTES};

/// Requests in flight per connection before the emulator stops reading from the client.
const MAX_IN_FLIGHT: usize = 1024;
/// Read buffer on the upstream side: many small responses in few reads.
const UPSTREAM_READ_BUFFER: usize = 64 * 1024;
/// The response buffer is shrunk back to this after an unusually large response.
const RESPONSE_BUFFER_KEEP: usize = 4 * 1024 * 1024;
/// After a refused Produce request, once everything owed is written and the emulator's side is
/// shut: how long whatever the client still sends is read and discarded (never parsed nor
/// forwarded) while waiting for it to close. Closing a socket with unread input makes the
/// kernel reset the connection, which can destroy the refusal before the client reads it.
const LINGER: Duration = Duration::from_secs(2);

/// A response the client is owed, in request order.
#[derive(Debug)]
enum Pending {
    /// The upstream broker will answer the request with this correlation id.
    Upstream(i32),
    /// Likewise, and the answer is rewritten.
    Rewrite(i32, Answer),
    /// The emulator's own answer, a whole frame.
    Local(Bytes),
}

/// How an upstream answer is rewritten before it is relayed.
#[derive(Debug)]
enum Answer {
    /// For retention emulation (see [`retention`]).
    Retention(retention::Rewrite),
    /// Cut back to the topics a Metadata request named (see [`metadata`]).
    Metadata(metadata::Rewrite),
    /// Read for the member id it gives (see [`groups`]).
    Join(groups::Join),
    /// Filled in with the members' client ids, hosts and assignments (see [`groups`]).
    Describe(groups::Describe),
}

impl Answer {
    fn apply(&self, response: &[u8]) -> Result<Bytes, FrameError> {
        match self {
            Answer::Retention(r) => retention::rewrite(response, r),
            Answer::Metadata(r) => metadata::rewrite(response, r),
            Answer::Join(j) => groups::note_join(response, j),
            Answer::Describe(d) => groups::describe(response, d),
        }
    }
}

/// How the request loop ended without an error.
enum RequestsEnd<R> {
    /// The client closed its side (or the response loop ended first).
    Closed,
    /// A Produce request or a re-authentication was refused; the refusal is the last
    /// [`Pending`] entry. The client's read half is handed back for the lingering close.
    Refused(R),
}

/// Relays until either side closes or breaks a rule.
pub(crate) async fn run<C>(
    client: C,
    upstream: TcpStream,
    shared: &Shared,
    peer: Option<IpAddr>,
    session: Session,
) -> Result<(), ConnError>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let (client_read, client_write) = tokio::io::split(client);
    let (upstream_read, upstream_write) = upstream.into_split();
    let (pending_tx, pending_rx) = mpsc::channel(MAX_IN_FLIGHT);
    let (reauth, session_watch) = Reauth::new(session);
    let requests = requests(
        client_read,
        upstream_write,
        pending_tx,
        shared,
        peer,
        reauth,
    );
    let responses = responses(upstream_read, client_write, pending_rx);
    tokio::pin!(responses);
    let mut client_read = tokio::select! {
        result = requests => match result? {
            RequestsEnd::Closed => return Ok(()),
            RequestsEnd::Refused(client_read) => client_read,
        },
        result = &mut responses => return result.map(drop),
        () = reauth::session_end(session_watch) => {
            if let Some(entra) = &shared.entra {
                entra::bump(&entra.counters.expired);
            }
            return Err(ConnError::SessionExpired);
        }
    };
    // The request loop has ended and dropped its sender: the response loop writes what is
    // still owed, the refusal last, and returns.
    let mut client_write = tokio::time::timeout(DRAIN_TIMEOUT, responses)
        .await
        .map_err(|_| ConnError::DrainTimeout)??;
    client_write.shutdown().await.map_err(FrameError::Io)?;
    let mut discard = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(1..) = client_read.read(&mut discard).await {}
    })
    .await;
    Ok(())
}

/// Client → upstream.
async fn requests<R: AsyncRead + Unpin>(
    mut client: R,
    mut upstream: OwnedWriteHalf,
    pending: mpsc::Sender<Pending>,
    shared: &Shared,
    peer: Option<IpAddr>,
    mut reauth: Reauth,
) -> Result<RequestsEnd<R>, ConnError> {
    while let Some(frame) = frame::read_frame(&mut client, MAX_REQUEST_BYTES).await? {
        let peek = frame.peek()?;
        // What goes upstream: the request as received, unless a branch below says otherwise.
        let mut forward = Some(frame.raw().clone());
        let owed = match ApiKey::try_from(peek.api_key) {
            Ok(ApiKey::ApiVersions) => {
                let versions = versions::advertised(versions::upstream_versions(shared).await?);
                Some(Pending::Local(api::api_versions(&frame, peek, versions)?))
            }
            Ok(ApiKey::CreateTopics) if shared.refuse_create_topics => {
                Some(Pending::Local(api::refuse_create_topics(&frame, peek)?))
            }
            Ok(ApiKey::CreateTopics) => match configs::plan_create_topics(&frame, peek)? {
                Some(answer) => Some(Pending::Local(answer)),
                None => Some(Pending::Upstream(peek.correlation_id)),
            },
            Ok(key @ (ApiKey::AlterConfigs | ApiKey::IncrementalAlterConfigs)) => {
                Some(Pending::Local(configs::refuse_alter(&frame, peek, key)?))
            }
            Ok(key @ (ApiKey::SaslHandshake | ApiKey::SaslAuthenticate)) => {
                let step = if key == ApiKey::SaslHandshake {
                    reauth.handshake(shared, &frame, peek)?
                } else {
                    reauth.authenticate(shared, &frame, peek)?
                };
                match step {
                    Step::Answer(answer) => Some(Pending::Local(answer)),
                    Step::Close(answer) => {
                        if pending.send(Pending::Local(answer)).await.is_err() {
                            return Ok(RequestsEnd::Closed);
                        }
                        return Ok(RequestsEnd::Refused(client));
                    }
                }
            }
            Ok(ApiKey::Produce) => {
                let request = api::decode_produce(&frame)?;
                if request.acks == 0 {
                    // Nothing to answer, so nothing to refuse: never held.
                    shared.control.count_batches(&request);
                    None
                } else {
                    match shared.control.hold(request.timeout_ms).await {
                        Hold::Pass => {}
                        Hold::Released(held) => debug!(
                            correlation_id = peek.correlation_id,
                            ?held,
                            "throttled produce request released"
                        ),
                        Hold::Expired(held) => {
                            info!(
                                correlation_id = peek.correlation_id,
                                timeout_ms = request.timeout_ms,
                                ?held,
                                "produce request throttled past half its timeout: \
                                 POLICY_VIOLATION, connection closed"
                            );
                            let refusal = api::refuse_produce(peek, &request, held)?;
                            if pending.send(Pending::Local(refusal)).await.is_err() {
                                return Ok(RequestsEnd::Closed);
                            }
                            return Ok(RequestsEnd::Refused(client));
                        }
                    }
                    shared.control.count_batches(&request);
                    Some(Pending::Upstream(peek.correlation_id))
                }
            }
            Ok(ApiKey::Fetch | ApiKey::ListOffsets) if !shared.retention.is_empty() => {
                match retention::plan(&frame, peek, &shared.retention)? {
                    Some(r) => Some(Pending::Rewrite(peek.correlation_id, Answer::Retention(r))),
                    None => Some(Pending::Upstream(peek.correlation_id)),
                }
            }
            Ok(ApiKey::Metadata) => match metadata::plan(&frame, peek)? {
                Some((instead, r)) => {
                    forward = Some(instead);
                    Some(Pending::Rewrite(peek.correlation_id, Answer::Metadata(r)))
                }
                None => Some(Pending::Upstream(peek.correlation_id)),
            },
            Ok(ApiKey::JoinGroup) => match groups::plan_join(&shared.groups, &frame, peek, peer)? {
                Some(j) => Some(Pending::Rewrite(peek.correlation_id, Answer::Join(j))),
                None => Some(Pending::Upstream(peek.correlation_id)),
            },
            Ok(ApiKey::SyncGroup) => {
                groups::note_sync(&shared.groups, &frame, peek)?;
                Some(Pending::Upstream(peek.correlation_id))
            }
            Ok(ApiKey::DescribeGroups) => match groups::plan_describe(&shared.groups, peek) {
                Some(d) => Some(Pending::Rewrite(peek.correlation_id, Answer::Describe(d))),
                None => Some(Pending::Upstream(peek.correlation_id)),
            },
            _ => Some(Pending::Upstream(peek.correlation_id)),
        };
        if matches!(owed, Some(Pending::Local(_))) {
            forward = None;
        }
        if let Some(bytes) = forward {
            upstream.write_all(&bytes).await.map_err(FrameError::Io)?;
        }
        if let Some(owed) = owed {
            if pending.send(owed).await.is_err() {
                // The response loop has ended; its result is the connection's.
                return Ok(RequestsEnd::Closed);
            }
        }
    }
    Ok(RequestsEnd::Closed)
}

/// Upstream → client, in request order, until the request loop has ended and everything it
/// queued is written. Hands the client's write half back.
async fn responses<W: AsyncWrite + Unpin>(
    upstream: OwnedReadHalf,
    mut client: W,
    mut pending: mpsc::Receiver<Pending>,
) -> Result<W, ConnError> {
    let mut upstream = BufReader::with_capacity(UPSTREAM_READ_BUFFER, upstream);
    let mut buf = Vec::new();
    while let Some(owed) = pending.recv().await {
        let (expected, rewrite) = match owed {
            Pending::Local(bytes) => {
                client.write_all(&bytes).await.map_err(FrameError::Io)?;
                client.flush().await.map_err(FrameError::Io)?;
                continue;
            }
            Pending::Upstream(expected) => (expected, None),
            Pending::Rewrite(expected, rewrite) => (expected, Some(rewrite)),
        };
        read_response(&mut upstream, &mut buf).await?;
        let got = buf
            .get(4..8)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(-1);
        if got != expected {
            return Err(ConnError::CorrelationMismatch { expected, got });
        }
        match rewrite {
            None => client.write_all(&buf).await,
            Some(answer) => client.write_all(&answer.apply(&buf)?).await,
        }
        .map_err(FrameError::Io)?;
        if buf.capacity() > RESPONSE_BUFFER_KEEP {
            buf.clear();
            buf.shrink_to(RESPONSE_BUFFER_KEEP);
        }
        client.flush().await.map_err(FrameError::Io)?;
    }
    Ok(client)
}

/// Reads one whole response frame, length prefix included, into `buf`.
async fn read_response<R: AsyncRead + Unpin>(
    upstream: &mut R,
    buf: &mut Vec<u8>,
) -> Result<(), ConnError> {
    buf.clear();
    buf.resize(4, 0);
    let first = upstream.read(&mut buf[..1]).await.map_err(FrameError::Io)?;
    if first == 0 {
        return Err(ConnError::UpstreamClosed);
    }
    frame::read_exact(upstream, &mut buf[1..4]).await?;
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    buf.resize(4 + len, 0);
    frame::read_exact(upstream, &mut buf[4..]).await?;
    Ok(())
}
