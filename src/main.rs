use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    hubmirror::cli::run(hubmirror::cli::Opt::parse())
}
