//! The offset-translation store: where each replicated record landed, exactly, in sled.
//!
//! For every flow partition ([`PartitionKey`]: source alias, target alias, source topic,
//! partition) the store keeps the mapping *upstream offset → downstream offset* as
//! [`Segment`]s: a run of consecutive upstream offsets written to consecutive downstream
//! offsets is one entry `(upstream, downstream, len)`. A flow that copies a partition without
//! interruption therefore costs one entry, however many records it moves; each break (a
//! skipped record, a compaction gap, a record a local producer wrote in between on the target)
//! starts a new one. Beside the segments, each partition has a *processed-up-to* position:
//! every upstream offset below it was handled, replicated or deliberately passed over.
//!
//! [`Store::translate`] turns a consumer group's source offset into the target offset to
//! resume at (see [`Translation`] for the rules), [`Store::record`] learns from each
//! acknowledged batch, [`Store::prune`] drops what fell below the source's log start. The
//! latest checkpoint per (group, flow partition) is kept too ([`StoredCheckpoint`]).
//!
//! The directory carries a marker (`__hubmirror_store` = `hubmirror-store v1`); anything else
//! at `store.path` is refused at [`Store::open`] with an error naming the path and the fix.
//! sled admits one process per directory: a second one gets [`StoreError::Locked`].
//!
//! Durability: sled writes in the background (every 500 ms); [`Store::flush`] waits for it.
//! A flow must flush before committing source offsets, or a crash could leave the store
//! behind the committed position, and the flow, resuming there, would make the missing range
//! look like a gap. After a restart the flow may copy records again (from its last commit):
//! [`Store::record`] lets the newest copies replace what it knew of those offsets.
//!
//! Several instances, one history: each instance's flows record what they copied here, and
//! every instance publishes its segments to the target and merges those of the others
//! (`crate::segments`). [`Store::unpublished`] and [`Store::report`] say what to publish,
//! [`Store::mark_published`] forgets it once published, [`Store::merge`] takes in what another
//! instance published, and [`Store::read_position`] remembers how far the segments topic was read.
//!
//! Layout: this file holds the types and the handle; `offsets` the segment logic
//! (`record`, `translate`, `prune`); `merge` merging published segments; `unpublished` what
//! the flows recorded since the last publication; `positions` how far the segments topics
//! were read; `checkpoint` the checkpoints; `open` the directory checks; `codec` the byte
//! layouts.

mod both_ways;
mod checkpoint;
mod codec;
mod error;
mod instance;
mod merge;
mod offsets;
mod open;
mod positions;
mod reverse;
mod unpublished;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use both_ways::Resume;
pub use checkpoint::StoredCheckpoint;
pub use error::StoreError;
pub use merge::{Conflict, Merged};
pub use unpublished::Unpublished;

/// The name of the sled tree holding partitions and segments.
const OFFSETS_TREE: &str = "offsets";
/// The name of the sled tree holding checkpoints.
const CHECKPOINTS_TREE: &str = "checkpoints";
/// The name of the sled tree marking partitions whose recorded segments are not published yet.
const UNPUBLISHED_TREE: &str = "unpublished";
/// The name of the sled tree holding how far each segments topic partition was read.
const READ_POSITIONS_TREE: &str = "segments_read";

/// One partition of one flow: the unit the store maps offsets for.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct PartitionKey {
    /// The flow's source cluster alias.
    pub source: String,
    /// The flow's target cluster alias.
    pub target: String,
    /// The topic on the source (the target topic's name follows from the naming policy).
    pub topic: String,
    /// The partition number, the same on both sides.
    pub partition: i32,
}

impl PartitionKey {
    /// A key from its parts.
    pub fn new(source: &str, target: &str, topic: &str, partition: i32) -> Self {
        PartitionKey {
            source: source.to_owned(),
            target: target.to_owned(),
            topic: topic.to_owned(),
            partition,
        }
    }
}

impl fmt::Display for PartitionKey {
    /// `onprem→eventhub testeh/0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}→{} {}/{}",
            self.source, self.target, self.topic, self.partition
        )
    }
}

/// What the flow learnt about one upstream record; [`Store::record`] takes them in upstream
/// order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The record at `upstream` was written to the target partition at `downstream`
    /// (the offset in the target's acknowledgement).
    Replicated {
        /// Offset on the source.
        upstream: i64,
        /// Offset of its copy on the target.
        downstream: i64,
    },
    /// The record at `upstream` was deliberately not written (loop rule).
    Skipped {
        /// Offset on the source.
        upstream: i64,
    },
}

impl Event {
    /// The record's source offset.
    pub fn upstream(&self) -> i64 {
        match *self {
            Event::Replicated { upstream, .. } | Event::Skipped { upstream } => upstream,
        }
    }
}

/// A run of consecutive upstream offsets copied to consecutive downstream offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// The first upstream offset.
    pub upstream: i64,
    /// Where that record's copy is on the target.
    pub downstream: i64,
    /// How many records (at least 1).
    pub len: i64,
}

impl Segment {
    /// One past the last upstream offset.
    pub fn upstream_end(&self) -> i64 {
        self.upstream + self.len
    }

    /// One past the last downstream offset: where a consumer resumes after the segment.
    pub fn downstream_end(&self) -> i64 {
        self.downstream + self.len
    }
}

/// Where a consumer group should resume on the target, given its offset on the source.
///
/// A group offset U is "the next record to read". With the partition's segments and its
/// processed-up-to position P:
/// - U inside a segment → that record's copy: `downstream + (U - upstream)`.
/// - U in a gap (offsets skipped, compacted away, or never replicated) → the copy of the next
///   replicated record, i.e. the next segment's `downstream`. This also answers U below the
///   first segment once older segments were pruned: those offsets are below the source's log
///   start, so the group could not read them on the source either, and the first record it
///   could read is in (or after) the first remaining segment.
/// - U at or past the last segment's end, U ≤ P → the last segment's `downstream_end`: the
///   group has read everything replicated so far, and whatever is replicated next is written
///   after it.
/// - U > P → [`Translation::NotYetReplicated`].
/// - U below the first offset the store ever recorded, while the source still has those
///   offsets (the log start given to [`Store::prune`] is below it) → [`Translation::Unknown`]:
///   the store was created or lost after the flow had copied them, and their copies lie
///   somewhere before the first segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Translation {
    /// The target offset to resume at.
    Exact(i64),
    /// U > P: the flow has not handled the group's position yet; emit no checkpoint now.
    NotYetReplicated,
    /// The store cannot say: nothing was ever replicated for this partition, or U lies below
    /// the first offset the store saw while those offsets still exist on the source (the store
    /// was created, or lost and recreated, after the flow had copied them).
    Unknown,
}

/// What the store knows of one partition besides its segments ([`Store::partition_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionState {
    /// Every upstream offset below this has been handled.
    pub processed_upto: i64,
    /// The lowest upstream offset ever recorded.
    pub known_from: i64,
    /// The highest source log start given to [`Store::prune`] (0 before the first prune).
    pub log_start: i64,
}

/// What a store knows of one partition: its positions and its segments in upstream order —
/// what one instance publishes for others to [`Store::merge`] ([`Store::report`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSet {
    /// The partition's positions.
    pub state: PartitionState,
    /// Segments in increasing upstream order, not overlapping.
    pub segments: Vec<Segment>,
}

/// A handle on the open store; clones share it (sled's `Db` is reference-counted inside).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    /// Partition entries and segments (see `codec` for the key layout).
    offsets: sled::Tree,
    /// The latest checkpoint per (group, flow partition).
    checkpoints: sled::Tree,
    /// Partitions recorded since their last publication (see `unpublished`).
    unpublished: sled::Tree,
    /// Next offset to read per segments topic partition (see `positions`).
    read_positions: sled::Tree,
    /// `store.path`, for error messages.
    path: PathBuf,
    /// Serialises `record`, `merge`, `prune` and `forget`: each reads segments, then writes a
    /// batch computed from them, and sled batches do not check that what was read is still
    /// there.
    writer: Mutex<()>,
    /// Whether this handle's `open` created the store (the directory was missing or empty).
    created: bool,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `path` (the topology's `store.path`), creating it when the directory
    /// is missing or empty.
    ///
    /// Errors: [`StoreError::NotAStore`] for a file, a non-empty directory that is not a sled
    /// database, or a sled database without hubmirror's marker (another program's, or one whose
    /// data sled could not read back); [`StoreError::UnsupportedVersion`] for another format;
    /// [`StoreError::Corrupt`] when sled rejects its files; [`StoreError::Locked`] when another
    /// process (or another `Store` of this one) has it open: sled releases its lock
    /// asynchronously after the last handle is dropped, so `open` retries for up to 2 s
    /// before reporting it (see [`Store::open_waiting`]).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_waiting(path, open::LOCK_WAIT)
    }

    /// [`Store::open`], waiting at most `lock_wait` for a held store to be released
    /// (`Duration::ZERO`: report [`StoreError::Locked`] at once, e.g. to detect a running
    /// daemon).
    pub fn open_waiting(path: &Path, lock_wait: Duration) -> Result<Store, StoreError> {
        let (db, created) = open::open_db(path, lock_wait)?;
        Store::with_db(db, path, created)
    }

    /// A new, empty store in a temporary directory, removed when the last handle is dropped:
    /// for a command that rebuilds what it needs from the segments topics because there is no
    /// store at `store.path` ([`Store::path`] is `(temporary store)`).
    pub fn temporary() -> Result<Store, StoreError> {
        let path = Path::new("(temporary store)");
        let db = open::open_temporary(path)?;
        Store::with_db(db, path, true)
    }

    fn with_db(db: sled::Db, path: &Path, created: bool) -> Result<Store, StoreError> {
        let tree = |name| {
            db.open_tree(name).map_err(|source| StoreError::Sled {
                path: path.to_owned(),
                source,
            })
        };
        let offsets = tree(OFFSETS_TREE)?;
        let checkpoints = tree(CHECKPOINTS_TREE)?;
        let unpublished = tree(UNPUBLISHED_TREE)?;
        let read_positions = tree(READ_POSITIONS_TREE)?;
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                offsets,
                checkpoints,
                unpublished,
                read_positions,
                path: path.to_owned(),
                writer: Mutex::new(()),
                created,
            }),
        })
    }

    /// Whether opening it created it: the directory was missing or empty, so the store knows
    /// nothing of what flows copied before (a new deployment, or a lost store).
    pub fn created(&self) -> bool {
        self.inner.created
    }

    /// The directory this store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Writes everything recorded so far to disk and waits for it.
    ///
    /// sled also flushes on its own every 500 ms, but a flow must call this before it commits
    /// source offsets: after a crash the flow resumes from its committed offset, and a store
    /// that lost mappings below that offset would take the missing range for a gap.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.inner.db.flush().map(drop).map_err(|e| self.sled(e))
    }

    /// Bytes the store's files take on disk, as sled counts them.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.inner.db.size_on_disk().map_err(|e| self.sled(e))
    }

    fn sled(&self, source: sled::Error) -> StoreError {
        StoreError::Sled {
            path: self.inner.path.clone(),
            source,
        }
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.inner.path.clone(),
            detail,
        }
    }
}
