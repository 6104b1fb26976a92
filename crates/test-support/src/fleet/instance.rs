//! One instance of a [`super::Fleet`]: its directory, its process, and what it says over HTTP.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use super::Owned;
use crate::hubmirror::{daemon_status, http_get, http_status, metric_sum, Running, Workdir};

/// One instance: its directory survives stops and kills, so a start again reuses the store.
pub struct Instance {
    pub name: String,
    /// Before `work`: a process is killed before its directory goes.
    pub(super) run: Option<Running>,
    pub(super) work: Workdir,
    pub(super) topology: PathBuf,
    pub(super) addr: String,
    pub(super) frozen: bool,
    /// When the current (or last) process started.
    pub(super) started: Option<Instant>,
}

impl Instance {
    /// The topology file of this instance (its store and metrics port; `-c` for the CLI).
    pub fn topology(&self) -> &Path {
        &self.topology
    }

    /// The work directory (topology, store, logs).
    pub fn dir(&self) -> &Path {
        self.work.path()
    }

    /// `host:port` of its `/metrics`, `/status`, `/readyz`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether a process runs (frozen or not).
    pub fn is_running(&self) -> bool {
        self.run.is_some()
    }

    /// The process id of the running process.
    pub fn pid(&self) -> Option<u32> {
        self.run.as_ref().map(Running::pid)
    }

    /// Whether it is frozen (SIGSTOP).
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// When the current process started.
    pub fn started(&self) -> Option<Instant> {
        self.started
    }

    /// The running process (panics when there is none).
    pub fn process(&mut self) -> &mut Running {
        let name = &self.name;
        self.run
            .as_mut()
            .unwrap_or_else(|| panic!("instance {name} is not running"))
    }

    /// The current process's output, or an empty string.
    pub fn output(&self) -> String {
        self.run.as_ref().map(Running::output).unwrap_or_default()
    }

    /// `/status` (a frozen instance is not asked: it would not answer).
    pub fn status(&self) -> Option<Value> {
        self.answers().then(|| daemon_status(&self.addr)).flatten()
    }

    /// `/readyz`'s status code.
    pub fn readyz(&self) -> Option<u16> {
        self.answers()
            .then(|| http_status(&self.addr, "/readyz").map(|r| r.0))
            .flatten()
    }

    /// The sum of `hubmirror_records_replicated_total` samples with `labels` (`k="v"`), since
    /// the current process started; `None` when it does not answer.
    pub fn replicated(&self, labels: &[&str]) -> Option<f64> {
        let page = self.answers().then(|| http_get(&self.addr, "/metrics"))??;
        Some(metric_sum(
            &page,
            "hubmirror_records_replicated_total",
            labels,
        ))
    }

    /// The source partitions of topic `topic` this instance replicates now, from its
    /// `/status`: each flow's `owned_partitions` list when it reports one (partitions waiting
    /// for their remote topic to grow included), else its `lag` list (one entry per partition
    /// it replicates). `None` when it does not answer.
    pub fn owned(&self, topic: &str) -> Option<BTreeSet<Owned>> {
        let status = self.status()?;
        let flows = status
            .as_array()
            .or_else(|| status["flows"].as_array())?
            .clone();
        let mut out = BTreeSet::new();
        for flow in flows {
            let list = flow["owned_partitions"]
                .as_array()
                .or_else(|| flow["lag"].as_array());
            for entry in list.into_iter().flatten() {
                if entry["topic"] != topic {
                    continue;
                }
                out.insert(Owned {
                    source: flow["source"].as_str().unwrap_or_default().to_string(),
                    target: flow["target"].as_str().unwrap_or_default().to_string(),
                    topic: topic.to_string(),
                    partition: entry["partition"].as_i64().unwrap_or(-1) as i32,
                });
            }
        }
        Some(out)
    }

    fn answers(&self) -> bool {
        self.run.is_some() && !self.frozen
    }

    /// Prints the last `tail` lines of every log of every process this instance ran, oldest
    /// first (when a test fails).
    pub(super) fn print_logs(&self, tail: usize) {
        let mut logs: Vec<(u64, PathBuf)> = std::fs::read_dir(self.work.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?;
                let n = name.strip_prefix("run-")?.split('.').next()?.parse().ok()?;
                Some((n, p))
            })
            .collect();
        logs.sort();
        for (_, path) in logs {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(tail);
            eprintln!(
                "---- instance {}: {} (lines {}-{} of {})\n{}",
                self.name,
                path.file_name()
                    .map_or(String::new(), |n| n.to_string_lossy().into()),
                from + 1,
                lines.len(),
                lines.len(),
                lines[from..].join("\n")
            );
        }
    }
}
