//! [`CommandError`]: why `checkpoints`, `translate` or `failover` failed, and the exit code
//! the contract gives it (2 usage, 1 runtime, 3 refused for safety).

use std::process::ExitCode;

use super::offsets::OffsetsError;
use super::{EXIT_CONFIG, EXIT_FAILURE, EXIT_REFUSED};
use crate::cluster::{self, FatalClusterError};
use crate::topology::{Cluster, TopologyError};

/// Why an offset command failed; [`CommandError::exit_code`] maps it to the contract's codes.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The topology cannot be loaded (exit 2), displayed as `file:line:col: message`.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// Bad configuration or usage (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A cluster needed now cannot be reached or refused a request (exit 1).
    #[error("cluster '{alias}': {reason}")]
    Cluster {
        /// The cluster's alias.
        alias: String,
        /// What failed, secrets removed.
        reason: String,
    },
    /// A cluster cannot be reached for a recognised reason (exit 1): one line naming the
    /// cluster, the broker, the cause and the fix.
    #[error("{0}")]
    Connection(Box<FatalClusterError>),
    /// The daemon or the store failed (exit 1).
    #[error(transparent)]
    Offsets(#[from] OffsetsError),
    /// Refused for safety (exit 3).
    #[error("{0}")]
    Refused(String),
    /// No Entra ID token for a cluster (exit 1).
    #[error(transparent)]
    Entra(#[from] crate::entra::EntraError),
}

impl CommandError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Topology(_) | CommandError::Usage(_) => EXIT_CONFIG,
            CommandError::Refused(_) => EXIT_REFUSED,
            CommandError::Cluster { .. }
            | CommandError::Connection(_)
            | CommandError::Offsets(_)
            | CommandError::Entra(_) => EXIT_FAILURE,
        }
    }

    /// Prints the error on stderr (topology errors as they are, the rest after `hubmirror: `)
    /// and returns its exit code.
    pub fn report(&self) -> ExitCode {
        match self {
            CommandError::Topology(e) => eprintln!("{e}"),
            e => eprintln!("hubmirror: {e}"),
        }
        ExitCode::from(self.exit_code())
    }

    /// A request to `cluster` failed: the error with the cluster's secrets removed.
    pub fn cluster(cluster: &Cluster, e: &dyn std::fmt::Display) -> CommandError {
        let mut reason = e.to_string();
        for s in cluster::secrets(cluster) {
            reason = reason.replace(&s, "***");
        }
        CommandError::Cluster {
            alias: cluster.alias.clone(),
            reason,
        }
    }
}

impl From<FatalClusterError> for CommandError {
    fn from(e: FatalClusterError) -> Self {
        if e.problem.is_some() {
            return CommandError::Connection(Box::new(e));
        }
        let reason = match e.fix() {
            Some(fix) => format!("{}: {}; {fix}", e.what, e.reason),
            None => format!("{}: {}", e.what, e.reason),
        };
        CommandError::Cluster {
            alias: e.alias,
            reason,
        }
    }
}
