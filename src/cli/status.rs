//! `hubmirror status` (being written).

use std::process::ExitCode;

/// Runs `hubmirror status`.
pub fn execute(_args: &super::opt::StatusArgs) -> ExitCode {
    eprintln!("hubmirror status: not implemented yet");
    ExitCode::from(super::EXIT_FAILURE)
}
