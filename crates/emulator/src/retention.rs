//! Retention emulation: partitions whose log start was moved forward with
//! [`super::Emulator::expire_before`] behave like logs whose older records were deleted, which
//! the upstream broker (tansu's memory engine) cannot do itself.
//!
//! Only while at least one log start is set, Fetch and ListOffsets requests are decoded. When
//! one names such a partition, its upstream response is rewritten before it is relayed:
//!
//! - Fetch: a partition fetched below its log start gets OFFSET_OUT_OF_RANGE, no records and
//!   `log_start_offset` = the log start; one fetched at or above it keeps its records, with
//!   `log_start_offset` raised to the log start. Other partitions pass unchanged.
//! - ListOffsets: an offset below the log start (EARLIEST, or a timestamp lookup) is raised to
//!   it.
//!
//! Topics are matched by name, so the emulator advertises Fetch only up to
//! [`FETCH_MAX_VERSION`] (v13 and later name topics by id).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::FetchableTopicResponse;
use kafka_protocol::messages::{ApiKey, FetchRequest, ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::protocol::buf::{ByteBuf, ByteBufMut};
use kafka_protocol::protocol::{Decodable, Encodable, Message};
use tracing::debug;

use super::frame::{self, Frame, FrameError, Peek};

/// The newest Fetch version the emulator advertises: the last one that names topics.
pub(crate) const FETCH_MAX_VERSION: i16 = 12;

/// OFFSET_OUT_OF_RANGE.
const OFFSET_OUT_OF_RANGE: i16 = 1;

/// The log starts set so far, per (topic, partition).
#[derive(Debug, Default)]
pub(crate) struct Retention {
    starts: RwLock<HashMap<(String, i32), i64>>,
    /// Whether `starts` has anything: the relay's fast path reads only this.
    any: AtomicBool,
}

impl Retention {
    /// Moves the log start of `topic`/`partition` to `log_start`; a log start never moves back.
    /// Returns the log start in effect.
    pub(crate) fn expire_before(&self, topic: &str, partition: i32, log_start: i64) -> i64 {
        let mut starts = self.starts.write().unwrap_or_else(|e| e.into_inner());
        let start = starts.entry((topic.to_string(), partition)).or_insert(0);
        *start = (*start).max(log_start);
        self.any.store(true, Ordering::SeqCst);
        *start
    }

    /// True when no log start was ever set.
    pub(crate) fn is_empty(&self) -> bool {
        !self.any.load(Ordering::SeqCst)
    }

    fn log_start(&self, topic: &str, partition: i32) -> Option<i64> {
        let starts = self.starts.read().unwrap_or_else(|e| e.into_inner());
        starts.get(&(topic.to_string(), partition)).copied()
    }
}

/// A partition of a request whose answer is rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    topic: String,
    partition: i32,
    log_start: i64,
    /// Fetch only: the fetch offset is below the log start.
    out_of_range: bool,
}

/// How to rewrite the upstream response to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rewrite {
    key: ApiKey,
    version: i16,
    targets: Vec<Target>,
}

/// Decodes a Fetch or ListOffsets request and returns how its response must be rewritten, or
/// `None` when it names no partition with a log start (or is another API, or a version the
/// emulator cannot decode, which it did not advertise).
pub(crate) fn plan(
    frame: &Frame,
    peek: Peek,
    retention: &Retention,
) -> Result<Option<Rewrite>, FrameError> {
    let starts = |topic: &str, partition| retention.log_start(topic, partition);
    let (key, targets) = match ApiKey::try_from(peek.api_key) {
        Ok(ApiKey::Fetch) if decodable::<FetchRequest>(peek.api_version) => {
            let (_, request) = frame::decode_request(frame, ApiKey::Fetch, "Fetch")?;
            (ApiKey::Fetch, fetch_targets(&request, starts))
        }
        Ok(ApiKey::ListOffsets) if decodable::<ListOffsetsRequest>(peek.api_version) => {
            let (_, request) = frame::decode_request(frame, ApiKey::ListOffsets, "ListOffsets")?;
            (ApiKey::ListOffsets, list_offsets_targets(&request, starts))
        }
        _ => return Ok(None),
    };
    Ok((!targets.is_empty()).then_some(Rewrite {
        key,
        version: peek.api_version,
        targets,
    }))
}

fn decodable<M: Message>(version: i16) -> bool {
    (M::VERSIONS.min..=M::VERSIONS.max).contains(&version)
}

fn fetch_targets(request: &FetchRequest, starts: impl Fn(&str, i32) -> Option<i64>) -> Vec<Target> {
    let mut out = Vec::new();
    for topic in &request.topics {
        for p in &topic.partitions {
            if let Some(log_start) = starts(topic.topic.as_str(), p.partition) {
                out.push(Target {
                    topic: topic.topic.to_string(),
                    partition: p.partition,
                    log_start,
                    out_of_range: p.fetch_offset < log_start,
                });
            }
        }
    }
    out
}

fn list_offsets_targets(
    request: &ListOffsetsRequest,
    starts: impl Fn(&str, i32) -> Option<i64>,
) -> Vec<Target> {
    let mut out = Vec::new();
    for topic in &request.topics {
        for p in &topic.partitions {
            if let Some(log_start) = starts(topic.name.as_str(), p.partition_index) {
                out.push(Target {
                    topic: topic.name.to_string(),
                    partition: p.partition_index,
                    log_start,
                    out_of_range: false,
                });
            }
        }
    }
    out
}

fn target<'a>(targets: &'a [Target], topic: &str, partition: i32) -> Option<&'a Target> {
    targets
        .iter()
        .find(|t| t.partition == partition && t.topic == topic)
}

/// Rewrites a whole upstream response frame (length prefix included) as `rewrite` says.
pub(crate) fn rewrite(response: &[u8], rewrite: &Rewrite) -> Result<Bytes, FrameError> {
    let body = Bytes::copy_from_slice(response.get(4..).unwrap_or_default());
    let (key, version) = (rewrite.key, rewrite.version);
    match key {
        ApiKey::Fetch => {
            let (header, mut body): (_, FetchBody) =
                frame::decode_response(body, key, version, "Fetch")?;
            rewrite_fetch(&mut body.topics, version, &rewrite.targets);
            frame::encode_response(key, header.correlation_id, version, &body, "Fetch")
        }
        ApiKey::ListOffsets => {
            let (header, mut body): (_, ListOffsetsResponse) =
                frame::decode_response(body, key, version, "ListOffsets")?;
            rewrite_list_offsets(&mut body, &rewrite.targets);
            frame::encode_response(key, header.correlation_id, version, &body, "ListOffsets")
        }
        // `plan` makes rewrites for Fetch and ListOffsets only.
        _ => Ok(Bytes::copy_from_slice(response)),
    }
}

fn rewrite_fetch(topics: &mut [FetchableTopicResponse], version: i16, targets: &[Target]) {
    for topic in topics {
        for p in &mut topic.partitions {
            let Some(t) = target(targets, topic.topic.as_str(), p.partition_index) else {
                continue;
            };
            // The broker's own errors (unknown topic and the like) stand.
            if p.error_code != 0 && p.error_code != OFFSET_OUT_OF_RANGE {
                continue;
            }
            if version >= 5 {
                // Fetch v4 has no log start offset.
                p.log_start_offset = p.log_start_offset.max(t.log_start);
            }
            if t.out_of_range {
                debug!(
                    topic = %t.topic,
                    partition = t.partition,
                    log_start = t.log_start,
                    "fetch below the emulated log start: OFFSET_OUT_OF_RANGE"
                );
                p.error_code = OFFSET_OUT_OF_RANGE;
                // Empty, not null: librdkafka rejects a null record set as a protocol error.
                p.records = Some(Bytes::new());
            }
        }
    }
}

fn rewrite_list_offsets(response: &mut ListOffsetsResponse, targets: &[Target]) {
    for topic in &mut response.topics {
        for p in &mut topic.partitions {
            let Some(t) = target(targets, topic.name.as_str(), p.partition_index) else {
                continue;
            };
            if p.error_code == 0 && p.offset >= 0 && p.offset < t.log_start {
                debug!(
                    topic = %t.topic,
                    partition = t.partition,
                    offset = p.offset,
                    log_start = t.log_start,
                    "listed offset raised to the emulated log start"
                );
                p.offset = t.log_start;
            }
        }
    }
}

/// A Fetch response body split where the rewrite needs it: the fields before the topics as
/// received, the topics decoded, and everything after them (the tagged fields, v12 and later)
/// as received. The whole body is never decoded: `kafka-protocol` rejects tagged fields a
/// version does not define, and tansu (0.6.0 at least) sends node endpoints (tag 0, v16 and
/// later) with Fetch v12 responses.
#[derive(Debug, Clone, PartialEq)]
struct FetchBody {
    /// `throttle_time_ms`, and from v7 `error_code` and `session_id`.
    head: Bytes,
    topics: Vec<FetchableTopicResponse>,
    tail: Bytes,
}

impl Decodable for FetchBody {
    fn decode<B: ByteBuf>(buf: &mut B, version: i16) -> anyhow::Result<Self> {
        let head = buf.try_get_bytes(if version >= 7 { 10 } else { 4 })?;
        // A compact array's length is one more than its count (0 for null), as an unsigned
        // varint; before v12 it is an i32 (-1 for null).
        let count = if version >= 12 {
            i64::from(read_uvarint(buf)?) - 1
        } else {
            let b = buf.try_get_bytes(4)?;
            i64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let mut topics = Vec::new();
        for _ in 0..count.max(0) {
            topics.push(FetchableTopicResponse::decode(buf, version)?);
        }
        let tail = buf.try_get_bytes(buf.remaining())?;
        Ok(FetchBody { head, topics, tail })
    }
}

impl Encodable for FetchBody {
    fn encode<B: ByteBufMut>(&self, buf: &mut B, version: i16) -> anyhow::Result<()> {
        buf.put_slice(&self.head);
        let count = u32::try_from(self.topics.len())?;
        if version >= 12 {
            let mut n = count + 1;
            while n >= 0x80 {
                buf.put_u8((n & 0x7f) as u8 | 0x80);
                n >>= 7;
            }
            buf.put_u8(n as u8);
        } else {
            buf.put_i32(i32::try_from(count)?);
        }
        for topic in &self.topics {
            topic.encode(buf, version)?;
        }
        buf.put_slice(&self.tail);
        Ok(())
    }

    fn compute_size(&self, version: i16) -> anyhow::Result<usize> {
        let mut buf = Vec::new();
        self.encode(&mut buf, version)?;
        Ok(buf.len())
    }
}

/// An unsigned varint of at most 5 bytes.
fn read_uvarint<B: ByteBuf>(buf: &mut B) -> anyhow::Result<u32> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        let byte = buf.try_get_bytes(1)?[0];
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    anyhow::bail!("varint longer than 5 bytes")
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
