//! The byte layouts of the store's keys and values.
//!
//! Keys are built so that sled's byte order is the order the store needs:
//! - a partition prefix `[source][target][topic][partition]`, each string as a big-endian u16
//!   length and its UTF-8 bytes, the partition as a big-endian u32 with the sign bit flipped.
//!   Length prefixes make the prefix unambiguous: no partition's prefix starts another's.
//! - in the `offsets` tree, the prefix plus a tag: [`TAG_META`] for the partition's
//!   [`Meta`], or [`TAG_SEGMENT`] and the segment's upstream start as a big-endian u64, so
//!   `range(..=U).next_back()` is the segment at or below U. [`TAG_END`] bounds a partition.
//! - in the `checkpoints` tree, `[group][source][target][topic][partition]`, group first so
//!   one group's checkpoints are one prefix scan.
//! - in the `unpublished` tree, the partition prefix alone; in the `segments_read` tree,
//!   `[cluster][topic][partition]` of a segments topic partition.
//!
//! Values start with a format version byte ([`VALUE_VERSION`]); integers are big-endian.

use super::{PartitionKey, Segment, StoreError, StoredCheckpoint};

/// The version byte every value starts with.
pub(super) const VALUE_VERSION: u8 = 1;
/// Tag of a partition's [`Meta`] entry (sorts before its segments).
pub(super) const TAG_META: u8 = 0;
/// Tag of a segment entry.
pub(super) const TAG_SEGMENT: u8 = 1;
/// Greater than every tag of a partition: `prefix + [TAG_END]` bounds its keys.
pub(super) const TAG_END: u8 = 2;

/// What the store knows of a partition besides its segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Meta {
    /// Every upstream offset below this has been handled (replicated or skipped).
    pub processed_upto: i64,
    /// The lowest upstream offset ever recorded: below it the store saw nothing.
    pub known_from: i64,
    /// The highest source log start passed to `prune`: offsets below it no longer exist.
    pub log_start: i64,
}

/// Appends `s` as a u16 length and its bytes.
fn put_str16(out: &mut Vec<u8>, what: &'static str, s: &str) -> Result<(), StoreError> {
    let len = u16::try_from(s.len()).map_err(|_| StoreError::TooLong { what, len: s.len() })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// A partition number that sorts like an i32 in byte order.
fn partition_bytes(partition: i32) -> [u8; 4] {
    ((partition as u32) ^ 0x8000_0000).to_be_bytes()
}

/// `[source][target][topic][partition]`, the prefix of every `offsets` key of a partition.
pub(super) fn partition_prefix(key: &PartitionKey) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(16 + key.source.len() + key.target.len() + key.topic.len());
    put_str16(&mut out, "source alias", &key.source)?;
    put_str16(&mut out, "target alias", &key.target)?;
    put_str16(&mut out, "topic", &key.topic)?;
    out.extend_from_slice(&partition_bytes(key.partition));
    Ok(out)
}

/// The key of a partition's [`Meta`].
pub(super) fn meta_key(prefix: &[u8]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.push(TAG_META);
    k
}

/// The key of the segment starting at `upstream` (clamped at 0: offsets are never negative).
pub(super) fn segment_key(prefix: &[u8], upstream: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 9);
    k.extend_from_slice(prefix);
    k.push(TAG_SEGMENT);
    k.extend_from_slice(&(upstream.max(0) as u64).to_be_bytes());
    k
}

/// The first key after every key of the partition.
pub(super) fn end_key(prefix: &[u8]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.push(TAG_END);
    k
}

/// A cursor over an encoded key or value; errors are short descriptions for
/// [`StoreError::Corrupt`].
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Reads `buf`, described as `what` in errors.
    pub(super) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err(format!("{} is truncated", self.what));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// Checks the version byte.
    pub(super) fn version(&mut self) -> Result<(), String> {
        match self.array::<1>()?[0] {
            VALUE_VERSION => Ok(()),
            v => Err(format!(
                "{} has format version {v}, expected {VALUE_VERSION}",
                self.what
            )),
        }
    }

    pub(super) fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub(super) fn partition(&mut self) -> Result<i32, String> {
        Ok((u32::from_be_bytes(self.array()?) ^ 0x8000_0000) as i32)
    }

    fn string(&mut self, len: usize) -> Result<String, String> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| format!("{} holds a non-UTF-8 name", self.what))
    }

    pub(super) fn str16(&mut self) -> Result<String, String> {
        let len = u16::from_be_bytes(self.array()?);
        self.string(usize::from(len))
    }

    fn str32(&mut self) -> Result<String, String> {
        let len = u32::from_be_bytes(self.array()?);
        self.string(len as usize)
    }

    /// Bytes consumed so far are all there is.
    pub(super) fn finish(&self) -> Result<(), String> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} has {} trailing bytes",
                self.what,
                self.buf.len()
            ))
        }
    }
}

/// Decodes the partition prefix at the start of an `offsets` key; returns the key and the
/// prefix length.
pub(super) fn decode_partition_prefix(key: &[u8]) -> Result<(PartitionKey, usize), String> {
    let mut r = Reader::new(key, "offsets key");
    let source = r.str16()?;
    let target = r.str16()?;
    let topic = r.str16()?;
    let partition = r.partition()?;
    let len = key.len() - r.buf.len();
    Ok((
        PartitionKey {
            source,
            target,
            topic,
            partition,
        },
        len,
    ))
}

/// `[version][processed_upto][known_from][log_start]`: 25 bytes.
pub(super) fn encode_meta(m: &Meta) -> [u8; 25] {
    let mut v = [0; 25];
    v[0] = VALUE_VERSION;
    v[1..9].copy_from_slice(&m.processed_upto.to_be_bytes());
    v[9..17].copy_from_slice(&m.known_from.to_be_bytes());
    v[17..25].copy_from_slice(&m.log_start.to_be_bytes());
    v
}

pub(super) fn decode_meta(v: &[u8]) -> Result<Meta, String> {
    let mut r = Reader::new(v, "partition entry");
    r.version()?;
    let m = Meta {
        processed_upto: r.i64()?,
        known_from: r.i64()?,
        log_start: r.i64()?,
    };
    r.finish()?;
    Ok(m)
}

/// `[version][downstream_start][len]`: 17 bytes (the upstream start is in the key).
pub(super) fn encode_segment(s: &Segment) -> [u8; 17] {
    let mut v = [0; 17];
    v[0] = VALUE_VERSION;
    v[1..9].copy_from_slice(&s.downstream.to_be_bytes());
    v[9..17].copy_from_slice(&s.len.to_be_bytes());
    v
}

/// Decodes a segment from its full key (whose last 8 bytes are the upstream start) and value.
pub(super) fn decode_segment(key: &[u8], v: &[u8]) -> Result<Segment, String> {
    let tail = key.len().checked_sub(9).map(|i| &key[i..]);
    let upstream = match tail {
        Some([TAG_SEGMENT, rest @ ..]) => {
            let mut a = [0; 8];
            a.copy_from_slice(rest);
            i64::try_from(u64::from_be_bytes(a)).map_err(|_| "segment start out of range")?
        }
        _ => return Err("malformed segment key".to_owned()),
    };
    let mut r = Reader::new(v, "segment");
    r.version()?;
    let s = Segment {
        upstream,
        downstream: r.i64()?,
        len: r.i64()?,
    };
    r.finish()?;
    if s.len <= 0 || s.downstream < 0 {
        return Err(format!(
            "segment at upstream {upstream} has length {}",
            s.len
        ));
    }
    Ok(s)
}

/// `[cluster][topic][partition]`: a segments topic partition, in the `segments_read` tree.
pub(super) fn read_position_key(
    cluster: &str,
    topic: &str,
    partition: i32,
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(8 + cluster.len() + topic.len());
    put_str16(&mut out, "cluster alias", cluster)?;
    put_str16(&mut out, "topic", topic)?;
    out.extend_from_slice(&partition_bytes(partition));
    Ok(out)
}

/// `[group][source][target][source topic][partition]`.
pub(super) fn checkpoint_key(key: &PartitionKey, group: &str) -> Result<Vec<u8>, StoreError> {
    let mut out = group_prefix(group)?;
    out.extend_from_slice(&partition_prefix(key)?);
    Ok(out)
}

/// The prefix of every checkpoint of `group`.
pub(super) fn group_prefix(group: &str) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(2 + group.len());
    put_str16(&mut out, "group", group)?;
    Ok(out)
}

/// `[version][upstream][downstream][timestamp][remote topic: u16 + bytes][metadata: u32 +
/// bytes]`.
pub(super) fn encode_checkpoint(cp: &StoredCheckpoint) -> Result<Vec<u8>, StoreError> {
    let mut v = Vec::with_capacity(33 + cp.remote_topic.len() + cp.metadata.len());
    v.push(VALUE_VERSION);
    v.extend_from_slice(&cp.upstream_offset.to_be_bytes());
    v.extend_from_slice(&cp.downstream_offset.to_be_bytes());
    v.extend_from_slice(&cp.timestamp_ms.to_be_bytes());
    put_str16(&mut v, "remote topic", &cp.remote_topic)?;
    let len = u32::try_from(cp.metadata.len()).map_err(|_| StoreError::TooLong {
        what: "metadata",
        len: cp.metadata.len(),
    })?;
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(cp.metadata.as_bytes());
    Ok(v)
}

pub(super) fn decode_checkpoint(key: &[u8], v: &[u8]) -> Result<StoredCheckpoint, String> {
    let mut k = Reader::new(key, "checkpoint key");
    let group = k.str16()?;
    let source = k.str16()?;
    let target = k.str16()?;
    let source_topic = k.str16()?;
    let partition = k.partition()?;
    k.finish()?;
    let mut r = Reader::new(v, "checkpoint");
    r.version()?;
    let upstream_offset = r.i64()?;
    let downstream_offset = r.i64()?;
    let timestamp_ms = r.i64()?;
    let remote_topic = r.str16()?;
    let metadata = r.str32()?;
    r.finish()?;
    Ok(StoredCheckpoint {
        source,
        target,
        group,
        source_topic,
        partition,
        remote_topic,
        upstream_offset,
        downstream_offset,
        metadata,
        timestamp_ms,
    })
}
