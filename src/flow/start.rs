//! Where each newly assigned source partition starts: after the last copy the target already
//! holds ([`super::resume`]) or at the committed offset, whichever is further — and never below
//! the source's log start without saying so ([`super::loss`]).
//!
//! A committed offset is used only when it was committed for this flow's target
//! ([`super::stamp`]). It is set aside, with one warning line, when
//! - its stamp names another target or remote topic, or
//! - it carries no stamp (a broker that drops commit metadata, an older hubmirror, another
//!   tool), the target's tail holds no copy of the partition and the store has no record of it:
//!   nothing on this side shows the flow ever copied it.
//!
//! The partition then starts after the last copy found on the target, or at the beginning —
//! records may be copied twice, never skipped.
//!
//! A partition the flow has never replicated — no committed offset it uses, no copy in the
//! target's tail — starts where the flow's `start_from` says: the beginning (`earliest`), or,
//! for `latest` and a time, the position [`super::fresh`] chooses and commits at once. Such a
//! choice never passes an unstamped committed offset that was set aside (on a broker that drops
//! commit metadata, that offset may be this flow's own earlier choice): the partition starts at
//! the earlier of the two, not below the log start. `on_data_loss` never applies to a choice:
//! a committed offset below the log start is loss, a time older than the log start is not.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use super::fresh::Fresh;
use super::group::FlowConsumer;
use super::loss::LossGuard;
use super::resume::{TailCopies, TailReader};
use super::route::Route;
use super::stamp::{CommitStamp, Verdict};
use super::FlowError;
use crate::headers;
use crate::store::{PartitionKey, Store};
use crate::topology::{Cluster, StartFrom};

/// How long one watermark request to the source may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Decides start positions for one run of a flow.
pub struct Starter {
    /// Reads the target's partitions back from their end.
    pub reader: Arc<TailReader>,
    /// The flow's source consumer (committed offsets, log start offsets).
    pub consumer: Arc<FlowConsumer>,
    /// Copies found on the target past the committed offset are recorded here.
    pub store: Store,
    /// The flow's `on_data_loss`.
    pub guard: Arc<LossGuard>,
    /// Tells whether a committed offset was committed for this target.
    pub stamp: Arc<CommitStamp>,
    /// The flow's `start_from`: where partitions it never replicated start.
    pub start_from: StartFrom,
    /// The source cluster (read to find where `start_from` puts a partition).
    pub source: Cluster,
}

/// Partitions the group assigned, with where each starts.
pub struct Assignment {
    /// The route the partitions belong to.
    pub route: Arc<Route>,
    /// `(partition, start offset)`: after the target's last copy or at the committed offset,
    /// whichever is further; where `start_from` says when neither exists.
    pub start: Vec<(i32, Offset)>,
}

/// The flow group's committed offset of one source partition, as read from the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The source partition.
    pub partition: i32,
    /// The next offset to read, if one was committed.
    pub offset: Option<i64>,
    /// The commit's metadata (hubmirror's [`CommitStamp`], or whatever else wrote it).
    pub metadata: String,
}

impl Starter {
    /// The flow group's committed offset of each of `partitions` of `topic`, if any.
    pub async fn committed(
        &self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<Vec<Committed>, FlowError> {
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition(topic, *p);
        }
        let consumer = self.consumer.clone();
        let committed =
            tokio::task::spawn_blocking(move || consumer.committed_offsets(tpl, REQUEST_TIMEOUT))
                .await
                .map_err(FlowError::join)?
                .map_err(|e| FlowError::Source {
                    what: format!("reading committed offsets of '{topic}'"),
                    source: e,
                })?;
        Ok(committed
            .elements()
            .iter()
            .map(|e| Committed {
                partition: e.partition(),
                offset: match e.offset() {
                    Offset::Offset(n) if n >= 0 => Some(n),
                    _ => None,
                },
                metadata: e.metadata().to_string(),
            })
            .collect())
    }

    /// Under `start_from: latest` or a time, records now where `partitions` of `route` start
    /// when nothing is committed for them yet: they wait for their remote topic to grow
    /// (`super::remote`), and start, once it has, where the flow took them rather than at a
    /// later "latest" (records produced while they waited are copied).
    pub async fn reserve(&self, route: &Route, partitions: &[i32]) -> Result<(), FlowError> {
        if self.start_from == StartFrom::Earliest || partitions.is_empty() {
            return Ok(());
        }
        let committed = self.committed(&route.source_topic, partitions).await?;
        let (consumer, stamp) = (self.consumer.clone(), self.stamp.clone());
        let (start_from, source) = (self.start_from, self.source.clone());
        let topic = route.source_topic.to_string();
        let remote = route.remote_topic.clone();
        tokio::task::spawn_blocking(move || {
            let mut fresh = Fresh::new(&consumer, &stamp, start_from, &source);
            for c in committed.into_iter().filter(|c| c.offset.is_none()) {
                fresh.start((&topic, &remote, c.partition), None)?;
            }
            Ok(())
        })
        .await
        .map_err(FlowError::join)?
    }

    /// Start positions of `route`'s partitions, given each one's committed offset.
    pub async fn positions(
        &self,
        route: &Route,
        committed: Vec<Committed>,
    ) -> Result<Vec<(i32, Offset)>, FlowError> {
        let reader = self.reader.clone();
        let consumer = self.consumer.clone();
        let store = self.store.clone();
        let guard = self.guard.clone();
        let stamp = self.stamp.clone();
        let (start_from, source) = (self.start_from, self.source.clone());
        let topic = route.source_topic.to_string();
        let remote = route.remote_topic.clone();
        tokio::task::spawn_blocking(move || {
            let mut fresh = Fresh::new(&consumer, &stamp, start_from, &source);
            let mut out = Vec::with_capacity(committed.len());
            for c in committed {
                let p = c.partition;
                let judged = trusted(
                    &reader,
                    &store,
                    (&guard, &stamp, start_from),
                    (&topic, &remote),
                    c,
                )?;
                let next = resume_at(&reader, &store, &guard, (&topic, &remote, p), judged.resume)?;
                let start = match next {
                    None if start_from == StartFrom::Earliest => Offset::Beginning,
                    None => Offset::Offset(fresh.start((&topic, &remote, p), judged.bound)?),
                    Some(n) => {
                        let (low, _) = consumer
                            .fetch_watermarks(&topic, p, REQUEST_TIMEOUT)
                            .map_err(|e| FlowError::Source {
                                what: format!("reading the log start of '{topic}' partition {p}"),
                                source: e,
                            })?;
                        Offset::Offset(guard.check(&topic, p, n, low)?)
                    }
                };
                out.push((p, start));
            }
            Ok(out)
        })
        .await
        .map_err(FlowError::join)?
    }
}

/// A committed offset as judged: the offset to resume from, if it may be used; otherwise, when
/// it had no stamp and `start_from` is not `earliest`, the bound a fresh start never passes.
struct Judged {
    resume: Option<i64>,
    bound: Option<i64>,
}

impl Judged {
    /// Nothing to resume from, nothing bounding a fresh start.
    const NOTHING: Judged = Judged {
        resume: None,
        bound: None,
    };
}

/// Whether the committed offset of `c`'s partition may be resumed from (see the module's
/// rules); says so in one line when it is set aside.
fn trusted(
    reader: &TailReader,
    store: &Store,
    (guard, stamp, start_from): (&LossGuard, &CommitStamp, StartFrom),
    (topic, remote): (&str, &str),
    c: Committed,
) -> Result<Judged, FlowError> {
    let used = |offset| Judged {
        resume: Some(offset),
        bound: None,
    };
    let Some(offset) = c.offset else {
        return Ok(Judged::NOTHING);
    };
    let p = c.partition;
    let key = PartitionKey::new(&guard.source, &guard.target, topic, p);
    let why = match stamp.judge(&c.metadata, remote) {
        Verdict::Ours => return Ok(used(offset)),
        Verdict::Foreign(other) => {
            // The store's translations of this partition, if any, are about that other target.
            let forgotten = store.forget(&key)?;
            let note = if forgotten > 0 {
                format!("; forgot the store's {forgotten} translation segment(s) of it")
            } else {
                String::new()
            };
            format!(
                "it was committed for {other}, not for '{remote}' on this target{note} (if two \
                 deployments share the group, give each topology its own `name:`)"
            )
        }
        Verdict::Unstamped => {
            if offset == 0 || store.partition_state(&key)?.is_some() {
                return Ok(used(offset));
            }
            let tail = scan_tail(reader, &guard.source, (topic, remote, p), None)?;
            if tail.last_upstream().is_some() {
                return Ok(used(offset));
            }
            if start_from != StartFrom::Earliest {
                // Said by the fresh start it bounds.
                return Ok(Judged {
                    resume: None,
                    bound: Some(offset),
                });
            }
            format!(
                "it carries no hubmirror stamp, '{remote}' partition {p} holds no copy of it and \
                 the store has no record of it, so nothing shows it was committed for this target"
            )
        }
    };
    let otherwise = match start_from {
        StartFrom::Earliest => {
            "at the beginning (records may be copied twice, none skipped)".into()
        }
        s => format!("where `start_from: {s}` puts it"),
    };
    tracing::warn!(
        source = %guard.source, target = %guard.target, topic, partition = p, remote,
        "not resuming '{topic}' partition {p} from the committed offset {offset}: {why}; starting \
         after the last copy on the target, or {otherwise}"
    );
    Ok(Judged::NOTHING)
}

/// The flow's copies of source partition `topic`/`partition` in the tail of `remote` on the
/// target (see [`TailReader::scan`]).
fn scan_tail(
    reader: &TailReader,
    source: &str,
    (topic, remote, partition): (&str, &str, i32),
    committed: Option<i64>,
) -> Result<TailCopies, FlowError> {
    let prefix = headers::source_prefix(source, topic, partition);
    reader
        .scan(remote, partition, &prefix, committed)
        .map_err(|e| FlowError::Target {
            what: format!("reading back the end of '{remote}' partition {partition}"),
            source: e,
        })
}

/// The next source offset to replicate for one partition, from its committed offset and the
/// copies in the target's tail; `None` when neither knows (start from the beginning).
fn resume_at(
    reader: &TailReader,
    store: &Store,
    guard: &LossGuard,
    (topic, remote, partition): (&str, &str, i32),
    committed: Option<i64>,
) -> Result<Option<i64>, FlowError> {
    // Where this store's knowledge of the partition ends: with several instances, the previous
    // owner's last segments (recorded and committed, but killed before it published them) are
    // missing from every other store. The copies from there to the committed offset are read
    // back from the target's tail and recorded here, so translation has no hole (they are
    // published again with this instance's segments; the same mapping twice is no conflict).
    let key = PartitionKey::new(&guard.source, &guard.target, topic, partition);
    let known = store.partition_state(&key)?.map(|s| s.processed_upto);
    let back_to = match (committed, known) {
        (Some(c), Some(k)) if (0..c).contains(&k) => Some(k),
        _ => committed,
    };
    let tail = scan_tail(reader, &guard.source, (topic, remote, partition), back_to)?;
    let Some(last) = tail.last_upstream() else {
        tracing::debug!(source = %guard.source, target = %guard.target, topic, partition, scanned = tail.scanned, "no copy found in the target's tail");
        return Ok(committed);
    };
    let next = committed.map_or(last + 1, |c| c.max(last + 1));
    let events = tail.events_from(back_to.unwrap_or(0));
    if !events.is_empty() {
        store.record(&key, &events)?;
        store.flush()?;
    }
    match committed {
        Some(c) if next > c => tracing::info!(
            source = %guard.source, target = %guard.target, topic, partition, remote,
            "'{remote}' partition {partition} already holds copies up to source offset {last}, past the committed offset {c}: resuming at {next} ({} records not written again)",
            next - c
        ),
        None => tracing::info!(
            source = %guard.source, target = %guard.target, topic, partition, remote,
            "'{remote}' partition {partition} already holds copies up to source offset {last} (no committed offset): resuming at {next}"
        ),
        Some(_) => {}
    }
    Ok(Some(next))
}
