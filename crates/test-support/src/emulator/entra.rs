//! Namespaces that play Microsoft Entra ID: token endpoints (client secret, workload identity,
//! IMDS and App Service managed identity) and SASL OAUTHBEARER on the Kafka listener.

use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hubmirror_emulator::{
    EntraApp, EntraConfig, EntraStats, TokenIssuer, DEFAULT_NAMESPACE, DEFAULT_TENANT,
};
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::consumer::ConsumerContext;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::ProducerContext;
use rdkafka::ClientConfig;

use super::EventHubsEmulator;

/// The application of [`EntraOptions::default`].
pub const TEST_CLIENT_ID: &str = "11111111-1111-1111-1111-111111111111";
/// Its client secret.
pub const TEST_CLIENT_SECRET: &str = "test-client-secret-value";
/// Its federated credential's subject (workload identity).
pub const TEST_FEDERATED_SUBJECT: &str = "system:serviceaccount:hubmirror:hubmirror";
/// The managed identity of [`EntraOptions::default`] (the system-assigned one).
pub const TEST_MANAGED_IDENTITY: &str = "22222222-2222-2222-2222-222222222222";

/// How [`EventHubsEmulator::start_entra`] plays Entra ID.
#[derive(Debug, Clone)]
pub struct EntraOptions {
    /// The namespace host; access tokens have the audience `https://{namespace}`.
    pub namespace: String,
    /// The tenant id.
    pub tenant_id: String,
    /// The application registrations.
    pub apps: Vec<EntraApp>,
    /// Managed identities' client ids (the first is the system-assigned one).
    pub managed_identities: Vec<String>,
    /// How long issued access tokens are valid.
    pub token_lifetime: Duration,
    /// Whether SASL PLAIN with the connection string is still accepted.
    pub local_auth: bool,
    /// CreateTopics gets POLICY_VIOLATION.
    pub refuse_create_topics: bool,
}

impl Default for EntraOptions {
    /// `emulated.servicebus.windows.net`, a fixed tenant, one app ([`TEST_CLIENT_ID`] with
    /// [`TEST_CLIENT_SECRET`] and the federated subject [`TEST_FEDERATED_SUBJECT`]), one managed
    /// identity ([`TEST_MANAGED_IDENTITY`]), tokens valid for an hour, local authentication
    /// disabled, topic creation allowed.
    fn default() -> Self {
        EntraOptions {
            namespace: DEFAULT_NAMESPACE.to_string(),
            tenant_id: DEFAULT_TENANT.to_string(),
            apps: vec![EntraApp {
                client_id: TEST_CLIENT_ID.to_string(),
                client_secret: Some(TEST_CLIENT_SECRET.to_string()),
                federated_subject: Some(TEST_FEDERATED_SUBJECT.to_string()),
            }],
            managed_identities: vec![TEST_MANAGED_IDENTITY.to_string()],
            token_lifetime: Duration::from_secs(3600),
            local_auth: false,
            refuse_create_topics: false,
        }
    }
}

impl EventHubsEmulator {
    /// A namespace that plays Entra ID (same broker set-up as [`EventHubsEmulator::start`]).
    ///
    /// With `local_auth: false` the PLAIN helpers ([`EventHubsEmulator::client_config`],
    /// [`EventHubsEmulator::create_topic_behind`]'s check, [`super::RawClient::connect_authenticated`])
    /// are refused like any PLAIN client.
    pub fn start_entra(opts: EntraOptions) -> EventHubsEmulator {
        let entra = EntraConfig {
            namespace: opts.namespace,
            tenant_id: opts.tenant_id,
            apps: opts.apps,
            managed_identities: opts.managed_identities,
            token_lifetime: opts.token_lifetime,
            local_auth: opts.local_auth,
            ..EntraConfig::default()
        };
        Self::start_config(opts.refuse_create_topics, Some(entra))
    }

    fn entra_config(&self) -> &EntraConfig {
        self.config
            .entra
            .as_ref()
            .expect("an Entra ID namespace (EventHubsEmulator::start_entra)")
    }

    /// `http://127.0.0.1:<port>` of the token endpoints (the same across
    /// [`EventHubsEmulator::start_emulator_again`]).
    pub fn authority_host(&self) -> String {
        format!("http://{}", self.entra_config().listen)
    }

    /// The tenant id.
    pub fn tenant_id(&self) -> String {
        self.entra_config().tenant_id.clone()
    }

    /// The namespace host (the audience of its tokens is `https://{namespace}`).
    pub fn namespace(&self) -> String {
        self.entra_config().namespace.clone()
    }

    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn token_endpoint(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority_host(),
            self.tenant_id()
        )
    }

    /// `https://{namespace}/.default`: the scope client-credentials requests ask for.
    pub fn scope(&self) -> String {
        format!("https://{}/.default", self.namespace())
    }

    /// A federated assertion for `subject` (what AKS projects into a pod), valid for `lifetime`.
    pub fn federated_token(&self, subject: &str, lifetime: Duration) -> String {
        self.emulator
            .federated_token(subject, lifetime)
            .expect("an Entra ID namespace")
    }

    /// The App Service `X-IDENTITY-HEADER` value.
    pub fn identity_header(&self) -> String {
        self.emulator
            .identity_header()
            .expect("an Entra ID namespace")
    }

    /// An access token for `client_id`, valid for the configured lifetime (issued directly,
    /// for raw-protocol tests).
    pub fn access_token(&self, client_id: &str) -> String {
        self.emulator
            .access_token(client_id)
            .expect("an Entra ID namespace")
    }

    /// What the Entra side counted since the emulator's last start.
    pub fn entra_stats(&self) -> EntraStats {
        self.emulator.entra_stats()
    }

    /// Makes the token endpoints answer 503 (`false`) or serve again (`true`).
    pub fn set_entra_available(&self, available: bool) {
        self.emulator.set_entra_available(available);
    }

    /// Makes the token endpoints answer 503 for `duration` from now.
    pub fn entra_unavailable_for(&self, duration: Duration) {
        self.emulator.entra_unavailable_for(duration);
    }
}

/// An rdkafka client context that authenticates with SASL OAUTHBEARER as `client_id`, with
/// tokens issued directly by the emulator (what a client with a token callback does); counts
/// the tokens librdkafka asked for. Use with [`EventHubsEmulator::oauth_client_config`].
#[derive(Clone)]
pub struct EntraTokenContext {
    issuer: TokenIssuer,
    client_id: String,
    tokens: Arc<AtomicU64>,
}

impl EntraTokenContext {
    /// How many tokens librdkafka asked for (the first, then one per refresh).
    pub fn tokens_issued(&self) -> u64 {
        self.tokens.load(Ordering::Relaxed)
    }
}

impl ClientContext for EntraTokenContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, _: Option<&str>) -> Result<OAuthToken, Box<dyn Error>> {
        let (token, expires) = self.issuer.access_token(&self.client_id);
        self.tokens.fetch_add(1, Ordering::Relaxed);
        let lifetime_ms = expires
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)?;
        Ok(OAuthToken {
            token,
            principal_name: self.client_id.clone(),
            lifetime_ms,
        })
    }
}

impl ProducerContext for EntraTokenContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

impl ConsumerContext for EntraTokenContext {}

impl EventHubsEmulator {
    /// A client config for SASL_SSL with OAUTHBEARER (the token comes from the context: see
    /// [`EventHubsEmulator::oauth_context`]), the certificate verified against the CA.
    pub fn oauth_client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap())
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanism", "OAUTHBEARER")
            .set("ssl.ca.location", self.ca_file().display().to_string());
        c
    }

    /// A client context that authenticates as `client_id` with tokens from this emulator.
    pub fn oauth_context(&self, client_id: &str) -> EntraTokenContext {
        EntraTokenContext {
            issuer: self.emulator.token_issuer().expect("an Entra ID namespace"),
            client_id: client_id.to_string(),
            tokens: Arc::default(),
        }
    }
}
