//! What a running [`Emulator`] offers about its Entra ID side: the authority, tokens made
//! directly (for raw-protocol tests and test clients), counters, and an outage switch.
//!
//! Every method answers `None` (or nothing, or zeros) for an emulator without Entra ID.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::info;

use super::{Entra, EntraConfig, EntraStats};
use crate::Emulator;

/// Issues access tokens with an emulator's key from any thread, e.g. in an rdkafka OAUTHBEARER
/// token callback. Keeps working after the emulator stopped (a restart with
/// [`Emulator::entra_config`] keeps the key, so its tokens stay valid).
#[derive(Clone)]
pub struct TokenIssuer(Arc<Entra>);

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("authority", &self.0.authority)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An access token for `client_id` for the namespace, valid for the configured lifetime
    /// from now, and its expiry.
    pub fn access_token(&self, client_id: &str) -> (String, SystemTime) {
        let entra = &self.0;
        let now = SystemTime::now();
        let (token, exp) = entra.issue(client_id, &entra.audience(), now, entra.token_lifetime);
        (token, SystemTime::UNIX_EPOCH + Duration::from_secs(exp))
    }
}

impl Emulator {
    /// `http://127.0.0.1:<port>`: the authority host of the token endpoint
    /// (`{authority}/{tenant}/oauth2/v2.0/token`), IMDS
    /// (`{authority}/metadata/identity/oauth2/token`) and App Service managed identity
    /// (`{authority}/msi/token`).
    pub fn authority_host(&self) -> Option<String> {
        self.shared.entra.as_ref().map(|e| e.authority.clone())
    }

    /// The value the App Service endpoint wants in `X-IDENTITY-HEADER` (random per start unless
    /// configured).
    pub fn identity_header(&self) -> Option<String> {
        self.shared
            .entra
            .as_ref()
            .map(|e| e.identity_header.clone())
    }

    /// A federated assertion, as the AKS OIDC issuer projects into a pod: signed with the
    /// emulator's key, `iss` = `{authority}/oidc-issuer`, `sub` = `subject`, `aud` =
    /// `api://AzureADTokenExchange`, valid for `lifetime` from now.
    pub fn federated_token(&self, subject: &str, lifetime: Duration) -> Option<String> {
        let entra = self.shared.entra.as_ref()?;
        Some(entra.federated_token(subject, lifetime))
    }

    /// An access token for `client_id` for this namespace, valid for the configured lifetime
    /// from now, as the token endpoint would issue it (not counted in [`EntraStats`]).
    pub fn access_token(&self, client_id: &str) -> Option<String> {
        let entra = self.shared.entra.as_ref()?;
        self.access_token_with(client_id, SystemTime::now(), entra.token_lifetime)
    }

    /// A handle that issues access tokens from any thread (see [`TokenIssuer`]).
    pub fn token_issuer(&self) -> Option<TokenIssuer> {
        self.shared.entra.clone().map(TokenIssuer)
    }

    /// Like [`Emulator::access_token`], issued at `issued_at` and valid for `lifetime` from
    /// then (one issued an hour ago for a minute has expired).
    pub fn access_token_with(
        &self,
        client_id: &str,
        issued_at: SystemTime,
        lifetime: Duration,
    ) -> Option<String> {
        let entra = self.shared.entra.as_ref()?;
        Some(
            entra
                .issue(client_id, &entra.audience(), issued_at, lifetime)
                .0,
        )
    }

    /// Signs any claim set with the emulator's key (HS256), e.g. an access token for another
    /// audience, for tests of refusals.
    pub fn sign_claims(&self, claims: &serde_json::Value) -> Option<String> {
        Some(self.shared.entra.as_ref()?.sign(claims))
    }

    /// What the Entra side counted since the emulator started (zeros without Entra ID).
    pub fn entra_stats(&self) -> EntraStats {
        self.shared
            .entra
            .as_ref()
            .map(|e| e.stats())
            .unwrap_or_default()
    }

    /// Makes the HTTP endpoints answer 503 (`false`) or serve again (`true`).
    pub fn set_entra_available(&self, available: bool) {
        if let Some(entra) = &self.shared.entra {
            info!(available, "entra endpoints availability set");
            // Far enough to outlast any test, near enough not to overflow an Instant.
            let until =
                (!available).then(|| Instant::now() + Duration::from_secs(100 * 365 * 86_400));
            entra.set_unavailable_until(until);
        }
    }

    /// Makes the HTTP endpoints answer 503 for `duration` from now.
    pub fn entra_unavailable_for(&self, duration: Duration) {
        if let Some(entra) = &self.shared.entra {
            info!(window = ?duration, "entra endpoints unavailable");
            entra.set_unavailable_until(Some(Instant::now() + duration));
        }
    }

    /// The Entra configuration in force, with the HTTP listen address, the signing key and
    /// the identity header made concrete: an emulator started again with it keeps accepting
    /// the tokens and assertions this one issued.
    pub fn entra_config(&self) -> Option<EntraConfig> {
        self.shared.entra.as_ref().map(|e| e.config())
    }
}
