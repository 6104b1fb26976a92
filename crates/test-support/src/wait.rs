//! [`wait_for`]: the one way tests wait — poll with a deadline, never a fixed sleep.

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// How often [`wait_for`] asks again.
const EVERY: Duration = Duration::from_millis(100);

/// What a check passed to [`wait_for`] answers: `Some(v)` / `Ok(v)` when done; `None`, or
/// `Err(seen)` to have the last thing seen printed if the wait times out.
pub trait Check {
    /// What the wait returns.
    type Value;
    /// `Ok` when done; `Err` with what to add to the timeout message otherwise.
    fn done(self) -> Result<Self::Value, String>;
}

impl<V> Check for Option<V> {
    type Value = V;
    fn done(self) -> Result<V, String> {
        self.ok_or_else(String::new)
    }
}

impl<V, E: Debug> Check for Result<V, E> {
    type Value = V;
    fn done(self) -> Result<V, String> {
        self.map_err(|seen| format!("; last seen: {seen:?}"))
    }
}

/// Calls `check` every 100 ms until it is done and returns its value; panics after `timeout`
/// naming `what` (and the last thing an `Err` reported).
pub fn wait_for<C: Check>(what: &str, timeout: Duration, mut check: impl FnMut() -> C) -> C::Value {
    let deadline = Instant::now() + timeout;
    loop {
        match check().done() {
            Ok(v) => return v,
            Err(seen) => assert!(
                Instant::now() < deadline,
                "{what}: not within {timeout:?}{seen}"
            ),
        }
        std::thread::sleep(EVERY);
    }
}
