//! `hubmirror checkpoints` (being written).

use std::process::ExitCode;

/// Runs `hubmirror checkpoints`.
pub fn execute(_args: &super::opt::CheckpointsArgs) -> ExitCode {
    eprintln!("hubmirror checkpoints: not implemented yet");
    ExitCode::from(super::EXIT_FAILURE)
}
