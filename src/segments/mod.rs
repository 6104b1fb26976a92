//! Offset-translation segments shared by every instance of a topology, through a topic on the
//! target: translation is exact wherever a partition was replicated, by whichever instances
//! replicated it over time.
//!
//! Each instance's store records the segments of the partitions *its* flows copy. Each flow
//! S→T therefore also runs, in every instance:
//! - a **publisher** ([`Publisher`]): every [`PUBLISH_INTERVAL`] it publishes the segments the
//!   flow recorded since the last time (one small record per changed partition: mostly the tail
//!   segment, grown) to `hubmirror.segments.<S>.internal` on T ([`crate::naming::segments_topic`]), and
//!   every [`REFRESH_INTERVAL`] all the segments of the partitions this instance owns, so that
//!   time-based retention never removes a segment still in use;
//! - a **follower** ([`follow`]): it reads that topic continuously and merges every publication
//!   into the local store ([`crate::store::Store::merge`]).
//!
//! The inspection commands read the topic to its end into the store they use before they
//! answer ([`catch_up`]), so `checkpoints`, `translate` and `failover` give the same answer
//! whichever instance's store they open, or with none at all.
//!
//! The topic needs no compaction: merging is idempotent, a publication only ever adds
//! mappings, and every segment still needed is published again within a day — so plain
//! `cleanup.policy=delete` with any retention of two days or more (Event Hubs Standard keeps 7)
//! loses nothing. It is created with one partition; records are a few dozen bytes.
//!
//! Layout: [`record`] the record codec; [`publish`] the publisher; [`read`] the follower and
//! the one-shot catch-up; [`task`] both run for one flow by the daemon.

mod publish;
mod read;
mod record;
pub mod task;

use std::time::Duration;

use rdkafka::error::KafkaError;

pub use publish::Publisher;
pub use read::{catch_up, follow, CaughtUp, Merger, Readable};
pub use record::{Publication, MAX_SEGMENTS_PER_RECORD};

use crate::mm2::FormatError;
use crate::store::StoreError;

/// How often the segments a flow recorded are published (at most one record per changed
/// partition per interval).
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(2);

/// How often an instance publishes again every segment of the partitions it owns, so that a
/// time-based retention of the segments topic (Event Hubs Standard: 7 days) never removes one
/// still in use.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// How long after its start an instance first publishes all segments of what it owns (once
/// its partitions are assigned and it has read what the others published).
pub const FIRST_REFRESH: Duration = Duration::from_secs(60);

/// Why segments could not be published, read or decoded. Format errors never panic; cluster
/// errors say what was being done, naming the topic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentsError {
    /// A record that does not follow the segments record format.
    #[error("segments record {0}")]
    Format(#[from] FormatError),
    /// A record whose segment count is negative or larger than its bytes.
    #[error("segments record claims {count} segments but holds {left} bytes for them")]
    Count {
        /// The count read.
        count: i32,
        /// Bytes left for the segments.
        left: usize,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A request to the cluster failed.
    #[error("{what}: {source}")]
    Kafka {
        /// What was being done, naming the topic and cluster.
        what: String,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// The segments topic is missing and cannot or may not be created: a sentence naming the
    /// topic, the cluster and the fix.
    #[error("{0}")]
    Topic(String),
    /// The cluster did not answer in time.
    #[error("{what}: no answer within {waited:?}")]
    Timeout {
        /// What was being done, naming the topic.
        what: String,
        /// The time allowed.
        waited: Duration,
    },
}

/// Wraps a librdkafka error with what was being done.
fn kafka(what: impl Into<String>) -> impl FnOnce(KafkaError) -> SegmentsError {
    let what = what.into();
    move |source| SegmentsError::Kafka { what, source }
}
