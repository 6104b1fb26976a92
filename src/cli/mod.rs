//! The `hubmirror` command line: [`opt`] holds the clap types, one module per command.
//! `main.rs` only parses and calls [`run`].

pub mod checkpoints;
mod checkpoints_topic;
mod daemon_client;
mod direction;
mod error;
pub mod failover;
pub mod import;
mod offsets;
pub mod opt;
mod plan;
mod run;
pub mod status;
pub mod topics;
pub mod translate;
pub mod validate;

use std::process::ExitCode;

pub use opt::Opt;
use opt::{Command, LogFormat};

/// Exit status for a runtime failure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status for a bad configuration or usage.
pub const EXIT_CONFIG: u8 = 2;
/// Exit status for a command refused for safety.
pub const EXIT_REFUSED: u8 = 3;

/// Runs one parsed command line and returns the process exit code.
pub fn run(opt: Opt) -> ExitCode {
    openssl_without_atexit_cleanup();
    let command = opt.into_command();
    init_tracing(command.common().log_format);
    match command {
        Command::Run(args) => run::execute(&args),
        Command::Validate(args) => validate::execute(&args),
        Command::Topics(args) => topics::execute(&args),
        Command::Status(args) => status::execute(&args),
        Command::Checkpoints(args) => checkpoints::execute(&args),
        Command::Translate(args) => translate::execute(&args),
        Command::Failover(args) => failover::execute(&args),
        Command::Import(args) => import::execute(&args),
    }
}

/// Keeps OpenSSL from registering its `atexit` cleanup, before librdkafka initialises it.
///
/// When a command ends, clients of a cluster may still be closing in the background (a frozen or
/// refusing cluster must not delay the exit), their broker threads in the middle of TLS. OpenSSL's
/// cleanup freed its state under them and the process died of SIGSEGV instead of exiting with its
/// code (seen after "TLS certificate not trusted"). The operating system reclaims it all anyway.
fn openssl_without_atexit_cleanup() {
    // Initialises libcrypto and libssl with OPENSSL_INIT_NO_ATEXIT (OpenSSL 1.1.1b and later).
    openssl_sys::init();
}

/// Prints the one line a command fails with: as is on stderr with `--log-format human`, as a
/// JSON log record (level ERROR, the line as its message) with `--log-format json`, so that
/// log collectors parse it like every other line.
pub(crate) fn fatal_line(format: LogFormat, line: &str) {
    match format {
        LogFormat::Human => eprintln!("{line}"),
        LogFormat::Json => tracing::error!("{line}"),
    }
}

/// Installs the global tracing subscriber on stderr. `RUST_LOG` overrides the default `info`.
fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
