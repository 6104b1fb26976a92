//! The lifecycle states of a flow, as the status and its reports name them.

use serde::{Deserialize, Serialize};

/// The lifecycle of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowState {
    /// Created, not yet consuming.
    Starting,
    /// Consuming and replicating (or idle with nothing to do).
    Running,
    /// Stopping after a signal: draining in-flight records.
    Stopping,
    /// Stopped cleanly.
    Stopped,
    /// Stopped by an error.
    Failed,
    /// Waiting to restart after a transient failure (throttling, timeouts, a lost connection).
    Recovering,
}

impl FlowState {
    pub(super) fn from_u8(v: u8) -> Self {
        match v {
            0 => FlowState::Starting,
            1 => FlowState::Running,
            2 => FlowState::Stopping,
            3 => FlowState::Stopped,
            5 => FlowState::Recovering,
            _ => FlowState::Failed,
        }
    }
}
