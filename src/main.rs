use std::process::ExitCode;

use clap::Parser;

/// jemalloc, also behind librdkafka's `malloc` (see Cargo.toml).
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    hubmirror::cli::run(hubmirror::cli::Opt::parse())
}
