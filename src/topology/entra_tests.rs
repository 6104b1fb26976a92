//! `event_hubs.entra`: each credential mode, the AKS variables, and one error per mistake.

use std::path::Path;

use super::entra::{EntraCredential, IdentityEndpoint, SecretSource};
use super::*;

const SECRET: &str = "cl13nt-s3cr3t-doNotLeak";
const TENANT: &str = "00000000-0000-0000-0000-000000000000";
const CLIENT: &str = "11111111-1111-1111-1111-111111111111";

fn doc(entra: &str) -> String {
    format!(
        "clusters:\n  onprem: {{bootstrap_servers: 'x:1'}}\n  eh:\n    event_hubs:\n      \
         namespace: myns.servicebus.windows.net\n      entra:\n{entra}\
         flows:\n  - {{source: onprem, target: eh, topics: [t]}}\n"
    )
}

fn parse_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Topology, String> {
    parse_with_env(Path::new("t.yaml"), text, env).map_err(|e| {
        let e = e.to_string();
        assert!(!e.contains(SECRET), "error leaks the secret: {e}");
        e
    })
}

fn parse(text: &str) -> Result<Topology, String> {
    parse_env(text, &|_| None)
}

fn entra_of(t: &Topology) -> &entra::Entra {
    t.clusters["eh"]
        .event_hubs
        .as_ref()
        .and_then(|e| e.entra())
        .expect("an Entra cluster")
}

#[test]
fn client_secret_mode() {
    let t = parse(&doc(&format!(
        "        tenant_id: {TENANT}\n        client_id: {CLIENT}\n        client_secret: {SECRET}\n"
    )))
    .unwrap();
    let c = &t.clusters["eh"];
    assert_eq!(c.bootstrap_servers, "myns.servicebus.windows.net:9093");
    assert!(c.sasl.is_none(), "tokens are not sasl.password");
    assert!(c.tls.is_some());
    let e = entra_of(&t);
    assert_eq!(e.authority_host, "https://login.microsoftonline.com");
    match &e.credential {
        EntraCredential::ClientSecret {
            tenant_id,
            client_id,
            secret: SecretSource::Value(s),
        } => {
            assert_eq!(tenant_id, TENANT);
            assert_eq!(client_id, CLIENT);
            assert_eq!(s.expose(), SECRET);
        }
        other => panic!("{other:?}"),
    }
    assert!(!format!("{t:?}").contains(SECRET), "Debug leaks the secret");
}

#[test]
fn workload_identity_reads_the_aks_variables() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "eyJfederated").unwrap();
    let file = token.to_string_lossy().to_string();
    let env = move |name: &str| match name {
        "AZURE_TENANT_ID" => Some(TENANT.to_string()),
        "AZURE_CLIENT_ID" => Some(CLIENT.to_string()),
        "AZURE_FEDERATED_TOKEN_FILE" => Some(file.clone()),
        "AZURE_AUTHORITY_HOST" => Some("https://login.microsoftonline.us/".to_string()),
        _ => None,
    };
    let t = parse_env(&doc("        workload_identity: true\n"), &env).unwrap();
    let e = entra_of(&t);
    assert_eq!(e.authority_host, "https://login.microsoftonline.us");
    match &e.credential {
        EntraCredential::WorkloadIdentity {
            tenant_id,
            client_id,
            token_file,
        } => {
            assert_eq!(tenant_id, TENANT);
            assert_eq!(client_id, CLIENT);
            assert_eq!(token_file, &token);
        }
        other => panic!("{other:?}"),
    }
    // Without the variables, the missing one is named.
    let e = parse(&doc("        workload_identity: true\n")).unwrap_err();
    assert!(
        e.contains("tenant_id") && e.contains("AZURE_TENANT_ID"),
        "{e}"
    );
}

#[test]
fn managed_identity_mode() {
    let t = parse(&doc("        managed_identity: true\n")).unwrap();
    match &entra_of(&t).credential {
        EntraCredential::ManagedIdentity {
            client_id: None,
            endpoint: IdentityEndpoint::Imds(url),
        } => assert_eq!(url, "http://169.254.169.254"),
        other => panic!("{other:?}"),
    }
    let t = parse(&doc(&format!(
        "        managed_identity: true\n        client_id: {CLIENT}\n        \
         identity_endpoint: http://127.0.0.1:8080/\n"
    )))
    .unwrap();
    match &entra_of(&t).credential {
        EntraCredential::ManagedIdentity {
            client_id: Some(c),
            endpoint: IdentityEndpoint::Imds(url),
        } => {
            assert_eq!(c, CLIENT);
            assert_eq!(url, "http://127.0.0.1:8080");
        }
        other => panic!("{other:?}"),
    }
    let env = |name: &str| match name {
        "IDENTITY_ENDPOINT" => Some("http://localhost:4141/msi/token".to_string()),
        "IDENTITY_HEADER" => Some("hdr".to_string()),
        _ => None,
    };
    let t = parse_env(&doc("        managed_identity: true\n"), &env).unwrap();
    assert!(matches!(
        &entra_of(&t).credential,
        EntraCredential::ManagedIdentity {
            endpoint: IdentityEndpoint::AppService { .. },
            ..
        }
    ));
}

#[test]
fn mistakes_are_named_with_their_fix() {
    let cases: Vec<(String, &str)> = vec![
        (doc(&format!("        tenant_id: {TENANT}\n")), "has no credential"),
        (
            doc(&format!(
                "        tenant_id: {TENANT}\n        client_id: {CLIENT}\n        \
                 client_secret: {SECRET}\n        managed_identity: true\n"
            )),
            "more than one credential",
        ),
        (
            doc(&format!(
                "        tenant_id: {TENANT}\n        client_id: not-a-guid\n        client_secret: {SECRET}\n"
            )),
            "is not a client id",
        ),
        (
            doc(&format!("        client_id: {CLIENT}\n        client_secret: {SECRET}\n")),
            "tenant_id",
        ),
        (
            doc(&format!(
                "        tenant_id: {TENANT}\n        client_id: {CLIENT}\n        \
                 client_secret: {SECRET}\n        authority_host: login.microsoftonline.com\n"
            )),
            "is not a URL",
        ),
        (
            doc("        managed_identity: true\n        tenant_id: x\n"),
            "remove `tenant_id`",
        ),
        (
            doc(&format!(
                "        tenant_id: {TENANT}\n        client_id: {CLIENT}\n        client_secret_file: /nonexistent/secret\n"
            )),
            "/nonexistent/secret",
        ),
        (
            "clusters:\n  onprem: {bootstrap_servers: 'x:1'}\n  eh:\n    event_hubs:\n      \
             entra: {managed_identity: true}\nflows:\n  - {source: onprem, target: eh, topics: [t]}\n"
                .to_string(),
            "namespace",
        ),
        (
            "clusters:\n  onprem: {bootstrap_servers: 'x:1'}\n  eh:\n    event_hubs:\n      \
             namespace: myns.servicebus.windows.net\n      connection_string: \
             'Endpoint=sb://a/;SharedAccessKeyName=k;SharedAccessKey=v'\n      entra: \
             {managed_identity: true}\nflows:\n  - {source: onprem, target: eh, topics: [t]}\n"
                .to_string(),
            "either a connection string or `entra`",
        ),
        (
            "clusters:\n  onprem: {bootstrap_servers: 'x:1'}\n  eh:\n    event_hubs:\n      \
             namespace: sb://myns.servicebus.windows.net/\n      entra: {managed_identity: true}\n\
             flows:\n  - {source: onprem, target: eh, topics: [t]}\n"
                .to_string(),
            "is not a namespace host",
        ),
    ];
    for (text, want) in cases {
        let e = parse(&text).unwrap_err();
        assert!(e.contains(want), "want `{want}` in: {e}\n--- {text}");
        assert!(e.starts_with("t.yaml:"), "located: {e}");
    }
}

#[test]
fn bootstrap_servers_overrides_the_namespace_endpoint() {
    let text = "clusters:\n  onprem: {bootstrap_servers: 'x:1'}\n  eh:\n    bootstrap_servers: \
         127.0.0.1:19093\n    event_hubs:\n      namespace: emulated.servicebus.windows.net\n      \
         entra: {managed_identity: true}\nflows:\n  - {source: onprem, target: eh, topics: [t]}\n";
    let t = parse(text).unwrap();
    assert_eq!(t.clusters["eh"].bootstrap_servers, "127.0.0.1:19093");
    let cfg = crate::cluster::client_config(&t.clusters["eh"]);
    assert_eq!(cfg.get("sasl.mechanism"), Some("OAUTHBEARER"));
    assert_eq!(cfg.get("security.protocol"), Some("SASL_SSL"));
    assert!(cfg.get("sasl.password").is_none());
}
