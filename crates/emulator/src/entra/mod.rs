//! Microsoft Entra ID, as far as an Event Hubs namespace without shared access keys needs it:
//! a token endpoint (client credentials with a secret or a federated assertion), the managed
//! identity endpoints (Azure IMDS and App Service), and the check of the access tokens clients
//! present with SASL OAUTHBEARER.
//!
//! - `jwt`: HS256 signing and verification with the emulator's key.
//! - `aad`: error answers the way Entra words them (`AADSTSnnnn`).
//! - `http`: the HTTP endpoints (axum).
//! - `oauthbearer`: the RFC 7628 client message and the token check on the Kafka listener.
//! - `handle`: the [`crate::Emulator`] methods for tests (tokens, counters, availability).

mod aad;
mod handle;

pub use handle::TokenIssuer;
pub(crate) mod http;
pub(crate) mod jwt;
pub(crate) mod oauthbearer;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use jwt::{AccessClaims, AssertionClaims, Signer, TOKEN_EXCHANGE_AUDIENCE};

/// The namespace host of [`EntraConfig::default`].
pub const DEFAULT_NAMESPACE: &str = "emulated.servicebus.windows.net";
/// The tenant of [`EntraConfig::default`].
pub const DEFAULT_TENANT: &str = "7a3c5e91-2b4d-4f6a-8c1e-0d9b2f4a6c8e";

/// An application registration: a client id with a secret and/or a federated credential.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EntraApp {
    /// The application (client) id.
    pub client_id: String,
    /// Its client secret, if it has one. Secret: never printed by `Debug`.
    pub client_secret: Option<String>,
    /// The subject of its federated credential (workload identity), e.g.
    /// `system:serviceaccount:hubmirror:hubmirror`, issued by the emulator's OIDC issuer.
    pub federated_subject: Option<String>,
}

impl fmt::Debug for EntraApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraApp")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("federated_subject", &self.federated_subject)
            .finish()
    }
}

/// How the emulator plays Entra ID (see [`crate::EmulatorConfig::entra`]).
#[derive(Clone)]
pub struct EntraConfig {
    /// The namespace host clients name, e.g. `emulated.servicebus.windows.net`; access tokens
    /// must have the audience `https://{namespace}`.
    pub namespace: String,
    /// The tenant id, the first segment of the token endpoint's path.
    pub tenant_id: String,
    /// The application registrations.
    pub apps: Vec<EntraApp>,
    /// Managed identities' client ids; the first is the system-assigned one, used when a
    /// request names no client id.
    pub managed_identities: Vec<String>,
    /// How long issued access tokens are valid.
    pub token_lifetime: Duration,
    /// Whether SASL PLAIN with a connection string is still accepted (`false` is like
    /// `disableLocalAuth`: PLAIN is refused, saying that local authentication is disabled).
    pub local_auth: bool,
    /// Where the HTTP endpoints listen (plain HTTP); port 0 picks a free port.
    pub listen: SocketAddr,
    /// The HS256 key; `None` makes a random one at start. Secret: never printed by `Debug`.
    pub signing_key: Option<Vec<u8>>,
    /// The App Service `X-IDENTITY-HEADER` value; `None` makes a random one at start.
    pub identity_header: Option<String>,
}

impl Default for EntraConfig {
    fn default() -> Self {
        EntraConfig {
            namespace: DEFAULT_NAMESPACE.to_string(),
            tenant_id: DEFAULT_TENANT.to_string(),
            apps: Vec::new(),
            managed_identities: Vec::new(),
            token_lifetime: Duration::from_secs(3600),
            local_auth: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            signing_key: None,
            identity_header: None,
        }
    }
}

impl fmt::Debug for EntraConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraConfig")
            .field("namespace", &self.namespace)
            .field("tenant_id", &self.tenant_id)
            .field("apps", &self.apps)
            .field("managed_identities", &self.managed_identities)
            .field("token_lifetime", &self.token_lifetime)
            .field("local_auth", &self.local_auth)
            .field("listen", &self.listen)
            .field("signing_key", &self.signing_key.as_ref().map(|_| "***"))
            .field(
                "identity_header",
                &self.identity_header.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// What the Entra side of an emulator counted since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntraStats {
    /// Access tokens issued by the token endpoint (client credentials).
    pub tokens_issued_token_endpoint: u64,
    /// Access tokens issued by the IMDS managed-identity endpoint.
    pub tokens_issued_imds: u64,
    /// Access tokens issued by the App Service managed-identity endpoint.
    pub tokens_issued_msi: u64,
    /// Token requests refused (4xx answers of the three endpoints).
    pub token_requests_refused: u64,
    /// Token requests answered 503 while the endpoints were made unavailable.
    pub token_requests_unavailable: u64,
    /// Successful first OAUTHBEARER authentications on the Kafka listener.
    pub oauthbearer_authentications: u64,
    /// OAUTHBEARER authentications (first or re-) refused.
    pub oauthbearer_refused: u64,
    /// Successful re-authentications (KIP-368) on live connections.
    pub reauthentications: u64,
    /// Connections closed because their session expired without re-authentication.
    pub sessions_expired: u64,
    /// SASL PLAIN authentications refused because local authentication is disabled.
    pub plain_refused_local_auth_disabled: u64,
}

/// Counters behind [`EntraStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) token_endpoint: AtomicU64,
    pub(crate) imds: AtomicU64,
    pub(crate) msi: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) unavailable: AtomicU64,
    pub(crate) bearer_ok: AtomicU64,
    pub(crate) bearer_refused: AtomicU64,
    pub(crate) reauth: AtomicU64,
    pub(crate) expired: AtomicU64,
    pub(crate) plain_refused: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The Entra state every connection and HTTP request shares.
pub(crate) struct Entra {
    pub(crate) namespace: String,
    pub(crate) tenant_id: String,
    pub(crate) apps: Vec<EntraApp>,
    pub(crate) managed_identities: Vec<String>,
    pub(crate) token_lifetime: Duration,
    pub(crate) local_auth: bool,
    /// Where the HTTP endpoints listen.
    pub(crate) listen: SocketAddr,
    /// `http://127.0.0.1:<port>` of the HTTP endpoints.
    pub(crate) authority: String,
    pub(crate) identity_header: String,
    key: Vec<u8>,
    signer: Signer,
    /// While `Some(t)` and `t` is in the future, the HTTP endpoints answer 503.
    unavailable_until: Mutex<Option<Instant>>,
    pub(crate) counters: Counters,
}

impl Entra {
    /// The shared state for `config`, with the HTTP endpoints bound at `http_addr`.
    pub(crate) fn new(config: &EntraConfig, http_addr: SocketAddr) -> Entra {
        let key = config.signing_key.clone().unwrap_or_else(random_key);
        let identity_header = config
            .identity_header
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        Entra {
            namespace: config.namespace.clone(),
            tenant_id: config.tenant_id.clone(),
            apps: config.apps.clone(),
            managed_identities: config.managed_identities.clone(),
            token_lifetime: config.token_lifetime,
            local_auth: config.local_auth,
            listen: http_addr,
            authority: format!("http://{http_addr}"),
            identity_header,
            signer: Signer::new(&key),
            key,
            unavailable_until: Mutex::new(None),
            counters: Counters::default(),
        }
    }

    /// The configuration in force, with the listen address, key and identity header made
    /// concrete.
    pub(crate) fn config(&self) -> EntraConfig {
        EntraConfig {
            namespace: self.namespace.clone(),
            tenant_id: self.tenant_id.clone(),
            apps: self.apps.clone(),
            managed_identities: self.managed_identities.clone(),
            token_lifetime: self.token_lifetime,
            local_auth: self.local_auth,
            listen: self.listen,
            signing_key: Some(self.key.clone()),
            identity_header: Some(self.identity_header.clone()),
        }
    }

    /// `https://{namespace}`: the audience of the namespace's access tokens.
    pub(crate) fn audience(&self) -> String {
        format!("https://{}", self.namespace)
    }

    /// The audiences accepted on the Kafka listener: with and without a trailing slash.
    pub(crate) fn audiences(&self) -> Vec<String> {
        vec![self.audience(), format!("{}/", self.audience())]
    }

    /// The issuer of access tokens: `https://sts.windows.net/{tenant}/`.
    pub(crate) fn token_issuer(&self) -> String {
        format!("https://sts.windows.net/{}/", self.tenant_id)
    }

    /// The issuer of federated assertions: `{authority}/oidc-issuer`.
    pub(crate) fn oidc_issuer(&self) -> String {
        format!("{}/oidc-issuer", self.authority)
    }

    /// The signer with the emulator's key.
    pub(crate) fn signer(&self) -> &Signer {
        &self.signer
    }

    /// An access token for `client_id` with audience `aud`, issued at `issued_at`, valid for
    /// `lifetime`; and its expiry (Unix seconds).
    pub(crate) fn issue(
        &self,
        client_id: &str,
        aud: &str,
        issued_at: SystemTime,
        lifetime: Duration,
    ) -> (String, u64) {
        let iat = jwt::unix_secs(issued_at);
        let exp = iat + lifetime.as_secs();
        let claims = AccessClaims {
            aud: aud.to_string(),
            iss: self.token_issuer(),
            tid: self.tenant_id.clone(),
            appid: client_id.to_string(),
            oid: client_id.to_string(),
            sub: client_id.to_string(),
            iat,
            nbf: iat,
            exp,
        };
        (self.signer.sign(&claims), exp)
    }

    /// A federated assertion for `subject`, valid for `lifetime` from now.
    pub(crate) fn federated_token(&self, subject: &str, lifetime: Duration) -> String {
        let iat = jwt::unix_secs(SystemTime::now());
        self.signer.sign(&AssertionClaims {
            iss: self.oidc_issuer(),
            sub: subject.to_string(),
            aud: TOKEN_EXCHANGE_AUDIENCE.to_string(),
            iat,
            nbf: iat,
            exp: iat + lifetime.as_secs(),
        })
    }

    /// Signs any claim set with the emulator's key.
    pub(crate) fn sign<T: Serialize>(&self, claims: &T) -> String {
        self.signer.sign(claims)
    }

    /// Makes the HTTP endpoints answer 503 until `until` (`None`: available again).
    pub(crate) fn set_unavailable_until(&self, until: Option<Instant>) {
        if let Ok(mut slot) = self.unavailable_until.lock() {
            *slot = until;
        }
    }

    /// Whether the HTTP endpoints answer 503 now.
    pub(crate) fn unavailable(&self) -> bool {
        self.unavailable_until
            .lock()
            .ok()
            .and_then(|slot| *slot)
            .is_some_and(|until| until > Instant::now())
    }

    /// A snapshot of the counters.
    pub(crate) fn stats(&self) -> EntraStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        EntraStats {
            tokens_issued_token_endpoint: get(&c.token_endpoint),
            tokens_issued_imds: get(&c.imds),
            tokens_issued_msi: get(&c.msi),
            token_requests_refused: get(&c.refused),
            token_requests_unavailable: get(&c.unavailable),
            oauthbearer_authentications: get(&c.bearer_ok),
            oauthbearer_refused: get(&c.bearer_refused),
            reauthentications: get(&c.reauth),
            sessions_expired: get(&c.expired),
            plain_refused_local_auth_disabled: get(&c.plain_refused),
        }
    }
}

/// 32 random bytes from the system's generator.
fn random_key() -> Vec<u8> {
    use ring::rand::SecureRandom;
    let mut key = vec![0u8; 32];
    if ring::rand::SystemRandom::new().fill(&mut key).is_err() {
        // No system randomness: fall back on two v4 uuids (getrandom underneath as well).
        key = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
            .iter()
            .flat_map(|u| u.as_bytes().to_vec())
            .collect();
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let config = EntraConfig {
            apps: vec![EntraApp {
                client_id: "app-1".to_string(),
                client_secret: Some("s3cr3t-value".to_string()),
                federated_subject: None,
            }],
            signing_key: Some(b"key-bytes-key-bytes".to_vec()),
            identity_header: Some("header-value".to_string()),
            ..EntraConfig::default()
        };
        let text = format!("{config:?}");
        assert!(text.contains("app-1"), "{text}");
        for secret in ["s3cr3t-value", "header-value", "107, 101"] {
            assert!(!text.contains(secret), "{text}");
        }
    }

    #[test]
    fn keeps_a_given_key_and_header_and_makes_random_ones_otherwise() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 4000));
        let a = Entra::new(&EntraConfig::default(), addr);
        let b = Entra::new(&EntraConfig::default(), addr);
        assert_ne!(a.key, b.key);
        assert_ne!(a.identity_header, b.identity_header);
        let again = Entra::new(&a.config(), addr);
        assert_eq!(again.key, a.key);
        assert_eq!(again.identity_header, a.identity_header);
        assert_eq!(a.authority, "http://127.0.0.1:4000");
        assert_eq!(a.oidc_issuer(), "http://127.0.0.1:4000/oidc-issuer");
        assert_eq!(a.audience(), format!("https://{DEFAULT_NAMESPACE}"));
        a.set_unavailable_until(Some(Instant::now() + Duration::from_secs(60)));
        assert!(a.unavailable());
        a.set_unavailable_until(None);
        assert!(!a.unavailable());
    }
}
