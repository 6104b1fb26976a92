//! Each wrong credential stops `hubmirror run` within 30 s with one line naming the cluster, the
//! mode and the fix, and never the secret.

use std::time::Instant;

use super::*;

use support::hubmirror::Running;
use support::tansu::Tansu;

/// Runs hubmirror with `entra` (and `namespace`) and returns its output once it exited.
fn refused(
    eh: &EventHubsEmulator,
    onprem: &Tansu,
    namespace: &str,
    entra: &str,
    env: &[(&str, &str)],
) -> String {
    let work = Workdir::new();
    let topo = TopologyBuilder::new()
        .tansu("onprem", onprem)
        .event_hubs_entra("eventhub", eh, namespace, entra)
        .flow("onprem", "eventhub", &["orders"]);
    let topo = write(&topo, &work);
    let started = Instant::now();
    let mut env = env.to_vec();
    env.push(("RUST_LOG", "debug"));
    let mut run = Running::start(&topo, &env);
    let status = run.wait(Duration::from_secs(30));
    let out = run.output();
    let status = status.unwrap_or_else(|| panic!("still running after 30 s:\n{out}"));
    assert_eq!(status.code(), Some(1), "{out}");
    eprintln!("refused in {:?}", started.elapsed());
    assert_no_secret(&out, &[SECRET, "wrong-secret-value"], "refusal");
    out
}

fn last_line(out: &str) -> &str {
    out.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
}

#[test]
fn each_wrong_credential_fails_fast_with_its_line() {
    let onprem = Tansu::start();
    let eh = emulator(Duration::from_secs(3600));
    let auth = quoted(&eh.authority_host());
    let ns = eh.namespace();
    let work = Workdir::new();
    let secret = |s: &str| {
        let f = work.path().join(format!("secret-{}", s.len()));
        std::fs::write(&f, s).expect("secret file");
        quoted(&f.to_string_lossy())
    };
    let tenant = quoted(&eh.tenant_id());
    let cases: Vec<(&str, String, String, &[&str])> = vec![
        (
            "wrong secret",
            ns.clone(),
            format!("{{tenant_id: {tenant}, client_id: {APP}, client_secret_file: {}, authority_host: {auth}}}", secret("wrong-secret-value")),
            &["AADSTS7000215", "client_secret"],
        ),
        (
            "wrong tenant",
            ns.clone(),
            format!("{{tenant_id: 99999999-9999-9999-9999-999999999999, client_id: {APP}, client_secret_file: {}, authority_host: {auth}}}", secret(SECRET)),
            &["AADSTS90002", "tenant_id"],
        ),
        (
            "unknown client",
            ns.clone(),
            format!("{{tenant_id: {tenant}, client_id: 33333333-3333-3333-3333-333333333333, client_secret_file: {}, authority_host: {auth}}}", secret(SECRET)),
            &["AADSTS700016", "client_id"],
        ),
        (
            "wrong audience",
            "other.servicebus.windows.net".to_string(),
            format!("{{tenant_id: {tenant}, client_id: {APP}, client_secret_file: {}, authority_host: {auth}}}", secret(SECRET)),
            &["AADSTS500011", "namespace"],
        ),
        (
            "unknown managed identity",
            ns.clone(),
            format!("{{managed_identity: true, client_id: 44444444-4444-4444-4444-444444444444, identity_endpoint: {auth}}}"),
            &["managed identity", "client_id"],
        ),
    ];
    for (what, namespace, entra, wants) in cases {
        let out = refused(&eh, &onprem, &namespace, &entra, &[]);
        let line = last_line(&out);
        assert!(line.contains("cluster 'eventhub'"), "{what}: {line}");
        for w in wants {
            assert!(line.contains(w), "{what}: want `{w}` in: {line}");
        }
    }
    // Workload identity: a federated token whose subject has no federated credential.
    let file = work.path().join("other-subject-token");
    std::fs::write(
        &file,
        eh.federated_token(
            "system:serviceaccount:other:other",
            Duration::from_secs(600),
        ),
    )
    .unwrap();
    let path = file.to_string_lossy().to_string();
    let tenant_id = eh.tenant_id();
    let authority = eh.authority_host();
    let env = [
        ("AZURE_TENANT_ID", tenant_id.as_str()),
        ("AZURE_CLIENT_ID", APP),
        ("AZURE_FEDERATED_TOKEN_FILE", path.as_str()),
        ("AZURE_AUTHORITY_HOST", authority.as_str()),
    ];
    let out = refused(&eh, &onprem, &ns, "{workload_identity: true}", &env);
    let line = last_line(&out);
    assert!(
        line.contains("workload identity")
            && line.contains("AADSTS70021")
            && line.contains("federated credential"),
        "{line}"
    );
}
