//! Kafka frames: a 4-byte big-endian length, then the body. Request bodies start with
//! `api_key: i16, api_version: i16, correlation_id: i32` in every header version, which is all
//! the relay needs to look at; the rest is decoded with `kafka-protocol` where needed.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a frame could not be read, decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed mid-frame")]
    Truncated,
    /// The length prefix exceeds the limit; the frame was not read.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The announced body size.
        size: usize,
        /// The limit that applies.
        limit: usize,
    },
    /// A request is shorter than the fixed part of its header.
    #[error("request of {0} bytes is shorter than a request header")]
    Short(usize),
    /// `kafka-protocol` could not decode or encode a message.
    #[error("{what}: {reason}")]
    Codec {
        /// The message concerned.
        what: &'static str,
        /// The codec's error, with its causes.
        reason: String,
    },
}

impl FrameError {
    /// Wraps a `kafka-protocol` (anyhow) error.
    pub(crate) fn codec(what: &'static str, e: anyhow::Error) -> Self {
        FrameError::Codec {
            what,
            reason: format!("{e:#}"),
        }
    }
}

/// One frame, length prefix included, so that it can be forwarded with a single write.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    raw: Bytes,
}

impl Frame {
    /// A frame from its bytes, length prefix included (tests build requests this way).
    #[cfg(test)]
    pub(crate) fn from_raw(raw: Bytes) -> Frame {
        Frame { raw }
    }

    /// The whole frame, length prefix included.
    pub(crate) fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The body, without the length prefix.
    pub(crate) fn body(&self) -> Bytes {
        self.raw.slice(4..)
    }

    /// The fixed leading fields of a request header.
    pub(crate) fn peek(&self) -> Result<Peek, FrameError> {
        let b = &self.raw[4..];
        if b.len() < 8 {
            return Err(FrameError::Short(b.len()));
        }
        Ok(Peek {
            api_key: i16::from_be_bytes([b[0], b[1]]),
            api_version: i16::from_be_bytes([b[2], b[3]]),
            correlation_id: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
}

/// The fixed leading fields of a request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peek {
    /// Which API.
    pub(crate) api_key: i16,
    /// Which version of it.
    pub(crate) api_version: i16,
    /// Echoed in the response.
    pub(crate) correlation_id: i32,
}

/// Reads one frame of at most `limit` body bytes. `Ok(None)` on a clean end of stream before
/// the frame started. An oversize frame is not read (the caller closes the connection).
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> Result<Option<Frame>, FrameError> {
    let mut len = [0u8; 4];
    match reader.read(&mut len[..1]).await? {
        0 => return Ok(None),
        _ => read_exact(reader, &mut len[1..]).await?,
    }
    let size = u32::from_be_bytes(len) as usize;
    if size > limit {
        return Err(FrameError::TooLarge { size, limit });
    }
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_slice(&len);
    buf.resize(4 + size, 0);
    read_exact(reader, &mut buf[4..]).await?;
    Ok(Some(Frame { raw: buf.freeze() }))
}

/// `read_exact`, with an early end of stream reported as [`FrameError::Truncated`].
pub(crate) async fn read_exact<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
) -> Result<(), FrameError> {
    match reader.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
        Err(e) => Err(e.into()),
    }
}

/// Decodes a request's header and body with `kafka-protocol`.
pub(crate) fn decode_request<T: Decodable>(
    frame: &Frame,
    key: ApiKey,
    what: &'static str,
) -> Result<(RequestHeader, T), FrameError> {
    let mut body = frame.body();
    let peek = frame.peek()?;
    let header_version = key.request_header_version(peek.api_version);
    let header = RequestHeader::decode(&mut body, header_version)
        .map_err(|e| FrameError::codec("request header", e))?;
    let request = T::decode(&mut body, peek.api_version).map_err(|e| FrameError::codec(what, e))?;
    Ok((header, request))
}

/// Encodes a whole response frame: length, response header (the version `key` requires for
/// `version`; always v0 for ApiVersions) and `body` at `version`.
pub(crate) fn encode_response<T: Encodable>(
    key: ApiKey,
    correlation_id: i32,
    version: i16,
    body: &T,
    what: &'static str,
) -> Result<Bytes, FrameError> {
    let header_version = key.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut buf = BytesMut::new();
    buf.put_u32(0);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| FrameError::codec("response header", e))?;
    body.encode(&mut buf, version)
        .map_err(|e| FrameError::codec(what, e))?;
    let len = u32::try_from(buf.len() - 4).map_err(|_| FrameError::TooLarge {
        size: buf.len() - 4,
        limit: u32::MAX as usize,
    })?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// Encodes a whole request frame (used to ask the upstream broker for its API versions).
pub(crate) fn encode_request<T: Encodable>(
    key: ApiKey,
    header: &RequestHeader,
    body: &T,
    what: &'static str,
) -> Result<Bytes, FrameError> {
    let version = header.request_api_version;
    let mut buf = BytesMut::new();
    buf.put_u32(0);
    header
        .encode(&mut buf, key.request_header_version(version))
        .map_err(|e| FrameError::codec("request header", e))?;
    body.encode(&mut buf, version)
        .map_err(|e| FrameError::codec(what, e))?;
    let len = (buf.len() - 4) as u32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// Splits a response body into its header (at the version `key` requires) and the rest.
pub(crate) fn decode_response<T: Decodable>(
    mut body: Bytes,
    key: ApiKey,
    version: i16,
    what: &'static str,
) -> Result<(ResponseHeader, T), FrameError> {
    let header = ResponseHeader::decode(&mut body, key.response_header_version(version))
        .map_err(|e| FrameError::codec("response header", e))?;
    let response = T::decode(&mut body, version).map_err(|e| FrameError::codec(what, e))?;
    Ok((header, response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_frames_and_refuses_oversize_ones() {
        let mut input: &[u8] = &[0, 0, 0, 8, 0, 18, 0, 3, 0, 0, 0, 7, 0, 0, 0, 9];
        let frame = read_frame(&mut input, 8)
            .await
            .expect("read")
            .expect("frame");
        let peek = frame.peek().expect("peek");
        assert_eq!(
            (peek.api_key, peek.api_version, peek.correlation_id),
            (18, 3, 7)
        );
        assert!(matches!(
            read_frame(&mut input, 8).await,
            Err(FrameError::TooLarge { size: 9, limit: 8 })
        ));
        let mut empty: &[u8] = &[];
        assert!(read_frame(&mut empty, 8).await.expect("eof").is_none());
        let mut cut: &[u8] = &[0, 0, 0, 8, 0, 18];
        assert!(matches!(
            read_frame(&mut cut, 8).await,
            Err(FrameError::Truncated)
        ));
    }
}
