//! Where the offset commands (`checkpoints`, `translate`, `failover`) get translations and
//! checkpoints from, in this order:
//!
//! 1. **the daemon**: a running `hubmirror run` holds the sled store (sled admits one process),
//!    so it is asked over `metrics.listen` (`/store/checkpoints`, `/store/translate`,
//!    `/store/reverse`, `/store/both-ways`);
//! 2. **the store**: nothing answers there, so the store at `store.path` is opened directly —
//!    never created: a missing or empty directory means the store is lost;
//! 3. **the segments topics**: without a store, a temporary one is filled from the flows'
//!    `hubmirror.segments.<source>.internal` topics, where every instance publishes its segments;
//! 4. **the checkpoints topic**: `<source>.checkpoints.internal` on the flow's target still
//!    holds the latest checkpoints that `run` wrote there ([`super::checkpoints_topic`]).
//!
//! Whichever of the first three answers first reads the flows' segments topics to their end
//! ([`OffsetSource::sync`]): every instance's segments, so the answer is the same whichever
//! instance's store (or none) is asked. [`OffsetSource`] is one of the first three; [`Via`]
//! names which of the four gave an answer (the `via` field of every JSON element).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::daemon_client::{self, DaemonError};
use crate::cluster;
use crate::naming::Naming;
use crate::segments::{self, CaughtUp, Merger, SegmentsError};
use crate::store::{PartitionKey, Resume, Store, StoreError, StoredCheckpoint, Translation};
use crate::topology::{Flow, Topology};

/// How long one request to a cluster may take.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a store held by another process may stay unreachable through the daemon (it opens
/// the store before it listens, and stops listening before it releases it: up to 10 s).
const BUSY_WAIT: Duration = Duration::from_secs(12);

/// What gave an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// The running `hubmirror run`, over `metrics.listen`.
    Daemon,
    /// The store at `store.path`, opened by this command.
    Store,
    /// A temporary store filled from the segments topics (no store at `store.path`).
    SegmentsTopic,
    /// `<source>.checkpoints.internal` on the flow's target.
    CheckpointsTopic,
}

/// Why the daemon or the store could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OffsetsError {
    /// The daemon answered badly.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The daemon answered a moment ago and now does not.
    #[error("hubmirror run at {0} (metrics.listen) stopped answering; run the command again")]
    DaemonGone(SocketAddr),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A segments topic could not be read.
    #[error(transparent)]
    Segments(#[from] SegmentsError),
    /// Neither the daemon nor the store can answer, and nothing else can (failing back).
    #[error(
        "no offset-translation store at {} and nothing answers on metrics.listen ({addr}): \
         failing back maps offsets through the store (checkpoints only go forward)",
        path.display()
    )]
    NoStore {
        /// `store.path`.
        path: PathBuf,
        /// `metrics.listen`.
        addr: SocketAddr,
    },
    /// Another process holds the store and nothing answers on `metrics.listen`.
    #[error(
        "store {} is held by another process, but nothing answers on metrics.listen ({addr}): \
         is a `hubmirror run` with another topology using this store?",
        path.display()
    )]
    Busy {
        /// `store.path`.
        path: PathBuf,
        /// `metrics.listen`.
        addr: SocketAddr,
    },
}

/// The daemon or the store: what translates offsets and keeps checkpoints.
#[derive(Debug)]
pub enum OffsetSource {
    /// The running `hubmirror run` at this address.
    Daemon(SocketAddr),
    /// The store, opened by this process.
    Store(Store),
    /// A temporary store this process filled from the segments topics.
    Rebuilt(Store),
}

impl OffsetSource {
    /// The daemon if it answers on `metrics.listen`, else the store at `store.path`; `None`
    /// when the store directory is missing or empty (nothing is created). A store held by
    /// another process while nothing answers is waited for (a daemon starting or stopping).
    pub fn open(t: &Topology) -> Result<Option<OffsetSource>, OffsetsError> {
        let (addr, path) = (t.metrics.listen, t.store.path.as_path());
        let deadline = Instant::now() + BUSY_WAIT;
        loop {
            match daemon_client::get(addr, "/healthz") {
                Ok(Some(_)) => return Ok(Some(OffsetSource::Daemon(addr))),
                Ok(None) => {}
                Err(e) => tracing::debug!("metrics.listen does not answer like hubmirror: {e}"),
            }
            if !store_exists(path)? {
                return Ok(None);
            }
            match Store::open_waiting(path, Duration::ZERO) {
                Ok(store) => return Ok(Some(OffsetSource::Store(store))),
                Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(StoreError::Locked { path }) => return Err(OffsetsError::Busy { path, addr }),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A temporary store filled from the segments topics of `flows` (no store at
    /// `store.path`); `None` when they hold nothing (none was ever published, or they cannot be
    /// read: each problem is a line in `notes`).
    pub fn rebuilt(
        t: &Topology,
        flows: &[&Flow],
        notes: &mut Vec<String>,
    ) -> Result<Option<OffsetSource>, OffsetsError> {
        let store = Store::temporary()?;
        let mut merged = 0;
        for flow in flows {
            match catch_up(t, flow, &store) {
                Ok(read) => merged += read.merged,
                Err(e) => notes.push(unreadable(t, flow, &e)),
            }
        }
        Ok((merged > 0).then_some(OffsetSource::Rebuilt(store)))
    }

    /// Reads `flow`'s segments topic to its end into the store that answers (the daemon's
    /// through `/store/sync`), so that it knows what every instance published.
    pub fn sync(&self, t: &Topology, flow: &Flow) -> Result<CaughtUp, OffsetsError> {
        match self {
            OffsetSource::Daemon(addr) => {
                let q = daemon_client::query(&[("source", &flow.source), ("target", &flow.target)]);
                let path = format!("/store/sync{q}");
                daemon_client::get_json(*addr, &path)?.ok_or(OffsetsError::DaemonGone(*addr))
            }
            OffsetSource::Store(s) | OffsetSource::Rebuilt(s) => Ok(catch_up(t, flow, s)?),
        }
    }

    /// Which one this is.
    pub fn via(&self) -> Via {
        match self {
            OffsetSource::Daemon(_) => Via::Daemon,
            OffsetSource::Store(_) => Via::Store,
            OffsetSource::Rebuilt(_) => Via::SegmentsTopic,
        }
    }

    /// One line for humans: where the answers come from.
    pub fn describe(&self) -> String {
        match self {
            OffsetSource::Daemon(addr) => {
                format!("via: daemon (the running hubmirror run at {addr})")
            }
            OffsetSource::Store(s) => format!("via: store ({})", s.path().display()),
            OffsetSource::Rebuilt(_) => {
                "via: segments-topic (no store at store.path: a temporary one rebuilt from the \
                 segments every instance published)"
                    .to_string()
            }
        }
    }

    /// The latest checkpoints of every group, or of `group`.
    pub fn checkpoints(&self, group: Option<&str>) -> Result<Vec<StoredCheckpoint>, OffsetsError> {
        match self {
            OffsetSource::Daemon(addr) => {
                let q = group.map(|g| daemon_client::query(&[("group", g)]));
                let path = format!("/store/checkpoints{}", q.unwrap_or_default());
                daemon_client::get_json(*addr, &path)?.ok_or(OffsetsError::DaemonGone(*addr))
            }
            OffsetSource::Store(s) | OffsetSource::Rebuilt(s) => Ok(s.checkpoints(group)?),
        }
    }

    /// Where a group at `upstream` on the flow partition `key` resumes on the target.
    pub fn translate(
        &self,
        key: &PartitionKey,
        upstream: i64,
    ) -> Result<Translation, OffsetsError> {
        match self {
            OffsetSource::Daemon(addr) => self.ask(*addr, "/store/translate", key, upstream),
            OffsetSource::Store(s) | OffsetSource::Rebuilt(s) => Ok(s.translate(key, upstream)?),
        }
    }

    /// Where a group at `downstream` on the target's copy of `key` resumes on the source.
    pub fn reverse(
        &self,
        key: &PartitionKey,
        downstream: i64,
    ) -> Result<Option<i64>, OffsetsError> {
        match self {
            OffsetSource::Daemon(addr) => self.ask(*addr, "/store/reverse", key, downstream),
            OffsetSource::Store(s) | OffsetSource::Rebuilt(s) => Ok(s.reverse(key, downstream)?),
        }
    }

    /// Where a group at `upstream` on the source of `key` resumes on its target when the flow
    /// back carries the topic into the same topic (`back_topic` on the target): identity both
    /// ways ([`Store::both_ways`]).
    pub fn both_ways(
        &self,
        key: &PartitionKey,
        back_topic: &str,
        upstream: i64,
    ) -> Result<Resume, OffsetsError> {
        match self {
            OffsetSource::Daemon(addr) => {
                let extra = [("back_topic", back_topic)];
                self.ask_with(*addr, "/store/both-ways", key, upstream, &extra)
            }
            OffsetSource::Store(s) | OffsetSource::Rebuilt(s) => {
                let back = PartitionKey::new(&key.target, &key.source, back_topic, key.partition);
                Ok(s.both_ways(key, &back, upstream)?)
            }
        }
    }

    fn ask<T: serde::de::DeserializeOwned>(
        &self,
        addr: SocketAddr,
        endpoint: &str,
        key: &PartitionKey,
        offset: i64,
    ) -> Result<T, OffsetsError> {
        self.ask_with(addr, endpoint, key, offset, &[])
    }

    fn ask_with<T: serde::de::DeserializeOwned>(
        &self,
        addr: SocketAddr,
        endpoint: &str,
        key: &PartitionKey,
        offset: i64,
        extra: &[(&str, &str)],
    ) -> Result<T, OffsetsError> {
        let (partition, offset) = (key.partition.to_string(), offset.to_string());
        let mut pairs = vec![
            ("source", key.source.as_str()),
            ("target", key.target.as_str()),
            ("topic", key.topic.as_str()),
            ("partition", partition.as_str()),
            ("offset", offset.as_str()),
        ];
        pairs.extend_from_slice(extra);
        let q = daemon_client::query(&pairs);
        daemon_client::get_json(addr, &format!("{endpoint}{q}"))?
            .ok_or(OffsetsError::DaemonGone(addr))
    }
}

/// Reads `flow`'s segments topic on its target to its end into `store`.
fn catch_up(t: &Topology, flow: &Flow, store: &Store) -> Result<CaughtUp, SegmentsError> {
    let mut config = cluster::client_config(&t.clusters[&flow.target]);
    cluster::drop_producer_settings(&mut config);
    let naming = Naming::from_replication(&t.replication);
    let merger = Merger::new(&flow.source, &flow.target, naming, store.clone(), None);
    segments::catch_up(config, &merger, CLUSTER_TIMEOUT)
}

/// The note of a segments topic that could not be read.
pub fn unreadable(t: &Topology, flow: &Flow, e: &dyn std::fmt::Display) -> String {
    let mut why = e.to_string();
    for secret in cluster::secrets(&t.clusters[&flow.target]) {
        why = why.replace(&secret, "***");
    }
    format!(
        "cannot read {} on '{}' ({why}): answers come from what this store knows alone",
        crate::naming::segments_topic(&flow.source),
        flow.target
    )
}

/// Whether `path` holds something to open: false when it is missing, or an empty directory
/// (apart from `lost+found`, as on a freshly mounted volume).
fn store_exists(path: &Path) -> Result<bool, StoreError> {
    let io = |action, source| StoreError::Io {
        path: path.to_owned(),
        action,
        source,
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io("cannot read the directory's metadata", e)),
        Ok(m) if !m.is_dir() => Ok(true),
        Ok(_) => {
            let entries =
                std::fs::read_dir(path).map_err(|e| io("cannot list the directory", e))?;
            for entry in entries {
                let entry = entry.map_err(|e| io("cannot list the directory", e))?;
                if entry.file_name() != "lost+found" {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}
