use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::topology::entra::{EntraCredential, IdentityEndpoint, SecretSource};
use crate::topology::Secret;

const NS: &str = "myns.servicebus.windows.net";
const AUTH: &str = "https://login.microsoftonline.com";

fn secret_cred() -> EntraCredential {
    EntraCredential::ClientSecret {
        tenant_id: "tid".into(),
        client_id: "cid".into(),
        secret: SecretSource::Value(Secret::new("s3cr3t")),
    }
}

fn form(r: &TokenRequest) -> Vec<(&'static str, String)> {
    r.form.clone().expect("a POST")
}

#[test]
fn client_secret_posts_client_credentials_for_the_namespace_scope() {
    let r = build(&secret_cred(), AUTH, NS, "s3cr3t");
    assert_eq!(
        r.url,
        "https://login.microsoftonline.com/tid/oauth2/v2.0/token"
    );
    assert_eq!(
        form(&r),
        vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", "cid".to_string()),
            ("client_secret", "s3cr3t".to_string()),
            (
                "scope",
                "https://myns.servicebus.windows.net/.default".to_string()
            ),
        ]
    );
    assert!(!format!("{r:?}").contains("s3cr3t"), "Debug hides values");
}

#[test]
fn workload_identity_sends_the_federated_token_as_a_client_assertion() {
    let c = EntraCredential::WorkloadIdentity {
        tenant_id: "tid".into(),
        client_id: "cid".into(),
        token_file: "/var/run/token".into(),
    };
    let r = build(&c, "http://127.0.0.1:1", NS, "eyJfederated");
    assert_eq!(r.url, "http://127.0.0.1:1/tid/oauth2/v2.0/token");
    let f = form(&r);
    assert!(f.contains(&("client_assertion_type", JWT_BEARER.to_string())));
    assert!(f.contains(&("client_assertion", "eyJfederated".to_string())));
    assert!(!f.iter().any(|(k, _)| *k == "client_secret"));
    assert!(!format!("{r:?}").contains("eyJfederated"));
}

#[test]
fn managed_identity_asks_the_metadata_service_for_the_namespace_resource() {
    let c = EntraCredential::ManagedIdentity {
        client_id: Some("cid".into()),
        endpoint: IdentityEndpoint::Imds("http://169.254.169.254".into()),
    };
    let r = build(&c, AUTH, NS, "");
    assert_eq!(
        r.url,
        "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01\
         &resource=https%3A%2F%2Fmyns.servicebus.windows.net&client_id=cid"
    );
    assert!(r.form.is_none());
    assert_eq!(r.headers, vec![("Metadata", "true".to_string())]);

    let c = EntraCredential::ManagedIdentity {
        client_id: None,
        endpoint: IdentityEndpoint::AppService {
            endpoint: "http://localhost:42356/msi/token".into(),
            header: Secret::new("hdr"),
        },
    };
    let r = build(&c, AUTH, NS, "");
    assert_eq!(
        r.url,
        "http://localhost:42356/msi/token?api-version=2019-08-01\
         &resource=https%3A%2F%2Fmyns.servicebus.windows.net"
    );
    assert_eq!(r.headers, vec![("X-IDENTITY-HEADER", "hdr".to_string())]);
    assert!(!format!("{r:?}").contains("hdr\""));
}

#[test]
fn reads_expiry_from_expires_in_as_number_or_string_else_expires_on() {
    let now = UNIX_EPOCH + Duration::from_secs(1_000);
    let t = parse_success(br#"{"access_token":"a","expires_in":3599}"#, now).unwrap();
    assert_eq!(t.expires_at, now + Duration::from_secs(3599));
    let t = parse_success(br#"{"access_token":"a","expires_in":"20"}"#, now).unwrap();
    assert_eq!(t.expires_at, now + Duration::from_secs(20));
    let t = parse_success(br#"{"access_token":"a","expires_on":"5000"}"#, now).unwrap();
    assert_eq!(t.expires_at, UNIX_EPOCH + Duration::from_secs(5000));
    assert!(parse_success(br#"{"access_token":"a"}"#, now).is_err());
    assert!(parse_success(br#"{"access_token":"","expires_in":1}"#, now).is_err());
    assert!(parse_success(b"<html>", now).is_err());
}

#[test]
fn classifies_refusals_and_outages() {
    assert_eq!(classify(200, b"{}"), Answer::Token);
    let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x","error_codes":[7000215]}"#;
    assert_eq!(
        classify(401, body),
        Answer::Refused {
            code: "AADSTS7000215".into(),
            description: "AADSTS7000215: Invalid client secret provided.".into()
        }
    );
    let imds = br#"{"error":"invalid_request","error_description":"Identity not found"}"#;
    assert_eq!(
        classify(400, imds),
        Answer::Refused {
            code: "invalid_request".into(),
            description: "Identity not found".into()
        }
    );
    assert_eq!(
        classify(401, b""),
        Answer::Refused {
            code: "HTTP 401".into(),
            description: String::new()
        }
    );
    assert!(matches!(classify(503, b"busy"), Answer::Unavailable(_)));
    assert!(matches!(classify(429, b"{}"), Answer::Unavailable(_)));
    assert!(matches!(classify(500, body), Answer::Unavailable(_)));
}

#[test]
fn each_refusal_names_its_fix() {
    let c = secret_cred();
    assert!(fix("eh", &c, "AADSTS90002", "").contains("clusters.eh.event_hubs.entra.tenant_id"));
    assert!(fix("eh", &c, "AADSTS700016", "").contains("entra.client_id"));
    assert!(fix("eh", &c, "AADSTS7000215", "").contains("client_secret"));
    assert!(fix("eh", &c, "AADSTS500011", "").contains("event_hubs.namespace"));
    assert!(fix("eh", &c, "AADSTS70021", "").contains("federated credential"));
    assert!(fix("eh", &c, "invalid_request", "Identity not found").contains("managed identity"));
}
