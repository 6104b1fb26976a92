//! Microsoft Entra ID through the emulator: each credential mode replicates both ways exactly,
//! short-lived tokens are refreshed under a stream without a stall, a loss, a duplicate or a
//! flow restart, each wrong credential stops hubmirror with its one line, and no secret or token
//! appears in any output.

use hubmirror_test_support as support;

#[path = "entra/modes.rs"]
mod modes;
#[path = "entra/refresh.rs"]
mod refresh;
#[path = "entra/refusals.rs"]
mod refusals;

use std::path::Path;
use std::time::Duration;

use support::emulator::{EntraOptions, EventHubsEmulator};
use support::hubmirror::Workdir;
use support::topology::{quoted, TopologyBuilder};

/// The emulator's default application (client secret and federated credential), its secret,
/// the subject its federated credential trusts, and the emulator's managed identity.
pub use support::emulator::{
    TEST_CLIENT_ID as APP, TEST_CLIENT_SECRET as SECRET, TEST_FEDERATED_SUBJECT as SUBJECT,
    TEST_MANAGED_IDENTITY as IDENTITY,
};

/// How hubmirror signs in.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    ClientSecret,
    WorkloadIdentity,
    ManagedIdentity,
}

/// A namespace with Entra ID and (for the independent checking client) SAS still on.
pub fn emulator(token_lifetime: Duration) -> EventHubsEmulator {
    EventHubsEmulator::start_entra(EntraOptions {
        token_lifetime,
        local_auth: true,
        ..EntraOptions::default()
    })
}

/// The `entra:` mapping for `mode` and the environment hubmirror needs with it (files in `work`).
pub fn entra_for(
    mode: Mode,
    eh: &EventHubsEmulator,
    work: &Workdir,
) -> (String, Vec<(String, String)>) {
    let authority = eh.authority_host();
    match mode {
        Mode::ClientSecret => {
            let file = work.path().join("client-secret");
            std::fs::write(&file, format!("{SECRET}\n")).expect("secret file");
            (
                format!(
                    "{{tenant_id: {}, client_id: {APP}, client_secret_file: {}, authority_host: {}}}",
                    quoted(&eh.tenant_id()),
                    quoted(&file.to_string_lossy()),
                    quoted(&authority)
                ),
                Vec::new(),
            )
        }
        Mode::WorkloadIdentity => {
            let file = work.path().join("azure-identity-token");
            std::fs::write(
                &file,
                eh.federated_token(SUBJECT, Duration::from_secs(3600)),
            )
            .expect("token file");
            (
                "{workload_identity: true}".to_string(),
                vec![
                    ("AZURE_TENANT_ID".into(), eh.tenant_id()),
                    ("AZURE_CLIENT_ID".into(), APP.into()),
                    (
                        "AZURE_FEDERATED_TOKEN_FILE".into(),
                        file.to_string_lossy().to_string(),
                    ),
                    ("AZURE_AUTHORITY_HOST".into(), authority),
                ],
            )
        }
        Mode::ManagedIdentity => (
            format!(
                "{{managed_identity: true, client_id: {IDENTITY}, identity_endpoint: {}}}",
                quoted(&authority)
            ),
            Vec::new(),
        ),
    }
}

/// `onprem` (tansu) ↔ `eventhub` (the emulator, signed in with `entra`), flows both ways.
pub fn both_ways(
    onprem: &support::tansu::Tansu,
    eh: &EventHubsEmulator,
    entra: &str,
    topics: (&str, &str),
) -> TopologyBuilder {
    TopologyBuilder::new()
        .tansu("onprem", onprem)
        .event_hubs_entra("eventhub", eh, &eh.namespace(), entra)
        // Event Hubs' 30 s session makes each join round on the test broker take ~15 s (README,
        // "tansu caveats"); a Kafka source's 10 s is what the other suites use.
        .client("eventhub", "session.timeout.ms", "10000")
        .flow("onprem", "eventhub", &[topics.0])
        .flow("eventhub", "onprem", &[topics.1])
        .replication("refresh_topics_interval", "2s")
}

/// `onprem` (tansu) → `eventhub` (the emulator, signed in with `entra`) over `orders`.
pub fn one_way(
    onprem: &support::tansu::Tansu,
    eh: &EventHubsEmulator,
    entra: &str,
) -> TopologyBuilder {
    TopologyBuilder::new()
        .tansu("onprem", onprem)
        .event_hubs_entra("eventhub", eh, &eh.namespace(), entra)
        .flow("onprem", "eventhub", &["orders"])
        .replication("refresh_topics_interval", "2s")
}

/// The streaming setup: `orders` (2 partitions) on `onprem`, `events` (1) on the emulator, the
/// [`both_ways`] topology written into `work`. Returns the two sides' client configs, the
/// topology file and its metrics address.
pub fn streaming(
    onprem: &support::tansu::Tansu,
    eh: &EventHubsEmulator,
    entra: &str,
    work: &Workdir,
) -> (
    rdkafka::ClientConfig,
    rdkafka::ClientConfig,
    std::path::PathBuf,
    String,
) {
    let src = support::kafka::plain(&onprem.listener());
    let ehc = eh.client_config();
    support::kafka::create_topic(&src, "orders", 2);
    support::kafka::create_topic(&ehc, "events", 1);
    let topo = write(&both_ways(onprem, eh, entra, ("orders", "events")), work);
    (src, ehc, topo, work.metrics_addr())
}

/// Asserts `output` holds none of `secrets` and no JWT (`eyJ...`).
pub fn assert_no_secret(output: &str, secrets: &[&str], what: &str) {
    for s in secrets {
        assert!(
            !s.is_empty() && !output.contains(s),
            "{what}: output leaks a secret"
        );
    }
    assert!(
        !output.contains("eyJ"),
        "{what}: output leaks a token:\n{output}"
    );
}

/// The environment as `Running::start` takes it.
pub fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Writes `topology` into `work`.
pub fn write(topology: &TopologyBuilder, work: &Workdir) -> std::path::PathBuf {
    let p = topology.write(work);
    assert!(Path::new(&p).exists());
    p
}
