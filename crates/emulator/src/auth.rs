//! The SASL rules of the Kafka listener, shared by the first authentication (`conn`) and
//! re-authentications on live connections (KIP-368, `relay`):
//!
//! - without Entra ID, `PLAIN` with a connection string is the one mechanism;
//! - with Entra ID, `OAUTHBEARER` too (SaslHandshake v1 and later only), and `PLAIN` only while
//!   local authentication is enabled. A `PLAIN` handshake is still accepted when it is not, so
//!   that the SaslAuthenticate refusal can tell the client that local authentication is
//!   disabled (the handshake's list names only the enabled mechanisms).
//!
//! OAUTHBEARER sessions last until their token expires (`session_lifetime_ms`); PLAIN ones do
//! not expire.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tracing::{info, warn};

use super::api;
use super::entra::bump;
use super::entra::oauthbearer::{self, BearerRefusal, OAUTHBEARER};
use super::frame::{Frame, FrameError, Peek};
use super::sasl::{AuthFailure, Principal, PLAIN};
use super::Shared;

/// What failed PLAIN authentications are told; the reason goes to the emulator's log only.
pub(crate) const AUTH_FAILED_MESSAGE: &str = "Invalid SASL PLAIN credentials";
/// What PLAIN authentications are told when local authentication is disabled.
pub(crate) const LOCAL_AUTH_DISABLED_MESSAGE: &str =
    "Local authentication is disabled for this namespace (disableLocalAuth): SAS keys and \
     connection strings are not accepted, authenticate with Microsoft Entra ID (SASL OAUTHBEARER)";

/// A SASL mechanism the listener knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    /// `PLAIN` with `$ConnectionString`.
    Plain,
    /// `OAUTHBEARER` with an Entra ID access token.
    OAuthBearer,
}

/// The mechanisms a SaslHandshake answer lists.
pub(crate) fn enabled(shared: &Shared) -> Vec<&'static str> {
    match &shared.entra {
        None => vec![PLAIN],
        Some(e) if e.local_auth => vec![PLAIN, OAUTHBEARER],
        Some(_) => vec![OAUTHBEARER],
    }
}

/// The mechanism a SaslHandshake at `version` for `name` selects, if it is accepted.
pub(crate) fn choose(shared: &Shared, name: &str, version: i16) -> Option<Mechanism> {
    match name {
        PLAIN => Some(Mechanism::Plain),
        OAUTHBEARER if shared.entra.is_some() && version >= 1 => Some(Mechanism::OAuthBearer),
        _ => None,
    }
}

/// Why an authentication was refused. `Display` never shows secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// PLAIN credentials refused.
    #[error(transparent)]
    Plain(#[from] AuthFailure),
    /// OAUTHBEARER token refused.
    #[error(transparent)]
    Bearer(#[from] BearerRefusal),
}

/// A successful authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Accepted {
    /// Who authenticated (a key name or a client id): the same on re-authentication.
    pub(crate) principal: String,
    /// How long the session lasts, for OAUTHBEARER.
    pub(crate) lifetime: Option<Duration>,
}

/// Checks a PLAIN payload, local authentication included.
pub(crate) fn check_plain(shared: &Shared, payload: &[u8]) -> Result<Principal, AuthFailure> {
    if let Some(e) = shared.entra.as_ref().filter(|e| !e.local_auth) {
        bump(&e.counters.plain_refused);
        return Err(AuthFailure::LocalAuthDisabled);
    }
    shared.credentials.check(payload)
}

/// Checks a SaslAuthenticate request for `mechanism`. `previous` is the principal of the
/// session being re-authenticated, if this is a re-authentication. Returns the answer to send
/// and the outcome (after a refusal the connection is closed).
pub(crate) fn authenticate(
    shared: &Shared,
    mechanism: Mechanism,
    frame: &Frame,
    peek: Peek,
    previous: Option<&str>,
) -> Result<(Bytes, Result<Accepted, Refusal>), FrameError> {
    let payload = api::sasl_authenticate_token(frame)?;
    let outcome = match mechanism {
        Mechanism::Plain => check_plain(shared, &payload)
            .map_err(Refusal::from)
            .and_then(|p| {
                info!(
                    key_name = %p.key_name,
                    entity_path = p.entity_path.as_deref(),
                    reauthentication = previous.is_some(),
                    "authenticated (PLAIN)"
                );
                same_principal(previous, p.key_name)
            })
            .map(|principal| Accepted {
                principal,
                lifetime: None,
            }),
        Mechanism::OAuthBearer => bearer(shared, &payload, previous),
    };
    let answer = match &outcome {
        Ok(accepted) => {
            let lifetime_ms = accepted
                .lifetime
                .map_or(0, |l| i64::try_from(l.as_millis()).unwrap_or(i64::MAX));
            api::sasl_authenticate(peek, None, lifetime_ms)?
        }
        Err(refusal) => {
            let message = match refusal {
                Refusal::Plain(AuthFailure::LocalAuthDisabled) => {
                    LOCAL_AUTH_DISABLED_MESSAGE.to_string()
                }
                Refusal::Plain(_) => AUTH_FAILED_MESSAGE.to_string(),
                Refusal::Bearer(r) => format!("OAUTHBEARER authentication failed: {r}"),
            };
            let error = Some((ResponseError::SaslAuthenticationFailed, message.as_str()));
            api::sasl_authenticate(peek, error, 0)?
        }
    };
    Ok((answer, outcome))
}

/// The principal, unless a re-authentication changes it.
fn same_principal(previous: Option<&str>, principal: String) -> Result<String, Refusal> {
    match previous {
        Some(p) if p != principal => Err(BearerRefusal::PrincipalChanged.into()),
        _ => Ok(principal),
    }
}

fn bearer(shared: &Shared, payload: &[u8], previous: Option<&str>) -> Result<Accepted, Refusal> {
    let Some(entra) = &shared.entra else {
        // `choose` never selects OAUTHBEARER without Entra ID.
        return Err(BearerRefusal::Malformed("OAUTHBEARER is not enabled").into());
    };
    let checked = oauthbearer::check(entra, payload, SystemTime::now())
        .map_err(Refusal::from)
        .and_then(|s| Ok((same_principal(previous, s.client_id.clone())?, s)));
    match checked {
        Ok((principal, session)) => {
            let counter = if previous.is_some() {
                &entra.counters.reauth
            } else {
                &entra.counters.bearer_ok
            };
            bump(counter);
            info!(
                client_id = %principal,
                session_lifetime = ?session.lifetime,
                reauthentication = previous.is_some(),
                "authenticated (OAUTHBEARER)"
            );
            Ok(Accepted {
                principal,
                lifetime: Some(session.lifetime),
            })
        }
        Err(refusal) => {
            bump(&entra.counters.bearer_refused);
            warn!(%refusal, reauthentication = previous.is_some(), "OAUTHBEARER refused");
            Err(refusal)
        }
    }
}

/// An authenticated connection's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    /// The mechanism it authenticated with (re-authentications must use the same).
    pub(crate) mechanism: Mechanism,
    /// Who authenticated.
    pub(crate) principal: String,
    /// When the session ends unless re-authenticated (OAUTHBEARER only).
    pub(crate) expires: Option<tokio::time::Instant>,
}

impl Session {
    /// A session for an authentication with `mechanism`, starting now.
    pub(crate) fn new(mechanism: Mechanism, accepted: Accepted) -> Session {
        Session {
            mechanism,
            principal: accepted.principal,
            expires: accepted.lifetime.map(|l| tokio::time::Instant::now() + l),
        }
    }

    /// A PLAIN session of a bare (SaslHandshake v0) token: it never expires.
    pub(crate) fn plain(principal: String) -> Session {
        Session {
            mechanism: Mechanism::Plain,
            principal,
            expires: None,
        }
    }
}
