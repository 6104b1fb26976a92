//! Graceful shutdown: one [`CancellationToken`] is created in `run` and a clone is passed to
//! every task; a task `select!`s on `cancelled()` and finishes its in-flight work before it
//! returns. The first SIGINT/SIGTERM cancels the token; a second one exits the process at once.

pub use tokio_util::sync::CancellationToken;

/// Cancels `token` on the first SIGINT or SIGTERM, and exits the process with status 130 on
/// the second. Spawn it once per process.
pub async fn watch_signals(token: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot install signal handlers; stop hubmirror with SIGKILL");
        return;
    };
    let mut seen = 0;
    loop {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
        seen += 1;
        if seen == 1 {
            tracing::info!(
                "signal received: draining in-flight records (send again to exit at once)"
            );
            token.cancel();
        } else {
            tracing::warn!("second signal: exiting without draining");
            std::process::exit(130);
        }
    }
}
