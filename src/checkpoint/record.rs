//! The checkpoint record codec: MirrorMaker 2's `Checkpoint` key and value, byte for byte.

use super::CheckpointError;
use crate::mm2::{no_trailing, put_string, take, take_string, FormatError};

/// The only value version MM2 has written so far.
const VERSION: i16 = 0;

/// One checkpoint: `group`, at `upstream_offset` of partition `partition` of the source topic,
/// resumes at `downstream_offset` of the same partition of `topic` on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The consumer group.
    pub group: String,
    /// The DOWNSTREAM (remote) topic name, as MM2 writes it: `onprem.orders`, or `orders` under
    /// the identity policy.
    pub topic: String,
    /// The partition number (the same on both sides).
    pub partition: i32,
    /// The group's committed offset on the source: the next record it would read there.
    pub upstream_offset: i64,
    /// Where the group resumes on the target: the offset of the copy of the record at
    /// `upstream_offset` (or of the next replicated one).
    pub downstream_offset: i64,
    /// The metadata the group committed with its offset (usually empty); MM2 carries it over.
    pub metadata: String,
}

impl Checkpoint {
    /// The record key: `[group][topic]` (each an int16 length and UTF-8 bytes), then
    /// `[partition int32]`. Fails only if a string is longer than 32,767 bytes.
    pub fn encode_key(&self) -> Result<Vec<u8>, CheckpointError> {
        let mut out = Vec::with_capacity(8 + self.group.len() + self.topic.len());
        put_string(&mut out, "group", &self.group)?;
        put_string(&mut out, "topic", &self.topic)?;
        out.extend_from_slice(&self.partition.to_be_bytes());
        Ok(out)
    }

    /// The record value: `[version int16 = 0][upstream offset int64][downstream offset int64]
    /// [metadata]`. Fails only if the metadata is longer than 32,767 bytes.
    pub fn encode_value(&self) -> Result<Vec<u8>, CheckpointError> {
        let mut out = Vec::with_capacity(20 + self.metadata.len());
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.upstream_offset.to_be_bytes());
        out.extend_from_slice(&self.downstream_offset.to_be_bytes());
        put_string(&mut out, "metadata", &self.metadata)?;
        Ok(out)
    }

    /// Parses a checkpoint record. Anything malformed (short, a negative length, not UTF-8,
    /// another version, bytes after the last field) is an error, never a panic.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Checkpoint, CheckpointError> {
        let mut k = key;
        let group = take_string(&mut k, "group")?;
        let topic = take_string(&mut k, "topic")?;
        let partition = i32::from_be_bytes(take(&mut k, "partition")?);
        no_trailing("key", k)?;
        let mut v = value;
        let version = i16::from_be_bytes(take(&mut v, "version")?);
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion(version).into());
        }
        let upstream_offset = i64::from_be_bytes(take(&mut v, "upstream offset")?);
        let downstream_offset = i64::from_be_bytes(take(&mut v, "downstream offset")?);
        let metadata = take_string(&mut v, "metadata")?;
        no_trailing("value", v)?;
        Ok(Checkpoint {
            group,
            topic,
            partition,
            upstream_offset,
            downstream_offset,
            metadata,
        })
    }
}
