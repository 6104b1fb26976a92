//! [`StoreError`]: everything that can go wrong opening or using the store.

use std::path::PathBuf;

/// Why the store could not be opened, read or written.
///
/// Every variant about the directory names the path and how to fix it; none of them is ever
/// resolved by silently reusing or reinitialising what is there.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `store.path` exists but is not a hubmirror store: a file, a non-empty directory without a
    /// sled database, or a sled database without hubmirror's marker (another program's, or one
    /// whose data sled could not read back).
    #[error(
        "store {}: {reason}; move it away or point store.path elsewhere",
        path.display()
    )]
    NotAStore {
        /// The directory given as `store.path`.
        path: PathBuf,
        /// What was found there.
        reason: String,
    },
    /// A hubmirror store written in another format version.
    #[error(
        "store {}: it was written in format {found:?} and this hubmirror reads only {expected:?}; \
         move it away or point store.path elsewhere",
        path.display()
    )]
    UnsupportedVersion {
        /// The directory given as `store.path`.
        path: PathBuf,
        /// The marker found.
        found: String,
        /// The marker this build writes.
        expected: &'static str,
    },
    /// Another process holds the store (sled admits one process per directory).
    #[error(
        "store {} is in use by another process (is `hubmirror run` running? stop it, or point \
         store.path elsewhere)",
        path.display()
    )]
    Locked {
        /// The directory given as `store.path`.
        path: PathBuf,
    },
    /// The data cannot be read back: sled refused it, or one of hubmirror's entries is malformed.
    #[error(
        "store {}: corrupt data ({detail}); move it away or point store.path elsewhere",
        path.display()
    )]
    Corrupt {
        /// The directory given as `store.path`.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// A file-system operation on the directory failed (permissions, a full disk…).
    #[error("store {}: {action}: {source}", path.display())]
    Io {
        /// The directory given as `store.path`.
        path: PathBuf,
        /// What hubmirror was doing.
        action: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// sled failed while reading or writing an open store.
    #[error("store {}: {source}", path.display())]
    Sled {
        /// The directory given as `store.path`.
        path: PathBuf,
        /// The underlying error.
        source: sled::Error,
    },
    /// [`Store::record`](super::Store::record) was given events it cannot store: offsets out of
    /// order or negative. A bug in the caller; nothing was written.
    #[error("invalid events for {partition}: {detail}")]
    InvalidEvents {
        /// The partition, as `source→target topic/partition`.
        partition: String,
        /// What was wrong.
        detail: String,
    },
    /// [`Store::merge`](super::Store::merge) was given segments it cannot store: overlapping,
    /// out of order, empty or negative. Nothing was written; the publication is not usable.
    #[error("invalid segments for {partition}: {detail}")]
    InvalidSegments {
        /// The partition, as `source→target topic/partition`.
        partition: String,
        /// What was wrong.
        detail: String,
    },
    /// A name too long for the store's keys (65,535 bytes; Kafka topic names stop at 249).
    #[error("{what} is {len} bytes long; at most 65535 fit in a store key")]
    TooLong {
        /// `source alias`, `target alias`, `topic`, `group` or `remote topic`.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
}
