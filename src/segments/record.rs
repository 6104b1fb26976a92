//! The record of a segments topic: one partition's positions and some of its segments, as one
//! instance's store knows them.
//!
//! Layout (big-endian; strings are an int16 length and UTF-8 bytes, as in MM2's records):
//! - key: `[source alias][target alias][source topic][partition: int32]`
//! - value: `[version: int16 = 0][instance][remote topic][processed-up-to: int64]
//!   [known-from: int64][log start: int64][count: int32]` then `count` times
//!   `[upstream: int64][downstream: int64][length: int64]`
//!
//! 80 bytes and the names for a record with one segment. The key makes the partition's
//! records land in one partition of the topic whatever its partition count.

use super::SegmentsError;
use crate::mm2::{no_trailing, put_string, take, take_string, FormatError};
use crate::store::{PartitionKey, PartitionState, Segment, SegmentSet};

/// The only value version written so far.
const VERSION: i16 = 0;

/// Bytes of one segment in a value.
const SEGMENT_BYTES: usize = 24;

/// At most this many segments per record, so a record stays far below any broker's limit
/// (Event Hubs: 1 MB): ~24 kB.
pub const MAX_SEGMENTS_PER_RECORD: usize = 1_000;

/// What one instance published about one flow partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The flow partition.
    pub key: PartitionKey,
    /// The topic on the target the segments' downstream offsets are in: a reader drops
    /// publications for another name (written under an earlier naming policy).
    pub remote_topic: String,
    /// The instance that published it (for logs).
    pub instance: String,
    /// Its positions and segments.
    pub set: SegmentSet,
}

impl Publication {
    /// The record key. Fails only for a name longer than 32,767 bytes.
    pub fn encode_key(&self) -> Result<Vec<u8>, FormatError> {
        let k = &self.key;
        let mut out = Vec::with_capacity(10 + k.source.len() + k.target.len() + k.topic.len());
        put_string(&mut out, "source alias", &k.source)?;
        put_string(&mut out, "target alias", &k.target)?;
        put_string(&mut out, "topic", &k.topic)?;
        out.extend_from_slice(&k.partition.to_be_bytes());
        Ok(out)
    }

    /// The record value. Fails only for a name longer than 32,767 bytes or more segments than
    /// an int32 counts.
    pub fn encode_value(&self) -> Result<Vec<u8>, FormatError> {
        let segments = &self.set.segments;
        let mut out = Vec::with_capacity(
            34 + self.instance.len() + self.remote_topic.len() + SEGMENT_BYTES * segments.len(),
        );
        out.extend_from_slice(&VERSION.to_be_bytes());
        put_string(&mut out, "instance", &self.instance)?;
        put_string(&mut out, "remote topic", &self.remote_topic)?;
        let state = &self.set.state;
        for v in [state.processed_upto, state.known_from, state.log_start] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        let count = i32::try_from(segments.len()).map_err(|_| FormatError::TooLong {
            field: "segments",
            len: segments.len(),
        })?;
        out.extend_from_slice(&count.to_be_bytes());
        for s in segments {
            for v in [s.upstream, s.downstream, s.len] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        Ok(out)
    }

    /// Parses a record. Anything malformed (short, a negative length or count, not UTF-8,
    /// another version, bytes after the last field) is an error, never a panic. Whether the
    /// segments make sense is the store's to check when merging them.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Publication, SegmentsError> {
        let mut k = key;
        let source = take_string(&mut k, "source alias")?;
        let target = take_string(&mut k, "target alias")?;
        let topic = take_string(&mut k, "topic")?;
        let partition = i32::from_be_bytes(take(&mut k, "partition")?);
        no_trailing("key", k)?;
        let mut v = value;
        let version = i16::from_be_bytes(take(&mut v, "version")?);
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion(version).into());
        }
        let instance = take_string(&mut v, "instance")?;
        let remote_topic = take_string(&mut v, "remote topic")?;
        let mut int = |field| take(&mut v, field).map(i64::from_be_bytes);
        let state = PartitionState {
            processed_upto: int("processed-up-to")?,
            known_from: int("known-from")?,
            log_start: int("log start")?,
        };
        let count = i32::from_be_bytes(take(&mut v, "segment count")?);
        // Never trust a count for an allocation: its bytes must be there.
        let count = usize::try_from(count)
            .ok()
            .filter(|&n| v.len() >= n.saturating_mul(SEGMENT_BYTES))
            .ok_or(SegmentsError::Count {
                count,
                left: v.len(),
            })?;
        let mut segments = Vec::with_capacity(count);
        for _ in 0..count {
            let mut int = |field| take(&mut v, field).map(i64::from_be_bytes);
            segments.push(Segment {
                upstream: int("upstream")?,
                downstream: int("downstream")?,
                len: int("length")?,
            });
        }
        no_trailing("value", v)?;
        Ok(Publication {
            key: PartitionKey {
                source,
                target,
                topic,
                partition,
            },
            remote_topic,
            instance,
            set: SegmentSet { state, segments },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publication(segments: usize) -> Publication {
        Publication {
            key: PartitionKey::new("onprem", "eventhub", "testeh", 3),
            remote_topic: "testeh".into(),
            instance: "hubmirror-0".into(),
            set: SegmentSet {
                state: PartitionState {
                    processed_upto: 1_000,
                    known_from: 10,
                    log_start: 5,
                },
                segments: (0..segments as i64)
                    .map(|i| Segment {
                        upstream: 10 + 100 * i,
                        downstream: 7 + 100 * i,
                        len: 90,
                    })
                    .collect(),
            },
        }
    }

    #[test]
    fn round_trips() {
        for n in [0, 1, 3] {
            let p = publication(n);
            let (k, v) = (p.encode_key().unwrap(), p.encode_value().unwrap());
            assert_eq!(Publication::decode(&k, &v).unwrap(), p);
        }
        let one = publication(1);
        let v = one.encode_value().unwrap();
        assert_eq!(
            v.len(),
            2 + 13 + 8 + 24 + 4 + 24,
            "value bytes with one segment"
        );
    }

    #[test]
    fn malformed_records_are_errors() {
        let p = publication(2);
        let (k, v) = (p.encode_key().unwrap(), p.encode_value().unwrap());
        for cut in [0, 1, 5, v.len() - 1] {
            assert!(
                Publication::decode(&k, &v[..cut]).is_err(),
                "value cut at {cut}"
            );
        }
        assert!(Publication::decode(&k[..k.len() - 1], &v).is_err());
        let mut extra = v.clone();
        extra.push(0);
        assert!(Publication::decode(&k, &extra).is_err());
        let mut version = v.clone();
        version[1] = 9;
        assert!(matches!(
            Publication::decode(&k, &version),
            Err(SegmentsError::Format(FormatError::UnsupportedVersion(9)))
        ));
        // A count far beyond the bytes present: refused before any allocation.
        let mut huge = v[..v.len() - 2 * SEGMENT_BYTES].to_vec();
        let at = huge.len() - 4;
        huge[at..].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(Publication::decode(&k, &huge).is_err());
        let mut negative = huge.clone();
        negative[at..].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(Publication::decode(&k, &negative).is_err());
    }
}
