//! One namespace's token source: fetches the first token before any client connects, then keeps
//! a fresh one in the cell, well before the current one expires; retries an authority that
//! cannot be reached with backoff, and reports a refusal, which no retry fixes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::cell::{self, TokenCell};
use super::error::EntraError;
use super::http;
use super::request::{self, Answer};
use crate::topology::entra::{Entra, EntraCredential, SecretSource};
use crate::topology::{Cluster, Secret};

/// The first retry waits this long; each next one twice as long, up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A new token is fetched this long before the current one expires at the latest (Azure's SDKs
/// refresh 5 minutes ahead)...
const REFRESH_AHEAD: Duration = Duration::from_secs(300);
/// ...and never later than this share of its lifetime (short-lived tokens).
const REFRESH_AT_SHARE: f64 = 0.5;

/// The token source of one Entra ID cluster.
pub struct TokenSource {
    alias: String,
    host: String,
    entra: Entra,
    http: reqwest::Client,
    cell: Arc<TokenCell>,
}

/// Why one attempt failed.
enum Failure {
    /// Retrying will not help.
    Refused(EntraError),
    /// Retry later.
    Unavailable(String),
}

impl TokenSource {
    /// The source of `cluster`, if it signs in with Entra ID.
    pub fn of(cluster: &Cluster) -> Result<Option<TokenSource>, EntraError> {
        let Some(eh) = &cluster.event_hubs else {
            return Ok(None);
        };
        let Some(entra) = eh.entra() else {
            return Ok(None);
        };
        let ca = cluster.tls.as_ref().and_then(|t| t.ca_file.as_deref());
        let http = http::client(ca).map_err(|reason| EntraError::Setup {
            alias: cluster.alias.clone(),
            reason,
        })?;
        let principal = entra.credential.client_id().unwrap_or("hubmirror");
        Ok(Some(TokenSource {
            alias: cluster.alias.clone(),
            host: eh.namespace_host.clone(),
            entra: entra.clone(),
            http,
            cell: cell::cell(&cluster.alias, principal),
        }))
    }

    /// The cell this source fills.
    pub fn cell(&self) -> Arc<TokenCell> {
        self.cell.clone()
    }

    /// Fetches the first token: retries an unreachable authority with backoff until `within`
    /// (for ever when `None`) or `cancel`; a refusal returns at once.
    pub async fn first(
        &self,
        within: Option<Duration>,
        cancel: &CancellationToken,
    ) -> Result<(), EntraError> {
        let started = std::time::Instant::now();
        let mut backoff = BACKOFF_MIN;
        loop {
            match self.fetch().await {
                Ok(()) => {
                    tracing::info!(
                        cluster = %self.alias,
                        mode = self.entra.credential.mode(),
                        "Entra ID token obtained (valid for {} s)",
                        self.cell.remaining().as_secs()
                    );
                    return Ok(());
                }
                Err(Failure::Refused(e)) => return Err(e),
                Err(Failure::Unavailable(reason)) => {
                    if within.is_some_and(|w| started.elapsed() + backoff > w) {
                        return Err(self.unreachable(reason, started.elapsed()));
                    }
                    tracing::warn!(
                        cluster = %self.alias,
                        "cannot get an Entra ID token yet: {reason} (retrying in {} ms)",
                        backoff.as_millis()
                    );
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(EntraError::Cancelled { alias: self.alias.clone() }),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Keeps the cell's token fresh until `cancel`; returns a refusal (the caller stops the
    /// run). An unreachable authority is retried with backoff, and shows in the cell.
    pub async fn keep_fresh(self, cancel: CancellationToken) -> Result<(), EntraError> {
        let mut backoff = BACKOFF_MIN;
        let mut wait = self.refresh_in();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
            match self.fetch().await {
                Ok(()) => {
                    backoff = BACKOFF_MIN;
                    wait = self.refresh_in();
                    tracing::debug!(
                        cluster = %self.alias,
                        "Entra ID token refreshed (valid for {} s)",
                        self.cell.remaining().as_secs()
                    );
                }
                Err(Failure::Refused(e)) => return Err(e),
                Err(Failure::Unavailable(reason)) => {
                    tracing::warn!(
                        cluster = %self.alias,
                        "cannot refresh the Entra ID token: {reason} (the current one is valid \
                         for {} s more; retrying in {} ms)",
                        self.cell.remaining().as_secs(),
                        backoff.as_millis()
                    );
                    wait = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// How long until the next refresh is due.
    fn refresh_in(&self) -> Duration {
        let remaining = self.cell.remaining();
        let by_share = remaining.mul_f64(REFRESH_AT_SHARE);
        let by_margin = remaining.saturating_sub(REFRESH_AHEAD);
        by_share.max(by_margin)
    }

    /// One attempt; a success is stored in the cell.
    async fn fetch(&self) -> Result<(), Failure> {
        let secret = self.secret().map_err(Failure::Refused)?;
        let req = request::build(
            &self.entra.credential,
            &self.entra.authority_host,
            &self.host,
            secret.as_ref().map_or("", Secret::expose),
        );
        let result = http::send(&self.http, req).await;
        let (status, body) = match result {
            Ok(answer) => answer,
            Err(reason) => {
                self.cell.failed(Some(reason.clone()));
                return Err(Failure::Unavailable(reason));
            }
        };
        match request::classify(status, &body) {
            Answer::Token => match request::parse_success(&body, SystemTime::now()) {
                Ok(issued) => {
                    self.cell.set(Secret::new(issued.token), issued.expires_at);
                    Ok(())
                }
                Err(reason) => {
                    self.cell.failed(Some(reason.clone()));
                    Err(Failure::Unavailable(reason))
                }
            },
            Answer::Unavailable(reason) => {
                self.cell.failed(Some(reason.clone()));
                Err(Failure::Unavailable(reason))
            }
            Answer::Refused { code, description } => {
                self.cell.failed(None);
                let fix = request::fix(&self.alias, &self.entra.credential, &code, &description);
                Err(Failure::Refused(EntraError::Refused {
                    alias: self.alias.clone(),
                    mode: self.entra.credential.mode(),
                    code,
                    description,
                    fix,
                }))
            }
        }
    }

    /// The client secret or federated token, read again from its file every time.
    fn secret(&self) -> Result<Option<Secret>, EntraError> {
        let file = match &self.entra.credential {
            EntraCredential::ClientSecret {
                secret: SecretSource::Value(v),
                ..
            } => return Ok(Some(v.clone())),
            EntraCredential::ClientSecret {
                secret: SecretSource::File(f),
                ..
            } => f,
            EntraCredential::WorkloadIdentity { token_file, .. } => token_file,
            EntraCredential::ManagedIdentity { .. } => return Ok(None),
        };
        let text = std::fs::read_to_string(file).map_err(|source| EntraError::File {
            alias: self.alias.clone(),
            file: file.clone(),
            source,
        })?;
        Ok(Some(Secret::new(text.trim())))
    }

    fn unreachable(&self, reason: String, waited: Duration) -> EntraError {
        let endpoint = match &self.entra.credential {
            EntraCredential::ManagedIdentity { .. } => "the managed identity endpoint",
            _ => "authority_host",
        };
        EntraError::Unreachable {
            alias: self.alias.clone(),
            endpoint,
            reason,
            waited,
        }
    }
}
