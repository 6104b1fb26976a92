//! `hubmirror run`: load the topology, start the async runtime and the signal watcher, and
//! hand over to [`crate::daemon::run`]; exit 0 after a clean stop, 1 with one line saying why
//! after a failure, 2 for a bad topology.

use std::process::ExitCode;

use super::opt::RunArgs;
use super::{EXIT_CONFIG, EXIT_FAILURE};
use crate::daemon;
use crate::shutdown::{self, CancellationToken};
use crate::topology;

/// Runs `hubmirror run` and returns its exit code.
pub fn execute(args: &RunArgs) -> ExitCode {
    let topology = match topology::load(&args.common.config) {
        Ok(t) => t,
        Err(e) => {
            super::fatal_line(args.common.log_format, &e.to_string());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let line = format!("hubmirror: cannot start the async runtime: {e}");
            super::fatal_line(args.common.log_format, &line);
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(shutdown::watch_signals(shutdown.clone()));
        daemon::run(topology, args.instance.clone(), shutdown).await
    });
    // Blocking metadata calls may still be waiting on a dead cluster: do not wait for them.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            super::fatal_line(args.common.log_format, &format!("hubmirror: {e}"));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
