//! `hubmirror translate` (being written).

use std::process::ExitCode;

/// Runs `hubmirror translate`.
pub fn execute(_args: &super::opt::TranslateArgs) -> ExitCode {
    eprintln!("hubmirror translate: not implemented yet");
    ExitCode::from(super::EXIT_FAILURE)
}
