//! Shared integration-test support: real brokers, the Event Hubs emulator, the hubmirror binary,
//! and rdkafka helpers. Every test owns its brokers and ports; everything stops on drop.
//!
//! - [`tansu`]: a tansu broker per test on a free loopback port.
//! - [`emulator`]: an Event Hubs namespace (the emulator in front of its own tansu).
//! - [`hubmirror`]: the `hubmirror` binary: a work directory, `run` in the background, HTTP.
//! - [`fleet`]: several `hubmirror run` instances of one topology (`--instance NAME`), each
//!   with its own store and port: started, stopped, killed, frozen, started again.
//! - [`topology`]: [`topology::TopologyBuilder`], the one way tests write `topology.yaml`.
//! - [`proxy`]: a TCP relay in front of a broker that cuts one process off it.
//! - [`kafka`]: an independent rdkafka client: topics, batched producers, readers, checks.
//! - [`wait_for`]: polling with a deadline.

pub mod emulator;
pub mod fleet;
pub mod hubmirror;
pub mod kafka;
pub mod proxy;
pub mod tansu;
pub mod tls_front;
pub mod topology;
mod wait;

pub use wait::{wait_for, Check};

/// Runs `f` to completion on a current-thread tokio runtime of its own (for tests that drive
/// async clients or the in-process emulator from a plain `#[test]`).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// A tokio runtime with two worker threads, for tests that run hubmirror's tasks in-process.
pub fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Sends the logs of in-process code under test (the emulator) to the test's output;
/// `RUST_LOG` filters them (default: the emulator at `debug`). Call it first in a test.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "hubmirror_emulator=debug".into()),
        )
        .try_init();
}
