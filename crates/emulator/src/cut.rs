//! Network cuts: every open client connection closed at once (with its upstream connection;
//! whatever was pipelined on it is never answered), then new TCP connections refused for a
//! while (accepted and closed at once, before TLS), like a namespace that drops off the network.
//!
//! Each connection task watches the *cut token* that was current when it was accepted. A cut
//! opens the refusal window first and then cancels the current token and installs a fresh one,
//! so a connection accepted around a cut is either closed by it or refused by its window.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// The shared network-cut state and counters (lives in `Shared`).
#[derive(Debug)]
pub(crate) struct Cut {
    /// The origin of `refuse_until`.
    epoch: Instant,
    /// End of the refusal window in nanoseconds after `epoch`; 0 when there never was one.
    refuse_until: AtomicU64,
    /// Cancelled by the next cut; connections accepted since the last cut watch it.
    current: Mutex<CancellationToken>,
    /// Connections closed by cuts.
    closed: AtomicU64,
    /// Connections accepted and closed at once during a refusal window.
    refused: AtomicU64,
}

impl Default for Cut {
    fn default() -> Self {
        Cut {
            epoch: Instant::now(),
            refuse_until: AtomicU64::new(0),
            current: Mutex::new(CancellationToken::new()),
            closed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }
}

impl Cut {
    /// The token a newly accepted connection watches. Take it *before* checking
    /// [`Cut::refusing`], so that no connection slips between a cut and its window.
    pub(crate) fn token(&self) -> CancellationToken {
        self.lock().clone()
    }

    /// Refuses new connections until `now + window`, then closes every connection accepted so
    /// far (their tasks watch the token cancelled here).
    pub(crate) fn cut_for(&self, window: Duration) {
        let until = Instant::now() + window;
        let nanos = until.saturating_duration_since(self.epoch).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX).max(1);
        self.refuse_until.store(nanos, Ordering::SeqCst);
        let old = std::mem::replace(&mut *self.lock(), CancellationToken::new());
        old.cancel();
    }

    /// Whether a connection accepted at `now` must be refused.
    pub(crate) fn refusing(&self, now: Instant) -> bool {
        match self.refuse_until.load(Ordering::SeqCst) {
            0 => false,
            nanos => self.epoch + Duration::from_nanos(nanos) > now,
        }
    }

    /// Counts a connection closed by a cut.
    pub(crate) fn count_closed(&self) {
        self.closed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection refused during a window.
    pub(crate) fn count_refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// `(closed by cuts, refused during windows)` so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.closed.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }

    /// The current token; a poisoned lock still holds a valid token.
    fn lock(&self) -> std::sync::MutexGuard<'_, CancellationToken> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::{Emulator, EmulatorConfig};

    #[test]
    fn a_cut_cancels_earlier_tokens_only_and_opens_a_window() {
        let cut = Cut::default();
        assert!(!cut.refusing(Instant::now()));
        let before = cut.token();
        cut.cut_for(Duration::from_millis(300));
        let after = cut.token();
        assert!(before.is_cancelled());
        assert!(!after.is_cancelled());
        let now = Instant::now();
        assert!(cut.refusing(now));
        assert!(!cut.refusing(now + Duration::from_millis(400)));

        // A zero window closes connections without refusing any.
        cut.cut_for(Duration::ZERO);
        assert!(after.is_cancelled());
        assert!(!cut.refusing(Instant::now()));
        cut.count_closed();
        cut.count_refused();
        cut.count_refused();
        assert_eq!(cut.counts(), (1, 2));
    }

    /// True when the emulator closes `tcp` within 5 s (end of stream or reset).
    async fn closed_by_peer(tcp: &mut TcpStream) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn closes_open_connections_and_refuses_new_ones_during_the_window() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = EmulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            upstream: "127.0.0.1:1".to_string(),
            key_name: "k".to_string(),
            key: "s".to_string(),
            cert_dir: dir.path().to_path_buf(),
            extra_hosts: Vec::new(),
            refuse_create_topics: false,
            entra: None,
        };
        let shutdown = CancellationToken::new();
        let emulator = Emulator::start(config, shutdown.clone())
            .await
            .expect("start");
        let addr = emulator.local_addr();
        // Open (waiting for a TLS ClientHello) until the cut.
        let mut open = TcpStream::connect(addr).await.expect("connect");
        let mut idle = [0u8; 1];
        assert!(
            tokio::time::timeout(Duration::from_millis(200), open.read(&mut idle))
                .await
                .is_err(),
            "open before the cut"
        );

        emulator.cut_connections_for(Duration::from_secs(2));
        assert!(closed_by_peer(&mut open).await, "closed by the cut");
        let mut refused = TcpStream::connect(addr).await.expect("accepted");
        assert!(closed_by_peer(&mut refused).await, "refused in the window");
        let stats = emulator.stats();
        assert_eq!((stats.connections_cut, stats.connections_refused), (1, 1));

        // After the window, connections stay open again.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut tcp = TcpStream::connect(addr).await.expect("connect");
            let read = tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut idle)).await;
            if read.is_err() {
                break;
            }
            assert!(Instant::now() < deadline, "still refusing after the window");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(emulator.stats().connections_cut, 1);
        shutdown.cancel();
        emulator.stopped().await;
    }
}
