//! Where each newly assigned source partition starts: after the last copy the target already
//! holds ([`super::resume`]) or at the committed offset, whichever is further — and never below
//! the source's log start without saying so ([`super::loss`]).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Offset;

use super::loss::LossGuard;
use super::resume::TailReader;
use super::route::Route;
use super::FlowError;
use crate::cluster::ClusterContext;
use crate::headers;
use crate::store::{PartitionKey, Store};

/// How long one watermark request to the source may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Decides start positions for one run of a flow.
pub struct Starter {
    /// Reads the target's partitions back from their end.
    pub reader: Arc<TailReader>,
    /// The flow's source consumer (log start offsets).
    pub consumer: Arc<StreamConsumer<ClusterContext>>,
    /// Copies found on the target past the committed offset are recorded here.
    pub store: Store,
    /// The flow's `on_data_loss`.
    pub guard: Arc<LossGuard>,
}

impl Starter {
    /// Start positions of `route`'s partitions, given each one's committed offset.
    pub async fn positions(
        &self,
        route: &Route,
        committed: Vec<(i32, Option<i64>)>,
    ) -> Result<Vec<(i32, Offset)>, FlowError> {
        let reader = self.reader.clone();
        let consumer = self.consumer.clone();
        let store = self.store.clone();
        let guard = self.guard.clone();
        let topic = route.source_topic.to_string();
        let remote = route.remote_topic.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::with_capacity(committed.len());
            for (p, c) in committed {
                let next = resume_at(&reader, &store, &guard, (&topic, &remote, p), c)?;
                let start = match next {
                    None => Offset::Beginning,
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

/// The next source offset to replicate for one partition, from its committed offset and the
/// copies in the target's tail; `None` when neither knows (start from the beginning).
fn resume_at(
    reader: &TailReader,
    store: &Store,
    guard: &LossGuard,
    (topic, remote, partition): (&str, &str, i32),
    committed: Option<i64>,
) -> Result<Option<i64>, FlowError> {
    let prefix = headers::source_prefix(&guard.source, topic, partition);
    let tail = reader
        .scan(remote, partition, &prefix, committed)
        .map_err(|e| FlowError::Target {
            what: format!("reading back the end of '{remote}' partition {partition}"),
            source: e,
        })?;
    let Some(last) = tail.last_upstream() else {
        tracing::debug!(source = %guard.source, target = %guard.target, topic, partition, scanned = tail.scanned, "no copy found in the target's tail");
        return Ok(committed);
    };
    let next = committed.map_or(last + 1, |c| c.max(last + 1));
    let events = tail.events_from(committed.unwrap_or(0));
    if !events.is_empty() {
        let key = PartitionKey::new(&guard.source, &guard.target, topic, partition);
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
