//! The HTTP endpoints (plain HTTP on loopback):
//!
//! - `POST /{tenant}/oauth2/v2.0/token`: client credentials, with a client secret (form or
//!   HTTP Basic) or a federated assertion (workload identity);
//! - `GET /metadata/identity/oauth2/token`: Azure IMDS (header `Metadata: true`);
//! - `GET /msi/token`: App Service managed identity (header `X-IDENTITY-HEADER`).
//!
//! Logs name client ids and reasons, never secrets, assertions or tokens.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::aad::{self, AadError};
use super::jwt::{AssertionClaims, JwtRefusal, TOKEN_EXCHANGE_AUDIENCE};
use super::{bump, Entra, EntraApp};
use crate::sasl::constant_time_eq;

/// The only client assertion type Entra accepts.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Serves the endpoints until `shutdown`.
pub(crate) async fn serve(listener: TcpListener, entra: Arc<Entra>, shutdown: CancellationToken) {
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/metadata/identity/oauth2/token", get(imds))
        .route("/msi/token", get(msi))
        .with_state(entra);
    let stop = async move { shutdown.cancelled().await };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        warn!(error = %e, "entra endpoints stopped");
    }
}

/// Entra v2's token answer.
#[derive(Serialize)]
struct TokenAnswer {
    token_type: &'static str,
    expires_in: u64,
    ext_expires_in: u64,
    access_token: String,
}

/// The managed-identity endpoints' answer (numbers as strings, as IMDS sends them).
#[derive(Serialize)]
struct IdentityAnswer {
    access_token: String,
    client_id: String,
    expires_in: String,
    expires_on: String,
    ext_expires_in: String,
    not_before: String,
    resource: String,
    token_type: &'static str,
}

async fn token(
    State(entra): State<Arc<Entra>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let correlation = header(&headers, "client-request-id");
    if entra.unavailable() {
        bump(&entra.counters.unavailable);
        info!("token request answered 503: entra made unavailable");
        return AadError::unavailable().into_response_with(correlation);
    }
    match client_credentials(&entra, &tenant, &headers, &body) {
        Ok(client_id) => {
            let lifetime = entra.token_lifetime;
            let (access_token, _) =
                entra.issue(&client_id, &entra.audience(), SystemTime::now(), lifetime);
            bump(&entra.counters.token_endpoint);
            info!(%client_id, ?lifetime, "access token issued (client credentials)");
            Json(TokenAnswer {
                token_type: "Bearer",
                expires_in: lifetime.as_secs(),
                ext_expires_in: lifetime.as_secs(),
                access_token,
            })
            .into_response()
        }
        Err(e) => {
            bump(&entra.counters.refused);
            info!(%tenant, error = e.error, code = e.code, "token request refused");
            e.into_response_with(correlation)
        }
    }
}

/// Checks a client-credentials request; returns the client id to issue a token for.
fn client_credentials(
    entra: &Entra,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, AadError> {
    if !tenant.eq_ignore_ascii_case(&entra.tenant_id) {
        return Err(AadError::tenant_not_found(tenant));
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| {
        AadError::invalid_request("The request body is not application/x-www-form-urlencoded.")
    })?;
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let grant_type = field("grant_type").ok_or_else(|| AadError::missing("grant_type"))?;
    if grant_type != "client_credentials" {
        return Err(AadError::unsupported_grant_type(grant_type));
    }
    let basic = basic_credentials(headers)?;
    let client_id = match (field("client_id"), &basic) {
        (Some(form_id), Some((basic_id, _))) if form_id != basic_id => {
            return Err(AadError::invalid_request(
                "The client_id in the body differs from the one in the Authorization header.",
            ))
        }
        (Some(id), _) => id.to_string(),
        (None, Some((id, _))) => id.clone(),
        (None, None) => return Err(AadError::missing("client_id")),
    };
    let app = entra
        .apps
        .iter()
        .find(|a| a.client_id.eq_ignore_ascii_case(&client_id))
        .ok_or_else(|| AadError::unknown_client(&client_id, &entra.tenant_id))?;
    let secret = basic
        .map(|(_, secret)| secret)
        .or_else(|| field("client_secret").map(str::to_string));
    match (secret, field("client_assertion")) {
        (Some(_), Some(_)) => {
            return Err(AadError::invalid_request(
                "Only one client credential may be given: client_secret or client_assertion.",
            ))
        }
        (Some(secret), None) => check_secret(app, &secret)?,
        (None, Some(assertion)) => {
            if field("client_assertion_type") != Some(JWT_BEARER) {
                return Err(AadError::invalid_request(
                    "The client_assertion_type must be \
                     urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
                ));
            }
            check_assertion(entra, app, assertion)?;
        }
        (None, None) => return Err(AadError::no_credential()),
    }
    let scope = field("scope").ok_or_else(|| AadError::missing("scope"))?;
    let resource = scope
        .strip_suffix("/.default")
        .ok_or_else(|| AadError::scope_not_default(scope))?;
    if resource.trim_end_matches('/') != entra.audience() {
        return Err(AadError::resource_not_found(resource, &entra.tenant_id));
    }
    Ok(app.client_id.clone())
}

/// The client id and secret of an `Authorization: Basic` header (RFC 6749 2.3.1: each
/// form-urlencoded before base64), if there is one.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, AadError> {
    let Some(value) = header(headers, "authorization") else {
        return Ok(None);
    };
    let bad =
        || AadError::invalid_request("The Authorization header is not valid Basic credentials.");
    let Some(encoded) = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, rest)| rest.trim())
    else {
        return Err(bad());
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad())
    };
    Ok(Some((unescape(id)?, unescape(secret)?)))
}

fn check_secret(app: &EntraApp, secret: &str) -> Result<(), AadError> {
    match &app.client_secret {
        Some(expected) if constant_time_eq(expected.as_bytes(), secret.as_bytes()) => Ok(()),
        _ => Err(AadError::invalid_secret(&app.client_id)),
    }
}

fn check_assertion(entra: &Entra, app: &EntraApp, assertion: &str) -> Result<(), AadError> {
    let audiences = [TOKEN_EXCHANGE_AUDIENCE.to_string()];
    let claims: AssertionClaims =
        entra
            .signer()
            .verify(assertion, &audiences, None)
            .map_err(|r| match r {
                JwtRefusal::Expired | JwtRefusal::NotYetValid => AadError::assertion_time(),
                other => AadError::assertion_invalid(&other.to_string()),
            })?;
    let matches = claims.iss == entra.oidc_issuer()
        && app.federated_subject.as_deref() == Some(claims.sub.as_str());
    if !matches {
        return Err(AadError::no_federated_match(&claims.iss, &claims.sub));
    }
    Ok(())
}

/// Which managed-identity endpoint answers.
#[derive(Debug, Clone, Copy)]
enum Identity {
    Imds,
    Msi,
}

async fn imds(
    State(entra): State<Arc<Entra>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(refusal) = unavailable(&entra) {
        return refusal;
    }
    let metadata = header(&headers, "metadata").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !metadata {
        bump(&entra.counters.refused);
        info!("IMDS request without the Metadata header refused");
        return aad::identity_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    managed_identity(&entra, query.as_deref(), Identity::Imds)
}

async fn msi(
    State(entra): State<Arc<Entra>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(refusal) = unavailable(&entra) {
        return refusal;
    }
    let given = header(&headers, "x-identity-header").unwrap_or_default();
    if !constant_time_eq(given.as_bytes(), entra.identity_header.as_bytes()) {
        bump(&entra.counters.refused);
        info!("App Service identity request with a wrong or missing X-IDENTITY-HEADER refused");
        return aad::identity_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "The X-IDENTITY-HEADER header is missing or not valid",
        );
    }
    managed_identity(&entra, query.as_deref(), Identity::Msi)
}

/// The 503 answer while the endpoints are made unavailable.
fn unavailable(entra: &Entra) -> Option<Response> {
    entra.unavailable().then(|| {
        bump(&entra.counters.unavailable);
        info!("managed identity request answered 503: entra made unavailable");
        aad::identity_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The managed identity endpoint is temporarily unavailable",
        )
    })
}

fn managed_identity(entra: &Entra, query: Option<&str>, which: Identity) -> Response {
    match identity_token(entra, query) {
        Ok(answer) => {
            bump(match which {
                Identity::Imds => &entra.counters.imds,
                Identity::Msi => &entra.counters.msi,
            });
            info!(client_id = %answer.client_id, endpoint = ?which, "access token issued (managed identity)");
            Json(answer).into_response()
        }
        Err((status, error, description)) => {
            bump(&entra.counters.refused);
            info!(endpoint = ?which, error, %description, "managed identity request refused");
            aad::identity_error(status, error, &description)
        }
    }
}

type IdentityRefusal = (StatusCode, &'static str, String);

fn identity_token(entra: &Entra, query: Option<&str>) -> Result<IdentityAnswer, IdentityRefusal> {
    let bad = |error, text: String| (StatusCode::BAD_REQUEST, error, text);
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|_| {
            bad(
                "invalid_request",
                "The query string is not valid".to_string(),
            )
        })?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let missing = |name| {
        bad(
            "invalid_request",
            format!("Required query variable '{name}' is missing"),
        )
    };
    param("api-version").ok_or_else(|| missing("api-version"))?;
    let resource = param("resource").ok_or_else(|| missing("resource"))?;
    let not_found = || bad("invalid_request", "Identity not found".to_string());
    let client_id = match param("client_id") {
        Some(id) => entra
            .managed_identities
            .iter()
            .find(|mi| mi.eq_ignore_ascii_case(id))
            .ok_or_else(not_found)?,
        None => entra.managed_identities.first().ok_or_else(not_found)?,
    };
    if resource.trim_end_matches('/') != entra.audience() {
        let text = aad::resource_not_found_text(resource, &entra.tenant_id);
        return Err(bad("invalid_resource", format!("AADSTS500011: {text}")));
    }
    let now = SystemTime::now();
    let lifetime = entra.token_lifetime.as_secs();
    let (access_token, exp) = entra.issue(client_id, resource, now, entra.token_lifetime);
    Ok(IdentityAnswer {
        access_token,
        client_id: client_id.clone(),
        expires_in: lifetime.to_string(),
        expires_on: exp.to_string(),
        ext_expires_in: lifetime.to_string(),
        not_before: super::jwt::unix_secs(now).to_string(),
        resource: resource.to_string(),
        token_type: "Bearer",
    })
}

/// A header's value as text.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn basic_credentials_are_form_urlencoded_then_base64() {
        let mut headers = HeaderMap::new();
        assert_eq!(basic_credentials(&headers), Ok(None));
        let raw = "my%20app:s%3Acret+value%2B";
        let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
        let value = HeaderValue::from_str(&format!("Basic {encoded}")).expect("header");
        headers.insert("authorization", value);
        assert_eq!(
            basic_credentials(&headers),
            Ok(Some(("my app".to_string(), "s:cret value+".to_string())))
        );
        headers.insert("authorization", HeaderValue::from_static("Bearer abc"));
        assert!(basic_credentials(&headers).is_err());
        headers.insert("authorization", HeaderValue::from_static("Basic !!!"));
        assert!(basic_credentials(&headers).is_err());
    }
}
