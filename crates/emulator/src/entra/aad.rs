//! Error answers worded like Entra ID's: `{"error", "error_description": "AADSTSnnnn: …",
//! "error_codes": [nnnn], "timestamp", "trace_id", "correlation_id"}` for the token endpoint,
//! and the shorter `{"error", "error_description"}` of the managed-identity endpoints.

use std::time::SystemTime;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// One refusal of a token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AadError {
    /// The HTTP status.
    pub(crate) status: StatusCode,
    /// The OAuth error (`invalid_request`, `invalid_client`, …).
    pub(crate) error: &'static str,
    /// The `AADSTS` number.
    pub(crate) code: u32,
    /// The text after `AADSTSnnnn: `.
    pub(crate) text: String,
}

impl AadError {
    fn new(status: StatusCode, error: &'static str, code: u32, text: String) -> AadError {
        AadError {
            status,
            error,
            code,
            text,
        }
    }

    /// AADSTS90002: the tenant in the path is not this one.
    pub(crate) fn tenant_not_found(tenant: &str) -> AadError {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID \
                 and are signing into the correct cloud."
            ),
        )
    }

    /// AADSTS900144: a required parameter is missing.
    pub(crate) fn missing(parameter: &str) -> AadError {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{parameter}'."),
        )
    }

    /// AADSTS900023-like: the request is malformed (bad form body, conflicting credentials).
    pub(crate) fn invalid_request(text: &str) -> AadError {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900023,
            text.to_string(),
        )
    }

    /// AADSTS70003: a grant type other than `client_credentials`.
    pub(crate) fn unsupported_grant_type(grant_type: &str) -> AadError {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        )
    }

    /// AADSTS700016: the client id is not an application of the tenant.
    pub(crate) fn unknown_client(client_id: &str, tenant: &str) -> AadError {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory \
                 '{tenant}'. This can happen if the application has not been installed by the \
                 administrator of the tenant or consented to by any user in the tenant. You may \
                 have sent your authentication request to the wrong tenant."
            ),
        )
    }

    /// AADSTS7000215: the client secret does not match.
    pub(crate) fn invalid_secret(client_id: &str) -> AadError {
        AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is \
                 the client secret value, not the client secret ID, for a secret added to app \
                 '{client_id}'."
            ),
        )
    }

    /// AADSTS7000218: neither a secret nor an assertion.
    pub(crate) fn no_credential() -> AadError {
        AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or \
             'client_secret'."
                .to_string(),
        )
    }

    /// AADSTS1002012: a scope without `/.default` in a client-credentials request.
    pub(crate) fn scope_not_default(scope: &str) -> AadError {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows \
                 must have a scope value with /.default suffixed to the resource identifier \
                 (application ID URI)."
            ),
        )
    }

    /// AADSTS500011: the resource is not this namespace.
    pub(crate) fn resource_not_found(resource: &str, tenant: &str) -> AadError {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            500011,
            resource_not_found_text(resource, tenant),
        )
    }

    /// AADSTS700024: the client assertion is expired (or not valid yet).
    pub(crate) fn assertion_time() -> AadError {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.".to_string(),
        )
    }

    /// AADSTS50027: the client assertion is malformed, wrongly signed or for another audience.
    pub(crate) fn assertion_invalid(reason: &str) -> AadError {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            50027,
            format!("JWT token is invalid or malformed: {reason}."),
        )
    }

    /// AADSTS70021: no federated credential of the app matches the assertion.
    pub(crate) fn no_federated_match(issuer: &str, subject: &str) -> AadError {
        AadError::new(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            70021,
            format!(
                "No matching federated identity record found for presented assertion. \
                 Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion \
                 Audience: 'api://AzureADTokenExchange'."
            ),
        )
    }

    /// AADSTS90033: the service is (made) unavailable.
    pub(crate) fn unavailable() -> AadError {
        AadError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again.".to_string(),
        )
    }

    /// The JSON answer, with `correlation_id` echoed from the request's `client-request-id`
    /// when there was one.
    pub(crate) fn into_response_with(self, correlation_id: Option<&str>) -> Response {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = correlation_id
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let timestamp = timestamp();
        let description = format!(
            "AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: \
             {timestamp}",
            self.code, self.text
        );
        let body = json!({
            "error": self.error,
            "error_description": description,
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
        });
        (self.status, Json(body)).into_response()
    }
}

/// The text of AADSTS500011.
pub(crate) fn resource_not_found_text(resource: &str, tenant: &str) -> String {
    format!(
        "The resource principal named {resource} was not found in the tenant named {tenant}. \
         This can happen if the application has not been installed by the administrator of the \
         tenant or consented to by any user in the tenant. You might have sent your \
         authentication request to the wrong tenant."
    )
}

/// A managed-identity endpoint's refusal: `{"error", "error_description"}`.
pub(crate) fn identity_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({ "error": error, "error_description": description });
    (status, Json(body)).into_response()
}

/// `2024-05-01 12:34:56Z`, as Entra writes it.
fn timestamp() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace('T', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_look_like_entras() {
        let t = timestamp();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b' ', "{t}");
    }
}
