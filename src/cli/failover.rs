//! `hubmirror failover` (being written).

use std::process::ExitCode;

/// Runs `hubmirror failover`.
pub fn execute(_args: &super::opt::FailoverArgs) -> ExitCode {
    eprintln!("hubmirror failover: not implemented yet");
    ExitCode::from(super::EXIT_FAILURE)
}
