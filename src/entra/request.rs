//! The token requests of the three credentials and what their answers mean: pure functions,
//! so that every URL, form field and refusal is unit-tested without a network.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::topology::entra::{EntraCredential, IdentityEndpoint};

/// RFC 7523 §2.2 client authentication with a JWT (workload identity's federated token).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The instance metadata service's token API version.
pub const IMDS_API_VERSION: &str = "2018-02-01";
/// The App Service identity endpoint's API version.
pub const APP_SERVICE_API_VERSION: &str = "2019-08-01";

/// One HTTP request for a token, secrets included: never log it (its `Debug` hides them).
pub struct TokenRequest {
    pub url: String,
    /// `POST` with this form when set; `GET` otherwise.
    pub form: Option<Vec<(&'static str, String)>>,
    pub headers: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let form: Option<Vec<&str>> = self
            .form
            .as_ref()
            .map(|f| f.iter().map(|(k, _)| *k).collect());
        let headers: Vec<&str> = self.headers.iter().map(|(k, _)| *k).collect();
        f.debug_struct("TokenRequest")
            .field("url", &self.url)
            .field("form_fields", &form)
            .field("headers", &headers)
            .finish()
    }
}

/// The resource (v1) of namespace `host`: the audience of its tokens.
pub fn resource(host: &str) -> String {
    format!("https://{host}")
}

/// The scope (v2) for the Kafka endpoint of namespace `host`.
pub fn scope(host: &str) -> String {
    format!("https://{host}/.default")
}

/// The token endpoint of `tenant` at `authority`.
pub fn token_endpoint(authority: &str, tenant: &str) -> String {
    format!("{authority}/{tenant}/oauth2/v2.0/token")
}

/// The request for a token of namespace `host`. `secret` is the client secret or the federated
/// token (read by the caller from the value or file the credential names); unused for managed
/// identities.
pub fn build(
    credential: &EntraCredential,
    authority: &str,
    host: &str,
    secret: &str,
) -> TokenRequest {
    match credential {
        EntraCredential::ClientSecret {
            tenant_id,
            client_id,
            ..
        } => client_credentials(
            token_endpoint(authority, tenant_id),
            client_id,
            vec![("client_secret", secret.to_string())],
            host,
        ),
        EntraCredential::WorkloadIdentity {
            tenant_id,
            client_id,
            ..
        } => client_credentials(
            token_endpoint(authority, tenant_id),
            client_id,
            vec![
                ("client_assertion_type", JWT_BEARER.to_string()),
                ("client_assertion", secret.to_string()),
            ],
            host,
        ),
        EntraCredential::ManagedIdentity {
            client_id,
            endpoint,
        } => {
            let client = client_id
                .as_deref()
                .map(|c| format!("&client_id={}", query_value(c)))
                .unwrap_or_default();
            let resource = query_value(&resource(host));
            match endpoint {
                IdentityEndpoint::Imds(base) => TokenRequest {
                    url: format!(
                        "{base}/metadata/identity/oauth2/token?api-version={IMDS_API_VERSION}\
                         &resource={resource}{client}"
                    ),
                    form: None,
                    headers: vec![("Metadata", "true".to_string())],
                },
                IdentityEndpoint::AppService { endpoint, header } => TokenRequest {
                    url: format!(
                        "{endpoint}?api-version={APP_SERVICE_API_VERSION}&resource={resource}{client}"
                    ),
                    form: None,
                    headers: vec![("X-IDENTITY-HEADER", header.expose().to_string())],
                },
            }
        }
    }
}

/// A client-credentials grant at `url` for `client_id`, authenticated by `auth` (a secret or an
/// assertion), for namespace `host`'s scope.
fn client_credentials(
    url: String,
    client_id: &str,
    auth: Vec<(&'static str, String)>,
    host: &str,
) -> TokenRequest {
    let mut form = vec![
        ("grant_type", "client_credentials".to_string()),
        ("client_id", client_id.to_string()),
    ];
    form.extend(auth);
    form.push(("scope", scope(host)));
    TokenRequest {
        url,
        form: Some(form),
        headers: Vec::new(),
    }
}

/// Percent-encodes a query value (ids and URLs: only a few characters need it).
fn query_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 8);
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A number Entra writes as a number and the metadata services as a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    N(u64),
    S(String),
}

impl NumberOrString {
    fn get(&self) -> Option<u64> {
        match self {
            NumberOrString::N(n) => Some(*n),
            NumberOrString::S(s) => s.trim().parse().ok(),
        }
    }
}

#[derive(Deserialize)]
struct Success {
    access_token: String,
    expires_in: Option<NumberOrString>,
    expires_on: Option<NumberOrString>,
}

#[derive(Deserialize, Default)]
struct Failure {
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u64>,
}

/// A token and when it expires.
pub struct Issued {
    pub token: String,
    pub expires_at: SystemTime,
}

/// What an answer says.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The token (see [`parse_success`]).
    Token,
    /// The authority said no: the credential or the settings are wrong; retrying will not help.
    Refused {
        /// `AADSTS7000215`, or the OAuth `error` when there is no code.
        code: String,
        /// The first line of the authority's description.
        description: String,
    },
    /// Not now: a server error, throttling, or an answer that is not the service's.
    Unavailable(String),
}

/// The token of a successful answer, its expiry from `expires_in` (else `expires_on`).
pub fn parse_success(body: &[u8], now: SystemTime) -> Result<Issued, String> {
    let s: Success = serde_json::from_slice(body)
        .map_err(|e| format!("the token answer is not the expected JSON: {e}"))?;
    if s.access_token.is_empty() {
        return Err("the token answer has an empty access_token".to_string());
    }
    let expires_at = match (
        s.expires_in.as_ref().and_then(NumberOrString::get),
        s.expires_on.as_ref().and_then(NumberOrString::get),
    ) {
        (Some(secs), _) => now + Duration::from_secs(secs),
        (None, Some(epoch)) => UNIX_EPOCH + Duration::from_secs(epoch),
        (None, None) => return Err("the token answer has no expires_in".to_string()),
    };
    Ok(Issued {
        token: s.access_token,
        expires_at,
    })
}

/// What an answer with HTTP `status` and `body` means.
pub fn classify(status: u16, body: &[u8]) -> Answer {
    if (200..300).contains(&status) {
        return Answer::Token;
    }
    let failure: Failure = serde_json::from_slice(body).unwrap_or_default();
    let description = failure
        .error_description
        .as_deref()
        .map(|d| d.lines().next().unwrap_or_default().trim().to_string())
        .unwrap_or_default();
    if status == 429 || status == 408 || status >= 500 {
        let what = match status {
            429 => "throttled (HTTP 429)".to_string(),
            s => format!("HTTP {s}"),
        };
        return Answer::Unavailable(if description.is_empty() {
            what
        } else {
            format!("{what}: {description}")
        });
    }
    let code = failure
        .error_codes
        .first()
        .map(|c| format!("AADSTS{c}"))
        .or_else(|| {
            description
                .split(':')
                .next()
                .filter(|p| p.starts_with("AADSTS"))
                .map(str::to_string)
        })
        .or(failure.error)
        .unwrap_or_else(|| format!("HTTP {status}"));
    Answer::Refused { code, description }
}

/// What to change for a refusal `code` (with `description`) of credential `mode`, at cluster
/// `alias`.
pub fn fix(alias: &str, credential: &EntraCredential, code: &str, description: &str) -> String {
    let e = format!("clusters.{alias}.event_hubs");
    let d = description.to_ascii_lowercase();
    match code {
        "AADSTS90002" | "AADSTS900023" => format!(
            "check {e}.entra.tenant_id: it must be the directory (tenant) id of the app \
             registration (Entra ID → Overview)"
        ),
        "AADSTS700016" => format!(
            "check {e}.entra.client_id: it must be the application (client) id of an app \
             registration in tenant {}",
            credential.tenant_id().unwrap_or("?")
        ),
        "AADSTS7000215" | "AADSTS7000222" => format!(
            "check {e}.entra.client_secret(_file): give the secret's Value (not its Secret ID) \
             from the app registration's Certificates & secrets, and replace it if it expired"
        ),
        "AADSTS500011" | "AADSTS500016" => format!(
            "check {e}.namespace: tokens are asked for https://<namespace>/.default, and no \
             Event Hubs namespace of that name is known to the tenant"
        ),
        "AADSTS70021" => format!(
            "add a federated credential to the app registration {} whose issuer is the \
             cluster's OIDC issuer and whose subject is the pod's service account \
             (system:serviceaccount:<namespace>:<name>), or fix {e}.entra.client_id",
            credential.client_id().unwrap_or("?")
        ),
        "AADSTS700024" | "AADSTS700027" | "AADSTS50027" => format!(
            "the federated token file ({e}.entra.token_file or AZURE_FEDERATED_TOKEN_FILE) holds \
             an expired or invalid token: check that the pod runs with the label \
             azure.workload.identity/use: \"true\" and its projected service-account token"
        ),
        _ if d.contains("identity not found") => format!(
            "no managed identity {} is assigned to this host: assign it (VM, scale set or AKS \
             node pool → Identity), or remove {e}.entra.client_id to use the system-assigned one",
            credential.client_id().unwrap_or("(system-assigned)")
        ),
        _ => format!(
            "check {e}.entra ({}) against the app registration or identity it names",
            credential.mode()
        ),
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
