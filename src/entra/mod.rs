//! Microsoft Entra ID for Event Hubs namespaces whose shared-access keys are off: hubmirror
//! fetches OAuth access tokens itself (client secret, AKS workload identity, managed identity;
//! [`request`]), keeps each namespace's current token in a [`cell`] that every librdkafka
//! client of that namespace reads (SASL OAUTHBEARER), and refreshes it well before it expires
//! ([`source`]).

pub mod cell;
mod error;
mod http;
pub mod request;
mod source;

use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use cell::{config_key, oauth_token, CellStatus, TokenCell};
pub use error::EntraError;
pub use source::TokenSource;

use crate::topology::Topology;

/// The token sources of a topology's Entra ID clusters, once each has its first token.
pub struct Tokens {
    sources: Vec<TokenSource>,
}

impl Tokens {
    /// Fetches the first token of every Entra ID cluster of `t` (concurrently), waiting at most
    /// `within` for an authority that does not answer (for ever when `None`).
    pub async fn first(
        t: &Topology,
        within: Option<Duration>,
        cancel: &CancellationToken,
    ) -> Result<Tokens, EntraError> {
        let mut sources = Vec::new();
        for cluster in t.clusters.values() {
            if let Some(s) = TokenSource::of(cluster)? {
                sources.push(s);
            }
        }
        let firsts = sources.iter().map(|s| s.first(within, cancel));
        for result in futures::future::join_all(firsts).await {
            result?;
        }
        Ok(Tokens { sources })
    }

    /// Whether no cluster uses Entra ID.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Keeps every token fresh until `cancel`; each task returns a refusal, which stops the run.
    pub fn keep_fresh(self, cancel: &CancellationToken) -> JoinSet<Result<(), EntraError>> {
        let mut set = JoinSet::new();
        for s in self.sources {
            set.spawn(s.keep_fresh(cancel.clone()));
        }
        set
    }
}

/// Tokens kept fresh on a thread of their own, for the commands that are not `run`: stops when
/// dropped.
pub struct Background {
    cancel: CancellationToken,
}

impl Drop for Background {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// How long a command waits for the first token of an authority that does not answer.
pub const COMMAND_WAIT: Duration = Duration::from_secs(30);

impl Tokens {
    /// Fetches the first tokens of `t`'s Entra ID clusters (waiting at most [`COMMAND_WAIT`]) and
    /// keeps them fresh on a thread of its own until the returned guard is dropped. `None` when no
    /// cluster uses Entra ID.
    pub fn in_background(t: &Topology) -> Result<Option<Background>, EntraError> {
        let t = t.clone();
        let cancel = CancellationToken::new();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let c = cancel.clone();
        let thread = std::thread::Builder::new()
            .name("entra-tokens".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(EntraError::Setup {
                            alias: "*".into(),
                            reason: format!("cannot start a runtime: {e}"),
                        }));
                        return;
                    }
                };
                rt.block_on(async move {
                    let tokens = match Tokens::first(&t, Some(COMMAND_WAIT), &c).await {
                        Ok(tokens) => tokens,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let empty = tokens.is_empty();
                    let _ = ready_tx.send(Ok(empty));
                    let mut tasks = tokens.keep_fresh(&c);
                    while let Some(done) = tasks.join_next().await {
                        if let Ok(Err(e)) = done {
                            tracing::error!("{e}");
                        }
                    }
                });
            });
        if let Err(e) = thread {
            return Err(EntraError::Setup {
                alias: "*".into(),
                reason: format!("cannot start a thread: {e}"),
            });
        }
        match ready_rx.recv() {
            Ok(Ok(true)) => Ok(None),
            Ok(Ok(false)) => Ok(Some(Background { cancel })),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(EntraError::Setup {
                alias: "*".into(),
                reason: "the token thread ended".into(),
            }),
        }
    }
}
