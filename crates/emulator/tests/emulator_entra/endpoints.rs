//! The HTTP endpoints: client credentials (secret in the form or in Basic, federated
//! assertions), Entra's refusals with their AADSTS codes, IMDS and App Service managed
//! identity, and the outage switch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::support::emulator::{
    EventHubsEmulator, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_FEDERATED_SUBJECT,
    TEST_MANAGED_IDENTITY,
};
use super::{claims, init_logs, start};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A plain-HTTP client. In the workspace build reqwest has rustls without a crypto provider
/// (hubmirror hands it its own TLS settings), and a client without one panics when built: the
/// process's default provider is installed first.
fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn post_form(url: &str, form: &[(&str, &str)], basic: Option<&str>) -> (StatusCode, Value) {
    let mut request = http().post(url).form(form);
    if let Some(b) = basic {
        let encoded = base64::engine::general_purpose::STANDARD.encode(b);
        request = request.header("Authorization", format!("Basic {encoded}"));
    }
    let response = request.send().await.expect("token endpoint reachable");
    let status = response.status();
    (status, response.json().await.expect("JSON answer"))
}

async fn get(url: &str, headers: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut request = http().get(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.expect("endpoint reachable");
    let status = response.status();
    (status, response.json().await.expect("JSON answer"))
}

fn secret_form<'a>(eh_scope: &'a str, secret: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", TEST_CLIENT_ID),
        ("client_secret", secret),
        ("scope", eh_scope),
    ]
}

/// Asserts an Entra refusal: status, OAuth error, AADSTS code first in the description.
fn assert_refusal(got: &(StatusCode, Value), status: StatusCode, error: &str, code: u64) {
    let (s, body) = got;
    assert_eq!(*s, status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let description = body["error_description"].as_str().expect("description");
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    for field in ["timestamp", "trace_id", "correlation_id"] {
        assert!(body[field].is_string(), "{field}: {body}");
    }
    assert!(!body.to_string().contains(TEST_CLIENT_SECRET), "{body}");
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test(flavor = "multi_thread")]
async fn client_secret_in_the_form_or_in_basic_gets_a_token_for_the_namespace() {
    init_logs();
    let eh = start(Duration::from_secs(20), false);
    let scope = eh.scope();
    let (status, body) = post_form(
        &eh.token_endpoint(),
        &secret_form(&scope, TEST_CLIENT_SECRET),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], json!(20));
    assert_eq!(body["ext_expires_in"], json!(20));
    let token = body["access_token"].as_str().expect("token");
    let c = claims(token);
    assert_eq!(c["aud"], format!("https://{}", eh.namespace()));
    assert_eq!(
        c["iss"],
        format!("https://sts.windows.net/{}/", eh.tenant_id())
    );
    assert_eq!(c["tid"], eh.tenant_id());
    for claim in ["appid", "oid", "sub"] {
        assert_eq!(c[claim], TEST_CLIENT_ID, "{claim}");
    }
    let (iat, exp) = (c["iat"].as_u64(), c["exp"].as_u64());
    assert_eq!(exp.zip(iat).map(|(e, i)| e - i), Some(20));
    assert!(iat.is_some_and(|i| i.abs_diff(now_secs()) < 10));

    // Basic: client_id:client_secret, each form-urlencoded, then base64.
    let basic = format!("{TEST_CLIENT_ID}:{TEST_CLIENT_SECRET}");
    let form = [("grant_type", "client_credentials"), ("scope", &scope)];
    let (status, body) = post_form(&eh.token_endpoint(), &form, Some(&basic)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string());
    // A trailing slash on the resource is the same resource.
    let slash_scope = format!("https://{}//.default", eh.namespace());
    let (status, body) = post_form(
        &eh.token_endpoint(),
        &secret_form(&slash_scope, TEST_CLIENT_SECRET),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stats = eh.entra_stats();
    assert_eq!(stats.tokens_issued_token_endpoint, 3, "{stats:?}");
    assert_eq!(stats.token_requests_refused, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_requests_are_refused_like_entra_does() {
    init_logs();
    let eh = start(Duration::from_secs(3600), false);
    let url = eh.token_endpoint();
    let scope = eh.scope();
    let bad = StatusCode::BAD_REQUEST;

    let other_tenant = format!(
        "{}/00000000-0000-0000-0000-000000000bad/oauth2/v2.0/token",
        eh.authority_host()
    );
    let got = post_form(
        &other_tenant,
        &secret_form(&scope, TEST_CLIENT_SECRET),
        None,
    )
    .await;
    assert_refusal(&got, bad, "invalid_request", 90002);
    assert!(got.1["error_description"]
        .as_str()
        .is_some_and(|d| d.contains("Tenant '00000000-0000-0000-0000-000000000bad' not found")));

    let unknown = [
        ("grant_type", "client_credentials"),
        ("client_id", "33333333-3333-3333-3333-333333333333"),
        ("client_secret", TEST_CLIENT_SECRET),
        ("scope", &scope),
    ];
    let got = post_form(&url, &unknown, None).await;
    assert_refusal(&got, bad, "unauthorized_client", 700016);
    assert!(got.1["error_description"].as_str().is_some_and(|d| d.contains(
        "Application with identifier '33333333-3333-3333-3333-333333333333' was not found in the directory"
    )));

    let got = post_form(&url, &secret_form(&scope, "wrong-secret"), None).await;
    assert_refusal(&got, StatusCode::UNAUTHORIZED, "invalid_client", 7000215);
    let basic = format!("{TEST_CLIENT_ID}:wrong-secret");
    let form = [("grant_type", "client_credentials"), ("scope", &scope)];
    let got = post_form(&url, &form, Some(&basic)).await;
    assert_refusal(&got, StatusCode::UNAUTHORIZED, "invalid_client", 7000215);

    for resource in [
        "https://eventhubs.azure.net",
        "https://other.servicebus.windows.net",
    ] {
        let other_scope = format!("{resource}/.default");
        let got = post_form(&url, &secret_form(&other_scope, TEST_CLIENT_SECRET), None).await;
        assert_refusal(&got, bad, "invalid_scope", 500011);
        let text = format!("The resource principal named {resource} was not found in the tenant");
        assert!(got.1["error_description"]
            .as_str()
            .is_some_and(|d| d.contains(&text)));
    }
    let no_default = format!("https://{}", eh.namespace());
    let got = post_form(&url, &secret_form(&no_default, TEST_CLIENT_SECRET), None).await;
    assert_refusal(&got, bad, "invalid_scope", 1002012);

    let got = post_form(&url, &[("client_id", TEST_CLIENT_ID)], None).await;
    assert_refusal(&got, bad, "invalid_request", 900144);
    let mut password = secret_form(&scope, TEST_CLIENT_SECRET);
    password[0] = ("grant_type", "password");
    let got = post_form(&url, &password, None).await;
    assert_refusal(&got, bad, "unsupported_grant_type", 70003);
    let no_secret = [
        ("grant_type", "client_credentials"),
        ("client_id", TEST_CLIENT_ID),
        ("scope", &scope),
    ];
    let got = post_form(&url, &no_secret, None).await;
    assert_refusal(&got, StatusCode::UNAUTHORIZED, "invalid_client", 7000218);

    let stats = eh.entra_stats();
    assert_eq!(stats.token_requests_refused, 10, "{stats:?}");
    assert_eq!(stats.tokens_issued_token_endpoint, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn federated_assertions_get_tokens_when_issuer_subject_audience_and_time_match() {
    init_logs();
    let eh = start(Duration::from_secs(3600), false);
    let url = eh.token_endpoint();
    let scope = eh.scope();
    let with_assertion = |assertion: &str| {
        vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", TEST_CLIENT_ID.to_string()),
            ("scope", scope.clone()),
            ("client_assertion_type", JWT_BEARER.to_string()),
            ("client_assertion", assertion.to_string()),
        ]
    };
    let post = |form: Vec<(&'static str, String)>| {
        let url = url.clone();
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(&url, &form, None).await
        }
    };

    let assertion = eh.federated_token(TEST_FEDERATED_SUBJECT, Duration::from_secs(600));
    let c = claims(&assertion);
    assert_eq!(c["iss"], format!("{}/oidc-issuer", eh.authority_host()));
    assert_eq!(c["aud"], "api://AzureADTokenExchange");
    let (status, body) = post(with_assertion(&assertion)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().expect("token"))["appid"],
        TEST_CLIENT_ID
    );

    let issuer = format!("{}/oidc-issuer", eh.authority_host());
    let now = now_secs();
    let expired = eh
        .emulator
        .sign_claims(&json!({"iss": issuer, "sub": TEST_FEDERATED_SUBJECT,
            "aud": "api://AzureADTokenExchange", "iat": now - 7200, "nbf": now - 7200,
            "exp": now - 3600}))
        .expect("signed");
    let got = post(with_assertion(&expired)).await;
    assert_refusal(&got, StatusCode::BAD_REQUEST, "invalid_client", 700024);

    let stranger = eh.federated_token(
        "system:serviceaccount:other:other",
        Duration::from_secs(600),
    );
    let got = post(with_assertion(&stranger)).await;
    assert_refusal(&got, StatusCode::BAD_REQUEST, "invalid_client", 70021);
    assert!(got.1["error_description"].as_str().is_some_and(
        |d| d.contains("No matching federated identity record found for presented assertion")
    ));

    let other_audience = eh
        .emulator
        .sign_claims(&json!({"iss": issuer, "sub": TEST_FEDERATED_SUBJECT,
            "aud": "api://Other", "iat": now, "nbf": now, "exp": now + 600}))
        .expect("signed");
    let got = post(with_assertion(&other_audience)).await;
    assert_refusal(&got, StatusCode::BAD_REQUEST, "invalid_client", 50027);

    let (head, _) = assertion.rsplit_once('.').expect("JWT");
    let forged = format!("{head}.c2lnbmF0dXJlLW5vdC1tYWRlLWJ5LXRoZS1lbXVsYXRvcg");
    let got = post(with_assertion(&forged)).await;
    assert_refusal(&got, StatusCode::BAD_REQUEST, "invalid_client", 50027);

    let stats = eh.entra_stats();
    assert_eq!(
        (
            stats.tokens_issued_token_endpoint,
            stats.token_requests_refused
        ),
        (1, 4),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn managed_identity_endpoints_need_their_header_and_a_known_identity() {
    init_logs();
    let eh = start(Duration::from_secs(900), false);
    let resource = format!("https://{}", eh.namespace());
    let imds = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource}",
        eh.authority_host()
    );
    let (status, body) = get(&imds, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "Required metadata header not specified"})
    );

    let (status, body) = get(&imds, &[("Metadata", "true")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["client_id"], TEST_MANAGED_IDENTITY);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["resource"], resource.as_str());
    assert_eq!(body["expires_in"], "900");
    assert_eq!(body["ext_expires_in"], "900");
    let expires_on: u64 = body["expires_on"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("epoch string");
    let not_before: u64 = body["not_before"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("epoch string");
    assert_eq!(expires_on - not_before, 900);
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(claims(token)["appid"], TEST_MANAGED_IDENTITY);
    assert_eq!(claims(token)["aud"], resource.as_str());

    let named = format!("{imds}&client_id={TEST_MANAGED_IDENTITY}");
    let (status, _) = get(&named, &[("Metadata", "true")]).await;
    assert_eq!(status, StatusCode::OK);
    let unknown = format!("{imds}&client_id=44444444-4444-4444-4444-444444444444");
    let (status, body) = get(&unknown, &[("Metadata", "true")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "Identity not found"})
    );
    let other = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://eventhubs.azure.net",
        eh.authority_host()
    );
    let (status, body) = get(&other, &[("Metadata", "true")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_resource");
    assert!(body["error_description"]
        .as_str()
        .is_some_and(|d| d.starts_with("AADSTS500011: ")));

    let msi = format!(
        "{}/msi/token?api-version=2019-08-01&resource={resource}",
        eh.authority_host()
    );
    let (status, _) = get(&msi, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get(&msi, &[("X-IDENTITY-HEADER", "not-the-header")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let header = eh.identity_header();
    let (status, body) = get(&msi, &[("X-IDENTITY-HEADER", &header)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["client_id"], TEST_MANAGED_IDENTITY);
    assert!(body["expires_on"]
        .as_str()
        .is_some_and(|s| s.parse::<u64>().is_ok()));

    let stats = eh.entra_stats();
    assert_eq!(
        (
            stats.tokens_issued_imds,
            stats.tokens_issued_msi,
            stats.token_requests_refused
        ),
        (2, 1, 5),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unavailable_endpoints_answer_503_until_available_again_and_survive_a_restart() {
    init_logs();
    let mut eh = EventHubsEmulator::start_entra(Default::default());
    let scope = eh.scope();
    let form = secret_form(&scope, TEST_CLIENT_SECRET);
    eh.set_entra_available(false);
    let got = post_form(&eh.token_endpoint(), &form, None).await;
    assert_refusal(
        &got,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        90033,
    );
    let imds = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://{}",
        eh.authority_host(),
        eh.namespace()
    );
    let (status, _) = get(&imds, &[("Metadata", "true")]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(eh.entra_stats().token_requests_unavailable, 2);
    eh.set_entra_available(true);
    let (status, body) = post_form(&eh.token_endpoint(), &form, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let before = body["access_token"].as_str().expect("token").to_string();

    // A restart keeps the authority, the key and the identity header.
    let (authority, header) = (eh.authority_host(), eh.identity_header());
    eh.start_emulator_again();
    assert_eq!(
        (eh.authority_host(), eh.identity_header()),
        (authority, header)
    );
    let mut c = super::support::emulator::RawClient::connect(&eh).await;
    let auth = c.oauthbearer(&before).await;
    assert_eq!(auth.error_code, 0, "{:?}", auth.error_message);
    let (status, _) = post_form(&eh.token_endpoint(), &form, None).await;
    assert_eq!(status, StatusCode::OK);
}
