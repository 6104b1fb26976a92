//! Authenticated traffic: requests go to the upstream broker byte for byte, responses come back
//! byte for byte, in request order.
//!
//! Two loops share the connection. The request loop reads client frames, answers the few the
//! emulator handles itself, forwards the rest, and queues one [`Pending`] entry per expected
//! response. The response loop takes the entries in order and writes either the emulator's own
//! answer or the next upstream response, so answers the emulator makes never overtake earlier
//! upstream responses (Kafka clients may rely on that ordering).

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::api;
use super::conn::ConnError;
use super::frame::{self, FrameError};
use super::{Shared, MAX_REQUEST_BYTES};

/// Requests in flight per connection before the emulator stops reading from the client.
const MAX_IN_FLIGHT: usize = 1024;
/// Read buffer on the upstream side: many small responses in few reads.
const UPSTREAM_READ_BUFFER: usize = 64 * 1024;
/// The response buffer is shrunk back to this after an unusually large response.
const RESPONSE_BUFFER_KEEP: usize = 4 * 1024 * 1024;

/// A response the client is owed, in request order.
#[derive(Debug)]
enum Pending {
    /// The upstream broker will answer the request with this correlation id.
    Upstream(i32),
    /// The emulator's own answer, a whole frame.
    Local(Bytes),
}

/// Relays until either side closes or breaks a rule.
pub(crate) async fn run<C>(client: C, upstream: TcpStream, shared: &Shared) -> Result<(), ConnError>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let (client_read, client_write) = tokio::io::split(client);
    let (upstream_read, upstream_write) = upstream.into_split();
    let (pending_tx, pending_rx) = mpsc::channel(MAX_IN_FLIGHT);
    tokio::select! {
        result = requests(client_read, upstream_write, pending_tx, shared) => result,
        result = responses(upstream_read, client_write, pending_rx) => result,
    }
}

/// Client → upstream.
async fn requests<R: AsyncRead + Unpin>(
    mut client: R,
    mut upstream: OwnedWriteHalf,
    pending: mpsc::Sender<Pending>,
    shared: &Shared,
) -> Result<(), ConnError> {
    while let Some(frame) = frame::read_frame(&mut client, MAX_REQUEST_BYTES).await? {
        let peek = frame.peek()?;
        let owed = match ApiKey::try_from(peek.api_key) {
            Ok(ApiKey::ApiVersions) => {
                let versions = api::advertised(api::upstream_versions(shared).await?);
                Some(Pending::Local(api::api_versions(&frame, peek, versions)?))
            }
            Ok(ApiKey::CreateTopics) if shared.refuse_create_topics => {
                Some(Pending::Local(api::refuse_create_topics(&frame, peek)?))
            }
            Ok(ApiKey::SaslHandshake | ApiKey::SaslAuthenticate) => {
                return Err(ConnError::SaslState("SASL request after authentication"));
            }
            Ok(ApiKey::Produce) if !api::produce_expects_response(&frame)? => None,
            _ => Some(Pending::Upstream(peek.correlation_id)),
        };
        if !matches!(owed, Some(Pending::Local(_))) {
            upstream
                .write_all(frame.raw())
                .await
                .map_err(FrameError::Io)?;
        }
        if let Some(owed) = owed {
            if pending.send(owed).await.is_err() {
                // The response loop has ended; its result is the connection's.
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Upstream → client, in request order.
async fn responses<W: AsyncWrite + Unpin>(
    upstream: OwnedReadHalf,
    mut client: W,
    mut pending: mpsc::Receiver<Pending>,
) -> Result<(), ConnError> {
    let mut upstream = BufReader::with_capacity(UPSTREAM_READ_BUFFER, upstream);
    let mut buf = Vec::new();
    while let Some(owed) = pending.recv().await {
        match owed {
            Pending::Local(bytes) => client.write_all(&bytes).await.map_err(FrameError::Io)?,
            Pending::Upstream(expected) => {
                read_response(&mut upstream, &mut buf).await?;
                let got = buf
                    .get(4..8)
                    .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(-1);
                if got != expected {
                    return Err(ConnError::CorrelationMismatch { expected, got });
                }
                client.write_all(&buf).await.map_err(FrameError::Io)?;
                if buf.capacity() > RESPONSE_BUFFER_KEEP {
                    buf.clear();
                    buf.shrink_to(RESPONSE_BUFFER_KEEP);
                }
            }
        }
        client.flush().await.map_err(FrameError::Io)?;
    }
    Ok(())
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
