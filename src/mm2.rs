//! MirrorMaker 2's wire encoding of its internal records (heartbeats, checkpoints): Kafka
//! "struct" fields in order, big-endian integers, strings as an int16 length then UTF-8.
//! Decoding is strict and never panics: truncation, negative lengths, bad UTF-8, unsupported
//! versions and trailing bytes are [`FormatError`]s naming the field.

/// A record that does not follow MM2's format. The record kind ("heartbeat", "checkpoint") is
/// added by the caller's error type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The record ends before a field does.
    #[error("{field} is truncated: it needs {need} bytes, {have} are left")]
    Truncated {
        /// The field, or the length of a string field.
        field: &'static str,
        /// Bytes the field needs.
        need: usize,
        /// Bytes that were left.
        have: usize,
    },
    /// A string length below zero (MM2's strings are not nullable).
    #[error("{field} has a negative length ({len})")]
    NegativeLength {
        /// Which string.
        field: &'static str,
        /// The length read.
        len: i16,
    },
    /// A string that is not UTF-8.
    #[error("{field} is not UTF-8")]
    NotUtf8 {
        /// Which string.
        field: &'static str,
    },
    /// A value version other than 0.
    #[error("value version {0} is not supported (only 0 is)")]
    UnsupportedVersion(i16),
    /// Bytes after the last field.
    #[error("{part} has {extra} bytes after its last field")]
    TrailingBytes {
        /// `key` or `value`.
        part: &'static str,
        /// How many.
        extra: usize,
    },
    /// A string too long for an int16 length (encoding only).
    #[error("{field} is {len} bytes long; at most 32767 fit")]
    TooLong {
        /// Which string.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
}

/// Appends `s` as an int16 length and its UTF-8 bytes.
pub fn put_string(out: &mut Vec<u8>, field: &'static str, s: &str) -> Result<(), FormatError> {
    let len = i16::try_from(s.len()).map_err(|_| FormatError::TooLong {
        field,
        len: s.len(),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// The next `N` bytes of `buf`, advancing it.
pub fn take<const N: usize>(buf: &mut &[u8], field: &'static str) -> Result<[u8; N], FormatError> {
    let (head, rest) = take_slice(buf, N, field)?;
    *buf = rest;
    let mut out = [0u8; N];
    // `take_slice` returned exactly N bytes.
    out.copy_from_slice(head);
    Ok(out)
}

/// The next int16-length string of `buf`, advancing it.
pub fn take_string(buf: &mut &[u8], field: &'static str) -> Result<String, FormatError> {
    let len = i16::from_be_bytes(take(buf, field)?);
    let n = usize::try_from(len).map_err(|_| FormatError::NegativeLength { field, len })?;
    let (bytes, rest) = take_slice(buf, n, field)?;
    *buf = rest;
    String::from_utf8(bytes.to_vec()).map_err(|_| FormatError::NotUtf8 { field })
}

/// Fails when bytes are left after the last field of `part`.
pub fn no_trailing(part: &'static str, rest: &[u8]) -> Result<(), FormatError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(FormatError::TrailingBytes {
            part,
            extra: rest.len(),
        })
    }
}

fn take_slice<'b>(
    buf: &'b [u8],
    n: usize,
    field: &'static str,
) -> Result<(&'b [u8], &'b [u8]), FormatError> {
    if buf.len() < n {
        return Err(FormatError::Truncated {
            field,
            need: n,
            have: buf.len(),
        });
    }
    Ok(buf.split_at(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_and_malformed_input_is_an_error() {
        let mut out = Vec::new();
        put_string(&mut out, "s", "héllo").unwrap();
        assert_eq!(&out[..2], &6i16.to_be_bytes());
        let mut buf = out.as_slice();
        assert_eq!(take_string(&mut buf, "s").unwrap(), "héllo");
        assert!(no_trailing("key", buf).is_ok());
        assert_eq!(
            take_string(&mut &[0u8][..], "s"),
            Err(FormatError::Truncated {
                field: "s",
                need: 2,
                have: 1
            })
        );
        assert_eq!(
            take_string(&mut &[0xff, 0xff][..], "s"),
            Err(FormatError::NegativeLength {
                field: "s",
                len: -1
            })
        );
        assert_eq!(
            take_string(&mut &[0, 1, 0xff][..], "s"),
            Err(FormatError::NotUtf8 { field: "s" })
        );
        assert_eq!(
            no_trailing("value", &[1, 2]),
            Err(FormatError::TrailingBytes {
                part: "value",
                extra: 2
            })
        );
        let long = "x".repeat(32768);
        assert_eq!(
            put_string(&mut Vec::new(), "s", &long),
            Err(FormatError::TooLong {
                field: "s",
                len: 32768
            })
        );
    }
}
